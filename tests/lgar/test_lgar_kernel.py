"""The compiled LGAR kernel (bmi_lgar._core via bmi_lgar.kernel) against the Python port.

* values: bit for bit equal to :func:`bmi_lgar.runner.run_lgar` (every output of every step, the
  number of fronts and the depth, theta and psi of every front after every step) on LGAR-C's
  reference runs and on the generality configurations of test_lgar_physics.py, run together as
  one batch of different columns, with 1 and 2 threads;
* a run split in two with the state (and its tangents) passed on equals the run in one piece;
* sensitivities: the Dual run has the same values, and its Jacobian matches float64 central
  finite differences for every parameter kind on runs whose events (front counts) do not change
  under the perturbation; torch gradcheck through :class:`bmi_lgar.kernel.LgarFunction`;
* bad inputs raise errors naming the problem.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bmi_lgar import kernel
from bmi_lgar.forcing import Forcing, read_forcing
from bmi_lgar.lgar_config import read_lgar_config
from bmi_lgar.physics import Lgar
from bmi_lgar.reference import CASES, base_dir, reference_workdir
from bmi_lgar.runner import run_lgar
from lgar_helpers import storm_forcing, synthetic_config
from test_lgar_physics import SETUPS

if not kernel.cpp_available():
    if os.environ.get("DELTA_ALLOW_NO_KERNEL"):
        pytest.skip("compiled LGAR kernel not built (DELTA_ALLOW_NO_KERNEL=1)",
                    allow_module_level=True)
    pytest.fail(f"the compiled LGAR kernel bmi_lgar._core is missing ({kernel._IMPORT_ERROR}); "
                f"build it with pip install . (DELTA_ALLOW_NO_KERNEL=1 skips)", pytrace=False)

#: Reference runs whose Python port takes > 3 s.
SLOW_CASES = {"Phillipsburg_fixed300_nocache", "Phillipsburg_fixed3600_nocache",
              "Phillipsburg_CR_fixed3600_nocache", "Phillipsburg_2layer_fixed3600_nocache"}
#: Fronts recorded per step for the comparison.
K = 64


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, lgar_reference) -> Path:
    return reference_workdir(tmp_path_factory.mktemp("lgar_kernel_reference"), lgar_reference)


def assert_same_as_port(run, kr, basin: int = 0) -> None:
    """Every output of every step and every front after every step identical."""
    for name in kernel.OUTPUT_NAMES:
        np.testing.assert_array_equal(kr.outputs[name][:, basin], run.variables[name], name)
    counts = np.array([len(f) for f in run.fronts])
    np.testing.assert_array_equal(kr.n_fronts[:, basin], counts)
    for step, f in enumerate(run.fronts):
        k = min(len(f), K)
        got = kr.fronts[step, basin, :k]
        np.testing.assert_array_equal(got[:, 0], f[:k, 0], f"depth, step {step}")
        np.testing.assert_array_equal(got[:, 1], f[:k, 1], f"theta, step {step}")
        np.testing.assert_array_equal(got[:, 2], f[:k, 2], f"layer, step {step}")
        np.testing.assert_array_equal(got[:, 3], f[:k, 4], f"psi, step {step}")


def reference_case(name: str, workdir: Path, ref: Path, n_steps: int | None = None):
    case = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = read_lgar_config(case.path(case.config, ref), base_dir(case, workdir))
    forcing = read_forcing(cfg.forcing_file)
    n = cfg.num_forcing_steps if n_steps is None else n_steps
    return cfg, forcing, n


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CASES
                                  else n for n in sorted(CASES)])
def test_reference_runs_bit_for_bit(name, workdir, lgar_reference):
    """The kernel equals the port on every reference run; the long ones (SLOW_CASES) over their
    first 2000 forcing steps here (the port itself is checked against LGAR-C over the whole run
    in test_lgar_reference.py; full-length kernel equality was measured once, bmi_lgar/LGAR.md)."""
    cfg, forcing, n = reference_case(name, workdir, lgar_reference,
                                     2000 if name in SLOW_CASES else None)
    run = run_lgar(cfg, forcing, n_steps=n)
    kr = kernel.run_kernel([cfg], forcing.precip_mm_per_h[:n], forcing.pet_mm_per_h[:n],
                           record_fronts=K)
    assert_same_as_port(run, kr)


@pytest.mark.parametrize("name", ["Phillipsburg_CR_fixed3600_nocache",
                                  "Phillipsburg_2layer_fixed3600_nocache"])
def test_reference_runs_first_year_bit_for_bit(name, workdir, lgar_reference):
    cfg, forcing, _ = reference_case(name, workdir, lgar_reference)
    n = 1500
    run = run_lgar(cfg, forcing, n_steps=n)
    kr = kernel.run_kernel([cfg], forcing.precip_mm_per_h[:n], forcing.pet_mm_per_h[:n],
                           record_fronts=K)
    assert_same_as_port(run, kr)


# ----------------------------------------------------------------------------------------------
# Several different columns in one batch
# ----------------------------------------------------------------------------------------------
N_GEN = 240


def generality_batch():
    """The configurations of test_lgar_physics.py with their storms (one basin each)."""
    configs, forcings = [], []
    for name in sorted(SETUPS):
        types, thickness, options = SETUPS[name]
        peak = 120.0 if "four" in name else 60.0
        opts = dict(options)
        timestep = opts.pop("timestep_s", 3600.0)
        configs.append(synthetic_config(types, thickness, timestep_s=timestep, n_steps=N_GEN,
                                        **opts))
        forcings.append(storm_forcing(N_GEN, peak, seed=len(name)))
    precip = np.stack([f.precip_mm_per_h for f in forcings], axis=1)
    pet = np.stack([f.pet_mm_per_h for f in forcings], axis=1)
    return configs, forcings, precip, pet


@pytest.fixture(scope="module")
def generality():
    configs, forcings, precip, pet = generality_batch()
    runs = [run_lgar(c, f) for c, f in zip(configs, forcings)]
    return configs, precip, pet, runs


def test_generality_batch_bit_for_bit(generality):
    configs, precip, pet, runs = generality
    kr = kernel.run_kernel(configs, precip, pet, record_fronts=K)
    for b, run in enumerate(runs):
        assert_same_as_port(run, kr, b)


def test_two_threads_equal_one(generality):
    configs, precip, pet, _ = generality
    one = kernel.run_kernel(configs, precip, pet, n_threads=1)
    two = kernel.run_kernel(configs, precip, pet, n_threads=2)
    for name in kernel.OUTPUT_NAMES:
        np.testing.assert_array_equal(one.outputs[name], two.outputs[name], name)
    np.testing.assert_array_equal(one.state, two.state)


def test_parameters_reach_the_port_layout():
    """Parameters other than the config's: kernel == port run with the same parameters."""
    cfg = synthetic_config([3, 12], [40.0, 60.0], n_steps=96, a=0.002, b=2.0, frac_to_cr=0.2,
                           a_slow=0.0002, b_slow=1.5, frac_slow=0.3)
    forcing = storm_forcing(96, 40.0, seed=5)
    p = kernel.parameters_from_config(cfg)
    p[[0, 2, 3, 6, 9]] *= (1.1, 0.7, 1.02, 1.05, 0.8)
    p[20] = 0.3
    run = run_lgar(kernel.config_with_parameters(cfg, p), forcing)
    kr = kernel.run_kernel([cfg], forcing.precip_mm_per_h, forcing.pet_mm_per_h,
                           params=p[None], record_fronts=K)
    assert_same_as_port(run, kr)


