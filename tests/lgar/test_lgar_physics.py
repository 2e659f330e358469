"""LGAR physics: pieces of the front dynamics, and mass balance / sanity over configurations other
than the reference runs (other soils, 1 and 4 layers, heavy rain, substeps, options)."""
from __future__ import annotations

import numpy as np
import pytest

from bmi_lgar.dynamics import (create_surficial_front, cross_layer_boundary, dry_depth,
                               dzdt_calc, merge_wetting_fronts)
from bmi_lgar.fronts import Fronts
from bmi_lgar.physics import Lgar
from bmi_lgar.runner import run_lgar
from lgar_helpers import step_balance, storm_forcing, synthetic_config

#: Per-step water-balance error allowed, relative to the soil water.
REL_BALANCE = 1e-9


def model(types=(13, 14, 15), thickness=(44.0, 131.0, 25.0), **options) -> Lgar:
    return Lgar(synthetic_config(list(types), list(thickness), **options))


def test_initial_state_one_front_per_layer():
    m = model(initial_psi_cm=500.0)
    st = m.initial_state()
    fr = st.fronts
    assert fr.n == 3 and fr.depth == [44.0, 175.0, 200.0] and fr.layer == [1, 2, 3]
    assert all(fr.to_bottom) and fr.psi == [500.0] * 3
    for i in range(3):
        assert fr.theta[i] == m.theta_at(i + 1, 500.0)
        assert fr.k[i] == m.k_at(i + 1, fr.theta[i])
    thickness = [44.0, 131.0, 25.0]
    assert m.mass(fr) == pytest.approx(sum(t * th for t, th in zip(thickness, fr.theta)),
                                       rel=1e-15)


def test_new_front_takes_all_rain_that_fits():
    m = model()
    fr = m.initial_state().fronts
    theta1 = fr.theta[0]
    depth = dry_depth(m, fr, 300 / 3600)
    assert 0.0 < depth < 44.0
    before = m.mass(fr)
    ponded, volin = create_surficial_front(m, fr, 0.1, depth, theta1)
    assert (ponded, volin) == (0.0, 0.1)
    assert fr.n == 4 and fr.layer[0] == 1 and not fr.to_bottom[0] and fr.depth[0] == depth
    assert fr.theta[0] == pytest.approx(theta1 + 0.1 / depth, rel=1e-15)
    assert fr.psi[0] < fr.psi[1] and fr.k[0] > fr.k[1]
    assert m.mass(fr) - before == pytest.approx(0.1, rel=1e-12)


def test_new_front_saturates_and_leaves_the_rest_ponded():
    m = model()
    fr = m.initial_state().fronts
    theta1, theta_e = fr.theta[0], m.soil[1].theta_e
    depth = 0.5
    ponded, volin = create_surficial_front(m, fr, 2.0, depth, theta1)
    assert fr.theta[0] == theta_e and fr.psi[0] == 0.0 and fr.k[0] == m.soil[1].ks
    assert volin == pytest.approx(depth * (theta_e - theta1), rel=1e-15)
    assert ponded == pytest.approx(2.0 - volin, rel=1e-15)


def test_rain_on_dry_soil_creates_a_front_and_it_moves_down():
    m = model()
    st = m.initial_state()
    flux = m.step(st, 20.0, 0.0)
    fr = st.fronts
    assert fr.n == 4 and fr.layer[0] == 1 and not fr.to_bottom[0]
    assert fr.theta[0] > fr.theta[1] and fr.dzdt[0] > 0
    assert flux.infiltration == pytest.approx(2.0, rel=1e-12)
    depth = fr.depth[0]
    m.step(st, 0.0, 0.0)
    assert st.fronts.depth[0] > depth


