"""CFE (Conceptual Functional Equivalent of the National Water Model) in PyTorch.

A port of the hourly time step of the NOAA-OWP C model (github.com/NOAA-OWP/cfe, commit a349a95,
the version NextGen runs), written from its equations and checked against outputs of the C model
(``tests/test_cfe_reference.py``). Batched over basins: every parameter and state is a tensor
whose first dimension is the basin; structural options (partitioning and surface schemes, number
of GIUH ordinates and Nash reservoirs) are shared by the batch. All water amounts are metres of
water over the catchment, fluxes metres per one-hour step (the C model's fixed step).

One step, in the C model's order:

1. ET: potential ET (m s-1 x 3600 s) is taken from rain first, then (Nash surface scheme) from the
   surface retention store, then from the soil reservoir: at the full rate above field capacity,
   scaled linearly (Budyko-type) between wilting point and field capacity.
2. Partitioning of the remaining rain into infiltration excess and infiltration by the Schaake
   (1996) scheme or the Xinanjiang scheme (Jayawardena and Zhou 2000).
3. Infiltration that does not fit into the soil (porosity x depth) goes back to runoff.
4. Percolation to groundwater and lateral flow leave the soil only above field capacity
   (storage from the hydrostatic Clapp-Hornberger integral), each ``coeff * (excess fraction)^expon``
   and capped at what is above field capacity.
5. Percolation beyond the groundwater store's free space is clipped; the store drains
   ``Cgw (exp(expon G / Gmax) - 1)`` per step (capped at its storage).
6. Infiltration excess is routed by GIUH ordinates or by a Nash cascade of surface reservoirs with
   run-on infiltration and a retention depth; lateral flow by a Nash cascade.
7. Q_OUT = direct runoff + lateral (Nash) runoff + baseflow.

Known behaviours of the C model, reproduced in ``mass_conserving=False`` (the default, exact C
behaviour) and corrected with ``mass_conserving=True``:

* NOAA-OWP/cfe issue #77: percolation that does not fit into a full groundwater store stays in the
  soil, while the C mass balance counts it as runoff that never reaches the outlet (and the lateral
  flow of that step was already limited by the unclipped percolation). Corrected: it leaves the
  soil and flows to the outlet the same step (output ``GW_OVERFLOW``, included in Q_OUT).
* When the infiltration exceeds the soil deficit, the C code sets the soil to its maximum and then
  adds the (clipped) infiltration again, so the soil ends above porosity x depth. Corrected: the soil
  receives exactly the deficit.
* The C code compares the *previous* step's percolation with the soil deficit and, if larger, sets
  the infiltration to the deficit and adds the previous percolation to the infiltration excess
  (water created or destroyed). Corrected: the check is skipped (the infiltration already fits).
* Xinanjiang: rain below 1e-8 m per step is discarded, and the impervious runoff (urban fraction)
  is removed twice from the infiltration. Corrected: tiny rain infiltrates; infiltration = rain -
  excess.
* Nash surface scheme: run-on infiltration is limited by the soil deficit from *before* this step's
  infiltration, so the soil can be overfilled. Corrected: the deficit after infiltration is used.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from bmi_dcfe import ode

Tensor = torch.Tensor

#: Fixed time step of the C model [s].
STEP_SECONDS = 3600.0
#: Constants of the field-capacity integral (C: STANDARD_ATMOSPHERIC_PRESSURE_PASCALS, WATER_SPECIFIC_WEIGHT).
ATM_PRESSURE_PA = 101325.0
WATER_SPECIFIC_WEIGHT = 9810.0
#: Reference saturated conductivity of the Schaake scheme [m s-1].
SCHAAKE_KS_REF = 0.000002
#: Rain below this depth [m] is discarded by the C Xinanjiang scheme.
XINANJIANG_MIN_INPUT = 1.0e-08

PARTITIONING_SCHEMES = ("schaake", "xinanjiang")
SURFACE_SCHEMES = ("giuh", "nash_cascade")
SOIL_SCHEMES = ("classic", "ode")


@dataclass(frozen=True)
class CfeOptions:
    """Structural choices shared by a batch (the switches of the C config).

    Attributes
    ----------
    partitioning : {"schaake", "xinanjiang"}
        Surface water partitioning scheme.
    surface : {"giuh", "nash_cascade"}
        Surface runoff routing scheme.
    soil_scheme : {"classic", "ode"}
        Soil reservoir update: the C model's sequential update ("classic") or CFE-ODE, where
        percolation, lateral flow and soil ET act simultaneously (:mod:`bmi_dcfe.ode`).
    mass_conserving : bool
        False reproduces the C model exactly, including its water losses and gains (module
        docstring); True corrects them so the water balance closes to round-off.
    nash_surface_substeps : int
        Sub-steps per hour of the Nash surface cascade (C: ``nsubsteps_nash_surface``).
    """

    partitioning: str = "schaake"
    surface: str = "giuh"
    soil_scheme: str = "classic"
    mass_conserving: bool = False
    nash_surface_substeps: int = 10

    def __post_init__(self) -> None:
        for name, allowed in (("partitioning", PARTITIONING_SCHEMES), ("surface", SURFACE_SCHEMES),
                              ("soil_scheme", SOIL_SCHEMES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"CFE option {name}={getattr(self, name)!r}: choose one of {allowed}")
        if int(self.nash_surface_substeps) < 1:
            raise ValueError("CFE option nash_surface_substeps must be >= 1")


@dataclass
class CfeParameters:
    """Per-basin CFE parameters, each a tensor of shape [B] (ordinates [B, n]).

    Names and units follow the C config file. Cgw and K_lf act per one-hour step, as in the C model.
    """

    depth: Tensor            #: soil depth D [m]
    bb: Tensor               #: Clapp-Hornberger b [-]
    satdk: Tensor            #: saturated hydraulic conductivity [m s-1]
    satpsi: Tensor           #: saturated capillary head [m]
    slop: Tensor             #: slope factor of percolation [m m-1]
    smcmax: Tensor           #: porosity [m3 m-3]
    wltsmc: Tensor           #: wilting point [m3 m-3]
    expon_soil: Tensor       #: exponent of percolation (soil_params.expon) [-]
    expon_soil_secondary: Tensor  #: exponent of lateral flow (soil_params.expon_secondary) [-]
    max_gw_storage: Tensor   #: groundwater store capacity [m]
    cgw: Tensor              #: groundwater outflow coefficient [m per step]
    expon_gw: Tensor         #: groundwater exponent (expon) [-]
    alpha_fc: Tensor         #: field-capacity suction as a fraction of 1 atm [-]
    refkdt: Tensor           #: Schaake REFKDT [-]
    k_lf: Tensor             #: lateral flow coefficient [m per step]
    k_nash: Tensor           #: lateral-flow Nash cascade coefficient [per step]
    giuh_ordinates: Tensor   #: GIUH ordinates [B, n] (GIUH scheme) [-]
    xaj_a: Tensor            #: Xinanjiang inflection point a [-]
    xaj_b: Tensor            #: Xinanjiang shape b [-]
    xaj_x: Tensor            #: Xinanjiang shape x [-]
    urban_fraction: Tensor   #: urban decimal fraction (Xinanjiang) [-]
    k_nash_surface: Tensor   #: surface Nash cascade coefficient [h-1]
    k_infiltration: Tensor   #: run-on infiltration coefficient of the surface cascade [h-1]
    retention_depth: Tensor  #: surface retention depth [m]

    @property
    def n_basins(self) -> int:
        return self.depth.shape[0]

    def map(self, fn) -> "CfeParameters":
        """Apply ``fn`` to every tensor (e.g. ``lambda t: t.double()``)."""
        return CfeParameters(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})


@dataclass
class CfeState:
    """Per-basin CFE state [m]; first dimension is the basin."""

    soil: Tensor             #: soil reservoir storage [B]
    gw: Tensor               #: groundwater reservoir storage [B]
    giuh_queue: Tensor       #: GIUH runoff queue [B, n_ordinates] (steps ahead)
    nash_lateral: Tensor     #: lateral-flow Nash reservoirs [B, n_lateral]
    nash_surface: Tensor     #: surface Nash reservoirs [B, n_surface] (empty for GIUH)
    percolation: Tensor      #: last step's percolation [B] (the C model reads it in the next step)

    def map(self, fn) -> "CfeState":
        return CfeState(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def total_water(self) -> Tensor:
        """Water held in all stores [B] (m)."""
        return (self.soil + self.gw + self.giuh_queue.sum(-1) + self.nash_lateral.sum(-1)
                + self.nash_surface.sum(-1))


#: Output fluxes and storages of one step, in the C BMI's names (all m per step or m).
OUTPUT_NAMES: tuple[str, ...] = (
    "RAIN_RATE", "INFILTRATION_EXCESS", "DIRECT_RUNOFF", "NASH_LATERAL_RUNOFF",
    "DEEP_GW_TO_CHANNEL_FLUX", "SOIL_TO_GW_FLUX", "Q_OUT", "POTENTIAL_ET", "ACTUAL_ET",
    "GW_STORAGE", "SOIL_STORAGE", "SOIL_STORAGE_CHANGE", "NWM_PONDED_DEPTH",
)
#: Further per-step diagnostics (not C BMI outputs) [m per step].
EXTRA_OUTPUTS: tuple[str, ...] = ("INFILTRATION", "LATERAL_FLUX", "GW_OVERFLOW", "ET_FROM_RAIN",
                                  "ET_FROM_RETENTION", "ET_FROM_SOIL", "RUNON_INFILTRATION")


@dataclass
class SoilConstants:
    """Quantities the C model derives once from the parameters at initialisation (all [B])."""

    storage_max: Tensor      #: porosity x depth [m]
    field_capacity: Tensor   #: storage at field capacity [m]
    wilting_point: Tensor    #: storage at the wilting point [m]
    coeff_percolation: Tensor  #: satdk x slop x 3600 s [m per step]
    schaake_kdt: Tensor      #: refkdt x satdk / 2e-6 [d-1]


def field_capacity_storage(smcmax: Tensor, bb: Tensor, satpsi: Tensor, alpha_fc: Tensor,
                           depth: Tensor) -> Tensor:
    """Soil storage [m] at field capacity: hydrostatic Clapp-Hornberger integral over the column.

    The column holds this much water when the suction at the centre of the bottom is
    ``alpha_fc`` atmospheres (NWM/CFE parameter-equivalence document, eq. 5).
    """
    omega = (alpha_fc * ATM_PRESSURE_PA) / WATER_SPECIFIC_WEIGHT - 0.5
    e = 1.0 - 1.0 / bb
    lower = torch.pow(omega, e) / e
    upper = torch.pow(omega + depth, e) / e
    return smcmax * torch.pow(1.0 / satpsi, -1.0 / bb) * (upper - lower)


def soil_constants(p: CfeParameters) -> SoilConstants:
    """Derived soil constants, computed as the C initialisation does."""
    return SoilConstants(
        storage_max=p.smcmax * p.depth,
        field_capacity=field_capacity_storage(p.smcmax, p.bb, p.satpsi, p.alpha_fc, p.depth),
        wilting_point=p.wltsmc * p.depth,
        coeff_percolation=p.satdk * p.slop * STEP_SECONDS,
        schaake_kdt=p.refkdt * p.satdk / SCHAAKE_KS_REF,
    )


def initial_state(p: CfeParameters, soil_fraction: Tensor | float, gw_fraction: Tensor | float,
                  n_lateral: int = 2, n_surface: int = 0, nash_lateral: Tensor | None = None,
                  nash_surface: Tensor | None = None) -> CfeState:
    """State at the start of a run, as the C initialisation sets it.

    Parameters
    ----------
    soil_fraction : tensor or float
        Initial soil storage as a fraction of porosity x depth (C: ``soil_storage``; negative -> 0).
    gw_fraction : tensor or float
        Initial groundwater storage as a fraction of max_gw_storage (C: ``gw_storage``).
    n_lateral, n_surface : int
        Number of lateral and surface Nash reservoirs (0 surface reservoirs for GIUH).
    nash_lateral, nash_surface : tensor, optional
        Initial reservoir storages [m] ([B, n]); zeros if omitted.
    """
    ref = p.depth
    b = p.n_basins
    soil_fraction = torch.as_tensor(soil_fraction, dtype=ref.dtype, device=ref.device).expand(b)
    gw_fraction = torch.as_tensor(gw_fraction, dtype=ref.dtype, device=ref.device).expand(b)
    soil_fraction = torch.clamp(soil_fraction, min=0.0)
    zeros = lambda n: torch.zeros(b, n, dtype=ref.dtype, device=ref.device)  # noqa: E731
    return CfeState(
        soil=soil_fraction * p.smcmax * p.depth,
        gw=gw_fraction * p.max_gw_storage,
        giuh_queue=zeros(p.giuh_ordinates.shape[-1]),
        nash_lateral=zeros(n_lateral) if nash_lateral is None else nash_lateral.to(ref),
        nash_surface=zeros(n_surface) if nash_surface is None else nash_surface.to(ref),
        percolation=torch.zeros(b, dtype=ref.dtype, device=ref.device),
    )


def _safe_pow(base: Tensor, exponent: Tensor, use: Tensor) -> Tensor:
    """``base ** exponent`` where ``use`` (0 elsewhere), with finite gradients everywhere.

    A zero base gives 0 (1 for a zero exponent, as C's pow); gradients there are taken as 0.
    """
    pos = use & (base > 0.0)
    value = torch.pow(torch.where(pos, base, torch.ones_like(base)), exponent)
    at_zero = torch.where(use & (base == 0.0), (exponent == 0.0).to(base.dtype), torch.zeros_like(base))
    return torch.where(pos, value, at_zero)


def schaake_partitioning(rain: Tensor, deficit: Tensor, kdt: Tensor) -> tuple[Tensor, Tensor]:
    """Schaake et al. (1996) infiltration-excess partitioning of one hour's rain [m].

    Returns (infiltration excess, infiltration) [m]. ``kdt`` is REFKDT x Ks / Ks_ref [d-1].
    Rain is positive where this is called; a negative deficit sends all rain to runoff.
    """
    ic = deficit * (1.0 - torch.exp(-kdt * (1.0 / 24.0)))
    denom = rain + ic
    safe = denom > 0
    infil = rain * (ic / torch.where(safe, denom, torch.ones_like(denom)))
    infil = torch.where(safe, infil, torch.zeros_like(infil))
    excess = torch.where(rain - infil > 0.0, rain - infil, torch.zeros_like(rain))
    infil = rain - excess
    excess = torch.where(deficit < 0.0, rain, excess)
    infil = torch.where(deficit < 0.0, torch.zeros_like(infil), infil)
    # the C code then applies the frozen-soil factor (1 without ice) and recomputes the excess
    infil = 1.0 * infil
    excess = rain - infil
    return excess, infil


def xinanjiang_partitioning(rain: Tensor, soil: Tensor, fc: Tensor, smax: Tensor,
                            p: CfeParameters, mass_conserving: bool) -> tuple[Tensor, Tensor]:
    """Xinanjiang partitioning (Jayawardena and Zhou 2000, as corrected in CFE 2025) [m].

    Returns (infiltration excess, infiltration). Tension water fills to field capacity ``fc``,
    free water above it up to ``smax``.
    """
    zero = torch.zeros_like(rain)
    above = soil - fc
    free = torch.where(above > 0.0, above, zero)
    tension = torch.where(above > 0.0, fc, soil)
    max_free = smax - fc
    tension = torch.where(tension > fc, fc, tension)
    free = torch.where(free > max_free, max_free, free)
    impervious = p.urban_fraction * 0.95 + (1.0 - p.urban_fraction) * 0.0
    imp_runoff = impervious * rain
    pervious = rain - imp_runoff
    degenerate = (max_free <= 0.0) | (fc <= 0.0)
    ok = ~degenerate
    ratio = tension / torch.where(ok, fc, torch.ones_like(fc))
    low = ratio <= (0.5 - p.xaj_a)
    # f/F from the double parabolic curve (eqs. 2a, 2b); each branch evaluated on a safe base
    f_low = (_safe_pow(0.5 - p.xaj_a, 1.0 - p.xaj_b, low & ok)
             * _safe_pow(ratio, p.xaj_b, low & ok))
    f_high = 1.0 - (_safe_pow(0.5 + p.xaj_a, 1.0 - p.xaj_b, ~low & ok)
                    * _safe_pow(1.0 - ratio, p.xaj_b, ~low & ok))
    f_over_f = torch.where(low, f_low, f_high)
    r = pervious * f_over_f
    sat = 1.0 - free / torch.where(ok, max_free, torch.ones_like(max_free))
    sat_pow = torch.where(sat > 0.0, _safe_pow(sat, p.xaj_x, ok & (sat > 0.0)),
                          (p.xaj_x == 0.0).to(sat.dtype))
    excess = r * (1.0 - sat_pow) + imp_runoff
    infil = (rain if mass_conserving else pervious) - excess
    excess = torch.where(degenerate, pervious + imp_runoff, excess)
    infil = torch.where(degenerate, zero, infil)
    if mass_conserving:
        return excess, infil
    tiny = rain < XINANJIANG_MIN_INPUT
    return torch.where(tiny, zero, excess), torch.where(tiny, zero, infil)


def _nonlinear_outflow(storage: Tensor, threshold: Tensor, smax: Tensor, coeff: Tensor,
                       expon: Tensor, available: Tensor) -> Tensor:
    """``coeff ((S - threshold)/(Smax - threshold))^expon`` above the threshold, capped at ``available``."""
    above = storage - threshold
    active = above > 0.0
    frac = above / torch.where(active, smax - threshold, torch.ones_like(smax))
    flux = coeff * _safe_pow(frac, expon, active)
    flux = torch.where(flux > available, available, flux)
    return torch.where(active, flux, torch.zeros_like(flux))


def giuh_convolution(queue: Tensor, ordinates: Tensor, runoff: Tensor) -> tuple[Tensor, Tensor]:
    """Add ``runoff`` [B] spread by the GIUH ordinates to the queue; return (outflow, new queue)."""
    queue = queue + ordinates * runoff.unsqueeze(-1)
    out = queue[:, 0]
    queue = torch.cat([queue[:, 1:], torch.zeros_like(queue[:, :1])], dim=1)
    return out, queue


def nash_cascade_lateral(storage: Tensor, inflow: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """One step of the lateral-flow Nash cascade (C: nash_cascade_subsurface).

    Each reservoir releases ``k`` x its storage; the first receives ``inflow``. Returns (outflow, storage).
    """
    new = []
    q_prev = inflow
    for i in range(storage.shape[1]):
        q = k * storage[:, i]
        new.append(storage[:, i] - q + q_prev)
        q_prev = q
    return q_prev, torch.stack(new, dim=1)


def nash_cascade_surface(storage: Tensor, runoff: Tensor, soil_deficit: Tensor, p: CfeParameters,
                         substeps: int) -> tuple[Tensor, Tensor, Tensor]:
    """Surface Nash cascade with run-on infiltration and retention (C: nash_cascade_surface).

    Returns (outflow to channel, run-on infiltration to soil, storages) [m].
    """
    n = storage.shape[1]
    subdt = 1.0 / substeps
    s = [storage[:, i] for i in range(n)]
    s[0] = s[0] + runoff
    zero = torch.zeros_like(runoff)
    deficit = soil_deficit
    q_out = zero
    to_channel = zero
    to_soil = zero
    for _ in range(substeps):
        for i in range(n):
            active = s[i] != 0.0
            infil = p.k_infiltration * s[i] * subdt
            fits = (deficit > 0.0) & (deficit > infil)
            partly = (deficit > 0.0) & ~fits
            new_deficit = torch.where(fits, deficit - infil, torch.where(partly, zero, deficit))
            infil = torch.where(fits, infil, torch.where(partly, deficit, zero))
            enough = s[i] >= infil
            infil = torch.where(enough, infil, s[i])
            si = torch.where(enough, s[i] - infil, zero)
            avail = si
            if i == 0:
                avail = torch.where(si > p.retention_depth, si - p.retention_depth, zero)
            q_r = p.k_nash_surface * avail
            ds = torch.minimum(q_r * subdt, avail)
            si = si - ds
            deficit = torch.where(active, new_deficit, deficit)
            to_soil = torch.where(active, to_soil + infil, to_soil)
            s[i] = torch.where(active, si, s[i])
            if i < n - 1:
                s[i + 1] = torch.where(active, s[i + 1] + ds, s[i + 1])
            else:
                q_out = torch.where(active, q_r, q_out)
        to_channel = to_channel + q_out * subdt
    return to_channel, to_soil, torch.stack(s, dim=1)


def step(state: CfeState, p: CfeParameters, c: SoilConstants, rain: Tensor, pet: Tensor,
         options: CfeOptions) -> tuple[CfeState, dict[str, Tensor]]:
    """Advance CFE by one hour.

    Parameters
    ----------
    state : CfeState
        State at the start of the hour.
    p, c : CfeParameters, SoilConstants
        Parameters and the constants derived from them (:func:`soil_constants`).
    rain : tensor [B]
        Precipitation this hour [m] (C: APCP mm h-1 / 1000).
    pet : tensor [B]
        Potential evapotranspiration rate [m s-1] (C BMI input water_potential_evaporation_flux).
    options : CfeOptions

    Returns
    -------
    (CfeState, dict)
        New state and the step's outputs (:data:`OUTPUT_NAMES` and :data:`EXTRA_OUTPUTS`, [B]).
    """
    ode_scheme = options.soil_scheme == "ode"
    zero = torch.zeros_like(rain)
    soil = state.soil
    soil_start = soil
    nash_surface = state.nash_surface
    # 1. ET from rain, retention depth, soil
    pet_step = pet * STEP_SECONDS
    raining = rain > 0.0
    et_rain = torch.where(raining, torch.where(rain > pet_step, pet_step, rain), zero)
    rain_eff = torch.where(raining, torch.where(rain > pet_step, rain - et_rain, zero), rain)
    rpet = torch.where(raining, pet_step - et_rain, pet_step)
    et_ret = zero
    if options.surface == "nash_cascade":
        s0 = nash_surface[:, 0]
        go = (s0 > 0.0) & (rpet > 0.0)
        et_ret = torch.where(go, torch.where(rpet >= s0, s0, rpet), zero)
        s0 = torch.where(go, torch.where(rpet >= s0, zero, s0 - et_ret), s0)
        rpet = torch.where(go, rpet - et_ret, rpet)
        nash_surface = torch.cat([s0.unsqueeze(1), nash_surface[:, 1:]], dim=1)
    fc, wp = c.field_capacity, c.wilting_point
    wet = soil >= fc
    budyko = (soil - wp) / torch.where(wet, torch.ones_like(fc), fc - wp)
    et_soil = torch.where(wet, torch.minimum(rpet, soil),
                          torch.where((soil > wp) & (soil < fc), torch.minimum(budyko * rpet, soil), zero))
    et_soil = torch.where((soil > wp) & (rpet > 0.0), et_soil, zero)
    if ode_scheme:  # soil ET is part of the hour's ODE
        et_soil = zero
    soil = soil - et_soil
    aet = et_rain + et_ret + et_soil
    deficit = p.smcmax * p.depth - soil
    # 2. partitioning
    if options.partitioning == "schaake":
        excess, infil = schaake_partitioning(rain_eff, deficit, c.schaake_kdt)
    else:
        excess, infil = xinanjiang_partitioning(rain_eff, soil, fc, c.storage_max, p,
                                                options.mass_conserving)
    has_rain = rain_eff > 0.0
    excess = torch.where(has_rain, excess, zero)
    infil = torch.where(has_rain, infil, zero)
    # 3. infiltration that does not fit
    too_much = deficit < infil
    excess = torch.where(too_much, excess + (infil - deficit), excess)
    infil = torch.where(too_much, deficit, infil)
    if not options.mass_conserving:
        soil = torch.where(too_much, c.storage_max, soil)
    deficit = torch.where(too_much, zero, deficit)
    if not options.mass_conserving:
        # C quirk: the previous step's percolation is compared with the deficit
        prev = state.percolation > deficit
        excess = torch.where(prev, excess + (state.percolation - deficit), excess)
        infil = torch.where(prev, deficit, infil)
        deficit = torch.where(prev, zero, deficit)
    # 4. percolation and lateral flow above field capacity (CFE-ODE: with soil ET, simultaneous)
    if ode_scheme:
        span = c.storage_max - fc
        soil, perc, lat, et_soil = ode.soil_hour(soil, infil, rpet, fc, wp,
                                                 c.coeff_percolation / span, p.k_lf / span)
        aet = et_rain + et_ret + et_soil
    else:
        soil = soil + infil
        perc = _nonlinear_outflow(soil, fc, c.storage_max, c.coeff_percolation, p.expon_soil,
                                  soil - fc)
        lat = _nonlinear_outflow(soil, fc, c.storage_max, p.k_lf, p.expon_soil_secondary,
                                 soil - fc - perc)
    # 5. groundwater (what does not fit stays in the soil, or goes to the outlet if mass_conserving)
    gw_room = p.max_gw_storage - state.gw
    overflow = torch.where(perc > gw_room, perc - gw_room, zero)
    perc = torch.where(perc > gw_room, gw_room, perc)
    gw = state.gw + perc
    if ode_scheme:
        soil = soil if options.mass_conserving else soil + overflow
    else:
        soil = soil - (perc + overflow if options.mass_conserving else perc)
        soil = soil - lat
    soil_change = soil - soil_start
    baseflow = p.cgw * (torch.exp(p.expon_gw * gw / p.max_gw_storage) - 1.0)
    baseflow = torch.where(baseflow > gw, gw, baseflow)
    gw = gw - baseflow
    # 6. surface routing
    runon = zero
    giuh_queue = state.giuh_queue
    if options.surface == "giuh":
        direct, giuh_queue = giuh_convolution(giuh_queue, p.giuh_ordinates, excess)
        ponded = giuh_queue.sum(-1)
    else:
        surface_deficit = deficit - infil if options.mass_conserving else deficit
        direct, runon, nash_surface = nash_cascade_surface(
            nash_surface, excess, surface_deficit, p, options.nash_surface_substeps)
        soil = soil + runon
        ponded = nash_surface.sum(-1)
    lateral, nash_lateral = nash_cascade_lateral(state.nash_lateral, lat, p.k_nash)
    q_out = direct + lateral + baseflow
    if options.mass_conserving:
        q_out = q_out + overflow
    new = CfeState(soil=soil, gw=gw, giuh_queue=giuh_queue, nash_lateral=nash_lateral,
                   nash_surface=nash_surface, percolation=perc)
    out = {
        "RAIN_RATE": rain, "INFILTRATION_EXCESS": excess, "DIRECT_RUNOFF": direct,
        "NASH_LATERAL_RUNOFF": lateral, "DEEP_GW_TO_CHANNEL_FLUX": baseflow, "SOIL_TO_GW_FLUX": perc,
        "Q_OUT": q_out, "POTENTIAL_ET": pet_step, "ACTUAL_ET": aet, "GW_STORAGE": gw,
        "SOIL_STORAGE": soil, "SOIL_STORAGE_CHANGE": soil_change, "NWM_PONDED_DEPTH": ponded,
        "INFILTRATION": infil, "LATERAL_FLUX": lat, "GW_OVERFLOW": overflow,
        "ET_FROM_RAIN": et_rain, "ET_FROM_RETENTION": et_ret, "ET_FROM_SOIL": et_soil,
        "RUNON_INFILTRATION": runon,
    }
    return new, out


#: Parameters that may change during a run (:func:`run`'s ``dynamic``): they act on each
#: step's fluxes only, not on storage capacities or the initial state.
DYNAMIC_PARAMETERS: tuple[str, ...] = ("satdk", "refkdt", "slop", "k_lf", "cgw", "k_nash")


def dynamic_rows(n_steps: int, period: int) -> int:
    """Number of parameter rows of ``period`` steps that cover ``n_steps`` steps (at least 1)."""
    if period < 1:
        raise ValueError(f"period must be >= 1 step, got {period}")
    return max(1, -(-n_steps // period))


def check_dynamic(dynamic: dict[str, Tensor] | None, n_steps: int, n_basins: int,
                  period: int) -> dict[str, Tensor]:
    """Validate time-varying parameters: names in :data:`DYNAMIC_PARAMETERS`, each
    ``[ceil(T / period), B]``."""
    dynamic = dynamic or {}
    rows = dynamic_rows(n_steps, period)
    for name, v in dynamic.items():
        if name not in DYNAMIC_PARAMETERS:
            raise ValueError(f"parameter {name!r} cannot be dynamic; valid: "
                             f"{list(DYNAMIC_PARAMETERS)}")
        if tuple(v.shape) != (rows, n_basins):
            raise ValueError(f"dynamic {name}: shape {tuple(v.shape)}, expected ({rows}, "
                             f"{n_basins}) for {n_steps} steps of {period} per value")
    return dynamic


def run(state: CfeState, p: CfeParameters, rain: Tensor, pet: Tensor, options: CfeOptions,
        outputs: tuple[str, ...] | None = None, dynamic: dict[str, Tensor] | None = None,
        period: int = 24) -> tuple[CfeState, dict[str, Tensor]]:
    """Run CFE over a series of hours.

    Parameters
    ----------
    rain : tensor [T, B]
        Precipitation per hour [m].
    pet : tensor [T, B]
        Potential evapotranspiration rate [m s-1].
    outputs : tuple of str, optional
        Which outputs to keep (default all of :data:`OUTPUT_NAMES` and :data:`EXTRA_OUTPUTS`).
    dynamic : dict of tensor [ceil(T / period), B], optional
        Time-varying values of parameters of :data:`DYNAMIC_PARAMETERS` (in the units of
        :class:`CfeParameters`), each held for ``period`` steps; they replace those of ``p``.
    period : int
        Steps per value of ``dynamic`` (24: daily values of an hourly run).

    Returns
    -------
    (CfeState, dict of tensor [T, B])
    """
    if rain.shape != pet.shape or rain.dim() != 2 or rain.shape[1] != p.n_basins:
        raise ValueError(f"rain {tuple(rain.shape)} and pet {tuple(pet.shape)} must both be "
                         f"[T, {p.n_basins}]")
    if options.soil_scheme == "ode" and ((p.expon_soil != 1.0).any() or
                                         (p.expon_soil_secondary != 1.0).any()):
        raise ValueError("the CFE-ODE soil scheme has linear outflows: soil_params.expon and "
                         "soil_params.expon_secondary must be 1")
    dynamic = check_dynamic(dynamic, rain.shape[0], p.n_basins, period)
    keep = outputs or OUTPUT_NAMES + EXTRA_OUTPUTS
    c = soil_constants(p)
    series: dict[str, list[Tensor]] = {k: [] for k in keep}
    p_t = p
    for t in range(rain.shape[0]):
        if dynamic and t % period == 0:
            p_t = replace(p, **{k: v[t // period] for k, v in dynamic.items()})
            c = soil_constants(p_t)
        state, out = step(state, p_t, c, rain[t], pet[t], options)
        for k in keep:
            series[k].append(out[k])
    return state, {k: torch.stack(v) for k, v in series.items()}
