"""dLGAR: an MLP learns bounded corrections of the texture-table LGAR parameters from catchment
attributes; LGAR runs hourly in the C++ kernel inside the daily training contract.

Per basin and day: a degree-day snow routine (:mod:`delta_core.snow`, fixed parameters, see
below) turns daily precipitation and temperature into liquid water; that water and the daily PET
are spread over the hours of the day (:mod:`delta_core.patterns`, the scheme dCFE uses);
LGAR (:mod:`bmi_lgar.kernel`, bit for bit the float64 port of LGAR-C) steps every hour with one
3600 s substep; its unrouted outlet runoff (surface runoff + conceptual-reservoir outflow) is
routed through a learned gamma GIUH in torch and summed to days for the loss.

**Prior.** Each basin's texture-table parameter set (:mod:`bmi_lgar.texture`: USDA class of the
raw ``sand_frac``, ``silt_frac``, ``clay_frac``; three layers of 10 cm, 30 cm and the rest of
``soil_depth_statsgo``; ponded depth, reservoirs and free drainage of LGAR-C's Phillipsburg
configurations) is the centre of the learned values. The raw attributes come from
``batch["raw_attr"]`` (:attr:`delta_core.spec.ModelSpec.raw_attributes`), not from the encoded
network input. With ``u = 2 sigmoid(z) - 1`` in (-1, 1) per network output:

==================  ====================================================  ==================
parameter           learned value                                         centre (u = 0)
==================  ====================================================  ==================
alpha [1/cm]        alpha0 x alpha_factor^u                               table
Ks [cm/h]           Ks0 x ks_factor^u                                     table
n [-]               1 + (n0 - 1) x n_factor^u  (n > 1 always)             table
theta_e [-]         theta_e0 x (1 + theta_e_range u)                      table
theta_r [-]         min(theta_r0 x theta_r_factor^u, theta_e / 2)         table
ponded depth [cm]   2 x ponded_factor^u                                   2 cm
a, a_slow           0.002, 0.0002 x reservoir_factor^u                    Phillipsburg_CR
b, b_slow           1 + 2 s, 1 + s                                        2, 1.5
frac_to_cr, slow    0.4 s, 0.6 s                                          0.2, 0.3
GIUH                gamma(giuh_a in 0-2.9, giuh_b in 0-12 h), hourly      (not the table's)
==================  ====================================================  ==================

(``s`` = sigmoid(z).) Each layer has its own correction of the basin's one texture row.

**GIUH.** The kernel does not differentiate its GIUH ordinates, but LGAR's GIUH is a linear
convolution of the runoff it makes each hour. So the kernel runs with the one-ordinate GIUH
``(1,)`` (its ``total_discharge`` is then the unrouted surface runoff + reservoir outflow of the
hour, bit for bit), and torch convolves that with the learned hourly gamma unit hydrograph
(:func:`delta_core.routing.gamma_unit_hydrograph` on hours, ``giuh_hours`` ordinates). The BMI
puts the same ordinates into LGAR's own GIUH queue.

**Snow.** The kernel gives sensitivities to its parameters, not to its forcing, so snow
parameters cannot be learned through it: the degree-day routine runs with fixed
``snow_*`` values (default: the midpoints of :data:`delta_core.snow.PARAMETER_RANGES`, those of
``scripts/lgar_texture_baseline.py``).

**Precision.** The kernel is float64. A float32 engine runs the network in float32; its output
is cast to float64 for the physics and the outputs are returned in the batch's dtype.

**Backend.** LGAR has no torch implementation: both ``Engine.backend`` values run the compiled
kernel (the only differentiable LGAR); ``torch`` is accepted so that shared code that asks for
the reference backend runs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bmi_lgar import kernel
from bmi_lgar.parameters import DEFAULT_SOIL_TABLE, FIELD_CAPACITY_PSI_CM, WILTING_POINT_PSI_CM, \
    LayerSoil, LgarParameters, Reservoirs
from bmi_lgar.soil import read_soil_table
from bmi_lgar.texture import PONDED_DEPTH_MAX_CM, RESERVOIRS, parameters_from_attributes
from delta_core import subdaily
from delta_core.patterns import HourlyPhysics, WithinDay
from delta_core.subdaily import daily_sums, end_of_day
from delta_core.networks import MLP
from delta_core.routing import gamma_unit_hydrograph, route
from delta_core.ngen import crosswalk as X
from delta_core.spec import Batch, Engine, ModelSpec, ParameterSpec, Variable

#: Trained on the 147 arid pack basins with each day's rain in 6 hours from 12:00
#: (``configs/dlgar_arid.yaml``).
ARID_BUNDLE = Path(__file__).resolve().parent / "weights" / "dlgar_arid.pt"
#: The default (the BMI's and the CLIs'): ``dlgar_arid.pt`` fine-tuned for hourly hosts, 3 epochs
#: with stochastic storms (``configs/dlgar_hourly.yaml``), then 4 with the storms in the data's
#: day (``configs/dlgar_hourly_dataday.yaml``, ``physics.within_day.day_start_hour: -8``), then 3
#: with a GIUH of 168 h instead of 48 (``configs/dlgar_hourly_giuh.yaml``).
HOURLY_BUNDLE = Path(__file__).resolve().parent / "weights" / "dlgar_hourly.pt"
DEFAULT_BUNDLE = HOURLY_BUNDLE

#: Forcing variables: P [mm/day], mean T [degC], PET [mm/day] (daily, as the CAMELS pack).
FORCING_NAMES: tuple[str, ...] = ("prcp", "tmean", "pet")
#: Raw attributes of the texture-table prior, in ``batch["raw_attr"]`` order.
RAW_ATTRIBUTES: tuple[str, ...] = ("sand_frac", "silt_frac", "clay_frac", "soil_depth_statsgo")
#: Layers of the texture scheme (10 cm, 30 cm, rest).
N_LAYERS = 3
#: Network outputs per layer and global, in order.
LAYER_OUTPUTS = kernel.LAYER_PARAMETERS
GLOBAL_OUTPUTS: tuple[str, ...] = ("ponded_depth_max", "a", "b", "frac_to_cr", "a_slow",
                                   "b_slow", "frac_slow", "giuh_a", "giuh_b")
N_OUTPUTS = N_LAYERS * len(LAYER_OUTPUTS) + len(GLOBAL_OUTPUTS)
#: Hours per kernel call when no gradient is needed (evaluation: bounded memory).
CHUNK_HOURS = 24 * 365
#: GIUH shape ranges (the gamma unit hydrograph of dCFE, on hours).
GIUH_RANGES = {"giuh_a": (0.0, 2.9), "giuh_b": (0.0, 12.0)}

#: BMI names of dLGAR's own variables.
GIUH_RUNOFF = "land_surface_water__routed_runoff_volume_flux"
INFILTRATION = "soil_surface_water__infiltration_volume_flux"
PERCOLATION = "soil_water_sat-zone_top__recharge_volume_flux"
PONDED = "land_surface_water__depth"
RESERVOIR = "groundwater__depth"
N_FRONTS = "soil_water_wetting-front__count"

#: Every variable of dLGAR, declared once: the output series of :meth:`DLGAR.forward` (daily,
#: [D, B]), the hourly BMI core's named arrays and the BMI variables (see
#: :class:`~delta_core.spec.Variable`). PET is a BMI output only when it is derived
#: (``pet_source: hargreaves``); snowmelt and SWE only with the snow routine.
VARIABLES: tuple[Variable, ...] = (
    Variable("prcp", "mm d-1", "precipitation rate (liquid water reaching the soil; with the "
             "snow routine, rain and snow split by temperature)", X.PRECIP, "input", "sum",
             series=False, min_value=0.0),
    Variable("pet", "mm d-1", "potential evapotranspiration", X.PET, "input", "sum",
             series=False, when="pet_input", min_value=0.0),
    Variable("tmean", "degC", "air temperature (snow routine and Hargreaves PET)", X.TEMP,
             "input", "mean", series=False, when="temperature", plausible=X.T_PLAUSIBLE),
    Variable("runoff_depth", "m", "runoff depth at the outlet over the hour: LGAR total "
             "discharge (GIUH of surface runoff and reservoir outflow)", X.RUNOFF_DEPTH,
             "runoff_depth", series=False, csv_header="runoff_depth_m"),
    Variable("runoff_flux", "m3 s-1", "runoff volume flux at the catchment outlet (depth x "
             "area / step)", X.RUNOFF_FLUX, "runoff_flux", series=False,
             csv_header="runoff_m3_s"),
    Variable("streamflow", "mm d-1", "LGAR outlet flow (GIUH of surface runoff and reservoir "
             "outflow) summed over the day", kind="flow"),
    Variable("et", "mm d-1", "actual evapotranspiration", X.ET, "rate", csv_header="aet_rate"),
    Variable("infiltration", "mm d-1", "infiltration into the soil", INFILTRATION, "rate",
             csv_header="infiltration_rate"),
    Variable("surface_flow", "mm d-1", "surface runoff, before GIUH routing", X.SURFACE_FLOW,
             "rate", csv_header="surface_runoff_rate"),
    Variable("giuh_runoff", "mm d-1", "GIUH runoff (= total discharge)", GIUH_RUNOFF, "rate",
             series=False),
    Variable("percolation", "mm d-1", "percolation through the bottom of the column",
             PERCOLATION, "rate"),
    Variable("baseflow", "mm d-1", "conceptual reservoir outflow to the stream (before GIUH "
             "routing)", X.BASEFLOW, "rate"),
    Variable("pet", "mm d-1", "potential evapotranspiration (Hargreaves)", X.PET, "rate",
             when="pet_derived"),
    Variable("melt", "mm d-1", "snowmelt", X.MELT, "rate", when="snow"),
    Variable("soil_moisture", "mm", "water in the soil column at the end of the step", X.SOIL,
             "level", csv_header="soil_water_mm"),
    Variable("ponded", "mm", "water ponded on the surface", PONDED, "level", series=False,
             csv_header="ponded_mm"),
    Variable("groundwater", "mm", "conceptual reservoir storage (fast + slow) at the end of "
             "the step", RESERVOIR, "level"),
    Variable("n_fronts", "1", "number of wetting fronts in the soil column", N_FRONTS, "level",
             series=False, csv_header="n_fronts"),
    Variable("swe", "mm", "snow water equivalent (snowpack + liquid water) at the end of the "
             "step", X.SWE, "level", when="snow"),
)
#: Kernel outputs behind the daily sums (eval mode) and end-of-day storages.
_FLOWS = {"streamflow": "total_discharge", "surface_flow": "surface_runoff",
          "baseflow": "conceptual_reservoir_to_stream_discharge"}
_SUMS = {"et": "actual_evapotranspiration", "infiltration": "infiltration",
         "percolation": "percolation"}
_STORES = {"soil_moisture": "soil_storage", "groundwater": "reservoir_storage"}


@lru_cache(maxsize=1)
def _table_envelope() -> dict[str, tuple[float, float]]:
    """Smallest and largest value of each van Genuchten parameter in the shipped soil table."""
    soils = read_soil_table(DEFAULT_SOIL_TABLE, WILTING_POINT_PSI_CM)
    return {k: (min(getattr(s, k) for s in soils), max(getattr(s, k) for s in soils))
            for k in LAYER_OUTPUTS}


@dataclass
class NetworkConfig:
    """Size of the parameter network (the ``network`` section of a run config)."""

    hidden: int = 256
    layers: int = 2
    dropout: float = 0.0


@dataclass
class PhysicsConfig(HourlyPhysics):
    """Correction bounds, GIUH length, snow constants and the hourly disaggregation
    (``physics`` section; see the module docstring for the formulas)."""

    #: Layer scheme: only "texture" (10 cm, 30 cm, rest of soil_depth_statsgo).
    layers: str = "texture"
    alpha_factor: float = 4.0
    ks_factor: float = 10.0
    n_factor: float = 2.0
    theta_e_range: float = 0.2
    theta_r_factor: float = 2.0
    ponded_factor: float = 4.0
    reservoir_factor: float = 10.0
    #: Conceptual reservoirs and free drainage into them (texture.RESERVOIRS); False: none.
    reservoirs: bool = True
    giuh_hours: int = 48
    #: Cold-start capillary head of the column [cm] (default: the field-capacity head of the
    #: AET curve; the texture-table BMI path keeps LGAR-C's 2000 cm).
    initial_psi_cm: float = FIELD_CAPACITY_PSI_CM
    snow_tt: float = 0.0
    snow_cfmax: float = 5.25
    snow_cfr: float = 0.05
    snow_cwh: float = 0.1
    #: How daily rain and PET are spread over the hours (:mod:`delta_core.patterns`).
    within_day: WithinDay = field(default_factory=WithinDay)

    def __post_init__(self) -> None:
        if self.layers != "texture":
            raise ValueError(f"physics.layers {self.layers!r}: valid: ['texture']")
        for name in ("alpha_factor", "ks_factor", "n_factor", "theta_r_factor",
                     "ponded_factor", "reservoir_factor"):
            if not getattr(self, name) >= 1.0:
                raise ValueError(f"physics.{name} must be >= 1 (a multiplicative range), got "
                                 f"{getattr(self, name)}")
        if not 0.0 <= self.theta_e_range < 1.0:
            raise ValueError(f"physics.theta_e_range must be in [0, 1), got "
                             f"{self.theta_e_range}")
        if not self.initial_psi_cm > 0:
            raise ValueError(f"physics.initial_psi_cm must be > 0 cm, got {self.initial_psi_cm}")
        if not self.giuh_hours >= 1:
            raise ValueError(f"physics.giuh_hours must be >= 1, got {self.giuh_hours}")

    def snow(self) -> dict[str, float]:
        """The fixed degree-day parameters ``{TT, CFMAX, CFR, CWH}``."""
        return {"TT": self.snow_tt, "CFMAX": self.snow_cfmax, "CFR": self.snow_cfr,
                "CWH": self.snow_cwh}


def _learned_parameters() -> tuple[ParameterSpec, ...]:
    """The envelope of every learned parameter (documentation and checks; the values are
    corrections around each basin's texture row, see the module docstring)."""
    c = PhysicsConfig()
    env = _table_envelope()
    widen = {"alpha": (1 / c.alpha_factor, c.alpha_factor), "ks": (1 / c.ks_factor, c.ks_factor),
             "theta_e": (1 - c.theta_e_range, 1 + c.theta_e_range),
             "theta_r": (1 / c.theta_r_factor, c.theta_r_factor)}
    units = {"alpha": "cm-1", "n": "1", "ks": "cm h-1", "theta_e": "1", "theta_r": "1"}
    out = []
    for layer in range(1, N_LAYERS + 1):
        for k in LAYER_OUTPUTS:
            lo, hi = env[k]
            if k == "n":
                lo, hi = 1 + (lo - 1) / c.n_factor, 1 + (hi - 1) * c.n_factor
            else:
                lo, hi = max(lo * widen[k][0], 1e-6), hi * widen[k][1]
            out.append(ParameterSpec(f"{k}_{layer}", lo, hi, units[k], log_scale=k in
                                     ("alpha", "ks")))
    r = RESERVOIRS
    out += [ParameterSpec("ponded_depth_max", PONDED_DEPTH_MAX_CM / c.ponded_factor,
                          PONDED_DEPTH_MAX_CM * c.ponded_factor, "cm", log_scale=True),
            ParameterSpec("a", r.a / c.reservoir_factor, r.a * c.reservoir_factor, "cm1-b h-1",
                          log_scale=True),
            ParameterSpec("b", 1.0, 3.0, "1"), ParameterSpec("frac_to_cr", 0.0, 0.4, "1"),
            ParameterSpec("a_slow", r.a_slow / c.reservoir_factor, r.a_slow * c.reservoir_factor,
                          "cm1-b h-1", log_scale=True),
            ParameterSpec("b_slow", 1.0, 2.0, "1"), ParameterSpec("frac_slow", 0.0, 0.6, "1"),
            ParameterSpec("giuh_a", *GIUH_RANGES["giuh_a"], "1"),
            ParameterSpec("giuh_b", *GIUH_RANGES["giuh_b"], "h")]
    return tuple(out)


#: The envelope of every learned parameter (its widest range over the soil table).
PARAMETERS = _learned_parameters()


@dataclass(frozen=True)
class Prior:
    """The texture-table start of one basin: its parameter set and kernel parameter vector."""

    params: LgarParameters
    vector: np.ndarray


def texture_prior(raw: np.ndarray, reservoirs: bool = True,
                  initial_psi_cm: float = FIELD_CAPACITY_PSI_CM) -> Prior:
    """The :class:`Prior` of raw attributes ``raw`` [4] (:data:`RAW_ATTRIBUTES`: fractions %,
    depth m), with the one-ordinate GIUH (routing is learned in torch), the reservoirs (or
    none) and the cold-start head ``initial_psi_cm`` [cm]."""
    attrs = dict(zip(RAW_ATTRIBUTES, (float(x) for x in raw)))
    res = RESERVOIRS if reservoirs else Reservoirs()
    params = parameters_from_attributes(attrs, giuh_ordinates=(1.0,), reservoirs=res,
                                        initial_psi_cm=initial_psi_cm)
    if len(params.layers) != N_LAYERS:  # pragma: no cover - texture.layer_thicknesses gives 3
        raise AssertionError(f"texture table gave {len(params.layers)} layers")
    return Prior(params, kernel.parameters_from_config(params.to_config()))


def kernel_batch(priors: list[Prior]) -> kernel.KernelBatch:
    """The kernel's fixed settings of the basins (hourly, one 3600 s substep)."""
    configs = [dataclasses.replace(p.params.to_config(), endtime_s=3600.0 * 1e9) for p in priors]
    return kernel.pack_configs(configs)


class DLGAR(nn.Module):
    """Parameter MLP + snow + hourly LGAR (kernel) + learned GIUH.

    Parameters
    ----------
    config : PhysicsConfig
    n_attributes : int
        Number of encoded attribute features.
    network : NetworkConfig
    engine : Engine
        Backend (both run the kernel, module docstring) and dtype of the network.
    """

    model_name = "dlgar"
    raw_attributes = RAW_ATTRIBUTES

    def __init__(self, config: PhysicsConfig, n_attributes: int, network: NetworkConfig,
                 engine: Engine | None = None):
        super().__init__()
        self.config = config
        self.n_attributes = n_attributes
        self.engine = engine or Engine()
        self.net = MLP(n_attributes, N_OUTPUTS, network.hidden, network.layers, network.dropout)
        self._priors: dict[tuple[float, ...], Prior] = {}

    # -- parameters ------------------------------------------------------------------------
    def priors(self, raw_attr: torch.Tensor) -> list[Prior]:
        """Texture priors of the basins of ``raw_attr`` [B, 4] (cached by value)."""
        out = []
        for row in raw_attr.detach().cpu().to(torch.float64).numpy():
            key = tuple(float(x) for x in row)
            if key not in self._priors:
                self._priors[key] = texture_prior(row, self.config.reservoirs,
                                                  self.config.initial_psi_cm)
            out.append(self._priors[key])
        return out

    def unit_outputs(self, x_attr: torch.Tensor) -> torch.Tensor:
        """Network outputs in (0, 1), [B, N_OUTPUTS], float64."""
        return torch.sigmoid(self.net(x_attr)).to(torch.float64)

    def corrected(self, unit: torch.Tensor, priors: list[Prior]) -> dict[str, torch.Tensor]:
        """Physical parameters ``{name: [B]}`` (:data:`PARAMETERS` names) from network outputs
        ``unit`` [B, N_OUTPUTS] in (0, 1) around the basins' texture priors."""
        c = self.config
        base = torch.as_tensor(np.stack([p.vector for p in priors]), dtype=torch.float64)
        u = 2.0 * unit - 1.0
        out: dict[str, torch.Tensor] = {}
        for layer in range(N_LAYERS):
            b = {k: base[:, layer * 5 + i] for i, k in enumerate(LAYER_OUTPUTS)}
            z = {k: u[:, layer * 5 + i] for i, k in enumerate(LAYER_OUTPUTS)}
            theta_e = b["theta_e"] * (1.0 + c.theta_e_range * z["theta_e"])
            tag = f"_{layer + 1}"
            out["alpha" + tag] = b["alpha"] * c.alpha_factor ** z["alpha"]
            out["n" + tag] = 1.0 + (b["n"] - 1.0) * c.n_factor ** z["n"]
            out["ks" + tag] = b["ks"] * c.ks_factor ** z["ks"]
            out["theta_e" + tag] = theta_e
            out["theta_r" + tag] = torch.minimum(b["theta_r"] * c.theta_r_factor ** z["theta_r"],
                                                 0.5 * theta_e)
        g = {k: i for i, k in enumerate(GLOBAL_OUTPUTS, start=N_LAYERS * 5)}
        r = RESERVOIRS
        out["ponded_depth_max"] = PONDED_DEPTH_MAX_CM * c.ponded_factor ** u[:, g[
            "ponded_depth_max"]]
        if c.reservoirs:
            out["a"] = r.a * c.reservoir_factor ** u[:, g["a"]]
            out["b"] = 1.0 + 2.0 * unit[:, g["b"]]
            out["frac_to_cr"] = 0.4 * unit[:, g["frac_to_cr"]]
            out["a_slow"] = r.a_slow * c.reservoir_factor ** u[:, g["a_slow"]]
            out["b_slow"] = 1.0 + unit[:, g["b_slow"]]
            out["frac_slow"] = 0.6 * unit[:, g["frac_slow"]]
        else:
            for k in ("a", "b", "frac_to_cr", "a_slow", "b_slow", "frac_slow"):
                out[k] = 0.0 * unit[:, g[k]]
        for k, (lo, hi) in GIUH_RANGES.items():
            out[k] = lo + (hi - lo) * unit[:, g[k]]
        return out

    def parameters_physical(self, x_attr: torch.Tensor, raw_attr: torch.Tensor
                            ) -> dict[str, torch.Tensor]:
        """Learned parameters ``{name: [B]}`` (float64, LGAR-C units) of the basins."""
        return self.corrected(self.unit_outputs(x_attr), self.priors(raw_attr))

    def giuh(self, learned: dict[str, torch.Tensor]) -> torch.Tensor:
        """Hourly GIUH ordinates [B, giuh_hours] (sum 1) of the learned shape."""
        return gamma_unit_hydrograph(learned["giuh_a"], learned["giuh_b"],
                                     self.config.giuh_hours)

    def lgar_parameters(self, x_attr: torch.Tensor, raw_attr: torch.Tensor
                        ) -> list[LgarParameters]:
        """One :class:`LgarParameters` per basin (learned layers, ponding, reservoirs and GIUH
        ordinates): what the BMI runs."""
        with torch.no_grad():
            learned = self.parameters_physical(x_attr, raw_attr)
            giuh = self.giuh(learned).numpy()
        priors = self.priors(raw_attr)
        v = {k: t.numpy() for k, t in learned.items()}
        out = []
        for i, prior in enumerate(priors):
            layers = tuple(LayerSoil.explicit(
                *(float(v[f"{k}_{j}"][i]) for k in LAYER_OUTPUTS), name=f"dLGAR layer {j}")
                for j in range(1, N_LAYERS + 1))
            res = dataclasses.replace(prior.params.reservoirs, **{
                k: float(v[k][i]) for k in ("a", "b", "frac_to_cr", "a_slow", "b_slow",
                                            "frac_slow")})
            g = giuh[i] / giuh[i].sum()
            out.append(dataclasses.replace(
                prior.params, layers=layers, reservoirs=res,
                ponded_depth_max_cm=float(v["ponded_depth_max"][i]),
                giuh_ordinates=tuple(float(x) for x in g),
                source=f"dLGAR bundle around {prior.params.source}"))
        return out

    @staticmethod
    def kernel_vector(learned: dict[str, torch.Tensor]) -> torch.Tensor:
        """The kernel's parameter matrix [B, 27] (layer slot 4 repeats layer 3)."""
        cols = []
        for layer in range(1, kernel.MAX_LAYERS + 1):
            j = min(layer, N_LAYERS)
            cols += [learned[f"{k}_{j}"] for k in LAYER_OUTPUTS]
        cols += [learned[k] for k in kernel.GLOBAL_PARAMETERS]
        return torch.stack(cols, dim=1)

    # -- simulation ------------------------------------------------------------------------
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Simulate days; the first ``batch["warmup"]`` days only spin up the stores.

        Parameters
        ----------
        batch : dict
            ``forcing`` [D, B, 3]: P [mm/day], T [degC], PET [mm/day]; ``x_attr`` [B, A];
            ``raw_attr`` [B, 4] (:data:`RAW_ATTRIBUTES`); ``warmup`` (days). In training mode
            only the streamflow is collected.

        Returns
        -------
        dict
            The series of :data:`VARIABLES` [D - warmup, B] (mm/day; stores in mm at the end of each
            day), in the dtype of ``forcing``.
        """
        if "raw_attr" not in batch:
            raise ValueError(f"dLGAR needs batch['raw_attr'], the raw attributes "
                             f"{list(RAW_ATTRIBUTES)} (ModelSpec.raw_attributes)")
        priors = self.priors(batch["raw_attr"])
        learned = self.corrected(self.unit_outputs(batch["x_attr"]), priors)
        out = self.simulate(learned, priors, batch["forcing"].to(torch.float64),
                            int(batch.get("warmup", 0)), batch)
        return {k: v.to(batch["forcing"].dtype) for k, v in out.items()}

    @property
    def pattern(self) -> WithinDay:
        """How daily rain and PET are spread over the hours."""
        return self.config.pattern

    def simulate(self, learned: dict[str, torch.Tensor], priors: list[Prior],
                 forcing: torch.Tensor, warmup: int = 0, batch: dict | None = None
                 ) -> dict[str, torch.Tensor]:
        """Snow + hourly LGAR + GIUH for given parameters ``learned`` ``{name: [B]}``
        (:data:`PARAMETERS`) and priors (settings: layers, options); ``forcing`` [D, B, 3]
        float64. Returns the series of :data:`VARIABLES` [D - warmup, B] float64 (see
        :meth:`forward`)."""
        batch = batch or {}
        pattern = self.config.pattern
        steps = subdaily.step_forcing(forcing, pattern, batch)
        liquid, melt, swe = subdaily.liquid_water(forcing, steps, pattern, batch,
                                                  self.config.snow())
        rain_h, pet_h = liquid.numpy(), steps.pet.numpy()
        params = self.kernel_vector(learned)
        kb = kernel_batch(priors)
        flows = ("streamflow",) if self.training else tuple(_FLOWS)
        names = tuple(_FLOWS[k] for k in flows) + (
            () if self.training else tuple(_SUMS.values()) + tuple(_STORES.values()))
        uh = self.giuh(learned)

        def block(state, s0, s1, grad):
            rain, pet = rain_h[s0:s1], pet_h[s0:s1]
            if not grad:  # warm-up: the flows only, for the routing history
                warm = kernel.run_kernel(kb, rain, pet, params=params.detach().numpy(),
                                         n_threads=self._threads(kb))
                return warm.state, {_FLOWS[k]: torch.from_numpy(warm.outputs[_FLOWS[k]] * 1000.0)
                                    for k in flows}
            hourly = self._hourly(params, kb, np.ascontiguousarray(rain),
                                  np.ascontiguousarray(pet), names, state) * 1000.0
            return None, dict(zip(names, hourly.unbind(-1)))

        lag = uh.shape[1] - 1
        _, series, tails = subdaily.run_steps(block, None, rain_h.shape[0], 24 * warmup, None,
                                              lambda s: s, {_FLOWS[k]: lag for k in flows})
        out = {k: daily_sums(route(series[_FLOWS[k]], uh, tails[_FLOWS[k]])) for k in flows}
        out["pet"] = daily_sums(steps.pet[24 * warmup:]) if steps.given else forcing[warmup:, :, 2]
        out["melt"] = melt[warmup:]
        if not self.training:
            for k, v in _SUMS.items():
                out[k] = daily_sums(series[v])
            for k, v in _STORES.items():
                out[k] = end_of_day(series[v])
            out["swe"] = swe[warmup:]
        return out

    def _hourly(self, params: torch.Tensor, kb: kernel.KernelBatch, rain: np.ndarray,
                pet: np.ndarray, names: tuple[str, ...], state: np.ndarray | None
                ) -> torch.Tensor:
        """Kernel outputs ``names`` [H, B, K] (m per hour): differentiable when gradients are
        needed; otherwise run in pieces of :data:`CHUNK_HOURS` carrying the packed state (the
        same values, bit for bit; memory of the needed outputs only)."""
        if torch.is_grad_enabled() and params.requires_grad:
            return kernel.lgar_outputs(params, kb, rain, pet, names,
                                       n_threads=self._threads(kb), state=state)
        p = params.detach().numpy()
        parts = []
        for h0 in range(0, len(rain), CHUNK_HOURS):
            run = kernel.run_kernel(kb, rain[h0:h0 + CHUNK_HOURS], pet[h0:h0 + CHUNK_HOURS],
                                    params=p, state=state, n_threads=self._threads(kb))
            state = run.state
            parts.append(np.stack([run.outputs[n] for n in names], -1))
        if not parts:
            return torch.zeros((0, kb.n_basins, len(names)), dtype=torch.float64)
        return torch.from_numpy(np.concatenate(parts))

    @staticmethod
    def _threads(kb: kernel.KernelBatch) -> int:
        return max(1, min(torch.get_num_threads(), kb.n_basins))


def build_model(physics_config: PhysicsConfig, network: NetworkConfig, n_attributes: int,
                engine: Engine) -> DLGAR:
    """Build a :class:`DLGAR` from validated config sections."""
    return DLGAR(physics_config, n_attributes, network, engine)


#: dLGAR's declaration to the shared machinery (registered as "dlgar").
SPEC = ModelSpec(
    name="dlgar",
    description="differentiable LGAR (Layered Green-Ampt with Redistribution, hourly C++ "
                "kernel) with degree-day snow; MLP corrections of texture-table parameters",
    forcings=FORCING_NAMES,
    step_seconds=86400,
    physics_steps=(3600,),
    variables=VARIABLES,
    network_config=NetworkConfig,
    physics_config=PhysicsConfig,
    build=build_model,
    flow_components=("surface_flow", "baseflow"),
    default_bundle=DEFAULT_BUNDLE,
    bmi_class="bmi_lgar.bmi.BmiLGAR",
    raw_attributes=RAW_ATTRIBUTES,
    commands={"realization": "bmi_lgar.realization:main"},
)
