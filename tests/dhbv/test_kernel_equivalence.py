"""The compiled HBV kernel (backend "cpp") against the PyTorch reference (backend "torch").

Outputs and gradients on real forcing (the shipped 5-basin CAMELS sample, 10+ years) with random
parameters chosen so that the kinks of the model are exercised: the rain/snow threshold toggles
(TT near the temperatures), snowpacks melt out completely (melt == snowpack), field capacity is
hit (small FC), the UZL threshold toggles (small and large UZL), with daily-dynamic BETA/BETAET.
Relative error of a tensor: max|a - b| / max|b|.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from bmi_dhbv import hbv, kernel

if not kernel.cpp_available():  # a missing build fails here, unless explicitly allowed
    if os.environ.get("DELTA_ALLOW_NO_KERNEL") == "1":
        pytest.skip("compiled kernel not built (DELTA_ALLOW_NO_KERNEL=1)", allow_module_level=True)
    pytest.fail(f"the compiled kernel bmi_dhbv._core is missing ({kernel._IMPORT_ERROR}); "
                f"pip install . builds it (set DELTA_ALLOW_NO_KERNEL=1 to skip these tests)",
                pytrace=False)

N_YEARS_DAYS = 3653  # 10 years

#: Instruction sets of the batched kernel this CPU can run (the SSE2 baseline always).
_DEFAULT_ISA = kernel.instruction_set()
ISAS = ["sse2"] + (["avx2"] if kernel._core.set_isa("avx2") else [])
kernel.instruction_set(_DEFAULT_ISA)


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs a test once per instruction set, restoring the default after it."""
    old = kernel.instruction_set()
    kernel.instruction_set(request.param)
    yield request.param
    kernel.instruction_set(old)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    scale = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale > 0 else diff


@pytest.fixture(scope="module")
def forcing():
    from delta_core.data.camels import CamelsDataset

    ds = CamelsDataset()
    ts = ds.load(ds.basin_ids())
    n = N_YEARS_DAYS
    return (torch.from_numpy(ts.prcp[:n].copy()), torch.from_numpy(ts.tmean[:n].copy()),
            torch.from_numpy(ts.pet[:n].copy()))


def make_params(n_days, n_basins, n_comps, dtype, seed=0, dynamic=("BETA", "BETAET")):
    """Random physical parameters with kink-provoking choices (see module docstring)."""
    g = torch.Generator().manual_seed(seed)
    u = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    par = {}
    for name, (lo, hi, _) in hbv.PARAMETER_RANGES.items():
        shape = (n_days, n_basins, n_comps) if name in dynamic else (n_basins, n_comps)
        par[name] = lo + u(*shape) * (hi - lo)
    # FC small in half of the components: soil reaches field capacity (excess > 0).
    par["FC"][..., ::2] = 50.0 + 60.0 * u(*par["FC"][..., ::2].shape)
    # UZL small in some components, large in others: q0 threshold toggles.
    par["UZL"][..., 1::2] = 2.0 * u(*par["UZL"][..., 1::2].shape)
    # TT around 0 degC with a spread: rain/snow and melt/refreeze switch often.
    par["TT"] = -1.0 + 2.0 * u(*par["TT"].shape)
    par["PERC"] = 0.5 + 4.0 * u(*par["PERC"].shape)
    return {k: v.to(dtype) for k, v in par.items()}


