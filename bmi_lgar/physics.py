"""LGAR (Layered Green-Ampt with Redistribution) soil physics: an exact float64 port of LGAR-C.

Written from the source of NOAA-OWP/LGAR-C (commit 0baab41: ``src/lgar.cxx``, ``src/bmi_lgar.cxx``,
``src/aet.cxx``, ``src/conceptual_reservoir.cxx``, ``giuh/giuh.c``; La Follette et al. 2023,
doi:10.1029/2022WR033742) as the specification, with the same operations in the same order so
that results agree with LGAR-C to the last bit in float64. Internal units are LGAR-C's: cm of water,
hours, cm/h.

The soil column has 1 to 4 layers; its water is described by wetting fronts
(:class:`bmi_lgar.fronts.Fronts`), each a depth and a water content, the deepest front of each
layer reaching the layer bottom. One model substep:

1. A share ``frac_to_CR`` of rain and ponded water goes to the conceptual reservoirs when the
   previous substep made runoff or had a near-saturated top front (simple preferential flow).
2. AET from the PET rate and the head of the top front (HYDRUS-type S curve); free drainage at the
   bottom (if enabled) from K of the deepest front; both reduced if they would dry the column or
   the region they are taken from below its minimum storage.
3. Rain after a dry substep on an unsaturated top creates a new surface front at the Green-Ampt
   "dry depth" (after first moving the existing fronts); otherwise ponded water infiltrates at the
   Green-Ampt capacity of the front that takes infiltration, the rest stays ponded up to
   ``ponded_depth_max`` and runs off above it.
4. Fronts move by their dZ/dt of the previous substep; the theta of each front is solved for by
   mass balance (iterating its head, which is shared with the fronts it extends into above);
   fronts that overtake others merge, cross layer boundaries, leave through the lower boundary, or
   (dry over wet) are removed; AET absorbs the mass-balance residuals of these corrections.
5. New dZ/dt from the Green-Ampt redistribution equations (layered form below the first layer).
6. Conceptual reservoirs (fast and slow, ``Q = a S^b``) receive their share and drain to the
   stream; surface runoff plus reservoir outflow of the forcing step is routed by the GIUH.

Substeps are fixed (``timestep``) or, with ``adaptive_timestep``, chosen per forcing step; with
``allow_flux_caching``, slow dry steps reuse the previous fluxes (fronts do not move) and catch up
later, as in LGAR-C.

Not ported: soil freeze-thaw coupling (frozen factor), calibratable-parameter updates, log-mode
parameters; these are refused by :mod:`bmi_lgar.lgar_config`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from bmi_lgar.fronts import Fronts
from bmi_lgar.lgar_config import LgarConfig
from bmi_lgar.soil import (SoilType, c_div, c_fmax, c_fmin, c_pow, capillary_drive, k_from_se,
                           psi_from_se, se_from_theta, theta_from_psi)

from bmi_lgar.dynamics import (AET_PET_RATIO_THRESHOLD, BOTTOM_BDY_FLUX_THRESHOLD_CM, NINT,
                               NUM_TIMESTEPS_BEFORE_RESET_CACHE, PET_EPSILON,
                               PRECIP_THRESHOLD_MM_PER_H, PSI_UPPER_LIM, SMALL_EPS,
                               THRESHOLD_DZDT_CM_PER_H, VOLON_TIMESTEP_THRESHOLD_CM,
                               clean_redundant_fronts, create_surficial_front, dry_depth,
                               dzdt_calc, insert_water, move_wetting_fronts)


class LgarMassBalanceError(RuntimeError):
    """A substep's local mass-balance error exceeded ``mbal_tol`` (LGAR-C aborts there)."""


