"""A toy second δ model, registered in a few dozen lines, to prove the shared machinery carries
any model: a linear reservoir whose two parameters come from an attribute MLP.

Daily step: S += P; ET = min(c * max(T, 0), S); S -= ET; Q = k * S; S -= Q. Every generic test
(contract, bundle, training, evaluation, BMI, bmi-tester, ngen replay) runs on it by registration.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from delta_core.bmi.adapter import NgenBmi
from delta_core.bmi.core import LumpedCore
from delta_core.networks import MLP
from delta_core.ngen import crosswalk as X
from delta_core.registry import register
from delta_core.spec import ModelSpec, Variable, core_names

RANGES = {"k": (0.01, 0.5, "d-1"), "c": (0.0, 0.3, "mm degC-1 d-1")}


@dataclass
class ToyNetwork:
    hidden: int = 8


@dataclass
class ToyPhysics:
    storage0: float = 1.0  # cold-start storage [mm]


def reservoir_step(s, p, t, k, c):
    """One day of the linear reservoir; works on floats and tensors. Returns (S, Q, ET)."""
    s = s + p
    et = torch.minimum(c * torch.clamp(t, min=0.0), s) if torch.is_tensor(s) else \
        min(c * max(t, 0.0), s)
    s = s - et
    q = k * s
    return s - q, q, et


class ToyModel(nn.Module):
    def __init__(self, physics: ToyPhysics, network: ToyNetwork, n_attributes: int, engine):
        super().__init__()
        self.physics, self.engine = physics, engine
        self.net = MLP(n_attributes, 2, network.hidden, 1)

    def parameters_of(self, x_attr):
        u = torch.sigmoid(self.net(x_attr))
        return [lo + u[:, i] * (hi - lo) for i, (lo, hi, _) in enumerate(RANGES.values())]

    def forward(self, batch):
        p, t = batch["forcing"].unbind(-1)
        k, c = self.parameters_of(batch["x_attr"])
        s = torch.full_like(p[0], self.physics.storage0)
        qs, ets, ss = [], [], []
        for i in range(p.shape[0]):
            s, q, et = reservoir_step(s, p[i], t[i], k, c)
            qs.append(q), ets.append(et), ss.append(s)
        w = int(batch.get("warmup", 0))
        return {"streamflow": torch.stack(qs)[w:], "et": torch.stack(ets)[w:],
                "storage": torch.stack(ss)[w:]}


VARIABLES = (
    Variable("prcp", "mm d-1", "precipitation", X.PRECIP, "input", "sum", series=False,
             min_value=0.0),
    Variable("tmean", "degC", "air temperature", X.TEMP, "input", "mean", series=False,
             plausible=X.T_PLAUSIBLE),
    Variable("runoff_depth", "m", "runoff depth over the step", X.RUNOFF_DEPTH, "runoff_depth",
             series=False),
    Variable("runoff_flux", "m3 s-1", "runoff volume flux", X.RUNOFF_FLUX, "runoff_flux",
             series=False),
    Variable("streamflow", "mm d-1", "outflow", kind="flow"),
    Variable("et", "mm d-1", "ET", X.ET, "rate"),
    Variable("storage", "mm", "storage", X.SOIL, "level"),
)

SPEC = ModelSpec(
    name="toy", description="linear reservoir (tests)", forcings=("prcp", "tmean"),
    step_seconds=86400,
    variables=VARIABLES,
    network_config=ToyNetwork,
    physics_config=ToyPhysics, build=ToyModel, flow_components=("streamflow",),
    bmi_class="toy_model.BmiToy")


class ToyCore(LumpedCore):
    fields = ("prcp", "tmean")
    flows, rates, levels = (core_names(VARIABLES, k) for k in ("flow", "rate", "level"))

    def __init__(self, k: float, c: float, storage0: float):
        super().__init__()
        self.k, self.c, self.s0 = k, c, storage0
        self.reset()

    def reset(self):
        self.s = self.s0
        self.values["storage"][0] = self.s

    def step(self, forcing, start):
        self.s, q, et = reservoir_step(self.s, forcing[0], forcing[1], self.k, self.c)
        self.flow_new = np.array([q])
        self.values["et"][0], self.values["storage"][0] = et, self.s

    def get_state(self):
        return {"s": np.array([self.s]), "et": self.rate_values.copy()}

    def set_state(self, state):
        self.s = float(state["s"][0])
        self.set_values(state["et"], np.array([self.s]))


class BmiToy(NgenBmi):
    MODEL = "toy"
    SPINUP_COLUMNS = {"prcp_mm_day": "prcp", "tmean_c": "tmean"}

    def _make_core(self, model, norm, x_attr, cfg):
        with torch.no_grad():
            k, c = model.parameters_of(torch.as_tensor(x_attr[None], dtype=torch.float64))
        return ToyCore(float(k[0]), float(c[0]), model.physics.storage0)


register(SPEC, "toy_model:SPEC")


if __name__ == "__main__":  # torchrun -m toy_model --config C: train with the toy registered
    from delta_core.training import main

    main()