# ----------------------------------------------------------------------------------------------
# State continuation
# ----------------------------------------------------------------------------------------------
def test_split_run_equals_one_run(generality):
    configs, precip, pet, _ = generality
    batch = kernel.pack_configs(configs)
    whole = kernel.run_kernel(batch, precip, pet)
    k = 97
    first = kernel.run_kernel(batch, precip[:k], pet[:k])
    second = kernel.run_kernel(batch, precip[k:], pet[k:], state=first.state)
    for name in kernel.OUTPUT_NAMES:
        joined = np.concatenate([first.outputs[name], second.outputs[name]])
        np.testing.assert_array_equal(joined, whole.outputs[name], name)
    np.testing.assert_array_equal(second.state, whole.state)


def test_final_state_holds_the_port_state():
    cfg = synthetic_config([13, 14, 15], [44.0, 131.0, 25.0], n_steps=80, a=0.002, b=2.0,
                           frac_to_cr=0.2, a_slow=0.0002, b_slow=1.5, frac_slow=0.3)
    f = storm_forcing(80, 40.0, seed=7)
    model = Lgar(cfg)
    st = model.initial_state()
    for p, e in zip(f.precip_mm_per_h, f.pet_mm_per_h):
        model.step(st, float(p), float(e))
    got = kernel.unpack_state(kernel.run_kernel([cfg], f.precip_mm_per_h, f.pet_mm_per_h).state)
    fr = st.fronts
    assert got["n"] == fr.n
    for name in ("depth", "theta", "psi", "k", "dzdt", "layer", "to_bottom"):
        np.testing.assert_array_equal(got[name], getattr(fr, name), name)
    for name in ("ponded_cm", "cr_fast_cm", "cr_slow_cm", "precip_previous_cm", "time_s"):
        assert got[name] == getattr(st, name), name
    assert got["runoff_in_prev_step"] == float(st.runoff_in_prev_step)
    np.testing.assert_array_equal(got["giuh_queue"][:len(st.giuh_queue)], st.giuh_queue)


