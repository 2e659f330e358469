"""The compiled CFE kernel against the PyTorch reference (and so against the C model):
outputs, final states and gradients, on the C reference runs and on random batches that cross
every threshold the kernel implements."""
from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bmi_dcfe import kernel, physics
from bmi_dcfe.cfe_config import CfeConfig
from conftest import DATA

if not kernel.cpp_available():
    if os.environ.get("DELTA_ALLOW_NO_KERNEL"):
        pytest.skip("compiled CFE kernel not built (DELTA_ALLOW_NO_KERNEL=1)",
                    allow_module_level=True)
    pytest.fail(f"the compiled CFE kernel bmi_dcfe._core is missing ({kernel._IMPORT_ERROR}); "
                f"build it with pip install . (DELTA_ALLOW_NO_KERNEL=1 skips)", pytrace=False)

#: Runs of the C model (tests/data/README.md): copies of ../shared/reference/cfe and further runs.
REFERENCE = DATA / "cfe_c_reference"
EXTRA = DATA / "cfe_c_extra"
RUNS = [(REFERENCE / "cfg_schaake_giuh.txt", REFERENCE / "cfe_c_ref_schaake_giuh_pet0.csv.gz"),
        (REFERENCE / "cfg_schaake_giuh.txt", REFERENCE / "cfe_c_ref_schaake_giuh_pet1.csv.gz"),
        (REFERENCE / "long_runs/cfg_schaake_giuh_camels01022500_wy1997.txt",
         REFERENCE / "long_runs/cfe_c_ref_schaake_giuh_camels01022500_wy1997.csv.gz")] + [
    (d / "cfg.txt", d / "cfe_c_out.csv") for d in sorted(EXTRA.glob("*schaake_giuh*"))]
GRAD_PARAMS = ["bb", "satdk", "satpsi", "slop", "smcmax", "wltsmc", "expon_soil",
               "expon_soil_secondary", "max_gw_storage", "cgw", "expon_gw", "alpha_fc", "refkdt",
               "k_lf", "k_nash", "giuh_ordinates", "depth"]


def _config(path: Path) -> CfeConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CfeConfig.read(path)


@pytest.mark.parametrize("cfg, ref", RUNS, ids=lambda p: p.parent.name + "/" + p.name.split(".")[0])
def test_kernel_reproduces_c_runs(cfg, ref):
    config = _config(cfg)
    data = np.genfromtxt(ref, delimiter=",", names=True)
    rain = torch.tensor(data["precip_input_mm_per_h"]).unsqueeze(1) / 1000.0
    pet = torch.tensor(data["pet_input_m_per_s"]).unsqueeze(1)
    p = config.parameters()
    _, out = kernel.run(config.initial_state(p), p, rain, pet, config.options)
    for name in physics.OUTPUT_NAMES:
        err = np.abs(out[name][:, 0].numpy() - data[name]).max()
        assert err <= 1e-12, f"{name}: {err:.3e}"


def random_batch(n: int, hours: int, seed: int, dtype=torch.float64):
    """Basins that cross the thresholds: soil near saturation and dry, full groundwater stores,
    heavy and no rain, strong and no PET."""
    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=g, dtype=dtype)  # noqa: E731
    lu = lambda lo, hi: torch.exp(u(np.log(lo), np.log(hi)))  # noqa: E731
    giuh = torch.rand(n, 6, generator=g, dtype=dtype)
    p = physics.CfeParameters(
        depth=u(0.5, 3.0), bb=u(2.0, 12.0), satdk=lu(1e-7, 1e-4), satpsi=u(0.05, 0.8),
        slop=u(0.0, 1.0), smcmax=u(0.3, 0.6), wltsmc=u(0.01, 0.15), expon_soil=u(0.6, 3.0),
        expon_soil_secondary=u(0.6, 3.0), max_gw_storage=u(0.005, 0.25), cgw=lu(1e-6, 1e-3),
        expon_gw=u(1.0, 8.0), alpha_fc=u(0.1, 0.9), refkdt=u(0.1, 4.0), k_lf=lu(1e-3, 0.5),
        k_nash=lu(1e-3, 0.9), giuh_ordinates=giuh / giuh.sum(1, keepdim=True),
        xaj_a=u(0, 0), xaj_b=u(1, 1), xaj_x=u(1, 1), urban_fraction=u(0, 0),
        k_nash_surface=u(0, 0), k_infiltration=u(0, 0), retention_depth=u(0, 0))
    s0 = physics.initial_state(p, u(0.2, 1.0), u(0.0, 1.0), n_lateral=2)
    wet = torch.rand(hours, n, generator=g, dtype=dtype) < 0.25
    rain = torch.where(wet, torch.rand(hours, n, generator=g, dtype=dtype) ** 3 * 0.08,
                       torch.zeros(hours, n, dtype=dtype))
    pet = torch.rand(hours, n, generator=g, dtype=dtype) * 4e-7 * (torch.rand(hours, n, generator=g) < 0.7)
    return p, s0, rain, pet