@dataclass
class LgarState:
    """State carried between forcing steps.

    Attributes
    ----------
    fronts : Fronts
        Wetting fronts.
    ponded_cm : float
        Water ponded on the surface at the end of the last step [cm] (``volon_timestep_cm``).
    precip_previous_cm : float
        Rain of the last substep [cm] (decides whether a new surface front is created).
    runoff_in_prev_step : bool
        Runoff or near-saturated top front in the last substep (preferential flow trigger).
    cr_fast_cm, cr_slow_cm : float
        Storages of the fast and slow conceptual reservoirs [cm].
    giuh_queue : list of float
        Runoff still to come out of the GIUH [cm per forcing step], ``len = ordinates + 1``.
    timestep_h : float
        Current substep [h] (changes with ``adaptive_timestep``).
    time_s : float
        Model time [s].
    cache_fluxes, cache_count, previous_aet, previous_pet, previous_recharge, accumulated_pet,
    accumulated_free_drainage
        LGAR-C's flux-caching bookkeeping.
    """

    fronts: Fronts
    giuh_queue: list[float]
    timestep_h: float
    ponded_cm: float = 0.0
    precip_previous_cm: float = 0.0
    runoff_in_prev_step: bool = False
    cr_fast_cm: float = 0.0
    cr_slow_cm: float = 0.0
    time_s: float = 0.0
    cache_fluxes: bool = False
    cache_count: int = 1
    previous_aet: float = 0.0
    previous_pet: float = 0.0
    previous_recharge: float = 0.0
    accumulated_pet: float = 0.0
    accumulated_free_drainage: float = 0.0