def test_split_sensitivity_run_equals_one_run():
    cfg = synthetic_config([13, 14], [44.0, 156.0], n_steps=60)
    f = storm_forcing(60, 20.0, seed=2)
    whole = kernel.run_kernel([cfg], f.precip_mm_per_h, f.pet_mm_per_h, sensitivities=True)
    k = 23
    first = kernel.run_kernel([cfg], f.precip_mm_per_h[:k], f.pet_mm_per_h[:k],
                              sensitivities=True)
    second = kernel.run_kernel([cfg], f.precip_mm_per_h[k:], f.pet_mm_per_h[k:],
                               state=first.state, state_tangent=first.state_tangent,
                               sensitivities=True)
    np.testing.assert_array_equal(np.concatenate([first.jacobian, second.jacobian]),
                                  whole.jacobian)
    np.testing.assert_array_equal(second.state_tangent, whole.state_tangent)


# ----------------------------------------------------------------------------------------------
# Sensitivities
# ----------------------------------------------------------------------------------------------
GRAD_CASES = {
    "loam_1layer": ([3], [100.0], {}, 10.0),
    "three_layers": ([13, 14, 15], [44.0, 131.0, 25.0], {}, 20.0),
    "reservoirs_free_drainage": ([12, 2], [30.0, 70.0], {
        "a": 0.002, "b": 2.0, "frac_to_cr": 0.2, "a_slow": 0.0002, "b_slow": 1.5,
        "frac_slow": 0.3, "free_drainage_enabled": True}, 20.0),
    "numerical_G": ([9, 11], [30.0, 70.0], {"use_closed_form_g": False}, 20.0),
}
#: LGAR-C's adaptive trapezoid for G changes its number of steps with the parameters (a jump,
#: another kind of event): a smaller perturbation stays clear of them.
REL_H = {"numerical_G": 1e-5}
CHECKED_OUTPUTS = ("total_discharge", "surface_runoff", "actual_evapotranspiration",
                   "soil_storage", "infiltration", "percolation",
                   "conceptual_reservoir_to_stream_discharge")