def _loss_and_grads(run, p, s0, rain, pet, options):
    leaves = {n: getattr(p, n).clone().requires_grad_(True) for n in GRAD_PARAMS}
    pp = dataclasses.replace(p, **leaves)
    soil0 = s0.soil.clone().requires_grad_(True)
    gw0 = s0.gw.clone().requires_grad_(True)
    nash0 = s0.nash_lateral.clone().requires_grad_(True)
    r, e = rain.clone().requires_grad_(True), pet.clone().requires_grad_(True)
    s = dataclasses.replace(s0, soil=soil0, gw=gw0, nash_lateral=nash0)
    final, out = run(s, pp, r, e, options)
    w = torch.linspace(0.5, 1.5, rain.shape[0], dtype=rain.dtype).unsqueeze(1)
    loss = ((out["Q_OUT"] * w).sum() + 0.3 * (out["ACTUAL_ET"] * w).sum()
            + 0.1 * out["SOIL_STORAGE"].sum() + 0.2 * out["GW_STORAGE"].sum()
            + final.soil.sum() + final.gw.sum() + final.nash_lateral.sum())
    loss.backward()
    return out, final, [leaves[n].grad for n in GRAD_PARAMS] + [
        soil0.grad, gw0.grad, nash0.grad, r.grad, e.grad]


@pytest.mark.parametrize("mass_conserving", [False, True])
def test_kernel_equals_reference_forward_and_gradients(mass_conserving):
    p, s0, rain, pet = random_batch(24, 240, seed=3)
    options = physics.CfeOptions(mass_conserving=mass_conserving)
    out_t, fin_t, g_t = _loss_and_grads(physics.run, p, s0, rain, pet, options)
    out_k, fin_k, g_k = _loss_and_grads(kernel.run, p, s0, rain, pet, options)
    for name in physics.OUTPUT_NAMES + physics.EXTRA_OUTPUTS:
        torch.testing.assert_close(out_k[name], out_t[name], rtol=1e-10, atol=1e-14, msg=name)
    for f in dataclasses.fields(physics.CfeState):
        a, b = getattr(fin_k, f.name), getattr(fin_t, f.name)
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14, msg=f.name)
    labels = GRAD_PARAMS + ["soil0", "gw0", "nash0", "rain", "pet"]
    for label, a, b in zip(labels, g_k, g_t):
        scale = b.abs().max().item() or 1.0
        assert (a - b).abs().max().item() <= 1e-10 * scale, label
    # the batch reaches the thresholds the kernel branches on
    smax = (p.smcmax * p.depth).unsqueeze(0)
    assert (out_t["GW_OVERFLOW"] > 0).any() and (out_t["SOIL_STORAGE"] > 0.97 * smax).any()
    fc = physics.soil_constants(p).field_capacity
    assert (out_t["SOIL_STORAGE"] < fc).any() and (out_t["SOIL_STORAGE"] > fc).any()
    if not mass_conserving:  # the C quirk of the previous percolation is reached
        _, fixed = physics.run(s0, p, rain, pet, dataclasses.replace(options, mass_conserving=True))
        assert not torch.equal(fixed["INFILTRATION_EXCESS"], out_t["INFILTRATION_EXCESS"])