@dataclass
class StepFluxes:
    """Water amounts of one forcing step [cm] (metres = these x 0.01).

    ``mass_balance`` is LGAR-C's local balance of the last substep, which with the conceptual
    reservoir leaves out the ponded water sent to the reservoir; ``mass_balance_closed`` adds
    it back (the true local balance error of the last substep).
    """

    precipitation: float
    potential_evapotranspiration: float
    actual_evapotranspiration: float
    surface_runoff: float
    giuh_runoff: float
    soil_storage: float
    total_discharge: float
    infiltration: float
    percolation: float
    conceptual_reservoir_to_stream_discharge: float
    mass_balance: float
    mass_balance_closed: float
    ponded: float
    reservoir_storage: float
    substeps: int = 1


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------
class Lgar:
    """LGAR-C's model for one soil column (parameters from an :class:`LgarConfig`).

    Parameters
    ----------
    config : LgarConfig
        Layers, soils, options and parameters.

    Notes
    -----
    Layers are numbered from 1 as in LGAR-C: ``self.soil[layer]`` and ``self.cum[layer]`` (depth of
    the layer bottom [cm], ``cum[0] = 0``).
    """

    def __init__(self, config: LgarConfig):
        self.config = config
        self.num_layers = config.num_layers
        self.cum = config.cum_layer_thickness_cm
        self.soil: list[SoilType] = [config.layer_soils[0]] + config.layer_soils
        self.closed_form = config.use_closed_form_g
        self.giuh = config.giuh_per_step
        self.largest_ks = 0.0
        for layer in range(1, self.num_layers + 1):
            self.largest_ks = c_fmax(self.soil[layer].ks, self.largest_ks)

    # -- initial state -------------------------------------------------------------------------
    def initial_state(self) -> LgarState:
        """One front per layer at the layer bottom, all at the config's initial head."""
        fr = Fronts.empty()
        psi0 = self.config.initial_psi_cm
        for layer in range(1, self.num_layers + 1):
            s = self.soil[layer]
            theta0 = theta_from_psi(psi0, s.alpha, s.m, s.n, s.theta_e, s.theta_r)
            fr.insert(fr.n, self.cum[layer], theta0, layer, True)
            fr.psi[-1] = psi0
            se = se_from_theta(theta0, s.theta_e, s.theta_r)
            fr.k[-1] = k_from_se(se, s.ks, s.m)
        return LgarState(fronts=fr, giuh_queue=[0.0] * (len(self.giuh) + 1),
                         timestep_h=self.config.timestep_h)

    # -- soil helpers --------------------------------------------------------------------------
    def theta_at(self, layer: int, psi: float) -> float:
        """theta [-] at head ``psi`` [cm] in ``layer``."""
        s = self.soil[layer]
        return theta_from_psi(psi, s.alpha, s.m, s.n, s.theta_e, s.theta_r)

    def psi_k_at(self, layer: int, theta: float) -> tuple[float, float]:
        """(psi [cm], K [cm/h]) at water content ``theta`` in ``layer``."""
        s = self.soil[layer]
        se = se_from_theta(theta, s.theta_e, s.theta_r)
        return psi_from_se(se, s.alpha, s.m, s.n), k_from_se(se, s.ks, s.m)

    def k_at(self, layer: int, theta: float) -> float:
        """K [cm/h] at water content ``theta`` in ``layer``."""
        s = self.soil[layer]
        return k_from_se(se_from_theta(theta, s.theta_e, s.theta_r), s.ks, s.m)

    def geff(self, layer: int, theta1: float, theta2: float) -> float:
        """Capillary drive [cm] of a front from ``theta1`` (below) to ``theta2`` in ``layer``."""
        return capillary_drive(self.closed_form, theta1, theta2, self.soil[layer], NINT)

    # -- list operations -----------------------------------------------------------------------
    def mass(self, fr: Fronts) -> float:
        """Water in the soil column [cm] (LGAR-C's ``lgar_calc_mass_bal``)."""
        total = 0.0
        n = fr.n
        for i in range(n):
            layer = fr.layer[i]
            base = self.cum[layer - 1]
            if i + 1 < n:
                if fr.layer[i + 1] == layer:
                    total += (fr.depth[i] - base) * (fr.theta[i] - fr.theta[i + 1])
                else:
                    total += (fr.depth[i] - base) * fr.theta[i]
            else:
                total += fr.theta[i] * (fr.depth[i] - base)
        return total

    def delete_front(self, fr: Fronts, i: int) -> int:
        """Remove front ``i`` and give every layer-bottom front the head of the front below it
        (LGAR-C's ``listDeleteFront``). Returns ``i`` (now the front that was below)."""
        if i + 1 >= fr.n:
            raise IndexError("LGAR never deletes the deepest wetting front")
        fr.remove(i)
        if i != 0:
            for j in range(fr.n - 2, -1, -1):
                if fr.to_bottom[j]:
                    fr.psi[j] = fr.psi[j + 1]
                    layer = fr.layer[j]
                    fr.theta[j] = self.theta_at(layer, fr.psi[j])
                    fr.k[j] = self.k_at(layer, fr.theta[j])
        return i

    @staticmethod
    def free_drainage_front(fr: Fronts) -> int:
        """Index of the front that takes infiltration and gives AET: the deepest of the top
        fronts that each fill a layer (LGAR-C's ``wetting_front_free_drainage``, 0-based)."""
        wf = 1
        n = fr.n
        for i in range(n):
            if i + 1 < n:
                if fr.layer[i] == fr.layer[i + 1]:
                    break
                wf += 1
        if wf > n:
            wf -= 1
        return wf - 1

    def min_storage_to_front(self, fr: Fronts, i_fd: int) -> float:
        """Least water [cm] down to front ``i_fd`` (theta at head 1e7 cm in every front)."""
        total = 0.0
        previous = 0.0
        for i in range(fr.n):
            min_theta = self.theta_at(fr.layer[i], PSI_UPPER_LIM)
            total += min_theta * (fr.depth[i] - previous)
            if i == i_fd:
                break
            previous = fr.depth[i]
        return total

    @staticmethod
    def storage_to_front(fr: Fronts, i_fd: int) -> float:
        """Water [cm] down to front ``i_fd`` counting each front's theta over its own slab."""
        total = 0.0
        previous = 0.0
        for i in range(fr.n):
            total += fr.theta[i] * (fr.depth[i] - previous)
            if i == i_fd:
                break
            previous = fr.depth[i]
        return total

    # -- AET, reservoirs, GIUH -----------------------------------------------------------------
    def aet(self, fr: Fronts, pet_cm_per_h: float, dt_h: float) -> float:
        """Actual ET [cm] of a substep: ``PET dt / (1 + (psi_top/psi_50)^3)``, 0 if psi_top >= 1e6.

        ``psi_50`` is the head at the water content halfway between wilting point and field
        capacity of the top front's layer.
        """
        demand = 0.0
        if fr.psi[0] < 1.0e6:
            layer = fr.layer[0]
            s = self.soil[layer]
            theta_fc = theta_from_psi(self.config.field_capacity_psi_cm, s.alpha, s.m, s.n,
                                      s.theta_e, s.theta_r)
            wp_head_theta = theta_from_psi(self.config.wilting_point_psi_cm, s.alpha, s.m, s.n,
                                           s.theta_e, s.theta_r)
            theta_wp = (theta_fc - wp_head_theta) * 1 / 2 + wp_head_theta
            se = se_from_theta(theta_wp, s.theta_e, s.theta_r)
            psi_wp = psi_from_se(se, s.alpha, s.m, s.n)
            h_ratio = 1.0 + c_pow(c_div(fr.psi[0], psi_wp), 3.0)
            demand = pet_cm_per_h * (1 / h_ratio) * dt_h
            if demand < 0:
                demand = 0.0
            elif demand > pet_cm_per_h * dt_h:
                demand = pet_cm_per_h * dt_h
        return demand

    def reservoirs(self, st: LgarState, dt_h: float, inflow_cm_per_h: float) -> float:
        """Route ``inflow`` [cm/h] through the fast and slow reservoirs; outflow [cm] of dt.

        Each reservoir drains ``dt a S^b`` (none below 0.01 cm), not more than it holds.
        """
        c = self.config
        input_slow = inflow_cm_per_h * c.frac_slow
        input_fast = inflow_cm_per_h - input_slow
        q_fast, st.cr_fast_cm = _reservoir(dt_h, c.a, c.b, input_fast, st.cr_fast_cm)
        q_slow, st.cr_slow_cm = _reservoir(dt_h, c.a_slow, c.b_slow, input_slow, st.cr_slow_cm)
        return q_fast + q_slow

    def giuh_route(self, st: LgarState, runoff_cm: float) -> float:
        """Convolve ``runoff`` [cm] with the GIUH; the outflow of this step [cm]."""
        q = st.giuh_queue
        n = len(self.giuh)
        q[n] = 0.0
        for i in range(n):
            q[i] += self.giuh[i] * runoff_cm
        out = q[0]
        for i in range(1, n):
            q[i - 1] = q[i]
        q[n - 1] = 0.0
        return out

    # -- forcing step --------------------------------------------------------------------------
    def step(self, st: LgarState, precip_mm_per_h: float, pet_mm_per_h: float) -> StepFluxes:
        """Advance ``st`` in place by one forcing step (LGAR-C's ``BmiLGAR::Update``).

        Parameters
        ----------
        st : LgarState
            State, modified.
        precip_mm_per_h, pet_mm_per_h : float
            Rain and PET rates over the forcing step [mm/h].

        Returns
        -------
        StepFluxes
            Amounts of the step [cm].
        """
        return _ForcingStep(self, st, precip_mm_per_h, pet_mm_per_h).run()