def fd_errors(cfg, forcing, n_steps: int, rel_h: float = 1e-4) -> dict[str, float]:
    """Max |FD - J| over the checked outputs and steps, relative to the largest |J| of the
    parameter, per used parameter whose +-h runs keep the front counts of the unperturbed run."""
    batch = kernel.pack_configs([cfg])
    precip, pet = forcing.precip_mm_per_h[:n_steps], forcing.pet_mm_per_h[:n_steps]
    sens = kernel.run_kernel(batch, precip, pet, sensitivities=True)
    used = [i for i, name in enumerate(kernel.PARAMETER_NAMES)
            if i >= 20 or int(name.rsplit("_", 1)[1]) <= cfg.num_layers]
    errors = {}
    for i in used:
        p0 = batch.params[0, i]
        if p0 == 0.0:
            continue                       # at the bound (no reservoir): one-sided
        h = rel_h * abs(p0)
        runs = []
        for sign in (1.0, -1.0):
            p = batch.params.copy()
            p[0, i] += sign * h
            runs.append(kernel.run_kernel(batch, precip, pet, params=p))
        if not all(np.array_equal(r.n_fronts, sens.n_fronts) for r in runs):
            continue                       # an event moved: FD not comparable
        err = scale = 0.0
        for name in CHECKED_OUTPUTS:     # all in metres: relative to the largest sensitivity
            v = kernel.OUTPUT_NAMES.index(name)
            fd = (runs[0].outputs[name][:, 0] - runs[1].outputs[name][:, 0]) / (2 * h)
            jac = sens.jacobian[:, 0, v, i]
            err = max(err, np.abs(fd - jac).max())
            scale = max(scale, np.abs(jac).max())
        worst = err / scale if scale > 0 else err
        errors[kernel.PARAMETER_NAMES[i]] = worst
    return errors


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_sensitivities_match_finite_differences(name):
    types, thickness, options, peak = GRAD_CASES[name]
    n = 48 if name == "loam_1layer" else 72
    cfg = synthetic_config(types, thickness, n_steps=n, **options)
    errors = fd_errors(cfg, storm_forcing(n, peak, seed=3), n, REL_H.get(name, 1e-4))
    kinds = {k.rsplit("_", 1)[0] if k[-1].isdigit() else k for k in errors}
    assert {"alpha", "n", "ks", "theta_e", "theta_r"} <= kinds
    if options.get("frac_to_cr"):
        assert {"a", "b", "frac_to_cr", "a_slow", "b_slow", "frac_slow"} <= kinds
    assert max(errors.values()) <= 5e-4, errors


def test_sensitivities_to_ponded_depth():
    cfg = synthetic_config([3], [50.0], n_steps=24, ponded_depth_max_cm=0.5)
    forcing = storm_forcing(24, 0.0)
    forcing.precip_mm_per_h[2:8] = 150.0
    errors = fd_errors(cfg, forcing, 24)
    assert errors["ponded_depth_max"] <= 1e-6, errors
    assert max(errors.values()) <= 5e-4, errors


def test_sensitivity_values_equal_plain_values(generality):
    configs, precip, pet, _ = generality
    plain = kernel.run_kernel(configs, precip[:120], pet[:120])
    sens = kernel.run_kernel(configs, precip[:120], pet[:120], sensitivities=True)
    for name in kernel.OUTPUT_NAMES:
        np.testing.assert_array_equal(plain.outputs[name], sens.outputs[name], name)
    assert np.isfinite(sens.jacobian).all()


