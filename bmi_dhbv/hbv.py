"""HBV process model in PyTorch: the reference implementation of dHBV's physics.

Daily time step; every store and flux is in mm (mm/day). The step follows
``shared/reference/hbv/HBV.md`` (Feng et al. 2022) with one documented change: the spec's
``SM = max(SM - ET, 1e-5)`` would create water whenever it binds, so here ET itself is limited to
``SM - 1e-5`` and the water balance closes exactly.

Shapes: forcing ``[T, B]`` (days x basins); parameters ``[B, C]`` (static) or ``[T, B, C]``
(daily-dynamic), C = number of parallel components; states ``[B, C]``. Outputs are the mean over
components, ``[T, B]``.

This module knows nothing of networks, BMI or the C++ kernel; ``bmi_dhbv.kernel`` provides the
same computation compiled, and the tests hold the two equal.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from delta_core import snow as snow_routine
from delta_core.patterns import WithinDay

#: Physical ranges of the HBV parameters, ``name: (low, high, units)``; a network output
#: s in (0, 1) maps to ``low + s * (high - low)``.
PARAMETER_RANGES: dict[str, tuple[float, float, str]] = {
    "BETA": (1.0, 6.0, "1"),
    "FC": (50.0, 1000.0, "mm"),
    "K0": (0.05, 0.9, "d-1"),
    "K1": (0.01, 0.5, "d-1"),
    "K2": (0.001, 0.2, "d-1"),
    "LP": (0.2, 1.0, "1"),
    "PERC": (0.0, 10.0, "mm d-1"),
    "UZL": (0.0, 100.0, "mm"),
    **snow_routine.PARAMETER_RANGES,  # TT, CFMAX, CFR, CWH
    "BETAET": (0.3, 5.0, "1"),
}
PARAMETER_NAMES: tuple[str, ...] = tuple(PARAMETER_RANGES)

#: Length of dHBV's gamma unit hydrograph [days].
UH_LENGTH = 15
#: Physical ranges of the routing parameters ``name: (low, high, units)`` (shape and scale of
#: the gamma unit hydrograph, :func:`delta_core.routing.gamma_unit_hydrograph`).
ROUTING_RANGES: dict[str, tuple[float, float, str]] = {
    "route_a": (0.0, 2.9, "1"),
    "route_b": (0.0, 6.5, "d"),
}

#: Parameters that may be daily-dynamic (one value per day from the LSTM).
DYNAMIC_CAPABLE: tuple[str, ...] = ("BETA", "BETAET")

#: HBV stores, in kernel order, with units.
STATE_NAMES: tuple[str, ...] = ("snowpack", "meltwater", "soil_moisture", "upper_zone", "lower_zone")

#: Cold-start value of every store [mm] (the reference implementation's convention).
COLD_START_MM = 0.001

#: Smallest soil moisture left after ET [mm].
SM_FLOOR_MM = 1e-5

#: Daily fluxes returned by :func:`run` (component means, mm/day), in kernel order.
FLUX_NAMES: tuple[str, ...] = (
    "q0", "q1", "q2", "et", "rain", "snow", "melt", "refreeze", "tosoil",
    "recharge", "excess", "perc",
)


@dataclass(frozen=True)
class HBVOptions:
    """Structural options of the HBV backbone.

    Parameters
    ----------
    n_components : int
        Number of parallel HBV components per basin (1 for δ1, 16 for δn).
    dynamic : tuple of str
        Parameters that vary daily; a subset of :data:`DYNAMIC_CAPABLE`.
    nn_recharge : bool
        Replace the effective-rainfall curve of step 5 by a small neural network (δn(NNr)).
    steps_per_day : {1, 24}
        HBV substeps per day: 1 (daily, as trained in the paper) or 24 (hourly, with the rate
        conversions of :mod:`bmi_dhbv.substeps`, daily forcing disaggregated to hours).
    dynamic_lag_days : {0, 1}
        Day d's dynamic parameters from the LSTM after day d - lag (1: what an hourly host can
        compute at the day's first hour).
    within_day : WithinDay
        How daily rain and PET are spread over the hours with ``steps_per_day = 24``
        (:mod:`delta_core.patterns`).
    ranges : dict
        ``{name: [low, high]}`` replacing :data:`PARAMETER_RANGES` of some parameters, in their
        daily units (e.g. recession coefficients up to 0.999 d-1 for an hourly model, whose
        fast stores must drain within hours: ``1 - (1 - K)^(1/24)`` per hour).
    """

    n_components: int = 16
    dynamic: tuple[str, ...] = ("BETA", "BETAET")
    nn_recharge: bool = False
    steps_per_day: int = 1
    dynamic_lag_days: int = 0
    within_day: WithinDay = field(default_factory=WithinDay)
    ranges: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components}")
        bad = [p for p in self.dynamic if p not in DYNAMIC_CAPABLE]
        if bad:
            raise ValueError(f"parameters {bad} cannot be dynamic; valid: {list(DYNAMIC_CAPABLE)}")
        object.__setattr__(self, "dynamic", tuple(self.dynamic))
        if self.steps_per_day not in (1, 24):
            raise ValueError(f"steps_per_day must be 1 (daily) or 24 (hourly), got "
                             f"{self.steps_per_day}")
        if self.dynamic_lag_days not in (0, 1):
            raise ValueError(f"dynamic_lag_days must be 0 or 1, got {self.dynamic_lag_days}")
        if isinstance(self.within_day, dict):
            object.__setattr__(self, "within_day", WithinDay(**self.within_day))
        for name, r in self.ranges.items():
            if name not in PARAMETER_RANGES:
                raise ValueError(f"ranges: unknown parameter {name!r}; valid: {PARAMETER_NAMES}")
            if (not isinstance(r, (list, tuple)) or len(r) != 2
                    or not float(r[0]) < float(r[1])):
                raise ValueError(f"ranges.{name} must be [low, high] with low < high, got {r!r}")

    def range(self, name: str) -> tuple[float, float]:
        """``(low, high)`` of parameter ``name`` (the configured override, else the default)."""
        lo, hi = self.ranges.get(name, PARAMETER_RANGES[name][:2])
        return float(lo), float(hi)

    @property
    def parameter_ranges(self) -> dict[str, tuple[float, float]]:
        """``{name: (low, high)}`` of every HBV parameter."""
        return {n: self.range(n) for n in PARAMETER_NAMES}

    #: Bundles written before the ``within_day`` section: their flat keys' defaults.
    LEGACY_WITHIN_DAY = WithinDay("uniform", 12, 6, "sine")

    @property
    def physics_step_seconds(self) -> int:
        """HBV's time step [s]: a day, or an hour with ``steps_per_day = 24``."""
        return 86400 // self.steps_per_day

    @property
    def pattern(self) -> WithinDay | None:
        """The within-day pattern of an hourly model (None: HBV steps daily)."""
        return self.within_day if self.steps_per_day == 24 else None

    @property
    def static(self) -> tuple[str, ...]:
        """Parameters that are constant in time."""
        return tuple(p for p in PARAMETER_NAMES if p not in self.dynamic)

    def to_dict(self) -> dict:
        return {"n_components": self.n_components, "dynamic": list(self.dynamic),
                "nn_recharge": self.nn_recharge, "steps_per_day": self.steps_per_day,
                "dynamic_lag_days": self.dynamic_lag_days,
                "within_day": dataclasses.asdict(self.within_day), "ranges": dict(self.ranges)}