def test_merging_conserves_water():
    m = model(types=(13,), thickness=(10.0,))
    fr = Fronts.empty()
    for depth, theta, bottom in ((5.0, 0.40, False), (4.0, 0.30, False), (10.0, 0.20, True)):
        fr.insert(fr.n, depth, theta, 1, bottom)
        fr.psi[-1], fr.k[-1] = m.psi_k_at(1, theta)
    before = m.mass(fr)
    merge_wetting_fronts(m, fr)
    assert fr.n == 2 and fr.theta == [0.40, 0.20]
    assert fr.depth[0] == pytest.approx((5 * 0.1 + 4 * 0.1) / 0.2, rel=1e-14)
    assert m.mass(fr) == pytest.approx(before, rel=1e-14)
    assert fr.psi[0] == m.psi_k_at(1, 0.40)[0]


def test_layer_crossing_conserves_water():
    m = model(types=(13, 14), thickness=(10.0, 30.0))
    fr = Fronts.empty()
    for depth, theta, layer, bottom in ((12.0, 0.35, 1, False), (10.0, 0.15, 1, True),
                                        (40.0, 0.20, 2, True)):
        fr.insert(fr.n, depth, theta, layer, bottom)
        fr.psi[-1], fr.k[-1] = m.psi_k_at(layer, theta)
    fr.psi[1] = fr.psi[2]
    fr.theta[1] = m.theta_at(1, fr.psi[1])
    before = m.mass(fr)
    cross_layer_boundary(m, fr)
    # the front that overshot the bottom of layer 1 now fills layer 1 down to its bottom, and its
    # water below the boundary forms a front in layer 2 at the same head
    assert fr.layer == [1, 2, 2] and fr.to_bottom == [True, False, True]
    assert fr.depth[0] == 10.0 and 10.0 < fr.depth[1] < 40.0
    assert fr.psi[1] == fr.psi[0] and fr.theta[1] == m.theta_at(2, fr.psi[0])
    assert m.mass(fr) == pytest.approx(before, rel=1e-13)


def test_dzdt_signs():
    m = model()
    st = m.initial_state()
    m.step(st, 20.0, 0.0)
    fr = st.fronts
    dzdt_calc(m, fr, 0.0, 1.0)
    assert fr.dzdt[0] > 0
    assert all(fr.dzdt[i] == 0.0 for i in range(1, fr.n - 1) if fr.to_bottom[i])


# ----------------------------------------------------------------------------------------------
# Generality: mass balance and sanity on configurations unlike the reference runs
# ----------------------------------------------------------------------------------------------
SETUPS = {
    "clay_1layer": ([1], [100.0], {}),
    "loam_1layer": ([3], [100.0], {}),
    "sand_1layer": ([5], [100.0], {}),
    "sandy_clay_loam_1layer": ([7], [60.0], {}),       # a name with a space
    "silt_loam_1layer": ([12], [100.0], {}),
    "four_layers": ([5, 3, 1, 12], [20.0, 30.0, 50.0, 100.0], {}),
    "four_layers_B": ([16, 17, 18, 2], [10.0, 40.0, 40.0, 60.0], {}),
    "four_layers_300s": ([5, 3, 1, 12], [20.0, 30.0, 50.0, 100.0], {"timestep_s": 300.0}),
    "numerical_G": ([9, 11], [30.0, 70.0], {"use_closed_form_g": False}),
    "free_drainage": ([3, 8], [40.0, 60.0], {"free_drainage_enabled": True}),
    "reservoirs": ([12, 2], [30.0, 70.0], {
        "a": 0.002, "b": 2.0, "frac_to_cr": 0.2, "a_slow": 0.0002, "b_slow": 1.5,
        "frac_slow": 0.3, "free_drainage_enabled": True, "free_drainage_to_cr": True}),
    "adaptive_caching": ([13, 14, 15], [44.0, 131.0, 25.0], {
        "adaptive_timestep": True, "allow_flux_caching": True, "timestep_s": 900.0}),
    "no_ponding_wet_start": ([4, 6], [25.0, 75.0], {"ponded_depth_max_cm": 0.0,
                                                     "initial_psi_cm": 50.0}),
}