def random_columns(n_basins: int, n_steps: int, seed: int = 1):
    """Columns of 1 to 4 layers with random van Genuchten soils, heads and options, and
    storms of random size: a batch, its parameters and forcing."""
    rng = np.random.default_rng(seed)
    configs, params, precip, pet = [], [], [], []
    for b in range(n_basins):
        nl = int(rng.integers(1, 5))
        thickness = list(rng.uniform(10, 80, nl))
        cfg = synthetic_config([int(x) for x in rng.integers(1, 19, nl)], thickness,
                               n_steps=n_steps,
                               use_closed_form_g=bool(rng.random() < 0.7),
                               free_drainage_enabled=bool(rng.random() < 0.3),
                               initial_psi_cm=float(rng.uniform(50, 5000)))
        p = kernel.parameters_from_config(cfg)
        for layer in range(nl):
            p[5 * layer:5 * layer + 5] = (10 ** rng.uniform(-2.5, -0.8), rng.uniform(1.1, 3.0),
                                          10 ** rng.uniform(-1.5, 1.5), rng.uniform(0.35, 0.55),
                                          rng.uniform(0.01, 0.12))
        f = storm_forcing(n_steps, float(rng.uniform(5, 80)), seed=b)
        configs.append(cfg)
        params.append(p)
        precip.append(f.precip_mm_per_h)
        pet.append(f.pet_mm_per_h)
    return (kernel.pack_configs(configs), np.stack(params), np.stack(precip, 1),
            np.stack(pet, 1), configs)


def test_random_columns_finite_sensitivities_and_port_values():
    """Saturated fronts crossing layers (psi = 0, Se = 1, where dK/dSe and dpsi/dSe are
    infinite) give finite tangents; values equal the port's."""
    batch, params, precip, pet, configs = random_columns(40, 200)
    sens = kernel.run_kernel(batch, precip, pet, params=params, sensitivities=True, n_threads=2)
    assert np.isfinite(sens.jacobian).all()
    plain = kernel.run_kernel(batch, precip, pet, params=params)
    for name in kernel.OUTPUT_NAMES:
        np.testing.assert_array_equal(plain.outputs[name], sens.outputs[name], name)
    for b in (0, 21, 26):
        forcing = Forcing([f"t{k}" for k in range(len(precip))], precip[:, b], pet[:, b])
        run = run_lgar(kernel.config_with_parameters(configs[b], params[b]), forcing)
        for name in kernel.OUTPUT_NAMES:
            np.testing.assert_array_equal(plain.outputs[name][:, b], run.variables[name], name)


def test_random_columns_with_reservoirs_bit_for_bit():
    """Random columns with free drainage and reservoirs; column 30 once differed from the port
    by one ulp of K at hour 797 (pow(x, 2.0) folded to x * x by the compiler)."""
    n = 800
    batch, params, precip, pet, configs = random_columns(31, n, seed=2)
    rng = np.random.default_rng(2)
    for b in range(0, 31, 3):
        params[b, 21:27] = (0.002, 2.0, rng.uniform(0.05, 0.4), 0.0002, 1.5, rng.uniform(0.1, 0.5))
    kr = kernel.run_kernel(batch, precip, pet, params=params, record_fronts=K)
    for b in (30, 3, 12):
        forcing = Forcing([f"t{k}" for k in range(n)], precip[:, b], pet[:, b])
        run = run_lgar(kernel.config_with_parameters(configs[b], params[b]), forcing)
        assert_same_as_port(run, kr, b)


