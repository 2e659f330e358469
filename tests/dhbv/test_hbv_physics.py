"""Known-answer tests of each HBV process, water balance over 30 years, and gradcheck."""
import numpy as np
import pytest
import torch

from bmi_dhbv import hbv
from delta_core.data.camels import CamelsDataset
from delta_core.routing import gamma_unit_hydrograph, route

D = torch.float64
BASE = dict(BETA=2.0, FC=100.0, K0=0.5, K1=0.1, K2=0.05, LP=0.8, PERC=2.0, UZL=1.0, TT=0.0,
            CFMAX=2.0, CFR=0.05, CWH=0.1, BETAET=1.0)


def one_step(states, p, t, pet, **over):
    par = {k: torch.tensor([[v]], dtype=D) for k, v in {**BASE, **over}.items()}
    st = tuple(torch.tensor([[s]], dtype=D) for s in states)
    new, fl = hbv.step(st, torch.tensor([[p]], dtype=D), torch.tensor([[t]], dtype=D),
                       torch.tensor([[pet]], dtype=D), par)
    return ([float(s) for s in new], dict(zip(hbv.FLUX_NAMES, (float(f) for f in fl))))


def test_snow_accumulates_below_threshold():
    s, f = one_step([0, 0, 50, 0, 0], p=10, t=-3, pet=0)
    assert f["snow"] == 10 and f["rain"] == 0 and f["melt"] == 0
    assert s[0] == pytest.approx(10.0)


def test_melt_and_release_beyond_holding_capacity():
    # T - TT = 3, CFMAX = 2 -> melt 6; meltwater 6 > CWH * snowpack = 1.4 -> 4.6 to soil
    s, f = one_step([20, 0, 50, 0, 0], p=0, t=3, pet=0)
    assert f["melt"] == pytest.approx(6.0)
    assert s[0] == pytest.approx(14.0)
    assert f["tosoil"] == pytest.approx(4.6)
    assert s[1] == pytest.approx(1.4)


def test_melt_limited_by_snowpack():
    s, f = one_step([1.5, 0, 50, 0, 0], p=0, t=10, pet=0)
    assert f["melt"] == pytest.approx(1.5) and s[0] == pytest.approx(0.0)


def test_refreeze():
    # CFR * CFMAX * (TT - T) = 0.05 * 4 * 2 = 0.4 <= meltwater 1
    s, f = one_step([10, 1, 50, 0, 0], p=0, t=-2, pet=0, CFMAX=4.0)
    assert f["refreeze"] == pytest.approx(0.4)
    assert s[0] == pytest.approx(10.4)
    assert s[1] == pytest.approx(0.6)


def test_soil_recharge_curve():
    # wet = (50/100)^2 = 0.25 -> recharge 2 of 8 mm rain, SM 56 (no PET)
    s, f = one_step([0, 0, 50, 0, 0], p=8, t=5, pet=0, PERC=0.0, K0=0.05, K1=0.01)
    assert f["recharge"] == pytest.approx(2.0)
    assert s[2] == pytest.approx(56.0)


def test_excess_above_field_capacity():
    wet = 0.99 ** 6
    sm = 99 + 100 * (1 - wet)
    s, f = one_step([0, 0, 99, 0, 0], p=100, t=5, pet=0, BETA=6.0)
    assert f["excess"] == pytest.approx(sm - 100.0)
    assert s[2] == pytest.approx(100.0)


def test_et_curve_and_et_at_pet():
    # ef = (40 / (0.8*100))^2 = 0.25 -> ET = 1 of PET 4
    _, f = one_step([0, 0, 40, 0, 0], p=0, t=5, pet=4, BETAET=2.0)
    assert f["et"] == pytest.approx(1.0)
    _, f = one_step([0, 0, 90, 0, 0], p=0, t=5, pet=4, BETAET=2.0)
    assert f["et"] == pytest.approx(4.0)


def test_et_never_dries_soil_below_floor():
    s, f = one_step([0, 0, 0.5, 0, 0], p=0, t=5, pet=50, LP=0.2, FC=50.0)
    assert s[2] == pytest.approx(hbv.SM_FLOOR_MM)
    assert f["et"] == pytest.approx(0.5 - hbv.SM_FLOOR_MM)


def test_percolation_and_outflows():
    # SUZ 5 -> perc 2 -> 3; Q0 = 0.5*(3-1) = 1 -> 2; Q1 = 0.1*2 = 0.2 -> 1.8
    # SLZ 10 + 2 = 12; Q2 = 0.05 * 12 = 0.6 -> 11.4
    s, f = one_step([0, 0, 50, 5, 10], p=0, t=5, pet=0)
    assert f["perc"] == pytest.approx(2.0)
    assert f["q0"] == pytest.approx(1.0)
    assert f["q1"] == pytest.approx(0.2)
    assert f["q2"] == pytest.approx(0.6)
    assert s[3] == pytest.approx(1.8) and s[4] == pytest.approx(11.4)


