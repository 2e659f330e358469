"""dHBV: parameter networks + HBV physics + gamma routing, trained end to end.

An MLP maps normalised catchment attributes to the static HBV parameters (per component) and the
two routing parameters; an LSTM maps normalised daily forcing and attributes to the daily-dynamic
parameters (BETA, BETAET). Splitting static and dynamic parameters this way lets a BMI compute
the static ones once and step the LSTM one day at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bmi_dhbv import hbv
from delta_core.networks import LSTMNet, MLP
from delta_core.routing import gamma_unit_hydrograph
from delta_core.ngen import crosswalk as X
from delta_core.spec import Batch, Engine, ModelSpec, Variable

#: The pretrained δn(γt,βt) bundle shipped with the package (trained on all 447 pack basins).
DEFAULT_BUNDLE = Path(__file__).resolve().parent / "weights" / "dhbv_dynamic.pt"

#: Forcing variables the model reads, in order: P [mm/day], T [degC], PET [mm/day].
FORCING_NAMES: tuple[str, ...] = ("prcp", "tmean", "pet")

#: BMI names of the groundwater zones.
UPPER = "groundwater~upper_zone__depth"
LOWER = "groundwater~lower_zone__depth"

#: Every variable of dHBV, declared once: the output series of :meth:`DHBV.forward` (all
#: [T, B], basin means; dynamic parameters only if dynamic), the BMI core's named arrays and
#: the BMI variables (see :class:`~delta_core.spec.Variable`).
VARIABLES: tuple[Variable, ...] = (
    Variable("prcp", "mm d-1", "precipitation rate (liquid equivalent)", X.PRECIP, "input",
             "sum", series=False, min_value=0.0),
    Variable("tmean", "degC", "air temperature (mean over the step)", X.TEMP, "input", "mean",
             series=False, plausible=X.T_PLAUSIBLE),
    Variable("pet", "mm d-1", "potential evapotranspiration", X.PET, "input", "sum",
             series=False, when="pet_input", min_value=0.0),
    Variable("tmax", "degC", "daily maximum air temperature", X.TMAX, "input", "max",
             series=False, when="daily_hargreaves", plausible=X.T_PLAUSIBLE),
    Variable("tmin", "degC", "daily minimum air temperature", X.TMIN, "input", "min",
             series=False, when="daily_hargreaves", plausible=X.T_PLAUSIBLE),
    Variable("runoff_depth", "m", "routed runoff depth over the time step", X.RUNOFF_DEPTH,
             "runoff_depth", series=False, csv_header="runoff_depth_m"),
    Variable("runoff_flux", "m3 s-1", "routed runoff volume flux at the catchment outlet "
             "(depth x area / step)", X.RUNOFF_FLUX, "runoff_flux", series=False,
             csv_header="runoff_m3_s"),
    Variable("streamflow", "mm d-1", "routed streamflow"),
    Variable("et", "mm d-1", "actual evapotranspiration", X.ET, "rate", csv_header="et_rate"),
    Variable("swe", "mm", "snow water equivalent (snowpack + liquid water in snow)", X.SWE,
             "level", csv_header="swe_mm"),
    Variable("soil_moisture", "mm", "soil moisture storage (HBV SM)", X.SOIL, "level",
             csv_header="soil_moisture_mm"),
    Variable("upper_zone", "mm", "upper groundwater zone storage (HBV SUZ)", UPPER, "level"),
    Variable("lower_zone", "mm", "lower groundwater zone storage (HBV SLZ)", LOWER, "level"),
    Variable("surface_flow", "mm d-1", "routed fast flow Q0 from the upper zone above UZL",
             X.SURFACE_FLOW, "flow"),
    Variable("interflow", "mm d-1", "routed interflow Q1 from the upper zone", X.INTERFLOW,
             "flow"),
    Variable("baseflow", "mm d-1", "routed baseflow Q2 from the lower zone", X.BASEFLOW, "flow",
             csv_header="baseflow_rate"),
    Variable("pet", "mm d-1", "potential evapotranspiration (Hargreaves)", X.PET, "rate",
             when="pet_derived"),
    Variable("streamflow_unrouted", "mm d-1", "component-mean Q0+Q1+Q2 before routing"),
    Variable("recharge", "mm d-1", "recharge from soil to the upper zone (incl. excess)"),
    Variable("percolation", "mm d-1", "percolation from upper to lower zone"),
    Variable("melt", "mm d-1", "snowmelt"),
    *(Variable(n, "1", f"daily component mean of dynamic parameter {n}", f"hbv__{n.lower()}",
               "level", when="dynamic") for n in hbv.DYNAMIC_CAPABLE),
)


@dataclass
class NetworkConfig:
    """Sizes of dHBV's parameter networks (the ``network`` section of a run config)."""

    static_hidden: int = 256
    static_layers: int = 2
    dynamic_hidden: int = 64
    dropout: float = 0.0


class RechargeNet(nn.Module):
    """Small NN replacing the (SM/FC)^BETA effective-rainfall curve (δn(NNr)).

    Input features (FC, BETA, SM, SM/FC, RAIN+tosoil) are scaled to O(1); output in (0, 1).
    """

    SCALE = (1000.0, 6.0, 1000.0, 1.0, 10.0)

    def __init__(self, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.register_buffer("scale", torch.tensor(self.SCALE), persistent=False)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(feats / self.scale.to(feats.dtype))).squeeze(-1)