def make_states0(n_basins, n_comps, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(5, n_basins, n_comps, generator=g, dtype=torch.float64)
    s = s * torch.tensor([5.0, 0.5, 40.0, 10.0, 50.0], dtype=torch.float64)[:, None, None]
    return s.to(dtype)


def run_both(forcing, dtype, n_comps, n_days=N_YEARS_DAYS, grads=True, dynamic=("BETA", "BETAET"),
             seed=0):
    p, t, pet = (x[:n_days].to(dtype) for x in forcing)
    n_basins = p.shape[1]
    out = {}
    for backend in kernel.BACKENDS:
        par = {k: v.clone().requires_grad_(grads)
               for k, v in make_params(n_days, n_basins, n_comps, dtype, seed, dynamic).items()}
        s0 = make_states0(n_basins, n_comps, dtype).requires_grad_(grads)
        res = kernel.run(p, t, pet, par, s0, backend=backend)
        gr = None
        if grads:
            # Random upstream weights on every output: all adjoint paths are tested.
            g = torch.Generator().manual_seed(123)
            loss = 0.0
            for name in hbv.FLUX_NAMES:
                loss = loss + (res.fluxes[name] * torch.rand(res.fluxes[name].shape, generator=g,
                                                             dtype=torch.float64).to(dtype)).sum()
            for name in hbv.STATE_NAMES:
                loss = loss + 0.01 * (res.storages[name] * torch.rand(
                    res.storages[name].shape, generator=g, dtype=torch.float64).to(dtype)).sum()
            loss = loss + (res.final_states * torch.rand(
                res.final_states.shape, generator=g, dtype=torch.float64).to(dtype)).sum()
            loss.backward()
            gr = {k: v.grad for k, v in par.items()}
            gr["states0"] = s0.grad
        out[backend] = (res, gr)
    return out


def kink_counts(forcing, n_comps=4):
    """How often each kink is hit in the float64 reference run (sanity of the test design)."""
    p, t, pet = forcing
    par = make_params(p.shape[0], p.shape[1], n_comps, torch.float64)
    st = tuple(make_states0(p.shape[1], n_comps, torch.float64).unbind(0))
    counts = dict(melt_eq_snowpack=0, excess=0, no_excess=0, q0=0, no_q0=0, rain=0, snow=0)
    for d in range(p.shape[0]):
        pd = {k: (v[d] if v.dim() == 3 else v) for k, v in par.items()}
        sp_before = st[0] + p[d, :, None] * (t[d, :, None] < pd["TT"])
        st, fl = hbv.step(st, p[d, :, None], t[d, :, None], pet[d, :, None], pd)
        f = dict(zip(hbv.FLUX_NAMES, fl))
        counts["melt_eq_snowpack"] += int(((f["melt"] == sp_before) & (sp_before > 0)).sum())
        counts["excess"] += int((f["excess"] > 0).sum())
        counts["no_excess"] += int((f["excess"] == 0).sum())
        counts["q0"] += int((f["q0"] > 0).sum())
        counts["no_q0"] += int((f["q0"] == 0).sum())
        counts["rain"] += int(((f["rain"] > 0)).sum())
        counts["snow"] += int(((f["snow"] > 0)).sum())
    return counts


def test_kinks_are_exercised(forcing):
    c = kink_counts(tuple(x[:2000] for x in forcing))
    assert all(v > 50 for v in c.values()), c


@pytest.mark.slow
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_outputs_and_gradients_match(forcing, dtype, tol, isa):
    out = run_both(forcing, dtype, n_comps=4)
    (rt, gt), (rc, gc) = out["torch"], out["cpp"]
    errs = {}
    for name in hbv.FLUX_NAMES:
        assert rc.fluxes[name].dtype == dtype and rc.fluxes[name].shape == rt.fluxes[name].shape
        errs["flux " + name] = rel_err(rc.fluxes[name], rt.fluxes[name])
    for name in hbv.STATE_NAMES:
        errs["storage " + name] = rel_err(rc.storages[name], rt.storages[name])
    errs["final_states"] = rel_err(rc.final_states, rt.final_states)
    for name in gt:
        assert gc[name] is not None and gc[name].shape == gt[name].shape, name
        errs["grad " + name] = rel_err(gc[name], gt[name])
    worst = max(errs, key=errs.get)
    assert errs[worst] <= tol, f"{worst}: {errs[worst]:.3g} > {tol} (all: {errs})"


# One-day cases that sit exactly on a kink (name: forcing p, t, pet; states0; parameter overrides).
_BASE = {"BETA": 2.0, "FC": 200.0, "K0": 0.3, "K1": 0.1, "K2": 0.05, "LP": 0.6, "PERC": 2.0,
         "UZL": 10.0, "TT": 0.0, "CFMAX": 3.0, "CFR": 0.05, "CWH": 0.1, "BETAET": 1.5}
_KINK_CASES = {
    # cold, no snowpack: melt = min(clamp(<0) = 0, snowpack 0) tie
    "melt_tie_zero": ((0.0, -1.0, 1.0), (0.0, 0.5, 50.0, 20.0, 30.0), {}),
    # t == TT: CFMAX (t - TT) = 0 and CFR CFMAX (TT - t) = 0 at the clamp boundary
    "t_equals_tt": ((0.0, 0.5, 1.0), (5.0, 0.5, 50.0, 20.0, 30.0), {"TT": 0.5}),
    # potential melt equals the snowpack
    "melt_tie": ((0.0, 2.0, 1.0), (6.0, 0.5, 50.0, 20.0, 30.0), {}),
    # refreeze potential equals the meltwater
    "refreeze_tie": ((0.0, -2.0, 1.0), (4.0, (0.05 * 3.0) * 2.0, 50.0, 20.0, 30.0), {}),
    # warm and snow-free: melt and refreeze ties at 0, release at its clamp boundary
    "snow_free": ((3.0, 5.0, 1.0), (0.0, 0.0, 50.0, 20.0, 30.0), {}),
    # SM = FC: (SM/FC)^BETA = 1 at the clamp boundary, then SM - FC = 0 exactly
    "field_capacity": ((5.0, 5.0, 1.0), (0.0, 0.0, 200.0, 20.0, 30.0), {}),
    # ET demand equals the available soil water
    "et_tie": ((0.0, 5.0, 10.0 - 1e-5), (0.0, 0.0, 10.0, 20.0, 30.0), {"LP": 0.01}),
    # SM / (LP FC) = 1: ET efficiency at the clamp boundary
    "et_efficiency_one": ((0.0, 5.0, 1.0), (0.0, 0.0, 100.0, 20.0, 30.0), {"LP": 0.5}),
    # soil moisture at the floor: SM - 1e-5 = 0
    "sm_floor": ((0.0, 5.0, 1.0), (0.0, 0.0, 1e-5, 20.0, 30.0), {}),
    # upper zone equals PERC
    "perc_tie": ((0.0, 5.0, 1.0), (0.0, 0.0, 50.0, 2.0, 30.0), {}),
    # upper zone equals UZL (PERC = 0)
    "uzl_boundary": ((0.0, 5.0, 1.0), (0.0, 0.0, 50.0, 10.0, 30.0), {"PERC": 0.0}),
}


def test_gradients_at_constructed_kinks(isa):
    """Each case sits exactly on a kink; both backends must take the same subgradient."""
    cases = list(_KINK_CASES.values())
    n = len(cases)
    dt = torch.float64
    forc = torch.tensor([c[0] for c in cases], dtype=dt)  # [B, 3]
    p, t, pet = (forc[:, i][None, :] for i in range(3))
    grads = {}
    for backend in kernel.BACKENDS:
        par = {k: torch.tensor([[c[2].get(k, v)] for c in cases], dtype=dt).requires_grad_()
               for k, v in _BASE.items()}
        s0 = torch.tensor([c[1] for c in cases], dtype=dt).T[:, :, None].contiguous()
        s0.requires_grad_()
        res = kernel.run(p, t, pet, par, s0, backend=backend)
        g = torch.Generator().manual_seed(7)
        loss = sum((res.fluxes[k] * torch.rand(1, n, generator=g, dtype=dt)).sum()
                   for k in hbv.FLUX_NAMES)
        loss = loss + (res.final_states * torch.rand(5, n, 1, generator=g, dtype=dt)).sum()
        loss.backward()
        grads[backend] = {**{k: v.grad for k, v in par.items()}, "states0": s0.grad}
    names = list(_KINK_CASES)
    for k, gt in grads["torch"].items():
        gc = grads["cpp"][k]
        bad = [names[b] for b in range(n) if not torch.allclose(gc[..., b, :], gt[..., b, :],
                                                                rtol=1e-12, atol=1e-14)]
        assert not bad, f"gradient of {k} differs at kinks {bad}"


def test_static_only_and_all_dynamic(forcing, isa):
    """No dynamic parameter, and every parameter dynamic, over 2 years."""
    for dyn in ((), hbv.PARAMETER_NAMES):
        out = run_both(forcing, torch.float64, n_comps=3, n_days=730, dynamic=dyn, seed=5)
        (rt, gt), (rc, gc) = out["torch"], out["cpp"]
        for name in hbv.FLUX_NAMES:
            assert rel_err(rc.fluxes[name], rt.fluxes[name]) <= 1e-10, (dyn, name)
        for name in gt:
            assert rel_err(gc[name], gt[name]) <= 1e-10, (dyn, name)


def test_forward_16_components_no_grad(forcing, isa):
    out = run_both(forcing, torch.float64, n_comps=16, grads=False, n_days=3653)
    (rt, _), (rc, _) = out["torch"], out["cpp"]
    for name in hbv.FLUX_NAMES:
        assert rel_err(rc.fluxes[name], rt.fluxes[name]) <= 1e-10, name
    assert rel_err(rc.final_states, rt.final_states) <= 1e-10


def test_threads_give_identical_results(forcing, isa):
    p, t, pet = (x[:400] for x in forcing)
    par = make_params(400, 5, 8, torch.float64)
    s0 = make_states0(5, 8, torch.float64)
    old = kernel.compiled_threads()
    try:
        res = []
        for n in (1, 2, 3):
            kernel.compiled_threads(n)
            # Use the extension directly so the size heuristic cannot force one thread.
            from bmi_dhbv import _core
            arrs = [v.numpy() for v in par.values()]
            fl, st, fin, saved = _core.forward_f64(p.numpy(), t.numpy(), pet.numpy(), arrs,
                                                   s0.numpy(), True, True, n)
            gp, gs0 = _core.backward_f64(p.numpy(), t.numpy(), pet.numpy(), arrs, saved,
                                         np.ones_like(fl), None, np.ones_like(fin), n)
            res.append((fl, fin, gp, gs0))
        for r in res[1:]:
            np.testing.assert_array_equal(r[0], res[0][0])
            np.testing.assert_array_equal(r[1], res[0][1])
            for a, b in zip(r[2], res[0][2]):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(r[3], res[0][3])
    finally:
        kernel.compiled_threads(old)


def test_gradcheck_tiny():
    """float64 gradcheck of the autograd Function away from kinks (mild, snow-free days)."""
    torch.manual_seed(0)
    n_days, n_basins, n_comps = 4, 2, 2
    p = torch.tensor([[3.0, 0.5], [0.0, 6.0], [8.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[5.0, 6.0], [7.0, 4.0], [3.5, 8.0], [6.0, 5.0]], dtype=torch.float64)
    pet = torch.tensor([[1.0, 2.0], [1.5, 0.5], [2.0, 1.0], [0.7, 1.2]], dtype=torch.float64)
    base = {"BETA": 2.0, "FC": 200.0, "K0": 0.3, "K1": 0.1, "K2": 0.05, "LP": 0.6, "PERC": 4.0,
            "UZL": 5.0, "TT": 0.0, "CFMAX": 3.0, "CFR": 0.05, "CWH": 0.1, "BETAET": 1.5}
    params = []
    for name in hbv.PARAMETER_NAMES:
        shape = (n_days, n_basins, n_comps) if name in ("BETA", "BETAET") else (n_basins, n_comps)
        v = base[name] * (1.0 + 0.2 * torch.rand(*shape, dtype=torch.float64))
        params.append(v.requires_grad_())
    # Snowpack large enough not to melt out; meltwater above the refreeze demand; upper zone
    # above UZL + PERC so no threshold is at its kink.
    s0 = torch.tensor([50.0, 2.0, 80.0, 30.0, 20.0], dtype=torch.float64)[:, None, None]
    s0 = (s0 * (1.0 + 0.1 * torch.rand(5, n_basins, n_comps, dtype=torch.float64))).requires_grad_()

    def f(s0, *params):
        return kernel.HBVFunction.apply(p, t, pet, s0, 1, *params)

    assert torch.autograd.gradcheck(f, (s0, *params), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_step_numpy_equals_batched_day(forcing, dtype):
    n_comps = 5
    p, t, pet = (x[:40].to(dtype) for x in forcing)
    par = make_params(40, 5, n_comps, dtype, dynamic=())
    s0 = make_states0(5, n_comps, dtype)
    res = kernel.run(p, t, pet, par, s0, backend="cpp")
    npdt = np.float64 if dtype == torch.float64 else np.float32
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for b in range(5):
        states = s0[:, b].numpy().astype(npdt).copy()
        pars = np.ascontiguousarray(
            np.stack([par[n][b].numpy() for n in hbv.PARAMETER_NAMES]).astype(npdt))
        out = np.empty(12, dtype=npdt)
        for d in range(40):
            fl = kernel.step_numpy(states, float(p[d, b]), float(t[d, b]), float(pet[d, b]),
                                   pars, out=out)
            assert fl is out
            ref = np.array([res.fluxes[n][d, b].item() for n in hbv.FLUX_NAMES])
            np.testing.assert_allclose(fl, ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(states, res.final_states[:, b].numpy(), rtol=tol, atol=tol)
    # Also one day against the torch reference.
    states = s0[:, 0].numpy().astype(npdt).copy()
    pars = np.ascontiguousarray(np.stack([par[n][0].numpy() for n in hbv.PARAMETER_NAMES]))
    fl = kernel.step_numpy(states, float(p[0, 0]), float(t[0, 0]), float(pet[0, 0]), pars)
    ref = hbv.run(p[:1, :1], t[:1, :1], pet[:1, :1], {k: v[:1] for k, v in par.items()},
                  s0[:, :1])
    np.testing.assert_allclose(fl, [ref.fluxes[n][0, 0].item() for n in hbv.FLUX_NAMES],
                               rtol=tol, atol=tol)


def test_api_errors_and_dtypes(forcing):
    p, t, pet = (x[:10] for x in forcing)
    par = make_params(10, 5, 2, torch.float64)
    s0 = make_states0(5, 2, torch.float64)
    with pytest.raises(ValueError, match="torch"):
        kernel.run(p, t, pet, par, s0, backend="fortran")
    with pytest.raises(ValueError, match="recharge_net"):
        kernel.run(p, t, pet, par, s0, recharge_net=lambda x: x[..., 0], backend="cpp")
    with pytest.raises(ValueError, match="missing"):
        kernel.run(p, t, pet, {k: v for k, v in par.items() if k != "FC"}, s0, backend="cpp")
    r = kernel.run(p, t, pet, par, s0, keep_storages=False, backend="cpp")
    assert r.storages == {} and set(r.fluxes) == set(hbv.FLUX_NAMES)
    r32 = kernel.run(p.float(), t.float(), pet.float(), {k: v.float() for k, v in par.items()},
                     s0.float(), backend="cpp")
    assert r32.final_states.dtype == torch.float32
    # float64 forcing + float32 parameters: promoted as torch would (float64 result)
    rmix = kernel.run(p, t, pet, {k: v.float() for k, v in par.items()}, s0.float(), backend="cpp")
    assert rmix.final_states.dtype == torch.float64
    with pytest.raises(TypeError):
        kernel.step_numpy(np.zeros((5, 2), dtype=np.int64), 1.0, 1.0, 1.0, np.zeros((13, 2)))
    with pytest.raises(ValueError):
        kernel.step_numpy(np.zeros((4, 2)), 1.0, 1.0, 1.0, np.zeros((13, 2)))
    assert kernel.compiled_threads() >= 1
    with pytest.raises(ValueError, match="instruction set"):
        kernel.instruction_set("neon")
    assert kernel.instruction_set() in ISAS


def test_no_grad_path_takes_views_and_broadcast_parameters(forcing):
    """The no-gradient path runs on the tensors' buffers: non-contiguous forcing and states and
    broadcast parameters must give exactly the results of contiguous, full-shape inputs."""
    p, t, pet = (x[:30] for x in forcing)
    par = make_params(30, 5, 3, torch.float64, dynamic=("BETA",))
    s0 = make_states0(5, 3, torch.float64)
    ref = kernel.run(p, t, pet, par, s0)
    views = [x.T.contiguous().T for x in (p, t, pet)]  # same values, column-major
    assert not views[0].is_contiguous()
    par_b = dict(par, FC=par["FC"][:1].clone())  # [1, C]: broadcast over the basins
    ref_b = kernel.run(p, t, pet, dict(par, FC=par["FC"][:1].expand(5, 3).contiguous()), s0)
    got = kernel.run(*views, par, s0.transpose(1, 2).contiguous().transpose(1, 2))
    got_b = kernel.run(p, t, pet, par_b, s0)
    for a, b in ((got, ref), (got_b, ref_b)):
        for name in hbv.FLUX_NAMES:
            torch.testing.assert_close(a.fluxes[name], b.fluxes[name], rtol=0, atol=0)
        torch.testing.assert_close(a.final_states, b.final_states, rtol=0, atol=0)


def test_kernel_names_equal_the_python_spec():
    from bmi_dhbv import _core, hbv

    assert _core.PARAMETER_NAMES == hbv.PARAMETER_NAMES
    assert _core.STATE_NAMES == hbv.STATE_NAMES and _core.FLUX_NAMES == hbv.FLUX_NAMES
    kernel.check_names(_core)


def test_a_permuted_build_is_refused():
    import types

    from bmi_dhbv import hbv

    fake = types.SimpleNamespace(PARAMETER_NAMES=hbv.PARAMETER_NAMES[::-1],
                                 STATE_NAMES=hbv.STATE_NAMES, FLUX_NAMES=hbv.FLUX_NAMES)
    with pytest.raises(kernel.KernelMismatchError, match="PARAMETER_NAMES.*rebuild"):
        kernel.check_names(fake)
    with pytest.raises(kernel.KernelMismatchError, match="FLUX_NAMES"):
        kernel.check_names(types.SimpleNamespace(PARAMETER_NAMES=hbv.PARAMETER_NAMES,
                                                 STATE_NAMES=hbv.STATE_NAMES))