def check_fronts(run, cfg) -> None:
    cum = cfg.cum_layer_thickness_cm
    for step, f in enumerate(run.fronts):
        depth, theta, layer, num, psi = f.T
        layer = layer.astype(int)
        assert list(num) == list(range(1, len(depth) + 1))
        assert depth[-1] == pytest.approx(cum[-1], abs=1e-9), step
        for j in range(len(depth)):
            s = cfg.layer_soils[layer[j] - 1]
            assert cum[layer[j] - 1] < depth[j] <= cum[layer[j]] + 1e-9, (step, j)
            assert s.theta_r <= theta[j] <= s.theta_e, (step, j)
            assert psi[j] >= 0.0, (step, j)
            if j + 1 < len(depth) and layer[j + 1] == layer[j]:
                assert depth[j] <= depth[j + 1] and theta[j] > theta[j + 1], (step, j)
        for lay in range(1, cfg.num_layers + 1):   # every layer ends with a front at its bottom
            assert np.any((layer == lay) & (np.abs(depth - cum[lay]) < 1e-12)), (step, lay)


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_mass_balance_and_sanity(name):
    types, thickness, options = SETUPS[name]
    peak = 120.0 if "four" in name else 60.0
    n = 240
    cfg = synthetic_config(types, thickness, n_steps=n, **options)
    run = run_lgar(cfg, storm_forcing(n, peak, seed=len(name)))
    v = run.variables
    assert v["precipitation"].sum() > 0.1                     # > 10 cm of rain
    error = step_balance(run)
    assert np.all(np.abs(error) <= REL_BALANCE * v["soil_storage"]), np.abs(error).max()
    assert np.all(np.abs(v["mass_balance_closed"]) <= REL_BALANCE * v["soil_storage"])
    for key in ("actual_evapotranspiration", "surface_runoff", "giuh_runoff", "percolation",
                "infiltration", "ponded", "reservoir_storage",
                "conceptual_reservoir_to_stream_discharge"):
        assert v[key].min() >= -1e-15, key                    # LGAR-C leaves ~1e-17 m noise
    assert np.all(v["soil_storage"] > 0)
    assert np.all(v["ponded"] <= cfg.ponded_depth_max_cm * 0.01 + 1e-15)
    aet, pet = v["actual_evapotranspiration"], v["potential_evapotranspiration"]
    assert aet.sum() <= pet.sum()
    if not cfg.allow_flux_caching:    # caching takes the saved-up PET later, in one step
        assert np.all(aet <= pet + 1e-15)
    check_fronts(run, cfg)
    assert abs(run.totals_cm["global_balance"]) <= 1e-9 * v["precipitation"].sum() * 100


def test_heavy_rain_runs_off_and_saturates_the_top():
    cfg = synthetic_config([3], [50.0], n_steps=12, ponded_depth_max_cm=0.5)
    forcing = storm_forcing(12, 0.0)
    forcing.precip_mm_per_h[:6] = 200.0
    run = run_lgar(cfg, forcing)
    v = run.variables
    assert v["surface_runoff"][:6].sum() > 0.5 * v["precipitation"][:6].sum()
    assert run.fronts[5][0, 1] == pytest.approx(cfg.layer_soils[0].theta_e)
    assert np.abs(step_balance(run)).max() <= REL_BALANCE * v["soil_storage"].max()


def test_front_arrays_fixed_capacity():
    from bmi_lgar.fronts import MAX_NUM_WETTING_FRONTS, FrontCapacityError

    m = model()
    st = m.initial_state()
    m.step(st, 20.0, 0.0)
    arrays = st.fronts.as_arrays()
    n = int(arrays["n"])
    assert n == st.fronts.n == 4
    assert arrays["depth"].shape == (MAX_NUM_WETTING_FRONTS,)
    assert list(arrays["depth"][:n]) == st.fronts.depth and np.isnan(arrays["depth"][n:]).all()
    assert list(arrays["layer"][:n]) == [1, 1, 2, 3] and not arrays["to_bottom"][0]
    fr = Fronts.empty()
    for i in range(MAX_NUM_WETTING_FRONTS):
        fr.insert(0, 1.0, 0.3, 1, False)
    with pytest.raises(FrontCapacityError, match="more than 300"):
        fr.insert(0, 1.0, 0.3, 1, False)