class DHBV(nn.Module):
    """The differentiable HBV model.

    Parameters
    ----------
    options : HBVOptions
        Number of components, dynamic parameters, NN recharge.
    n_attributes : int
        Number of encoded attribute features.
    static_hidden, static_layers, dynamic_hidden, dropout :
        Network sizes.
    """

    model_name = "dhbv"

    def __init__(self, options: hbv.HBVOptions, n_attributes: int, static_hidden: int = 256,
                 static_layers: int = 2, dynamic_hidden: int = 64, dropout: float = 0.0,
                 engine: Engine | None = None):
        super().__init__()
        self.options = options
        self.n_attributes = n_attributes
        self.engine = engine or Engine()
        c = options.n_components
        self.static_names = options.static
        self.dynamic_names = options.dynamic
        self.static_net = MLP(n_attributes, len(self.static_names) * c + len(hbv.ROUTING_RANGES),
                              static_hidden, static_layers, dropout)
        self.dynamic_net = (LSTMNet(len(FORCING_NAMES) + n_attributes,
                                    len(self.dynamic_names) * c, dynamic_hidden, dropout)
                            if self.dynamic_names else None)
        self.recharge_net = RechargeNet() if options.nn_recharge else None

    # -- parameters ------------------------------------------------------------------------
    def static_parameters(self, x_attr: torch.Tensor
                          ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Static HBV parameters ``{name: [B, C]}`` and unit hydrograph ``[B, 15]``.

        Parameters
        ----------
        x_attr : Tensor [B, n_attributes]
            Normalised attributes.
        """
        par, route_a, route_b = self.static_and_routing(x_attr)
        return par, gamma_unit_hydrograph(route_a, route_b, hbv.UH_LENGTH)

    def static_and_routing(self, x_attr: torch.Tensor
                           ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Static HBV parameters ``{name: [B, C]}`` and the gamma routing parameters
        ``route_a`` [1], ``route_b`` [d] (each ``[B]``)."""
        c = self.options.n_components
        out = torch.sigmoid(self.static_net(x_attr))
        n_s = len(self.static_names)
        par = hbv.scale_parameters(out[:, : n_s * c].reshape(-1, n_s, c), self.static_names,
                                   self.options.parameter_ranges)
        r = out[:, n_s * c:]
        (lo_a, hi_a, _), (lo_b, hi_b, _) = hbv.ROUTING_RANGES.values()
        return par, lo_a + r[:, 0] * (hi_a - lo_a), lo_b + r[:, 1] * (hi_b - lo_b)

    def lstm_inputs(self, x_forcing: torch.Tensor, x_attr: torch.Tensor) -> torch.Tensor:
        """LSTM input ``[T, B, 3 + n_attributes]`` from normalised forcing and attributes."""
        return torch.cat([x_forcing, x_attr.unsqueeze(0).expand(x_forcing.shape[0], -1, -1)], -1)

    def dynamic_parameters(self, x_seq: torch.Tensor, state=None
                           ) -> tuple[dict[str, torch.Tensor], tuple | None]:
        """Daily-dynamic parameters ``{name: [T, B, C]}`` and the LSTM state after the last day."""
        if self.dynamic_net is None:
            return {}, None
        c, n_d = self.options.n_components, len(self.dynamic_names)
        raw, state = self.dynamic_net(x_seq, state)
        unit = torch.sigmoid(raw).reshape(raw.shape[0], raw.shape[1], n_d, c)
        return hbv.scale_parameters(unit, self.dynamic_names, self.options.parameter_ranges), state

    # -- simulation ------------------------------------------------------------------------
    @property
    def pattern(self):
        """The within-day pattern of an hourly model (None: HBV steps daily)."""
        return self.options.pattern

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Simulate; the first ``batch["warmup"]`` days only spin up states (no gradient, not
        returned).

        Parameters
        ----------
        batch : dict
            ``forcing`` [T, B, 3] raw P [mm/day], T [degC], PET [mm/day]; ``x_forcing`` the same
            normalised (LSTM input); ``x_attr`` [B, n_attributes]; ``warmup`` (days, default 0).
            The HBV engine is ``self.engine.backend``. In training mode (``model.train()``) the
            daily stores are not collected (faster; the loss needs streamflow only).

        Returns
        -------
        dict
            The series of :data:`VARIABLES` ``[T - warmup, B]`` (dynamic parameters only if
            dynamic) and
            ``"final_states"`` ``[5, B, C]``. HBV steps daily, or hourly on disaggregated forcing
            with ``options.steps_per_day = 24`` (:mod:`bmi_dhbv.substeps`); outputs are daily.
        """
        from bmi_dhbv import substeps

        o = self.options
        return substeps.simulate(self, batch, o.steps_per_day, o.within_day, o.dynamic_lag_days)


def build_model(physics: hbv.HBVOptions, network: NetworkConfig, n_attributes: int,
                engine: Engine) -> DHBV:
    """Build a :class:`DHBV` from validated ``physics`` and ``network`` config sections."""
    return DHBV(physics, n_attributes, network.static_hidden, network.static_layers,
                network.dynamic_hidden, network.dropout, engine)


#: dHBV's declaration to the shared machinery (registered as "dhbv").
SPEC = ModelSpec(
    name="dhbv",
    description="differentiable HBV: 16 components, LSTM-dynamic BETA/BETAET, gamma routing",
    forcings=FORCING_NAMES,
    step_seconds=86400,
    physics_steps=(86400, 3600),
    variables=VARIABLES,
    network_config=NetworkConfig,
    physics_config=hbv.HBVOptions,
    build=build_model,
    flow_components=("surface_flow", "interflow", "baseflow"),
    default_bundle=DEFAULT_BUNDLE,
    bmi_class="bmi_dhbv.BmiDHBV",
    calibration_target="bmi_dhbv.calibration:HBVCalibrationTarget",
    commands={"realization": "bmi_dhbv.realization:main"},
)