def test_kernel_float32_close_to_float64():
    p, s0, rain, pet = random_batch(16, 200, seed=5)
    options = physics.CfeOptions(mass_conserving=True)
    _, ref = kernel.run(s0, p, rain, pet, options)
    f = lambda t: t.float()  # noqa: E731
    _, out = kernel.run(s0.map(f), p.map(f), f(rain), f(pet), options)
    q, q32 = ref["Q_OUT"], out["Q_OUT"].double()
    assert out["Q_OUT"].dtype == torch.float32
    assert ((q32 - q).abs().sum(0) / q.abs().sum(0)).max().item() < 1e-5


def test_kernel_gradcheck():
    """float64 gradcheck of the kernel (relative perturbations of parameters and rain)."""
    p, s0, rain, pet = random_batch(3, 30, seed=7)
    rain = rain + 1e-4  # away from the rain = 0 kink (no rain: no partitioning at all)
    options = physics.CfeOptions(mass_conserving=True)

    def f(satdk, cgw, k_lf, smcmax, r):
        pp = dataclasses.replace(p, satdk=p.satdk * (1 + satdk), cgw=p.cgw * (1 + cgw),
                                 k_lf=p.k_lf * (1 + k_lf), smcmax=p.smcmax * (1 + smcmax))
        _, out = kernel.run(s0, pp, rain * (1 + r), pet, options, outputs=("Q_OUT",))
        return out["Q_OUT"].sum(0)

    args = tuple(torch.zeros_like(x, requires_grad=True) for x in (p.satdk, p.cgw, p.k_lf,
                                                                    p.smcmax, rain))
    assert torch.autograd.gradcheck(f, args, eps=1e-7, atol=1e-9, rtol=1e-4)


def test_batch_threads_and_single_basins_agree():
    p, s0, rain, pet = random_batch(40, 100, seed=11)
    options = physics.CfeOptions(mass_conserving=True)
    before = kernel.compiled_threads()
    try:
        kernel.compiled_threads(1)
        _, one = kernel.run(s0, p, rain, pet, options)
        kernel.compiled_threads(2)
        _, two = kernel.run(s0, p, rain, pet, options)
    finally:
        kernel.compiled_threads(before)
    for k in physics.OUTPUT_NAMES:
        assert torch.equal(one[k], two[k]), k
    i = 17
    sub = lambda t: t[i:i + 1]  # noqa: E731
    _, single = kernel.run(s0.map(sub), p.map(sub), rain[:, i:i + 1], pet[:, i:i + 1], options)
    for k in physics.OUTPUT_NAMES:
        assert torch.equal(single[k][:, 0], one[k][:, i]), k


@pytest.mark.parametrize("change, what", [({"soil_scheme": "ode"}, "CFE-ODE"),
                                          ({"partitioning": "xinanjiang"}, "Xinanjiang"),
                                          ({"surface": "nash_cascade"}, "Nash-cascade")])
def test_unsupported_options_are_named(change, what):
    p, s0, rain, pet = random_batch(2, 5, seed=1)
    with pytest.raises(ValueError, match=what):
        kernel.run(s0, p, rain, pet, physics.CfeOptions(**change))


def _dynamic_values(p, hours: int, period: int, seed: int) -> dict[str, torch.Tensor]:
    """Every dynamic-capable parameter varying by row: the static value times 0.3..3."""
    g = torch.Generator().manual_seed(seed)
    rows = physics.dynamic_rows(hours, period)
    out = {}
    for name in physics.DYNAMIC_PARAMETERS:
        base = getattr(p, name)
        out[name] = base * (0.3 + 2.7 * torch.rand(rows, base.shape[0], generator=g,
                                                    dtype=base.dtype))
    out["slop"] = out["slop"].clamp(max=1.0)
    out["k_nash"] = out["k_nash"].clamp(max=0.95)
    return out