def _reservoir(dt_h: float, a: float, b: float, inflow: float, storage: float
               ) -> tuple[float, float]:
    """One nonlinear reservoir over dt: (outflow [cm], new storage [cm])."""
    q = dt_h * (a * c_pow(storage, b))
    if storage < 0.01:
        q = 0.0
    delta = dt_h * inflow - q
    if storage + delta > 0.0:
        storage += delta
    else:
        q = storage + dt_h * inflow
        storage = 0.0
    return q, storage



# ----------------------------------------------------------------------------------------------
# One forcing step (LGAR-C's BmiLGAR::Update), split into its parts
# ----------------------------------------------------------------------------------------------
@dataclass
class _Substep:
    """Amounts of one substep [cm] (LGAR-C's ``*_subtimestep_cm``)."""

    precip: float = 0.0
    aet: float = 0.0
    volstart: float = 0.0
    volin: float = 0.0
    volon: float = 0.0
    runoff: float = 0.0
    recharge: float = 0.0
    free_drainage_for_cr: float = 0.0
    top_near_sat: bool = False


class _ForcingStep:
    """The state machine of one forcing step; :meth:`run` returns its :class:`StepFluxes`."""

    def __init__(self, model: Lgar, st: LgarState, precip_mm_per_h: float,
                 pet_mm_per_h: float):
        self.m, self.st, self.c = model, st, model.config
        self.p_mm, self.pet_mm = precip_mm_per_h, pet_mm_per_h
        self.precip_ts = self.pet_ts = self.aet_ts = 0.0
        self.volin_ts = self.runoff_ts = self.recharge_ts = self.q_cr_ts = 0.0
        self.volend_sub = model.mass(st.fronts)
        self.volend_ts = self.volend_sub
        self.volcr_end_ts = st.cr_fast_cm + st.cr_slow_cm
        self.volon_ts = st.ponded_cm
        self.local_mb = self.local_mb_closed = math.nan
        self.pet_sub = self.aet_sub = self.recharge_sub = 0.0
        self.switch_caching = False

    # -- before the substeps ---------------------------------------------------------------
    def _choose_substep(self) -> float:
        """Substep [h]: fixed, or with ``adaptive_timestep`` the forcing step when dry, the
        minimum substep with heavy rain (> 10 mm/h) or ponded water, twice it with light rain."""
        st, c = self.st, self.c
        dt = st.timestep_h
        if c.adaptive_timestep:
            dt = c.forcing_resolution_h
            if self.p_mm > 10.0 or self.volon_ts > 0.0:
                dt = c.timestep_h
            elif self.p_mm > 0.0:
                dt = c.timestep_h * 2.0
            dt = c_fmin(dt, c.forcing_resolution_h)
            st.timestep_h = dt
        return dt

    def _decide_caching(self, dt: float) -> None:
        """LGAR-C's flux caching switch: reuse the last fluxes on slow dry steps."""
        st, c = self.st, self.c
        caching_at_start = st.cache_fluxes
        wf_free_drain_dzdt = 0.0
        if not caching_at_start:
            wf_free_drain_dzdt = st.fronts.dzdt[self.m.free_drainage_front(st.fronts)]
        if c.allow_flux_caching:
            if dt == c.forcing_resolution_h:
                if (self.p_mm < PRECIP_THRESHOLD_MM_PER_H
                        and (st.previous_aet / (st.previous_pet + PET_EPSILON))
                        < AET_PET_RATIO_THRESHOLD
                        and st.cache_count != NUM_TIMESTEPS_BEFORE_RESET_CACHE
                        and self.volon_ts < VOLON_TIMESTEP_THRESHOLD_CM
                        and st.previous_recharge < BOTTOM_BDY_FLUX_THRESHOLD_CM):
                    st.cache_fluxes = True
                if wf_free_drain_dzdt > THRESHOLD_DZDT_CM_PER_H:
                    st.cache_fluxes = False
                if self.volon_ts >= VOLON_TIMESTEP_THRESHOLD_CM:
                    st.cache_fluxes = False
                if (st.cache_count == NUM_TIMESTEPS_BEFORE_RESET_CACHE
                        or self.p_mm >= PRECIP_THRESHOLD_MM_PER_H):
                    st.cache_fluxes = False
            else:
                st.cache_fluxes = False
        if caching_at_start and not st.cache_fluxes:
            self.switch_caching = True
        if st.cache_fluxes:
            st.cache_count += 1

    def _clean_inputs(self) -> None:
        """Negative rates to 0; optionally PET taken from rain first."""
        if self.p_mm < 0.0:
            self.p_mm = 0.0
        if self.pet_mm < 0.0:
            self.pet_mm = 0.0
        if self.c.pet_affects_precip:
            if self.p_mm > self.pet_mm:
                self.p_mm = self.p_mm - self.pet_mm
                self.pet_mm = 0.0
            else:
                self.pet_mm = self.pet_mm - self.p_mm
                self.p_mm = 0.0

    # -- the step --------------------------------------------------------------------------
    def run(self) -> StepFluxes:
        st, c = self.st, self.c
        dt = self._choose_substep()
        self._decide_caching(dt)
        subcycles = int(c.forcing_resolution_h / st.timestep_h + 1.0e-08)
        if subcycles < 1:
            raise ValueError("substep longer than the forcing step: 0 substeps (refused)")
        self._clean_inputs()
        done = 0
        for _ in range(subcycles):
            self._substep(dt)
            done += 1
            if st.time_s >= c.endtime_s:
                break
        return self._finish(done)

    def _substep(self, dt: float) -> None:
        """One substep (the body of LGAR-C's subcycling loop)."""
        st, c, m = self.st, self.c, self.m
        sub = _Substep()
        st.time_s += dt * 3600
        precip_for_cr_rate = 0.0
        precip_rate = self.p_mm * 0.1
        old = st.fronts.copy()
        ponded_flux_for_cr = 0.0
        if st.runoff_in_prev_step:
            total = precip_rate
            precip_for_cr_rate = c.frac_to_cr * total
            precip_rate = (1.0 - c.frac_to_cr) * total
            ponded_flux_for_cr = self.volon_ts / dt * c.frac_to_cr
            self.volon_ts = self.volon_ts * (1 - c.frac_to_cr)
        pet_rate = self.pet_mm * 0.1
        ponded = precip_rate * dt
        ponded += self.volon_ts
        sub.precip = precip_rate * dt
        self.pet_sub = pet_rate * dt
        sub.volstart = m.mass(st.fronts)
        if not st.cache_fluxes:
            self._soil_substep(sub, old, dt, precip_rate, pet_rate, precip_for_cr_rate, ponded)
        else:
            self._cached_substep(sub)
        self.volend_sub = m.mass(st.fronts)
        self.volend_ts = self.volend_sub
        st.precip_previous_cm = sub.precip
        self._reservoir_and_balance(sub, dt, precip_for_cr_rate, ponded_flux_for_cr)

    def _cached_substep(self, sub: _Substep) -> None:
        """Flux caching: fronts do not move, PET is saved for later, recharge repeated."""
        st = self.st
        self.pet_ts += c_fmax(self.pet_sub, 0.0)
        st.accumulated_pet += self.pet_ts
        if not self.c.free_drainage_to_cr:
            sub.recharge += st.previous_recharge
        else:
            sub.free_drainage_for_cr += st.previous_recharge
        st.accumulated_free_drainage += st.previous_recharge

    def _limits(self, fr: Fronts, i_fd: int) -> tuple[float, float, float, float]:
        """Column water, least column water (theta_r), water and least water down to the
        infiltration front [cm]."""
        m = self.m
        min_storage = 0.0
        mass_now = m.mass(fr)
        for k in range(1, m.num_layers + 1):
            min_storage += m.soil[k].theta_r * (m.cum[k] - m.cum[k - 1])
        min_fd = m.min_storage_to_front(fr, i_fd)
        storage_fd = m.storage_to_front(fr, i_fd)
        return mass_now, min_storage, storage_fd, min_fd

    def _free_drainage(self, fr: Fronts, dt: float, limits) -> float:
        """Free drainage [cm] of the substep: K of the deepest front x dt, halved while it
        would over-dry the column (0 after 6 halvings, below 1e-7 cm or for psi > 1e6 cm)."""
        mass_now, min_storage, storage_fd, min_fd = limits
        fd = 0.0
        if not self.c.free_drainage_enabled:
            return fd
        fd += dt * fr.k[fr.n - 1]
        it = 0
        while (mass_now - fd < min_storage) or (storage_fd - fd < min_fd):
            fd *= 0.5
            if it > 5:
                fd = 0.0
                break
            it += 1
        if fd < 1.e-7:
            fd = 0.0
        if fr.psi[fr.n - 1] > 1.e6:
            fd = 0.0
        return fd

    @staticmethod
    def _limit_aet(aet: float, fd: float, corr: float, limits) -> tuple[float, float, float]:
        """Halve AET (and with it free drainage) while they would over-dry the column."""
        mass_now, min_storage, storage_fd, min_fd = limits
        it = 0
        while (mass_now - aet < min_storage) or (storage_fd - aet < min_fd):
            aet *= 0.5
            if it > 5:
                aet = 0.0
                break
            it += 1
        it = 0
        while ((mass_now - aet - fd - corr) < min_storage) or \
                ((storage_fd - aet - fd - corr) < min_fd):
            aet *= 0.5
            fd *= 0.5
            corr *= 0.5
            if it > 5:
                aet = fd = corr = 0.0
                break
            it += 1
        return aet, fd, corr

    def _soil_substep(self, sub: _Substep, old: Fronts, dt: float, precip_rate: float,
                      pet_rate: float, precip_for_cr_rate: float, ponded: float) -> None:
        """AET, free drainage, new front or infiltration, front movement, dZ/dt."""
        st, c, m = self.st, self.c, self.m
        fr = st.fronts
        i_fd = m.free_drainage_front(fr)
        limits = self._limits(fr, i_fd)
        corr = 0.0
        if self.switch_caching:
            pet_rate += st.accumulated_pet
            st.accumulated_pet = 0.0
            corr += st.accumulated_free_drainage
            st.accumulated_free_drainage = 0.0
        fd = self._free_drainage(fr, dt, limits)
        precip_previous = st.precip_previous_cm
        aet = 0.0
        if pet_rate > 0.0:
            aet = m.aet(fr, pet_rate, dt)
        aet, fd, corr = self._limit_aet(aet, fd, corr, limits)
        self.precip_ts += sub.precip + precip_for_cr_rate * dt
        self.pet_ts += c_fmax(self.pet_sub, 0.0)
        self.volon_ts = c_fmax(self.volon_ts, 0.0)
        self.volon_ts = self.volon_ts if self.volon_ts > SMALL_EPS else 0.0
        theta_e = m.soil[fr.layer[0]].theta_e
        is_top_sat = (fr.theta[0] + SMALL_EPS) >= theta_e
        sub.top_near_sat = fr.theta[0] > theta_e * c.spf_factor
        create = ((precip_previous == 0.0 and sub.precip > 0.0 and self.volon_ts == 0)
                  or ((sub.precip > 0.0 or self.volon_ts > 0) and fr.n == m.num_layers))
        if is_top_sat or self.volon_ts > 0.0:
            create = False
        temp_rch = 0.0
        if create:
            temp_rch, aet = move_wetting_fronts(m, fr, old, dt, fd, 0.0, i_fd, self.volend_sub,
                                                corr, aet)
            depth = dry_depth(m, fr, dt)
            ponded, sub.volin = create_surficial_front(m, fr, ponded, depth, fr.theta[0])
            old = fr.copy()
        if ponded > 0 and not create:
            sub.runoff, ponded, sub.volin = insert_water(m, fr, dt, aet, fd, ponded, precip_rate,
                                                         i_fd, c.ponded_depth_max_cm)
            sub.recharge = sub.volin
            sub.volon = ponded
        elif ponded < c.ponded_depth_max_cm:
            sub.volon = ponded
            ponded = 0.0
            sub.runoff = 0.0
        else:
            sub.runoff = (ponded - c.ponded_depth_max_cm)
            sub.volon = c.ponded_depth_max_cm
            ponded = c.ponded_depth_max_cm
        if not create:
            temp_rch, aet = move_wetting_fronts(m, fr, old, dt, fd, sub.volin, i_fd,
                                                self.volend_sub, corr, aet)
        clean_redundant_fronts(m, fr)
        new_front = 0 if (self.switch_caching and create) else -1
        dzdt_calc(m, fr, ponded, dt, self.switch_caching, st.cache_count, new_front)
        if self.switch_caching:
            st.cache_count = 1
        sub.recharge = temp_rch
        if not c.free_drainage_to_cr:
            sub.recharge += fd
        else:
            sub.free_drainage_for_cr += fd + sub.recharge
            sub.recharge = 0.0
        sub.aet = aet

    def _reservoir_and_balance(self, sub: _Substep, dt: float, precip_for_cr_rate: float,
                               ponded_flux_for_cr: float) -> None:
        """Conceptual reservoirs, preferential-flow trigger, local mass balance, step sums."""
        st, c = self.st, self.c
        volcr_start = st.cr_fast_cm + st.cr_slow_cm
        inflow = precip_for_cr_rate + ponded_flux_for_cr + sub.free_drainage_for_cr / dt
        q_cr = self.m.reservoirs(st, dt, inflow)
        self.q_cr_ts += q_cr
        volcr_end = st.cr_fast_cm + st.cr_slow_cm
        self.volcr_end_ts = volcr_end
        st.runoff_in_prev_step = (sub.runoff > SMALL_EPS) or sub.top_near_sat
        precip = sub.precip + precip_for_cr_rate * dt
        local_mb = (sub.volstart + precip + self.volon_ts - sub.runoff - q_cr - volcr_end
                    + volcr_start - sub.aet - sub.volon - sub.recharge - self.volend_sub)
        self.local_mb = local_mb
        self.local_mb_closed = local_mb + ponded_flux_for_cr * dt
        self.volin_ts += sub.volin
        self.recharge_ts += sub.recharge
        self.runoff_ts += sub.runoff
        self.aet_ts += sub.aet
        self.volon_ts = sub.volon
        self.aet_sub, self.recharge_sub = sub.aet, sub.recharge
        if abs(local_mb) > c.mbal_tol or math.isinf(local_mb):
            raise LgarMassBalanceError(f"local mass balance error {local_mb} cm exceeds "
                                       f"mbal_tol={c.mbal_tol} cm at t={st.time_s} s")

    # -- after the substeps ----------------------------------------------------------------
    def _finish(self, substeps: int) -> StepFluxes:
        """GIUH routing, caching memory, carried state; the step's :class:`StepFluxes`."""
        st = self.st
        giuh = self.m.giuh_route(st, self.runoff_ts + self.q_cr_ts)
        st.ponded_cm = self.volon_ts
        st.previous_aet = self.aet_sub
        st.previous_pet = self.pet_sub
        if not st.cache_fluxes:
            st.previous_recharge = self.recharge_sub
        return StepFluxes(
            precipitation=self.precip_ts, potential_evapotranspiration=self.pet_ts,
            actual_evapotranspiration=self.aet_ts, surface_runoff=self.runoff_ts,
            giuh_runoff=giuh, soil_storage=self.volend_ts, total_discharge=giuh,
            infiltration=self.volin_ts, percolation=self.recharge_ts,
            conceptual_reservoir_to_stream_discharge=self.q_cr_ts,
            mass_balance=self.local_mb, mass_balance_closed=self.local_mb_closed,
            ponded=self.volon_ts, reservoir_storage=self.volcr_end_ts, substeps=substeps)
