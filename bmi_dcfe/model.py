"""dCFE: an MLP learns CFE's parameters from catchment attributes; CFE runs hourly inside the
daily training contract.

Per basin and day: a degree-day snow routine (:mod:`delta_core.snow`, the one dHBV uses) turns
daily precipitation and temperature into liquid water (rain + release from the pack); that water
and the daily PET are spread over the hours of the day (:mod:`delta_core.patterns`,
configurable); CFE (:mod:`bmi_dcfe.physics`, the exact hourly NOAA-OWP model) steps every hour;
its hourly outlet flow is summed to days for the loss. So the learned parameters are those of
NextGen's hourly CFE, with its hourly constants (Cgw, K_lf, K_nash per hour).

The trained model uses ``mass_conserving=True`` (see :mod:`bmi_dcfe.physics`): where the C model
would lose or create water (full groundwater store, saturated soil), training would otherwise push
parameters to exploit or avoid those branches; elsewhere both modes are identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bmi_dcfe import physics
from delta_core import snow as snow_routine
from delta_core import subdaily
from delta_core.patterns import HourlyPhysics, WithinDay
from delta_core.subdaily import daily_sums, end_of_day
from delta_core.networks import MLP, LSTMNet
from delta_core.routing import gamma_unit_hydrograph
from delta_core.ngen import crosswalk as X
from delta_core.spec import Batch, Engine, ModelSpec, ParameterSpec, Variable

#: Static parameters, trained with each day's rain in 6 h from 12:00 (``dcfe_static_full.yaml``).
STATIC_BUNDLE = Path(__file__).resolve().parent / "weights" / "dcfe_static.pt"
#: LSTM-dynamic refkdt and satdk, rain in 6 h from 12:00 (``configs/dcfe_dynamic_full.yaml``).
DYNAMIC_BUNDLE = STATIC_BUNDLE.with_name("dcfe_dynamic.pt")
#: The dynamic bundle fine-tuned with stochastic storms (``configs/dcfe_hourly.yaml``), then
#: with the storms in the data's day (``configs/dcfe_hourly_dataday.yaml``), then with a GIUH
#: of 168 h (``configs/dcfe_hourly_giuh.yaml``): the default, the one for NextGen's hourly rain
#: (docs/hourly.md).
HOURLY_BUNDLE = STATIC_BUNDLE.with_name("dcfe_hourly.pt")
DEFAULT_BUNDLE = HOURLY_BUNDLE

#: Forcing variables: P [mm/day], mean T [degC], PET [mm/day] (daily, as the CAMELS pack).
FORCING_NAMES: tuple[str, ...] = ("prcp", "tmean", "pet")

#: Learned parameters: CFE's calibration set (NWM/ngen-cal ranges), the GIUH shape, the snow
#: routine. ``name: (low, high, units, log_scale)``; CFE names as in :class:`physics.CfeParameters`.
PARAMETER_RANGES: dict[str, tuple[float, float, str, bool]] = {
    "bb": (2.0, 15.0, "1", False),
    "smcmax": (0.2, 0.7, "m3 m-3", False),
    "satdk": (1.0e-7, 1.0e-4, "m s-1", True),
    "slop": (0.0, 1.0, "1", False),
    "max_gw_storage": (0.01, 0.25, "m", False),
    "expon_gw": (1.0, 8.0, "1", False),
    "cgw": (1.8e-6, 1.8e-3, "m h-1", True),
    "k_lf": (0.001, 0.5, "h-1", True),
    "k_nash": (0.001, 0.9, "h-1", True),
    "refkdt": (0.1, 4.0, "1", False),
    "giuh_a": (0.0, 2.9, "1", False),
    "giuh_b": (0.0, 12.0, "h", False),
    **{k: (lo, hi, u, False) for k, (lo, hi, u) in snow_routine.PARAMETER_RANGES.items()},
}
PARAMETERS: tuple[ParameterSpec, ...] = tuple(
    ParameterSpec(n, lo, hi, u, dynamic_capable=n in physics.DYNAMIC_PARAMETERS, log_scale=log)
    for n, (lo, hi, u, log) in PARAMETER_RANGES.items())
_BY_NAME = {p.name: p for p in PARAMETERS}

#: BMI name of the groundwater store.
GROUNDWATER = "groundwater__depth"

#: Every variable of dCFE, declared once: the output series of :meth:`DCFE.forward` (daily,
#: [D, B]), the hourly BMI core's named arrays and the BMI variables (see
#: :class:`~delta_core.spec.Variable`).
VARIABLES: tuple[Variable, ...] = (
    Variable("prcp", "mm d-1", "precipitation rate (liquid equivalent)", X.PRECIP, "input",
             "sum", series=False, min_value=0.0),
    Variable("tmean", "degC", "air temperature", X.TEMP, "input", "mean", series=False,
             plausible=X.T_PLAUSIBLE),
    Variable("pet", "mm d-1", "potential evapotranspiration", X.PET, "input", "sum",
             series=False, when="pet_input", min_value=0.0),
    Variable("runoff_depth", "m", "runoff depth at the outlet over the time step: CFE Q_OUT",
             X.RUNOFF_DEPTH, "runoff_depth", series=False, csv_header="runoff_depth_m"),
    Variable("runoff_flux", "m3 s-1", "runoff volume flux at the catchment outlet (depth x "
             "area / step)", X.RUNOFF_FLUX, "runoff_flux", series=False,
             csv_header="runoff_m3_s"),
    Variable("streamflow", "mm d-1", "CFE outlet flow Q_OUT summed over the day"),
    Variable("et", "mm d-1", "actual evapotranspiration", X.ET, "rate", csv_header="et_rate"),
    Variable("pet", "mm d-1", "potential evapotranspiration (Hargreaves)", X.PET, "rate",
             when="pet_derived"),
    Variable("melt", "mm d-1", "snowmelt", X.MELT, "rate"),
    Variable("swe", "mm", "snow water equivalent at the end of the step", X.SWE, "level",
             csv_header="swe_mm"),
    Variable("soil_moisture", "mm", "CFE soil reservoir storage at the end of the step", X.SOIL,
             "level", csv_header="soil_moisture_mm"),
    Variable("groundwater", "mm", "CFE groundwater storage at the end of the step", GROUNDWATER,
             "level"),
    Variable("surface_flow", "mm d-1", "direct (surface) runoff after GIUH routing",
             X.SURFACE_FLOW, "flow"),
    Variable("interflow", "mm d-1", "lateral subsurface flow after the Nash cascade",
             X.INTERFLOW, "flow"),
    Variable("baseflow", "mm d-1", "flow from the groundwater reservoir (incl. the overflow of "
             "a full store, mass_conserving)", X.BASEFLOW, "flow", csv_header="baseflow_rate"),
    *(Variable(n, PARAMETER_RANGES[n][2], f"daily value of dynamic parameter {n} (dynamic "
               f"models only)", f"cfe__{n.lower()}", "level", when="dynamic")
      for n in physics.DYNAMIC_PARAMETERS),
)

#: Hourly CFE outputs behind the daily outputs (daily sums, or end-of-day values for storages).
_HOURLY = {"streamflow": "Q_OUT", "surface_flow": "DIRECT_RUNOFF", "interflow": "NASH_LATERAL_RUNOFF",
           "baseflow": "DEEP_GW_TO_CHANNEL_FLUX", "et": "ACTUAL_ET"}
_STORES = {"soil_moisture": "SOIL_STORAGE", "groundwater": "GW_STORAGE"}


@dataclass
class NetworkConfig:
    """Size of the parameter network (the ``network`` section of a run config)."""

    hidden: int = 256
    layers: int = 2
    dropout: float = 0.0
    dynamic_hidden: int = 64


@dataclass
class PhysicsConfig(HourlyPhysics):
    """CFE options, fixed soil constants and the hourly disaggregation (``physics`` section).

    Soil constants not learned are the NWM defaults of the shared reference configs.
    """

    partitioning: str = "schaake"
    surface: str = "giuh"
    soil_scheme: str = "classic"
    mass_conserving: bool = True
    giuh_hours: int = 48
    n_nash_lateral: int = 2
    soil_depth: float = 2.0
    alpha_fc: float = 0.33
    satpsi: float = 0.355
    wltsmc: float = 0.066
    initial_soil_fraction: float = 0.5
    initial_gw_fraction: float = 0.5
    #: How daily rain and PET are spread over the hours (:mod:`delta_core.patterns`).
    within_day: WithinDay = field(default_factory=WithinDay)
    #: Parameters the LSTM sets day by day (of :data:`bmi_dcfe.physics.DYNAMIC_PARAMETERS`);
    #: empty: all static.
    dynamic: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.surface != "giuh":
            raise ValueError("dCFE learns GIUH routing; surface='nash_cascade' is available in "
                             "bmi_dcfe.physics and BmiDCFE config-file mode only")
        self.dynamic = list(self.dynamic)
        for name in self.dynamic:
            if name not in physics.DYNAMIC_PARAMETERS:
                raise ValueError(f"physics.dynamic: {name!r} cannot be dynamic; valid: "
                                 f"{list(physics.DYNAMIC_PARAMETERS)}")
        if len(set(self.dynamic)) != len(self.dynamic):
            raise ValueError(f"physics.dynamic lists a parameter twice: {self.dynamic}")
        self.options()

    def options(self) -> physics.CfeOptions:
        return physics.CfeOptions(partitioning=self.partitioning, surface=self.surface,
                                  soil_scheme=self.soil_scheme,
                                  mass_conserving=self.mass_conserving)


class DCFE(nn.Module):
    """Parameter MLP (+ LSTM for dynamic parameters) + snow + hourly CFE.

    Dynamic parameters (``config.dynamic``) take one value per day from an LSTM over the daily
    forcing and attributes, *lagged by one day*: day d's value comes from the LSTM state after
    day d - 1 (day 0: the state before any forcing), so an hourly host (the BMI) knows a day's
    parameters at its first hour. Their values are held for the 24 hours of the day.

    Parameters
    ----------
    config : PhysicsConfig
    n_attributes : int
        Number of encoded attribute features.
    network : NetworkConfig
    engine : Engine
        CFE backend ("cpp": :mod:`bmi_dcfe.kernel`; "torch": :mod:`bmi_dcfe.physics`) and dtype.
    """

    model_name = "dcfe"

    def __init__(self, config: PhysicsConfig, n_attributes: int, network: NetworkConfig,
                 engine: Engine | None = None):
        super().__init__()
        self.config = config
        self.n_attributes = n_attributes
        self.engine = engine or Engine()
        self.dynamic_names = tuple(config.dynamic)
        self.static_specs = tuple(p for p in PARAMETERS if p.name not in self.dynamic_names)
        self.net = MLP(n_attributes, len(self.static_specs), network.hidden, network.layers,
                       network.dropout)
        self.dynamic_net = (LSTMNet(len(FORCING_NAMES) + n_attributes, len(self.dynamic_names),
                                    network.dynamic_hidden, network.dropout)
                            if self.dynamic_names else None)

    def parameters_physical(self, x_attr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Static learned parameters ``{name: [B]}`` in physical units from encoded attributes
        (all of :data:`PARAMETERS` but the dynamic ones)."""
        unit = torch.sigmoid(self.net(x_attr))
        return {p.name: p.from_unit(unit[:, i]) for i, p in enumerate(self.static_specs)}

    def dynamic_parameters(self, x_forcing: torch.Tensor, x_attr: torch.Tensor
                           ) -> dict[str, torch.Tensor]:
        """Daily dynamic parameters ``{name: [D, B]}`` (physical units), lagged one day (class
        docstring), from normalised daily forcing ``[D, B, 3]`` and attributes ``[B, A]``."""
        if self.dynamic_net is None:
            return {}
        x = torch.cat([x_forcing, x_attr.unsqueeze(0).expand(x_forcing.shape[0], -1, -1)], -1)
        raw, _ = self.dynamic_net(x)
        return self.scale_dynamic(self.dynamic_net.lag_one_step(raw))

    def scale_dynamic(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw LSTM head outputs ``[..., n_dynamic]`` to ``{name: [...]}`` in physical units."""
        unit = torch.sigmoid(raw)
        return {n: _BY_NAME[n].from_unit(unit[..., i]) for i, n in enumerate(self.dynamic_names)}

    def cfe_parameters(self, learned: dict[str, torch.Tensor]) -> physics.CfeParameters:
        """Full CFE parameter set: learned values plus the configured constants."""
        c = self.config
        ref = learned["bb"]
        const = lambda v: torch.full_like(ref, v)  # noqa: E731
        giuh = gamma_unit_hydrograph(learned["giuh_a"], learned["giuh_b"], c.giuh_hours)
        return physics.CfeParameters(
            depth=const(c.soil_depth), bb=learned["bb"], satdk=learned["satdk"],
            satpsi=const(c.satpsi), slop=learned["slop"], smcmax=learned["smcmax"],
            wltsmc=const(c.wltsmc), expon_soil=const(1.0), expon_soil_secondary=const(1.0),
            max_gw_storage=learned["max_gw_storage"], cgw=learned["cgw"],
            expon_gw=learned["expon_gw"], alpha_fc=const(c.alpha_fc), refkdt=learned["refkdt"],
            k_lf=learned["k_lf"], k_nash=learned["k_nash"], giuh_ordinates=giuh,
            xaj_a=const(0.0), xaj_b=const(1.0), xaj_x=const(1.0), urban_fraction=const(0.0),
            k_nash_surface=const(0.0), k_infiltration=const(0.0), retention_depth=const(0.0))

    def initial_state(self, params: physics.CfeParameters) -> physics.CfeState:
        c = self.config
        return physics.initial_state(params, c.initial_soil_fraction, c.initial_gw_fraction,
                                     n_lateral=c.n_nash_lateral)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Simulate days; the first ``batch["warmup"]`` days only spin up the stores.

        Parameters
        ----------
        batch : dict
            ``forcing`` [D, B, 3]: P [mm/day], T [degC], PET [mm/day]; ``x_attr`` [B, A];
            ``warmup`` (days). In training mode only the flows are collected.

        Returns
        -------
        dict
            The series of :data:`VARIABLES` [D - warmup, B] (mm/day; stores in mm at the end of
            each day).
        """
        learned = self.parameters_physical(batch["x_attr"])
        dynamic = (self.dynamic_parameters(batch["x_forcing"], batch["x_attr"])
                   if self.dynamic_names else None)
        return self.simulate(learned, batch["forcing"], int(batch.get("warmup", 0)), dynamic,
                             batch)

    @property
    def pattern(self) -> WithinDay:
        """How daily rain and PET are spread over the hours."""
        return self.config.pattern

    def simulate(self, learned: dict[str, torch.Tensor], forcing: torch.Tensor,
                 warmup: int = 0, dynamic: dict[str, torch.Tensor] | None = None,
                 batch: dict | None = None) -> dict[str, torch.Tensor]:
        """Snow + hourly CFE for given physical parameters, e.g. from the networks or from a
        per-basin calibration: static ``learned`` ``{name: [B]}`` and, for the model's dynamic
        parameters, daily ``dynamic`` ``{name: [D, B]}`` (held for each day's 24 hours).

        ``forcing`` [D, B, 3] daily P [mm/day], T [degC], PET [mm/day]; returns
        the series of :data:`VARIABLES` [D - warmup, B] (see :meth:`forward`; dynamic parameters
        as daily series too). ``batch`` may carry this run's ``rain_weights`` [D, B, 24] or
        ``hourly_forcing`` [24 D, B, 3] (:func:`delta_core.subdaily.step_forcing`).
        """
        batch = batch or {}
        dynamic = dynamic or {}
        missing = set(self.dynamic_names) - set(dynamic)
        if missing:
            raise ValueError(f"dCFE.simulate: daily values of dynamic {sorted(missing)} needed")
        # dynamic parameters' static slots: their first day (unused by the runs below)
        params = self.cfe_parameters({**learned, **{k: v[0] for k, v in dynamic.items()}})
        pattern = self.config.pattern
        steps = subdaily.step_forcing(forcing, pattern, batch)
        liquid, melt, swe = subdaily.liquid_water(forcing, steps, pattern, batch, learned)
        rain_h = liquid / 1000.0
        pet_h = steps.pet / (1000.0 * physics.STEP_SECONDS)
        keep = tuple(_HOURLY.values()) + (() if self.training else tuple(_STORES.values()))

        def block(state, s0, s1, grad):
            days = {k: v[s0 // 24:s1 // 24] for k, v in dynamic.items()}
            return self._run(state, params, rain_h[s0:s1], pet_h[s0:s1],
                             keep if grad else ("Q_OUT",), days)

        _, hourly, _ = subdaily.run_steps(block, self.initial_state(params), rain_h.shape[0],
                                          24 * warmup, None, lambda s: s.map(torch.Tensor.detach))
        out = {k: daily_sums(hourly[v]) * 1000.0 for k, v in _HOURLY.items()}
        out["pet"] = daily_sums(steps.pet[24 * warmup:]) if steps.given else forcing[warmup:, :, 2]
        out["melt"] = melt[warmup:]
        if not self.training:
            out["swe"] = swe[warmup:]
            for k, v in _STORES.items():
                out[k] = end_of_day(hourly[v]) * 1000.0
            for k, v in dynamic.items():
                out[k] = v[warmup:]
        return out

    def _run(self, state, params, rain, pet, keep, dynamic):
        dyn = dynamic or None
        if self.engine.backend == "torch":
            return physics.run(state, params, rain, pet, self.config.options(), outputs=keep,
                               dynamic=dyn, period=24)
        from bmi_dcfe import kernel

        return kernel.run(state, params, rain, pet, self.config.options(), outputs=keep,
                          backend=self.engine.backend, dynamic=dyn, period=24)


def build_model(physics_config: PhysicsConfig, network: NetworkConfig, n_attributes: int,
                engine: Engine) -> DCFE:
    """Build a :class:`DCFE` from validated config sections."""
    return DCFE(physics_config, n_attributes, network, engine)


#: dCFE's declaration to the shared machinery (registered as "dcfe").
SPEC = ModelSpec(
    name="dcfe",
    description="differentiable CFE (NOAA-OWP, hourly) with degree-day snow; MLP-learned parameters",
    forcings=FORCING_NAMES,
    step_seconds=86400,
    physics_steps=(3600,),
    variables=VARIABLES,
    network_config=NetworkConfig,
    physics_config=PhysicsConfig,
    build=build_model,
    flow_components=("surface_flow", "interflow", "baseflow"),
    default_bundle=DEFAULT_BUNDLE,
    bmi_class="bmi_dcfe.BmiDCFE",
    calibration_target="bmi_dcfe.calibration:CFECalibrationTarget",
    commands={"realization": "bmi_dcfe.realization:main", "export": "bmi_dcfe.export:main"},
)