def test_dry_column_with_zero_conductivity_finite_sensitivities():
    """A dry column of steep soils (n > 4) where K of layer 1 at the head of the front in layer
    3 rounds to exactly 0 (1 - Se^(1/m) == 1): dZ/dt divides by it, (cum[k] - cum[k-1]) / K =
    inf, whose tangent (0 - inf * 0) / 0 was nan and reached the front depths and soil storage
    the next step (a training VJP was nan). The quotient by 0 is now held constant."""
    n_steps = 4
    cfg = synthetic_config([13, 14, 15], [10.0, 30.0, 110.0], n_steps=n_steps,
                           initial_psi_cm=3.0e4)
    p = kernel.parameters_from_config(cfg)
    soils = [(0.0304, 5.29, 54.7, 0.450, 0.0286), (0.0103, 4.21, 2.91, 0.410, 0.0376),
             (0.0206, 4.14, 3.64, 0.313, 0.0266)]  # alpha, n, Ks, theta_e, theta_r
    for layer, soil in enumerate(soils):
        p[5 * layer:5 * layer + 5] = soil
    zero = np.zeros((1, 1))
    start = kernel.run_kernel([cfg], zero, zero, params=p[None]).state.copy()
    # Fronts after a long dry spell: layers 1 and 2 and the upper part of layer 3 at one head.
    psi = np.array([3.65e4, 3.65e4, 3.65e4, 3.1e5])
    layer = np.array([1, 2, 3, 3])
    alpha, n, ks, theta_e, theta_r = (np.array([soils[x - 1][i] for x in layer])
                                      for i in range(5))
    m = 1.0 - 1.0 / n
    se = (1.0 + (alpha * psi) ** n) ** -m
    k = ks * np.sqrt(se) * (1.0 - (1.0 - se ** (1.0 / m)) ** m) ** 2
    fields = dict(depth=[10.0, 40.0, 121.16, 150.0], theta=theta_r + (theta_e - theta_r) * se,
                  psi=psi, k=k, dzdt=np.zeros(4), layer=layer, to_bottom=[1, 1, 0, 1])
    cap, ns = int(kernel.core().MAX_FRONTS), len(kernel.STATE_SCALARS)
    start[0, 0] = 4
    for j, name in enumerate(kernel.STATE_FRONT_FIELDS):
        start[0, ns + j * cap: ns + j * cap + 4] = fields[name]
    precip = np.zeros((n_steps, 1))
    pet = np.full((n_steps, 1), 0.7)
    plain = kernel.run_kernel([cfg], precip, pet, params=p[None], state=start)
    sens = kernel.run_kernel([cfg], precip, pet, params=p[None], state=start, sensitivities=True)
    for name in kernel.OUTPUT_NAMES:
        np.testing.assert_array_equal(plain.outputs[name], sens.outputs[name], name)
    np.testing.assert_array_equal(sens.n_fronts, 4)
    assert kernel.unpack_state(sens.state)["k"][0] == 0.0  # the head dried K to 0
    assert np.isfinite(sens.jacobian).all()
    assert np.isfinite(sens.state_tangent).all()
    w = np.ones((n_steps, 1, 1))
    vjp = kernel.run_kernel([cfg], precip, pet, params=p[None], state=start, sensitivities=True,
                            jacobian=False, vjp_weights=w, vjp_outputs=("soil_storage",)).vjp
    assert np.isfinite(vjp).all()


def test_autograd_matches_jacobian_and_gradcheck():
    cfg = synthetic_config([3, 12], [40.0, 60.0], n_steps=24)
    f = storm_forcing(24, 15.0, seed=4)
    batch = kernel.pack_configs([cfg, cfg])
    precip = np.stack([f.precip_mm_per_h, 0.5 * f.precip_mm_per_h], axis=1)
    pet = np.stack([f.pet_mm_per_h, f.pet_mm_per_h], axis=1)
    params = torch.tensor(batch.params, requires_grad=True)
    y = kernel.lgar_outputs(params, batch, precip, pet, ("total_discharge", "soil_storage"))
    weights = torch.rand_like(y)
    (y * weights).sum().backward()
    sens = kernel.run_kernel(batch, precip, pet, sensitivities=True)
    idx = [kernel.OUTPUT_NAMES.index("total_discharge"), kernel.OUTPUT_NAMES.index("soil_storage")]
    want = np.einsum("tbv,tbvp->bp", weights.numpy(), sens.jacobian[:, :, idx])
    np.testing.assert_allclose(params.grad.numpy(), want, rtol=1e-10,
                               atol=1e-13 * np.abs(want).max())
    vjp = kernel.run_kernel(batch, precip, pet, sensitivities=True, jacobian=False,
                            vjp_weights=weights.numpy(),
                            vjp_outputs=("total_discharge", "soil_storage"))
    assert vjp.jacobian is None
    np.testing.assert_array_equal(vjp.vjp, params.grad.numpy())
    # gradcheck on relative changes of the soil parameters of layer 1 (others fixed)
    base = torch.tensor(batch.params[:1])
    cols = [0, 1, 2, 3, 4]
    one = kernel.pack_configs([cfg])

    def fn(x):
        p = base.clone()
        p[0, cols] = base[0, cols] * (1.0 + x)
        return kernel.lgar_outputs(p, one, precip[:, :1], pet[:, :1], ("soil_storage",))

    x0 = torch.zeros(len(cols), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x0,), eps=1e-5, atol=1e-6, rtol=1e-3)


