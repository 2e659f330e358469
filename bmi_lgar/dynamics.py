"""Wetting-front dynamics of LGAR: creation, infiltration, movement, merging, layer crossing, dZ/dt.

Each function is the counterpart of an LGAR-C function (named in its docstring) with the same
operations in the same order, so float64 results are identical. They act in place on
:class:`bmi_lgar.fronts.Fronts` (0-based indices; LGAR-C's ``front_num`` = index + 1) and take
the model ``m`` (a :class:`bmi_lgar.physics.Lgar`) for the soils of the layers (``m.soil[layer]``),
the layer-bottom depths (``m.cum[layer]``, cm) and the column water (``m.mass``). Units: cm, h.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bmi_lgar.fronts import Fronts
from bmi_lgar.soil import (c_div, c_fmax, c_fmin, c_sqrt, k_from_se, psi_from_se, se_from_theta,
                           theta_from_psi)

if TYPE_CHECKING:  # pragma: no cover
    from bmi_lgar.physics import Lgar

# Constants of LGAR-C (names as there).
THRESHOLD_NO_MOISTURE_DIFF = 1.0e-15
MBAL_ITERATIVE_TOLERANCE = 1.0e-10
MAX_ITER_MBAL_LOOP = 1.0e5
MAX_ITER_SATURATION_MBAL_LOOP = 1.0e4
TRUNCATION_DEPTH = 1.0e-9
FACTOR_LIMITS_LAYER_CROSSING_SPEED = 2.0
DEPTH_AVOIDS_SAME_WF_DEPTH = 1.0e-6
PSI_UPPER_LIM = 1.0e7
SMALL_EPS = 1.0e-12
PRECIP_THRESHOLD_MM_PER_H = 1.0e-6
PET_EPSILON = 1.0e-8
AET_PET_RATIO_THRESHOLD = 0.75
VOLON_TIMESTEP_THRESHOLD_CM = 1.0e-16
BOTTOM_BDY_FLUX_THRESHOLD_CM = 1.0e-4
THRESHOLD_DZDT_CM_PER_H = 1.0
NUM_TIMESTEPS_BEFORE_RESET_CACHE = 24
#: Trapezoids of the capillary-drive integral (LGAR-C's ``nint``).
NINT = 120


# ----------------------------------------------------------------------------------------------
# Mass-balance solves for theta
# ----------------------------------------------------------------------------------------------
def theta_mass_balance(m: "Lgar", layer: int, psi: float, new_mass: float, prior_mass: float,
                       precip_mass_to_add: float, aet: float, delta_theta: list[float],
                       delta_thickness: list[float]) -> tuple[float, float]:
    """Theta of a moved front that conserves mass (LGAR-C's ``lgar_theta_mass_balance``).

    The head is stepped up or down (step ``0.1 factor``, factor shrinking by 10 at each change of
    direction) until the water of the front, extended at its head into the layers above, matches
    ``prior_mass`` within 1e-10 cm. Returns (theta, AET [cm]); AET takes a residual that cannot
    be closed and is set to 0 when the front saturates.
    """
    soil = m.soil[layer]
    psi_loc = psi
    delta_mass = abs(new_mass - prior_mass)
    factor = c_fmax(1.0, psi / 10.0)
    if psi > 1.0e4:
        factor = psi
    switched = False
    theta = 0.0
    psi_loc_prev = psi_loc
    delta_mass_prev = delta_mass
    count_no_mass_change = 0
    wanted_to_saturate = False
    if delta_mass <= MBAL_ITERATIVE_TOLERANCE:
        return m.theta_at(layer, psi_loc), aet
    it = 0
    aug = aug_extreme = False
    first_thresh = int(MAX_ITER_MBAL_LOOP / 100)
    second_thresh = int(MAX_ITER_MBAL_LOOP / 10)
    while delta_mass > MBAL_ITERATIVE_TOLERANCE:
        it += 1
        if it > first_thresh and not aug:
            factor = factor * 100
            aug = True
        if it > second_thresh and not aug_extreme:
            factor = factor * 100
            aug_extreme = True
        if new_mass > prior_mass:
            psi_loc += 0.1 * factor
            switched = False
        else:
            if not switched:
                switched = True
                factor = factor * 0.1
            psi_loc_prev = psi_loc
            psi_loc -= 0.1 * factor
            if psi_loc < 0.0:
                wanted_to_saturate = True
            if psi_loc < 0 and psi_loc_prev != 0:
                psi_loc = psi_loc_prev * 0.1
        if psi_loc < 0.0:
            psi_loc = 0.0
            factor = factor * 0.5
        mass_layers = 0.0
        theta = theta_from_soil(soil, psi_loc)
        mass_layers += delta_thickness[layer] * (theta - delta_theta[layer])
        for k in range(1, layer):
            theta_layer = m.theta_at(k, psi_loc)
            mass_layers += delta_thickness[k] * (theta_layer - delta_theta[k])
        new_mass = mass_layers
        delta_mass = abs(new_mass - prior_mass)
        if abs(psi_loc - psi_loc_prev) < 1e-15 and factor < 1e-13:
            break
        if abs(delta_mass - delta_mass_prev) < 1e-15:
            count_no_mass_change += 1
        else:
            count_no_mass_change = 0
        if count_no_mass_change == 5 and precip_mass_to_add < 1.0e-12:
            break
        if it > MAX_ITER_MBAL_LOOP:
            break
        if psi_loc > PSI_UPPER_LIM and it > first_thresh:
            break
        if psi_loc <= 0 and psi_loc_prev < 0:
            break
        delta_mass_prev = delta_mass
    if delta_mass > MBAL_ITERATIVE_TOLERANCE and not wanted_to_saturate:
        aet = aet - abs(delta_mass - MBAL_ITERATIVE_TOLERANCE)
    if theta >= soil.theta_e and psi_loc != 0.0:
        aet = 0.0
    return theta, aet


def theta_from_soil(soil, psi: float) -> float:
    """theta [-] of ``soil`` at head ``psi`` [cm]."""
    return theta_from_psi(psi, soil.alpha, soil.m, soil.n, soil.theta_e, soil.theta_r)


def theta_mass_balance_correction(m: "Lgar", fr: Fronts, i: int, prior_mass: float) -> None:
    """Restore the column water to ``prior_mass`` by iterating the head shared by front ``i``
    and the layer-bottom fronts tied to it (LGAR-C's ``lgar_theta_mass_balance_correction``)."""
    cur = i
    if cur > 0 and fr.to_bottom[cur - 1]:
        cur = cur - 1
    while fr.to_bottom[cur]:
        if cur == 0:
            break
        cur = cur - 1
        if not fr.to_bottom[cur]:
            cur = cur + 1
            break
    new_mass = m.mass(fr)
    psi = fr.psi[cur]
    psi_loc = psi
    delta_mass = abs(new_mass - prior_mass)
    factor = c_fmax(1.0, psi / 10.0)
    if psi > 1.0e4:
        factor = psi
    switched = False
    psi_loc_prev = psi_loc
    delta_mass_prev = delta_mass
    count_no_mass_change = 0
    it = 0
    aug = aug_extreme = False
    first_thresh = int(MAX_ITER_MBAL_LOOP / 100)
    second_thresh = int(MAX_ITER_MBAL_LOOP / 10)
    while delta_mass > MBAL_ITERATIVE_TOLERANCE:
        it += 1
        if it > first_thresh and not aug:
            factor = factor * 100
            aug = True
        if it > second_thresh and not aug_extreme:
            factor = factor * 100
            aug_extreme = True
        if new_mass > prior_mass:
            psi_loc += 0.1 * factor
            switched = False
        else:
            if not switched:
                switched = True
                factor = factor * 0.1
            psi_loc_prev = psi_loc
            psi_loc -= 0.1 * factor
            if psi_loc < 0 and psi_loc_prev != 0:
                psi_loc = psi_loc_prev * 0.1
        if psi_loc < 0.0:
            psi_loc = 0.0
            factor = factor * 0.5
        fr.psi[cur] = psi_loc
        fr.theta[cur] = m.theta_at(fr.layer[cur], psi_loc)
        _propagate_head_down(m, fr, cur)
        new_mass = m.mass(fr)
        delta_mass = abs(new_mass - prior_mass)
        if abs(psi_loc - psi_loc_prev) < 1e-15 and factor < 1e-13:
            break
        if abs(delta_mass - delta_mass_prev) < 1e-15:
            count_no_mass_change += 1
        else:
            count_no_mass_change = 0
        if count_no_mass_change == 5:
            break
        if it > MAX_ITER_MBAL_LOOP:
            break
        if psi_loc <= 0 and psi_loc_prev < 0:
            break
        if psi_loc > PSI_UPPER_LIM and it > first_thresh:
            break
        delta_mass_prev = delta_mass


def _propagate_head_down(m: "Lgar", fr: Fronts, cur: int) -> None:
    """Give the head of front ``cur`` to the layer-bottom fronts below it and to the first
    front below those (part of :func:`theta_mass_balance_correction`)."""
    nxt = cur + 1
    before = cur
    if nxt < fr.n:
        while fr.to_bottom[nxt]:
            fr.psi[nxt] = fr.psi[before]
            fr.theta[nxt] = m.theta_at(fr.layer[nxt], fr.psi[nxt])
            before = nxt
            nxt = nxt + 1
            if nxt >= fr.n:
                break
        if nxt < fr.n:
            if not fr.to_bottom[nxt] and fr.to_bottom[before]:
                fr.psi[nxt] = fr.psi[before]
                fr.theta[nxt] = m.theta_at(fr.layer[nxt], fr.psi[nxt])


# ----------------------------------------------------------------------------------------------
# Merging, crossing, lower boundary, dry over wet
# ----------------------------------------------------------------------------------------------
def merge_wetting_fronts(m: "Lgar", fr: Fronts) -> None:
    """Merge a front that overtook the next one in its layer (LGAR-C's
    ``lgar_merge_wetting_fronts``): the merged front keeps the upper theta and the water of both."""
    cur = 0
    wf = 1
    while wf != fr.n:
        nxt = cur + 1
        if fr.depth[cur] > fr.depth[nxt] and fr.layer[cur] == fr.layer[nxt] and \
                not fr.to_bottom[nxt]:
            nn = nxt + 1
            current_mass_this_layer = (fr.depth[cur] * (fr.theta[cur] - fr.theta[nxt])
                                       + fr.depth[nxt] * (fr.theta[nxt] - fr.theta[nn]))
            fr.depth[cur] = current_mass_this_layer / (fr.theta[cur] - fr.theta[nn])
            fr.psi[cur], fr.k[cur] = m.psi_k_at(fr.layer[cur], fr.theta[cur])
            m.delete_front(fr, nxt)
        cur += 1
        wf += 1


def cross_layer_boundary(m: "Lgar", fr: Fronts) -> None:
    """Let fronts that passed a layer bottom enter the next layer, conserving water
    (LGAR-C's ``lgar_wetting_fronts_cross_layer_boundary``)."""
    cum, nl = m.cum, m.num_layers
    cross_necessary = False
    theta_correction_necessary = False
    front_for_cross = -1
    for cur in range(fr.n - 1):
        layer = fr.layer[cur]
        s = m.soil[layer]
        nxt, nn = cur + 1, cur + 2
        if fr.depth[cur] > cum[layer] and fr.depth[nxt] == cum[layer] and fr.to_bottom[nxt] \
                and layer != nl:
            current_theta = c_fmin(s.theta_e, fr.theta[cur])
            overshot_depth = fr.depth[cur] - fr.depth[nxt]
            fr.psi[cur], fr.k[cur] = m.psi_k_at(layer, fr.theta[cur])
            theta_new = m.theta_at(layer + 1, fr.psi[cur])
            mbal_correction = overshot_depth * (current_theta - fr.theta[nxt])
            mbal_z_correction = c_div(mbal_correction, (theta_new - fr.theta[nn]))
            if math.isinf(mbal_z_correction):
                mbal_z_correction = cum[layer + 1] / (1e3)
            depth_new = cum[layer] + mbal_z_correction
            fr.depth[cur] = cum[layer]
            fr.theta[nxt] = theta_new
            fr.psi[nxt] = fr.psi[cur]
            fr.depth[nxt] = depth_new
            fr.layer[nxt] = layer + 1
            fr.dzdt[nxt] = fr.dzdt[cur]
            fr.dzdt[cur] = 0.0
            fr.to_bottom[cur] = True
            fr.to_bottom[nxt] = False
            cross_necessary = True
            front_for_cross = nxt
            if depth_new > cum[nl] and fr.layer[nxt] == nl:
                theta_correction_necessary = True
    if not cross_necessary:
        return
    for j in range(fr.n - 2, -1, -1):
        if fr.to_bottom[j]:
            fr.psi[j] = fr.psi[j + 1]
            fr.theta[j] = m.theta_at(fr.layer[j], fr.psi[j])
        fr.k[j] = m.k_at(fr.layer[j], fr.theta[j])
    if theta_correction_necessary:
        _correct_front_below_domain(m, fr, front_for_cross)


def _correct_front_below_domain(m: "Lgar", fr: Fronts, front_for_cross: int) -> None:
    """A front that crossed into the last layer and past the domain bottom: put it just below
    the bottom and restore the water (theta correction, then a depth search)."""
    cum, nl = m.cum, m.num_layers
    for j in range(fr.n - 2, -1, -1):
        prior_mass = m.mass(fr)
        if not (fr.depth[j] > cum[nl] and fr.layer[j] == nl and j == front_for_cross):
            continue
        fr.depth[j] = cum[nl] + 1.0e-6
        theta_mass_balance_correction(m, fr, j, prior_mass)
        current_mass = m.mass(fr)
        if not prior_mass > (current_mass + 100. * MBAL_ITERATIVE_TOLERANCE):
            continue
        increment = 0.001
        max_increment = 1. / TRUNCATION_DEPTH
        max_depth = cum[nl] + 1. / TRUNCATION_DEPTH
        found_upper_bound = False
        it = 0
        while prior_mass > current_mass and increment < max_increment and \
                fr.depth[j] < max_depth:
            it += 1
            if it > MAX_ITER_MBAL_LOOP:
                break
            fr.depth[j] += increment
            current_mass = m.mass(fr)
            if current_mass >= prior_mass:
                found_upper_bound = True
                break
            increment *= 2.0
        if found_upper_bound:
            low = fr.depth[j] - increment
            high = fr.depth[j]
            current_mass = m.mass(fr)
            while abs(current_mass - prior_mass) > MBAL_ITERATIVE_TOLERANCE:
                it += 1
                mid = 0.5 * (low + high)
                fr.depth[j] = mid
                current_mass = m.mass(fr)
                if current_mass >= prior_mass:
                    high = mid
                else:
                    low = mid
                if it > MAX_ITER_MBAL_LOOP:
                    break


def cross_domain_boundary(m: "Lgar", fr: Fronts) -> float:
    """The second-deepest front reached the domain bottom: its water beyond the deepest front
    leaves the column (LGAR-C's ``lgar_wetting_front_cross_domain_boundary``). Returns that
    water [cm]."""
    domain_depth = m.cum[m.num_layers]
    length = fr.n
    bottom_flux = 0.0
    cur = 0
    wf = 1
    while wf != length:
        if wf >= fr.n:
            break
        temp = 0.0
        nxt = cur + 1
        if nxt + 1 >= fr.n and fr.depth[cur] >= domain_depth:
            temp = (fr.theta[cur] - fr.theta[nxt]) * (fr.depth[cur] - fr.depth[nxt])
            fr.theta[nxt] = fr.theta[cur]
            fr.psi[nxt], fr.k[nxt] = m.psi_k_at(fr.layer[cur], fr.theta[cur])
            m.delete_front(fr, cur)
            bottom_flux += temp
            break
        cur += 1
        if temp != 0.0:
            break
        wf += 1
    return bottom_flux


def has_dry_over_wet(fr: Fronts) -> bool:
    """A front not wetter than the next one in its layer (``lgar_check_dry_over_wet_...``)."""
    for i in range(fr.n - 1):
        if fr.theta[i] <= fr.theta[i + 1] and fr.layer[i] == fr.layer[i + 1]:
            return True
    return False


def fix_dry_over_wet(m: "Lgar", fr: Fronts) -> float:
    """Remove dry-over-wet fronts and restore the water by theta correction (LGAR-C's
    ``lgar_fix_dry_over_wet_wetting_fronts``). Returns the water change [cm] (to AET)."""
    mass_change = 0.0
    cur = 0
    has_next = fr.n > 1
    l = 1
    while l <= fr.n:
        if has_next:
            if fr.theta[cur] <= fr.theta[cur + 1] and fr.layer[cur] == fr.layer[cur + 1]:
                prior_mass = m.mass(fr)
                cur = m.delete_front(fr, cur)
                theta_mass_balance_correction(m, fr, cur, prior_mass)
                mass_after = m.mass(fr)
                mass_change += (mass_after - prior_mass)
            cur += 1
            has_next = cur + 1 < fr.n if cur < fr.n else False
        l += 1
    return mass_change


def correction_type(m: "Lgar", fr: Fronts) -> int:
    """Which correction is needed first (LGAR-C's ``lgarto_correction_type_surf``): 0 none,
    1 merging, 2 layer-boundary crossing, 3 lower-boundary crossing, 4 dry over wet."""
    cum, nl = m.cum, m.num_layers
    n = fr.n
    for cur in range(n - 1):
        nxt = cur + 1
        layer = fr.layer[cur]
        if fr.theta[cur] > fr.theta[nxt] and fr.depth[cur] > fr.depth[nxt] and \
                layer == fr.layer[nxt] and not fr.to_bottom[nxt]:
            return 1
        if fr.depth[cur] > cum[layer] and fr.depth[nxt] == cum[layer] and fr.to_bottom[nxt] \
                and fr.theta[cur] > fr.theta[nxt] and layer != nl:
            return 2
        if nxt + 1 >= n and fr.depth[cur] > cum[layer]:
            return 3
        if has_dry_over_wet(fr):
            return 4
    return 0


def clean_redundant_fronts(m: "Lgar", fr: Fronts) -> None:
    """Delete the first front whose theta equals the next one's in its layer within 1e-15
    (LGAR-C's ``lgar_clean_redundant_fronts``)."""
    for cur in range(fr.n - 1):
        if fr.layer[cur] == fr.layer[cur + 1] and \
                abs(fr.theta[cur] - fr.theta[cur + 1]) < THRESHOLD_NO_MOISTURE_DIFF:
            m.delete_front(fr, cur)
            break


# ----------------------------------------------------------------------------------------------
# Moving the fronts
# ----------------------------------------------------------------------------------------------
def move_wetting_fronts(m: "Lgar", fr: Fronts, old: Fronts, dt_h: float,
                        free_drainage_cm: float, precip_mass_to_add: float, i_fd: int,
                        old_mass: float, mass_corr_cached_fd: float,
                        aet: float) -> tuple[float, float]:
    """Move every front by dZ/dt dt, close each front's mass balance, then merge / cross / drain
    until the profile is consistent (LGAR-C's ``lgar_move_wetting_fronts``).

    Parameters
    ----------
    m : Lgar
        The model.
    fr, old : Fronts
        Fronts (modified) and their copy at the start of the substep.
    dt_h : float
        Substep [h].
    free_drainage_cm : float
        Free drainage [cm] leaving through the bottom this substep.
    precip_mass_to_add : float
        Infiltration [cm] added to the front that takes it.
    i_fd : int
        Index of that front (:meth:`Lgar.free_drainage_front`).
    old_mass : float
        Column water [cm] at the end of the previous substep.
    mass_corr_cached_fd : float
        Free drainage [cm] accumulated during flux caching.
    aet : float
        AET demand [cm].

    Returns
    -------
    (float, float)
        Water leaving through the lower boundary [cm], and AET [cm] after corrections.
    """
    cum, nl = m.cum, m.num_layers
    column_depth = cum[nl]
    nwf = fr.n
    last = nwf
    bottom_flux = 0.0
    fd_demand = free_drainage_cm
    for wf in range(nwf, 0, -1):
        cur = wf - 1
        layer = fr.layer[cur]
        s = m.soil[layer]
        theta_e, theta_r = s.theta_e, s.theta_r
        layer_below = layer + 1 if wf == last else fr.layer[cur + 1]
        actual_et = aet
        if wf < last and layer_below != layer:
            fr.theta[cur] = m.theta_at(layer, fr.psi[cur + 1])
            fr.psi[cur] = fr.psi[cur + 1]
        if wf == nwf and layer_below != layer and nwf == nl:
            aet = _move_deepest_front(m, fr, old, cur, dt_h, precip_mass_to_add, wf == i_fd + 1,
                                      fd_demand, mass_corr_cached_fd, actual_et, aet)
            actual_et = aet
        if wf < last and layer == layer_below:
            if layer == 1:
                cur, aet, actual_et = _move_front_top_layer(
                    m, fr, old, cur, dt_h, column_depth, precip_mass_to_add, wf == i_fd + 1,
                    fd_demand, mass_corr_cached_fd, actual_et, aet)
            else:
                aet = _move_front_deeper_layer(m, fr, old, cur, dt_h, column_depth,
                                               precip_mass_to_add, wf == i_fd + 1, fd_demand,
                                               mass_corr_cached_fd, actual_et, aet)
                actual_et = aet
            se = se_from_theta(fr.theta[cur], theta_e, theta_r)
            fr.psi[cur] = psi_from_se(se, s.alpha, s.m, s.n)
        if wf == 1:
            aet, flux = _saturated_depth_correction(m, fr, old_mass, precip_mass_to_add,
                                                    fd_demand, mass_corr_cached_fd, actual_et, aet)
            bottom_flux += flux
    aet, bottom_flux = _apply_corrections(m, fr, aet, bottom_flux)
    _update_psi_k(m, fr)
    if fr.n == 1 and fr.depth[0] != cum[1]:
        fr.depth[0] = cum[1]
    return bottom_flux, aet


def _prior_mass_with_fluxes(prior_mass: float, takes_fluxes: bool, precip: float, fd: float,
                            corr: float, actual_et: float) -> float:
    """Add infiltration and remove drainage and AET for the front that takes them."""
    if takes_fluxes:
        prior_mass += precip - (fd + corr + actual_et)
    return prior_mass


def _move_deepest_front(m, fr, old, cur, dt_h, precip, takes_fluxes, fd, corr, actual_et, aet):
    """Deepest front when there is one front per layer: theta from the mass balance of the whole
    column at one head."""
    cum = m.cum
    layer = fr.layer[cur]
    s = m.soil[layer]
    fr.depth[cur] += fr.dzdt[cur] * dt_h
    psi_old = old.psi[cur]
    psi = fr.psi[cur]
    prior_mass = (old.depth[cur] - cum[layer - 1]) * (old.theta[cur] - 0.0)
    new_mass = (fr.depth[cur] - cum[layer - 1]) * (fr.theta[cur] - 0.0)
    delta_thetas = [0.0] * (layer + 1)
    delta_thickness = [0.0] * (layer + 1)
    for k in range(1, layer):
        theta_old = m.theta_at(k, psi_old)
        local_delta_theta_old = theta_old - 0.0
        thickness = cum[k] - cum[k - 1]
        prior_mass += (thickness * local_delta_theta_old)
        theta = m.theta_at(k, psi)
        new_mass += thickness * (theta - 0.0)
        delta_thetas[k] = 0.0
        delta_thickness[k] = thickness
    delta_thetas[layer] = 0.0
    delta_thickness[layer] = fr.depth[cur] - cum[layer - 1]
    prior_mass = _prior_mass_with_fluxes(prior_mass, takes_fluxes, precip, fd, corr, actual_et)
    theta_new, aet = theta_mass_balance(m, layer, psi, new_mass, prior_mass, precip, aet,
                                        delta_thetas, delta_thickness)
    fr.theta[cur] = c_fmax(s.theta_r, c_fmin(theta_new, s.theta_e))
    se = se_from_theta(fr.theta[cur], s.theta_e, s.theta_r)
    fr.psi[cur] = psi_from_se(se, s.alpha, s.m, s.n)
    return aet


def _move_front_top_layer(m, fr, old, cur, dt_h, column_depth, precip, takes_fluxes, fd, corr,
                          actual_et, aet):
    """A front inside layer 1: theta = mass over its new depth (front removed if it would fall
    below theta_r). Returns (index of the current front, AET, actual_et)."""
    s = m.soil[1]
    nxt = cur + 1
    prior_mass = old.depth[cur] * (old.theta[cur] - old.theta[cur + 1])
    prior_mass = _prior_mass_with_fluxes(prior_mass, takes_fluxes, precip, fd, corr, actual_et)
    fr.depth[cur] += fr.dzdt[cur] * dt_h
    if fr.depth[cur] > column_depth:
        fr.depth[cur] = column_depth + TRUNCATION_DEPTH
    if fr.dzdt[cur] == 0.0 and not fr.to_bottom[cur]:
        return cur, aet, actual_et
    theta_candidate = prior_mass / fr.depth[cur] + fr.theta[nxt]
    if theta_candidate < s.theta_r:
        mass_before = m.mass(fr) - fr.depth[cur] * (fr.theta[cur] - theta_candidate)
        m.delete_front(fr, cur)
        mass_after = m.mass(fr)
        aet = aet - abs(mass_before - mass_after)
        return cur, aet, aet
    fr.theta[cur] = c_fmax(s.theta_r, c_fmin(s.theta_e, theta_candidate))
    return cur, aet, actual_et


def _move_front_deeper_layer(m, fr, old, cur, dt_h, column_depth, precip, takes_fluxes, fd, corr,
                             actual_et, aet):
    """A front inside layer 2 or deeper: theta from the mass balance of the front extended at its
    head into the layers above."""
    cum = m.cum
    layer = fr.layer[cur]
    s = m.soil[layer]
    nxt = cur + 1
    fr.depth[cur] += fr.dzdt[cur] * dt_h
    if fr.depth[cur] > column_depth:
        fr.depth[cur] = column_depth + TRUNCATION_DEPTH
    psi_old = old.psi[cur]
    psi_below_old = old.psi[cur + 1]
    psi = fr.psi[cur]
    psi_below = fr.psi[nxt]
    prior_mass = (old.depth[cur] - cum[layer - 1]) * (old.theta[cur] - old.theta[cur + 1])
    new_mass = (fr.depth[cur] - cum[layer - 1]) * (fr.theta[cur] - fr.theta[nxt])
    delta_thetas = [0.0] * (layer + 1)
    delta_thickness = [0.0] * (layer + 1)
    for k in range(1, layer):
        theta_old = m.theta_at(k, psi_old)
        theta_below_old = m.theta_at(k, psi_below_old)
        local_delta_theta_old = theta_old - theta_below_old
        thickness = (cum[k] - cum[k - 1])
        prior_mass += (thickness * local_delta_theta_old)
        theta = m.theta_at(k, psi)
        theta_below = m.theta_at(k, psi_below)
        new_mass += thickness * (theta - theta_below)
        delta_thetas[k] = theta_below
        delta_thickness[k] = thickness
    delta_thetas[layer] = fr.theta[nxt]
    delta_thickness[layer] = fr.depth[cur] - cum[layer - 1]
    prior_mass = _prior_mass_with_fluxes(prior_mass, takes_fluxes, precip, fd, corr, actual_et)
    theta_new, aet = theta_mass_balance(m, layer, psi, new_mass, prior_mass, precip, aet,
                                        delta_thetas, delta_thickness)
    fr.theta[cur] = c_fmax(s.theta_r, c_fmin(theta_new, s.theta_e))
    return aet


def _saturated_depth_correction(m, fr, old_mass, precip, fd, corr, actual_et, aet):
    """If the front taking infiltration is saturated, move its depth until the column holds
    the water it should (end of LGAR-C's front loop). Returns (AET, water to the bottom)."""
    cum, nl = m.cum, m.num_layers
    i_fd = m.free_drainage_front(fr)
    theta_e_fd = m.soil[fr.layer[i_fd]].theta_e
    mass_timestep = (old_mass + precip) - (actual_et + fd + corr)
    if not abs(fr.theta[i_fd] - theta_e_fd) < 1e-15:
        return aet, 0.0
    current_mass = m.mass(fr)
    mass_balance_error = abs(current_mass - mass_timestep)
    factor = 1.0
    if i_fd + 1 < fr.n:
        if abs(fr.theta[i_fd] - fr.theta[i_fd + 1]) < 0.01:
            factor = c_div(factor, abs(fr.theta[i_fd] - fr.theta[i_fd + 1]))
    switched = False
    depth_new = fr.depth[i_fd]
    it = 0
    aug = False
    break_flag = False
    speedup_thresh = int(MAX_ITER_SATURATION_MBAL_LOOP / 10)
    while abs(mass_balance_error) > MBAL_ITERATIVE_TOLERANCE:
        it += 1
        if it > MAX_ITER_SATURATION_MBAL_LOOP:
            break_flag = True
            aet = aet + mass_balance_error
            actual_et = aet
            break
        if it > speedup_thresh and not aug:
            factor = factor * 100
            aug = True
        if current_mass < mass_timestep:
            depth_new += 0.01 * factor
            switched = False
        else:
            if not switched:
                switched = True
                factor = factor * 0.1
            depth_new -= 0.01 * factor
        if fr.to_bottom[i_fd] and fr.layer[i_fd] == nl:
            depth_new = cum[nl]
        fr.depth[i_fd] = depth_new
        current_mass = m.mass(fr)
        mass_balance_error = abs(current_mass - mass_timestep)
    if depth_new < TRUNCATION_DEPTH:
        depth_new = TRUNCATION_DEPTH
        fr.depth[i_fd] = depth_new
    if math.isinf(fr.depth[i_fd]):
        fr.depth[i_fd] = cum[nl] + 1.0e-6
        break_flag = True
    flux = 0.0
    if break_flag:
        current_mass = m.mass(fr)
        mass_timestep = (old_mass + precip) - (actual_et + fd + corr)
        flux = mass_timestep - current_mass
    return aet, flux


def _apply_corrections(m: "Lgar", fr: Fronts, aet: float, bottom_flux: float
                       ) -> tuple[float, float]:
    """Merge, cross layer and domain boundaries, fix dry over wet, until none is needed."""
    kind = correction_type(m, fr)
    while kind != 0:
        if kind == 1:
            merge_wetting_fronts(m, fr)
        if kind == 2:
            mass_before = m.mass(fr)
            cross_layer_boundary(m, fr)
            mass_after = m.mass(fr)
            if abs(mass_before - mass_after) > 100. * MBAL_ITERATIVE_TOLERANCE:
                aet = aet + (mass_before - mass_after)
        if kind == 3:
            bottom_flux += cross_domain_boundary(m, fr)
            if math.isnan(bottom_flux):
                bottom_flux = 0.0
        if kind == 4:
            mass_change = fix_dry_over_wet(m, fr)
            aet = aet - mass_change
        kind = correction_type(m, fr)
    return aet, bottom_flux


def _update_psi_k(m: "Lgar", fr: Fronts) -> None:
    """Recompute psi (only where psi > 1 cm) and K of every front from its theta."""
    for i in range(fr.n):
        s = m.soil[fr.layer[i]]
        se = se_from_theta(fr.theta[i], s.theta_e, s.theta_r)
        if fr.psi[i] > 1.0:
            fr.psi[i] = psi_from_se(se, s.alpha, s.m, s.n)
        fr.k[i] = k_from_se(se, s.ks, s.m)


# ----------------------------------------------------------------------------------------------
# Infiltration and new fronts
# ----------------------------------------------------------------------------------------------
def insert_water(m: "Lgar", fr: Fronts, dt_h: float, aet: float, free_drainage_cm: float,
                 ponded_cm: float, precip_cm_per_h: float, i_fd: int,
                 ponded_max_cm: float) -> tuple[float, float, float]:
    """Green-Ampt infiltration of ponded water into front ``i_fd`` (LGAR-C's
    ``lgar_insert_water``).

    Returns
    -------
    (float, float, float)
        Runoff [cm], water left ponded [cm], infiltration [cm] (0 if unchanged).
    """
    cum, nl = m.cum, m.num_layers
    volin = 0.0
    h_p = c_fmax(ponded_cm - precip_cm_per_h * dt_h, 0.0)
    layer_fp = fr.layer[i_fd]
    s = m.soil[layer_fp]
    ksat = s.ks
    if fr.n == nl:
        geff = 0.0
    else:
        geff = m.geff(layer_fp, fr.theta[i_fd + 1], s.theta_e)
    depth_fd = fr.depth[i_fd]
    if layer_fp == 1:
        f_p = ksat * (1 + (geff + h_p) / depth_fd)
    else:
        bottom_sum = (depth_fd - cum[layer_fp - 1]) / ksat
        for k in range(1, layer_fp):
            ks_k = m.soil[layer_fp - k].ks
            bottom_sum += (cum[layer_fp - k] - cum[layer_fp - (k + 1)]) / ks_k
        f_p = (depth_fd / bottom_sum) + ((geff + h_p) * ksat / depth_fd)
    current_mass = m.mass(fr)
    max_storage = 0.0
    for k in range(1, nl + 1):
        max_storage += m.soil[k].theta_e * (cum[k] - cum[k - 1])
    room = (max_storage + free_drainage_cm + aet - current_mass) / dt_h
    if f_p > room:
        f_p = room
    ponded_temp = ponded_cm - f_p * dt_h - 0.0 * 0
    ponded_temp = c_fmax(ponded_temp, 0.0)
    fp_cm = f_p * dt_h + 0.0 / dt_h
    runoff = 0.0
    if ponded_max_cm > 0.0:
        if ponded_temp < ponded_max_cm:
            volin = c_fmin(ponded_cm, fp_cm)
            ponded_cm = ponded_cm - volin
            return 0.0, ponded_cm, volin
        if ponded_temp > ponded_max_cm:
            runoff = ponded_temp - ponded_max_cm
            return runoff, ponded_max_cm, fp_cm
        return 0.0, ponded_cm, volin
    volin = c_fmin(ponded_cm, fp_cm)
    runoff = 0.0 if ponded_cm < fp_cm else (ponded_cm - volin)
    return runoff, 0.0, volin


def dry_depth(m: "Lgar", fr: Fronts, dt_h: float) -> float:
    """Depth [cm] of a new surface front after a dry spell (LGAR-C's ``lgar_calc_dry_depth``,
    the "dry depth" of Lai et al. 2015): ``(tau + sqrt(tau^2 + 4 tau G)) / 2``,
    ``tau = dt Ks / (theta_e - theta)``, at most the layer thickness."""
    layer = fr.layer[0]
    s = m.soil[layer]
    theta1 = fr.theta[0]
    tau = dt_h * s.ks / (s.theta_e - fr.theta[0])
    geff = m.geff(layer, theta1, s.theta_e)
    depth = 0.5 * (tau + c_sqrt(tau * tau + 4.0 * tau * geff))
    return c_fmin(m.cum[layer], depth)


def create_surficial_front(m: "Lgar", fr: Fronts, ponded_cm: float, depth: float,
                           theta1: float) -> tuple[float, float]:
    """Insert a new top front holding the ponded water, up to saturation over ``depth``
    (LGAR-C's ``lgar_create_surficial_front``). Returns (ponded water left [cm],
    infiltration [cm])."""
    s = m.soil[1]
    theta_e = s.theta_e
    delta_theta = theta_e - theta1
    if depth * delta_theta > ponded_cm:
        volin = ponded_cm
        theta_new = c_fmin(theta1 + ponded_cm / depth, theta_e)
        fr.insert(0, depth, theta_new, 1, False)
        ponded_cm = 0.0
    else:
        volin = depth * delta_theta
        ponded_cm -= depth * delta_theta
        theta_new = theta_e
        fr.insert(0, depth, theta_e, 1, False)
    fr.psi[0], fr.k[0] = m.psi_k_at(1, theta_new)
    fr.k[0] = fr.k[0] * 1.0
    fr.dzdt[0] = 0.0
    if fr.n > 1:
        had_to_merge = False
        while fr.depth[0] > fr.depth[1] and fr.layer[0] == fr.layer[1] and not fr.to_bottom[1]:
            merge_wetting_fronts(m, fr)
            had_to_merge = True
        if had_to_merge:
            cross_layer_boundary(m, fr)
    return ponded_cm, volin


# ----------------------------------------------------------------------------------------------
# Front velocities
# ----------------------------------------------------------------------------------------------
def dzdt_calc(m: "Lgar", fr: Fronts, h_p: float, dt_h: float, switch_caching: bool = False,
              cache_count: int = 1, new_front: int = -1) -> None:
    """dZ/dt [cm/h] of every front but the deepest (LGAR-C's ``lgar_dzdt_calc``).

    Layer 1: ``(Ks (G + h_p) / Z + K(theta)) / dtheta``; deeper layers: the layered Green-Ampt form
    with the harmonic conductivity of the layers above at the front's head. Fronts at a layer
    bottom do not move; speeds are limited to 100 x the largest Ks and so that a front reaching
    a layer bottom goes at most to twice the bottom's depth. With ``switch_caching`` every front
    but ``new_front`` (index) goes ``cache_count`` times faster (catching up after caching).
    """
    cum = m.cum
    count_correct_for_crossing = 0
    n = fr.n
    if n == 0:
        raise RuntimeError("lgar derivative function called for an empty list of fronts")
    for cur in range(n - 1):
        layer = fr.layer[cur]
        k_cur = fr.k[cur]
        if k_cur < 0:
            raise RuntimeError(f"negative conductivity {k_cur} of front {cur + 1}")
        depth = fr.depth[cur]
        s = m.soil[layer]
        nxt = cur + 1
        theta1 = fr.theta[nxt]
        theta2 = fr.theta[cur]
        bottom_sum = 0.0
        if fr.to_bottom[cur]:
            fr.dzdt[cur] = 0.0
            continue
        elif layer > 1:
            bottom_sum += c_div(fr.depth[cur] - cum[layer - 1], k_cur)
        if theta1 > theta2:
            raise RuntimeError(f"dry-over-wet fronts {cur + 1} and {cur + 2} reached dZ/dt")
        geff = m.geff(layer, theta1, theta2)
        delta_theta = fr.theta[cur] - fr.theta[nxt]
        dzdt = 0.0
        if layer == 1:
            if delta_theta > 0:
                dzdt = 1.0 / delta_theta * (s.ks * (geff + h_p) / fr.depth[cur] + fr.k[cur])
        else:
            denominator = bottom_sum
            for k in range(1, layer):
                theta_prev = m.theta_at(layer - k, fr.psi[cur])
                k_prev = m.k_at(layer - k, theta_prev)
                denominator += c_div(cum[k] - cum[k - 1], k_prev)
            if delta_theta > 0:
                dzdt = (1.0 / delta_theta) * ((c_div(depth, denominator))
                                              + s.ks * (geff + h_p) / depth)
        if dzdt == 0.0 and not fr.to_bottom[cur]:
            dzdt = 1e-9
        if dzdt > 1e4:
            dzdt = 1e4
        if dzdt > 100 * m.largest_ks:
            dzdt = 100 * m.largest_ks
        if dzdt < -100 * m.largest_ks:
            dzdt = -100 * m.largest_ks
        if fr.to_bottom[nxt] and dzdt * dt_h + fr.depth[cur] > \
                FACTOR_LIMITS_LAYER_CROSSING_SPEED * (cum[layer]):
            count_correct_for_crossing += 1
            dzdt = (abs(fr.depth[cur] - FACTOR_LIMITS_LAYER_CROSSING_SPEED * (cum[layer])) / dt_h
                    + count_correct_for_crossing * DEPTH_AVOIDS_SAME_WF_DEPTH)
        if switch_caching and cur != new_front:
            dzdt = dzdt * (cache_count)
        fr.dzdt[cur] = dzdt