def test_no_fast_flow_below_uzl():
    _, f = one_step([0, 0, 50, 5, 10], p=0, t=5, pet=0, UZL=50.0)
    assert f["q0"] == 0.0


def random_params(n_basins, n_comp, n_days=None, seed=0, dtype=D):
    g = torch.Generator().manual_seed(seed)
    par = {}
    for name, (lo, hi, _) in hbv.PARAMETER_RANGES.items():
        shape = (n_days, n_basins, n_comp) if (n_days and name in hbv.DYNAMIC_CAPABLE) else (n_basins, n_comp)
        par[name] = lo + torch.rand(*shape, generator=g, dtype=dtype) * (hi - lo)
    return par


@pytest.fixture(scope="module")
def sample_forcing():
    ts = CamelsDataset().load(CamelsDataset().basin_ids())
    return (torch.tensor(ts.prcp), torch.tensor(ts.tmean), torch.tensor(ts.pet))


@pytest.mark.slow
def test_water_balance_closes_over_30_years(sample_forcing):
    p, t, pet = (x[: 365 * 30] for x in sample_forcing)
    par = random_params(p.shape[1], 16, n_days=p.shape[0])
    s0 = hbv.cold_states(p.shape[1], 16, D)
    r = hbv.run(p, t, pet, par, s0, keep_storages=False)
    q = r.fluxes["q0"] + r.fluxes["q1"] + r.fluxes["q2"]
    resid = p.sum(0) - q.sum(0) - r.fluxes["et"].sum(0) - (
        hbv.total_storage(r.final_states) - hbv.total_storage(s0))
    assert torch.all(resid.abs() <= 1e-9 * p.sum(0)), resid


def test_routing_conserves_volume():
    g = torch.Generator().manual_seed(1)
    q = torch.rand(200, 3, generator=g, dtype=D)
    uh = gamma_unit_hydrograph(torch.tensor([0.5, 1.5, 2.8], dtype=D),
                               torch.tensor([0.1, 3.0, 6.4], dtype=D), 15)
    assert torch.allclose(uh.sum(-1), torch.ones(3, dtype=D))
    routed = route(q, uh)
    # what has not left yet is still in the kernel: sum_k>j uh[k] * q[T-1-j]
    n = uh.shape[1]
    in_kernel = sum((uh[:, j + 1:].sum(-1) * q[-1 - j]) for j in range(n - 1))
    assert torch.allclose(routed.sum(0) + in_kernel, q.sum(0), rtol=1e-12)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    n_days, nb, nc = 12, 2, 2
    p = torch.rand(n_days, nb, generator=g, dtype=D) * 10
    t = torch.rand(n_days, nb, generator=g, dtype=D) * 10 - 2
    pet = torch.rand(n_days, nb, generator=g, dtype=D) * 3
    par = random_params(nb, nc, n_days, seed=4)
    names = sorted(par)
    s0 = torch.full((5, nb, nc), 5.0, dtype=D)

    def f(*args):
        pp = dict(zip(names, args[:-1]))
        r = hbv.run(p, t, pet, pp, args[-1], keep_storages=True)
        return (r.fluxes["q0"] + r.fluxes["q1"] + r.fluxes["q2"], r.fluxes["et"],
                r.storages["soil_moisture"])

    inputs = tuple(par[n].clone().requires_grad_() for n in names) + (s0.clone().requires_grad_(),)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-7, atol=1e-6, rtol=1e-5)


def test_float32_runs_and_matches_float64(sample_forcing):
    p, t, pet = (x[:365] for x in sample_forcing)
    par = random_params(p.shape[1], 4)
    r64 = hbv.run(p, t, pet, par, hbv.cold_states(p.shape[1], 4, D))
    r32 = hbv.run(p.float(), t.float(), pet.float(), {k: v.float() for k, v in par.items()},
                  hbv.cold_states(p.shape[1], 4, torch.float32))
    q64 = r64.fluxes["q2"].numpy()
    assert r32.fluxes["q2"].dtype == torch.float32
    np.testing.assert_allclose(r32.fluxes["q2"].numpy(), q64, rtol=1e-3, atol=1e-4)


def test_options_validate():
    with pytest.raises(ValueError, match="cannot be dynamic"):
        hbv.HBVOptions(dynamic=("FC",))
    with pytest.raises(ValueError, match="missing HBV parameters"):
        hbv.run(torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 1), {"FC": torch.ones(1, 1)},
                hbv.cold_states(1, 1))