def scale_parameters(unit: torch.Tensor, names: tuple[str, ...],
                     ranges: Mapping[str, tuple[float, float]] | None = None
                     ) -> dict[str, torch.Tensor]:
    """Map network outputs in (0, 1) to physical parameter values.

    Parameters
    ----------
    unit : Tensor [..., len(names), C]
        Values in (0, 1).
    names : tuple of str
        Parameter names along dimension -2.
    ranges : mapping, optional
        ``{name: (low, high)}`` (:meth:`HBVOptions.range`); default :data:`PARAMETER_RANGES`.
    """
    out = {}
    for i, name in enumerate(names):
        lo, hi = ranges[name] if ranges else PARAMETER_RANGES[name][:2]
        out[name] = lo + unit[..., i, :] * (hi - lo)
    return out


def cold_states(n_basins: int, n_components: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Cold-start states ``[5, B, C]`` (all stores at :data:`COLD_START_MM`)."""
    return torch.full((len(STATE_NAMES), n_basins, n_components), COLD_START_MM,
                      dtype=dtype, device=device)


RechargeNet = Callable[[torch.Tensor], torch.Tensor]


def step(
    states: tuple[torch.Tensor, ...],
    p: torch.Tensor,
    t: torch.Tensor,
    pet: torch.Tensor,
    par: Mapping[str, torch.Tensor],
    recharge_net: RechargeNet | None = None,
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Advance every component one day.

    Parameters
    ----------
    states : tuple of 5 Tensor [B, C]
        snowpack, meltwater, soil moisture, upper zone, lower zone [mm].
    p, t, pet : Tensor [B, 1]
        Precipitation [mm/day], mean air temperature [degC], PET [mm/day].
    par : mapping name -> Tensor [B, C]
        Parameter values of this day.
    recharge_net : callable, optional
        Maps features ``[B, C, 5]`` (FC, BETA, SM, SM/FC, RAIN+tosoil) to the fraction of
        infiltration that recharges, in (0, 1). Replaces the (SM/FC)^BETA curve.

    Returns
    -------
    new_states : tuple of 5 Tensor [B, C]
    fluxes : tuple of Tensor [B, C] in the order of :data:`FLUX_NAMES` (mm/day)
    """
    snowpack, meltwater, sm, suz, slz = states
    fc = par["FC"]
    # 1-4. precipitation phase, snow accumulation, melt, refreezing, release (delta_core.snow)
    sn = snow_routine.degree_day_step(snowpack, meltwater, p, t, par["TT"], par["CFMAX"],
                                      par["CFR"], par["CWH"])
    rain, snow, melt, refreeze, tosoil, snowpack, meltwater = sn
    # 5. soil recharge (effective rainfall)
    infil = rain + tosoil
    if recharge_net is None:
        wet = torch.clamp((sm / fc) ** par["BETA"], 0.0, 1.0)
    else:
        feats = torch.stack([fc, par["BETA"], sm, sm / fc, infil.expand_as(sm)], dim=-1)
        wet = recharge_net(feats)
    recharge = infil * wet
    sm = sm + infil - recharge
    # 6. excess above field capacity
    excess = torch.clamp(sm - fc, min=0.0)
    sm = sm - excess
    # 7. evapotranspiration (limited so SM stays >= SM_FLOOR_MM: water-conserving form)
    ef = torch.clamp((sm / (par["LP"] * fc)) ** par["BETAET"], 0.0, 1.0)
    et = torch.minimum(pet * ef, torch.clamp(sm - SM_FLOOR_MM, min=0.0))
    sm = sm - et
    # 8. upper zone and percolation
    suz = suz + recharge + excess
    perc = torch.minimum(suz, par["PERC"])
    suz = suz - perc
    # 9. fast flow and interflow
    q0 = par["K0"] * torch.clamp(suz - par["UZL"], min=0.0)
    suz = suz - q0
    q1 = par["K1"] * suz
    suz = suz - q1
    # 10. lower zone and baseflow
    slz = slz + perc
    q2 = par["K2"] * slz
    slz = slz - q2
    fluxes = (q0, q1, q2, et, rain.expand_as(q0), snow.expand_as(q0), melt, refreeze, tosoil,
              recharge, excess, perc)
    return (snowpack, meltwater, sm, suz, slz), fluxes


@dataclass
class HBVResult:
    """Output of :func:`run`.

    Attributes
    ----------
    fluxes : dict name -> Tensor [T, B]
        Component-mean daily fluxes (:data:`FLUX_NAMES`), mm/day.
    storages : dict name -> Tensor [T, B]
        Component-mean stores at the end of each day (:data:`STATE_NAMES`), mm.
    final_states : Tensor [5, B, C]
        Per-component stores after the last day, mm.
    """

    fluxes: dict[str, torch.Tensor]
    storages: dict[str, torch.Tensor]
    final_states: torch.Tensor


def run(
    p: torch.Tensor,
    t: torch.Tensor,
    pet: torch.Tensor,
    params: Mapping[str, torch.Tensor],
    states0: torch.Tensor,
    recharge_net: RechargeNet | None = None,
    keep_storages: bool = True,
) -> HBVResult:
    """Run HBV over T days for B basins x C components (pure PyTorch, differentiable).

    Parameters
    ----------
    p, t, pet : Tensor [T, B]
        Precipitation [mm/day], mean air temperature [degC], PET [mm/day].
    params : mapping name -> Tensor [B, C] or [T, B, C]
        All :data:`PARAMETER_NAMES`; 3-D tensors are daily-dynamic.
    states0 : Tensor [5, B, C]
        Initial stores [mm].
    recharge_net : callable, optional
        See :func:`step`.
    keep_storages : bool
        Also return the daily component-mean stores.
    """
    missing = [n for n in PARAMETER_NAMES if n not in params]
    if missing:
        raise ValueError(f"missing HBV parameters: {missing}")
    n_days = p.shape[0]
    states = tuple(states0.unbind(0))
    static = {k: v for k, v in params.items() if v.dim() == 2}
    dynamic = {k: v for k, v in params.items() if v.dim() == 3}
    for k, v in dynamic.items():
        if v.shape[0] != n_days:
            raise ValueError(f"dynamic parameter {k} has {v.shape[0]} days, forcing has {n_days}")
    flux_series: list[tuple[torch.Tensor, ...]] = []
    store_series: list[tuple[torch.Tensor, ...]] = []
    pc, tc, pec = p.unsqueeze(-1), t.unsqueeze(-1), pet.unsqueeze(-1)
    for d in range(n_days):
        par = dict(static)
        for k, v in dynamic.items():
            par[k] = v[d]
        states, fl = step(states, pc[d], tc[d], pec[d], par, recharge_net)
        flux_series.append(tuple(f.mean(-1) for f in fl))
        if keep_storages:
            store_series.append(tuple(s.mean(-1) for s in states))
    fluxes = {n: torch.stack([f[i] for f in flux_series]) for i, n in enumerate(FLUX_NAMES)}
    storages = ({n: torch.stack([s[i] for s in store_series]) for i, n in enumerate(STATE_NAMES)}
                if keep_storages else {})
    return HBVResult(fluxes, storages, torch.stack(states))


def total_storage(states: torch.Tensor) -> torch.Tensor:
    """Sum of all stores, component mean ``[B]`` [mm], from states ``[5, B, C]``."""
    return states.sum(0).mean(-1)