@pytest.mark.parametrize("hours, period", [(240, 24), (100, 24), (50, 7), (30, 1)])
def test_kernel_dynamic_parameters_equal_reference(hours, period):
    """Parameters that change every ``period`` hours (a partial last row included): outputs
    and gradients to every row of every dynamic parameter equal the PyTorch reference."""
    p, s0, rain, pet = random_batch(12, hours, seed=13)
    options = physics.CfeOptions(mass_conserving=True)
    dyn = _dynamic_values(p, hours, period, seed=2)

    def loss_and_grads(run):
        leaves = {k: v.clone().requires_grad_(True) for k, v in dyn.items()}
        bb = p.bb.clone().requires_grad_(True)
        _, out = run(s0, dataclasses.replace(p, bb=bb), rain, pet, options, None,
                     dynamic=leaves, period=period)
        w = torch.linspace(0.5, 1.5, hours, dtype=rain.dtype).unsqueeze(1)
        ((out["Q_OUT"] * w).sum() + 0.3 * out["ACTUAL_ET"].sum()
         + 0.1 * out["SOIL_STORAGE"].sum()).backward()
        return out, {**{k: v.grad for k, v in leaves.items()}, "bb": bb.grad}

    out_t, g_t = loss_and_grads(physics.run)
    out_k, g_k = loss_and_grads(lambda *a, **k: kernel.run(*a, backend="cpp", **k))
    for name in physics.OUTPUT_NAMES:
        torch.testing.assert_close(out_k[name], out_t[name], rtol=1e-10, atol=1e-14, msg=name)
    for name, b in g_t.items():
        scale = b.abs().max().item() or 1.0
        assert (g_k[name] - b).abs().max().item() <= 1e-10 * scale, name
    # the rows matter: constant rows equal to the static value give the static run exactly
    const = {k: getattr(p, k).expand_as(v).clone() for k, v in dyn.items()}
    _, static = kernel.run(s0, p, rain, pet, options)
    _, held = kernel.run(s0, p, rain, pet, options, dynamic=const, period=period)
    for name in physics.OUTPUT_NAMES:
        assert torch.equal(static[name], held[name]), name
    assert not torch.equal(static["Q_OUT"], out_k["Q_OUT"])


def test_dynamic_parameters_bad_input_is_named():
    p, s0, rain, pet = random_batch(3, 48, seed=1)
    options = physics.CfeOptions(mass_conserving=True)
    with pytest.raises(ValueError, match="'bb' cannot be dynamic"):
        kernel.run(s0, p, rain, pet, options, dynamic={"bb": p.bb.expand(2, 3)})
    with pytest.raises(ValueError, match=r"expected \(2, 3\)"):
        kernel.run(s0, p, rain, pet, options, dynamic={"satdk": p.satdk.expand(3, 3)})


@pytest.mark.parametrize("shape", [(500, 3, 45), (30, 2, 45), (100, 4, 7), (0, 2, 5)])
def test_compiled_giuh_route_equals_torch_bit_for_bit(shape):
    """Without gradients the GIUH convolution runs compiled: the same additions in the same
    order as the differentiable PyTorch loop, shorter runs than the ordinates included."""
    from bmi_dcfe.kernel import _core, giuh_route, giuh_route_torch

    if _core is None:
        pytest.skip("bmi_dcfe._core not built")
    t, b, n = shape
    g = torch.Generator().manual_seed(t + n)
    excess, queue = torch.rand(t, b, generator=g, dtype=torch.float64), torch.rand(b, n, generator=g, dtype=torch.float64)
    ordinates = torch.rand(b, n, generator=g, dtype=torch.float64)
    with torch.no_grad():
        got, ref = giuh_route(excess, ordinates, queue), giuh_route_torch(excess, ordinates, queue)
    assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
    excess.requires_grad_(True)  # with gradients: the PyTorch loop
    direct, _ = giuh_route(excess, ordinates, queue)
    assert direct.requires_grad