# ----------------------------------------------------------------------------------------------
# Bad inputs
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def small():
    cfg = synthetic_config([3, 12], [40.0, 60.0], n_steps=12)
    f = storm_forcing(12, 10.0)
    return cfg, f.precip_mm_per_h[:, None].copy(), f.pet_mm_per_h[:, None].copy()


def test_mismatched_shapes(small):
    cfg, precip, pet = small
    with pytest.raises(ValueError, match="pet"):
        kernel.run_kernel([cfg], precip, pet[:-1])
    with pytest.raises(ValueError, match="precip"):
        kernel.run_kernel([cfg, cfg], precip, np.hstack([pet, pet]))
    batch = kernel.pack_configs([cfg])
    with pytest.raises(ValueError, match="params"):
        kernel.run_kernel(batch, precip, pet, params=batch.params[:, :20])
    with pytest.raises(ValueError, match="state"):
        kernel.run_kernel(batch, precip, pet, state=np.zeros((1, 10)))


def test_too_many_layers(small):
    cfg, precip, pet = small
    batch = kernel.pack_configs([cfg])
    batch.num_layers[0] = 5
    with pytest.raises(ValueError, match="num_layers: basin 0 has 5 layers; LGAR holds 1 to 4"):
        kernel.run_kernel(batch, precip, pet)


def test_nan_forcing_is_refused(small):
    cfg, precip, pet = small
    precip[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"precip: not finite \(nan\) at step 3, basin 0"):
        kernel.run_kernel([cfg], precip, pet)
    precip[3, 0] = 1.0
    pet[5, 0] = np.inf
    with pytest.raises(ValueError, match="pet: not finite"):
        kernel.run_kernel([cfg], precip, pet, sensitivities=True)


def test_bad_parameters_are_refused(small):
    cfg, precip, pet = small
    batch = kernel.pack_configs([cfg])
    p = batch.params.copy()
    p[0, kernel.PARAMETER_NAMES.index("n_2")] = 0.9
    with pytest.raises(ValueError, match="basin 0, layer 2: van Genuchten n must be > 1"):
        kernel.run_kernel(batch, precip, pet, params=p)
    p = batch.params.copy()
    p[0, kernel.PARAMETER_NAMES.index("theta_r_1")] = 0.9
    with pytest.raises(ValueError, match="theta_r < theta_e"):
        kernel.run_kernel(batch, precip, pet, params=p)


def test_bad_state_and_mass_balance_errors(small):
    cfg, precip, pet = small
    batch = kernel.pack_configs([cfg])
    state = kernel.run_kernel(batch, precip, pet).state.copy()
    state[0, 0] = 0
    with pytest.raises(ValueError, match="number of fronts"):
        kernel.run_kernel(batch, precip, pet, state=state)
    batch.scalars[0, kernel.SCALAR_NAMES.index("mbal_tol")] = -1.0
    with pytest.raises(RuntimeError, match="LGAR basin 0: local mass balance error"):
        kernel.run_kernel(batch, precip, pet)


def test_lgar_outputs_argument_errors(small):
    cfg, precip, pet = small
    batch = kernel.pack_configs([cfg])
    with pytest.raises(ValueError, match="unknown outputs"):
        kernel.lgar_outputs(torch.tensor(batch.params), batch, precip, pet, ("streamflow",))
    with pytest.raises(TypeError, match="float64"):
        kernel.lgar_outputs(torch.tensor(batch.params, dtype=torch.float32), batch, precip, pet)
