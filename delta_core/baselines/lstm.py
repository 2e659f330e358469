"""A pure LSTM streamflow model, the data-driven baseline (Kratzert et al. 2019 setup).

Daily Daymet forcing (P, Tmax, Tmin, shortwave radiation, vapour pressure, day length),
normalised, and the normalised catchment attributes enter a one-layer LSTM (256 hidden units,
forget-gate bias initialised to 3) at every day; dropout on its output and a linear head give
streamflow, made non-negative by a softplus. It is trained by the shared loop with the same
basins, periods and loss as the δ models (``model: lstm`` in a run config). It has no states or
fluxes beyond streamflow and no BMI: a baseline, not a NextGen product.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from delta_core.spec import Batch, Engine, ModelSpec, Variable

#: Daily forcing the LSTM reads, in order (the Daymet variables of the CAMELS benchmark).
FORCING_NAMES: tuple[str, ...] = ("prcp", "tmax", "tmin", "srad", "vp", "dayl")


@dataclass
class NetworkConfig:
    """Sizes of the LSTM baseline (the ``network`` section of a run config)."""

    hidden: int = 256
    dropout: float = 0.4
    forget_bias: float = 3.0  # initial forget-gate bias: long memory from the start


@dataclass
class NoPhysics:
    """The LSTM has no process model (an empty ``physics`` section)."""


class StreamflowLSTM(nn.Module):
    """LSTM from normalised forcing and attributes to streamflow [mm/day].

    Parameters
    ----------
    n_forcing, n_attributes : int
        Input sizes (normalised forcing variables, encoded attribute features).
    hidden : int
        LSTM hidden units.
    dropout : float
        Dropout on the LSTM output (training only).
    forget_bias : float
        Initial forget-gate bias.
    """

    model_name = "lstm"

    def __init__(self, n_forcing: int, n_attributes: int, hidden: int = 256,
                 dropout: float = 0.4, forget_bias: float = 3.0, engine: Engine | None = None):
        super().__init__()
        self.engine = engine or Engine()
        self.lstm = nn.LSTM(n_forcing + n_attributes, hidden)
        with torch.no_grad():  # torch gate order i, f, g, o; two bias vectors add up
            self.lstm.bias_hh_l0[hidden:2 * hidden] = forget_bias
            self.lstm.bias_ih_l0[hidden:2 * hidden] = 0.0
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Streamflow ``[T - warmup, B]`` [mm/day]; the first ``batch["warmup"]`` days only
        spin up the recurrent state (without gradient)."""
        x = batch["x_forcing"]
        x = torch.cat([x, batch["x_attr"].unsqueeze(0).expand(x.shape[0], -1, -1)], -1)
        w = int(batch.get("warmup", 0))
        state = None
        if w:
            with torch.no_grad():
                _, state = self.lstm(x[:w])
        h, _ = self.lstm(x[w:], state)
        q = nn.functional.softplus(self.head(self.drop(h))).squeeze(-1)
        return {"streamflow": q}


def build_model(physics: NoPhysics, network: NetworkConfig, n_attributes: int,
                engine: Engine) -> StreamflowLSTM:
    """Build the LSTM from validated config sections (``physics`` is empty)."""
    return StreamflowLSTM(len(FORCING_NAMES), n_attributes, network.hidden, network.dropout,
                          network.forget_bias, engine)


#: The LSTM baseline's declaration to the shared machinery (registered as "lstm").
SPEC = ModelSpec(
    name="lstm",
    description="pure LSTM streamflow baseline (Daymet forcing + attributes, 256 units)",
    forcings=FORCING_NAMES,
    step_seconds=86400,
    variables=(Variable("streamflow", "mm d-1", "streamflow (LSTM)"),),
    network_config=NetworkConfig,
    physics_config=NoPhysics,
    build=build_model,
)
