"""dLGAR's δ model and its BMI with a bundle: the texture-table centre and bounds of the learned
parameters, the BMI's kernel and Python backends bit for bit, the bundle's parameter set in the
BMI against the model's own hourly run, and the errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from delta_core.patterns import WithinDay
import yaml

from bmi_lgar import model as M
from bmi_lgar.bmi import BmiLGAR
from bmi_lgar.core import LgarCore
from delta_core.ngen.crosswalk import PET, PRECIP, TEMP
from lgar_helpers import storm_forcing

#: CAMELS 09480000 (clay loam) and a sandy column.
RAW = np.array([[41.1498547899355, 28.1180467371064, 28.8165607541358, 1.22140798674422],
                [80.0, 12.0, 5.0, 0.6]])


def _model(seed: int = 0) -> M.DLGAR:
    torch.manual_seed(seed)
    return M.SPEC.build_model({}, {"hidden": 8}, 4).to(torch.float64)


def _step_all(m: BmiLGAR, precip, pet, temp=None) -> tuple[np.ndarray, list]:
    """Step every hour; air temperature ``temp`` [degC] (default 20: no snow) where it is an
    input."""
    rows, fronts = [], []
    temp = np.full(len(precip), 20.0) if temp is None else temp
    for p, e, t in zip(precip, pet, temp):
        m.set_value(PRECIP, np.array([float(p)]))
        m.set_value(PET, np.array([float(e)]))
        if TEMP in m.get_input_var_names():
            m.set_value(TEMP, np.array([float(t)]))
        m.update()
        rows.append([m.get_value(o, np.empty(1))[0] for o in m.get_output_var_names()])
        fr = m.core.state.fronts
        fronts.append((fr.depth[:], fr.theta[:], fr.psi[:], fr.layer[:]))
    return np.array(rows), fronts


def _bmi(tmp_path, name: str, **cfg) -> BmiLGAR:
    base = {"latitude": 31.36, "area_km2": 212.8, "start_time": "2000-06-01 00:00:00",
            "pet_source": "input", **cfg}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(base))
    m = BmiLGAR()
    m.initialize(str(path))
    return m


def test_centre_is_the_texture_table_and_bounds_hold():
    model = _model()
    priors = model.priors(torch.as_tensor(RAW))
    centre = model.corrected(torch.full((2, M.N_OUTPUTS), 0.5, dtype=torch.float64), priors)
    for b, prior in enumerate(priors):
        for j, layer in enumerate(prior.params.layers, start=1):
            assert centre[f"alpha_{j}"][b] == layer.alpha and centre[f"ks_{j}"][b] == layer.ks
            assert centre[f"theta_e_{j}"][b] == layer.theta_e
            assert centre[f"theta_r_{j}"][b] == layer.theta_r
            assert abs(float(centre[f"n_{j}"][b]) - layer.n) < 1e-15
        assert centre["ponded_depth_max"][b] == prior.params.ponded_depth_max_cm
        assert abs(float(centre["frac_to_cr"][b]) - prior.params.reservoirs.frac_to_cr) < 1e-15
    for edge in (1e-9, 1 - 1e-9):
        p = model.corrected(torch.full((2, M.N_OUTPUTS), edge, dtype=torch.float64), priors)
        for j in range(1, M.N_LAYERS + 1):
            assert torch.all(p[f"n_{j}"] > 1) and torch.all(p[f"theta_r_{j}"] < p[f"theta_e_{j}"])
            assert torch.all(p[f"theta_r_{j}"] >= 0) and torch.all(p[f"theta_e_{j}"] < 1)
        for spec in M.PARAMETERS:
            assert torch.all(p[spec.name] >= spec.low - 1e-12), spec.name
            assert torch.all(p[spec.name] <= spec.high + 1e-12), spec.name


def test_missing_raw_attributes_are_named():
    model = _model()
    batch = {"forcing": torch.zeros(3, 2, 3, dtype=torch.float64),
             "x_attr": torch.zeros(2, 4, dtype=torch.float64), "warmup": 0}
    with pytest.raises(ValueError, match="raw_attr.*sand_frac"):
        model(batch)


def test_kernel_and_python_backends_equal_bit_for_bit(tmp_path):
    """Texture-table column through a storm sequence: every output and every front after every
    hour are identical between backend cpp (the kernel) and python (the port)."""
    f = storm_forcing(24 * 12, peak_mm_per_h=80.0, seed=3)
    attrs = dict(zip(M.RAW_ATTRIBUTES, RAW[0].tolist()))
    a, fa = _step_all(_bmi(tmp_path, "py", attributes=attrs, backend="python"),
                      f.precip_mm_per_h, f.pet_mm_per_h)
    b, fb = _step_all(_bmi(tmp_path, "cpp", attributes=attrs, backend="cpp"),
                      f.precip_mm_per_h, f.pet_mm_per_h)
    np.testing.assert_array_equal(a, b)
    assert fa == fb and max(len(x[0]) for x in fa) > 3 and a.max() > 0


def test_bundle_bmi_backends_and_the_models_hourly_run(tmp_path, random_bundle, catchment):
    """A random dLGAR bundle in the BMI: both backends bit for bit; the BMI's hourly runoff summed
    to days equals the δ model's own kernel run with torch GIUH routing (no snow: warm)."""
    bundle = random_bundle("dlgar")
    days = 45
    rng = np.random.default_rng(5)
    p_day = rng.exponential(25.0, days) * (rng.uniform(size=days) < 0.6)
    pet_day = np.full(days, 4.0)
    scheme = WithinDay("block")
    p_h = np.repeat(p_day, 24) * np.tile(scheme.rain_weights().numpy(), days)
    pet_h = np.repeat(pet_day, 24) * np.tile(scheme.pet_weights().numpy(), days)
    cfg = {**catchment, "bundle": str(bundle), "pet_source": "input"}
    a, _ = _step_all(_bmi(tmp_path, "bpy", backend="python", **cfg), p_h, pet_h)
    b, fb = _step_all(_bmi(tmp_path, "bcpp", backend="cpp", **cfg), p_h, pet_h)
    np.testing.assert_array_equal(a, b)
    from delta_core.bmi.adapter import _shared_model
    from delta_core.evaluation import load_model

    model, norm, _ = _shared_model(bundle, load_model, torch.float64)
    names = norm.attributes.names
    x = norm.attributes.transform({n: [str(catchment["attributes"][n])] for n in names}, ["c"])
    raw = torch.tensor([[float(catchment["attributes"][n]) for n in M.RAW_ATTRIBUTES]],
                       dtype=torch.float64)
    forcing = torch.tensor(np.stack([p_day, np.full(days, 20.0), pet_day], -1)[:, None, :])
    with torch.no_grad():
        w = torch.as_tensor(scheme.draw(days, 1, np.random.default_rng()))
        out = model({"forcing": forcing, "x_attr": torch.as_tensor(x), "raw_attr": raw,
                     "warmup": 0, "rain_weights": w})
    m = _bmi(tmp_path, "bq", backend="cpp", **cfg)
    runoff = [m.get_output_var_names().index(v) for v in m.get_output_var_names()
              if v == "land_surface_water__runoff_depth"][0]
    daily_bmi = b[:, runoff].reshape(days, 24).sum(1) * 1000.0
    assert daily_bmi.max() > 0
    np.testing.assert_allclose(out["streamflow"][:, 0].numpy(), daily_bmi, rtol=1e-9,
                               atol=1e-12)


def _winter(hours: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hourly precipitation [mm], PET [mm] and temperature [degC]: a cold spell with snow, then
    a thaw with rain."""
    f = storm_forcing(hours, peak_mm_per_h=20.0, seed=seed)
    t = np.where(np.arange(hours) < hours // 2, -6.0, 6.0) + 3 * np.sin(np.arange(hours) / 4)
    return f.precip_mm_per_h, f.pet_mm_per_h, t


def test_bundle_bmi_runs_the_bundles_snow_ahead_of_lgar(tmp_path, random_bundle, catchment):
    """Snow on by default with a bundle: temperature is an input, SWE builds in the cold spell
    and melts in the thaw, water is conserved (precipitation = liquid water + SWE), and LGAR gets
    exactly the hourly degree-day routine's liquid water (bit for bit against a snow-free core
    fed that water)."""
    from delta_core import snow as snow_routine
    from delta_core.ngen.crosswalk import MELT, SWE

    p, pet, t = _winter(24 * 10, seed=11)
    cfg = {**catchment, "bundle": str(random_bundle("dlgar")), "pet_source": "input"}
    m = _bmi(tmp_path, "snow", **cfg)
    assert TEMP in m.get_input_var_names() and {MELT, SWE} <= set(m.get_output_var_names())
    rows, _ = _step_all(m, p, pet, t)
    names = m.get_output_var_names()
    swe, melt = rows[:, names.index(SWE)], rows[:, names.index(MELT)]
    assert swe[len(p) // 2 - 1] > 5.0 and swe[-1] < swe[len(p) // 2 - 1] and melt.sum() > 1.0
    c = M.PhysicsConfig().snow()
    pack = water = 0.0
    liquid = []
    for x, y in zip(p, t):
        s = snow_routine.degree_day_step(pack, water, float(x), float(y), c["TT"],
                                         c["CFMAX"] / 24.0, c["CFR"], c["CWH"])
        pack, water = s.snowpack, s.meltwater
        liquid.append(s.rain + s.outflow)
    np.testing.assert_allclose(np.sum(liquid) + swe[-1], p.sum(), rtol=1e-12)
    plain = LgarCore(m.core.params, backend="cpp")
    again = LgarCore(m.core.params, backend="cpp", snow=c)
    for x, y, e, w in zip(p, t, pet, liquid):
        plain.step([w, float(e), None], None)
        again.step([float(x), float(e), float(y)], None)
        assert again.flow_new[0] == plain.flow_new[0]
        np.testing.assert_array_equal(again.rate_values[:7], plain.rate_values[:7])


@pytest.mark.parametrize("backend", ["cpp", "python"])
def test_snow_state_restores_bit_for_bit(tmp_path, random_bundle, catchment, backend):
    p, pet, t = _winter(24 * 6, seed=12)
    cfg = {**catchment, "bundle": str(random_bundle("dlgar")), "pet_source": "input",
           "backend": backend}
    ref, _ = _step_all(_bmi(tmp_path, "ref", **cfg), p, pet, t)
    a = _bmi(tmp_path, "a", **cfg)
    split = len(p) // 2 - 5
    first, _ = _step_all(a, p[:split], pet[:split], t[:split])
    assert a.core.hourly.snowpack > 0
    a.save_state(tmp_path / "snow.npz")
    b = _bmi(tmp_path, "b", **cfg)
    b.load_state(tmp_path / "snow.npz")
    rest, _ = _step_all(b, p[split:], pet[split:], t[split:])
    np.testing.assert_array_equal(np.vstack([first, rest]), ref)
    with pytest.raises(Exception, match="model options"):
        _bmi(tmp_path, "c", **cfg, snow=False).load_state(tmp_path / "snow.npz")


def test_snow_flag_is_checked_and_optional_without_bundle(tmp_path, random_bundle, catchment):
    from delta_core.bmi.base import BmiError

    with pytest.raises(BmiError, match="snow must be true or false"):
        _bmi(tmp_path, "bad", **catchment, bundle=str(random_bundle("dlgar")), snow="yes")
    attrs = dict(zip(M.RAW_ATTRIBUTES, RAW[0].tolist()))
    off = _bmi(tmp_path, "off", attributes=attrs)
    on = _bmi(tmp_path, "on", attributes=attrs, snow=True)
    assert TEMP not in off.get_input_var_names() and TEMP in on.get_input_var_names()
    assert on.core.snow == M.PhysicsConfig().snow()


def test_bundle_needs_the_raw_texture_attributes(tmp_path, random_bundle, catchment):
    attrs = {k: v for k, v in catchment["attributes"].items() if k != "clay_frac"}
    cfg = {**catchment, "attributes": attrs, "bundle": str(random_bundle("dlgar"))}
    from delta_core.bmi.base import BmiError

    with pytest.raises(BmiError, match="clay_frac"):
        _bmi(tmp_path, "noclay", **cfg)


def test_core_backend_is_checked():
    from bmi_lgar.texture import parameters_from_attributes

    params = parameters_from_attributes(dict(zip(M.RAW_ATTRIBUTES, RAW[0].tolist())))
    with pytest.raises(ValueError, match="backend must be one of"):
        LgarCore(params, backend="torch")


def test_lgar_outputs_continue_from_a_packed_state():
    """``kernel.lgar_outputs(..., state=)``: values of the continued run, gradient = the
    sensitivity run's Jacobian from that state with zero state tangents."""
    from bmi_lgar import kernel

    priors = [M.texture_prior(r) for r in RAW]
    kb = M.kernel_batch(priors)
    f = storm_forcing(96, peak_mm_per_h=60.0, seed=7)
    precip = np.repeat(f.precip_mm_per_h[:, None], 2, 1)
    pet = np.repeat(f.pet_mm_per_h[:, None], 2, 1)
    state = kernel.run_kernel(kb, precip[:48], pet[:48]).state
    params = torch.tensor(kb.params, requires_grad=True)
    y = kernel.lgar_outputs(params, kb, precip[48:], pet[48:], ("total_discharge",),
                            state=state)
    ref = kernel.run_kernel(kb, precip[48:], pet[48:], state=state, sensitivities=True)
    np.testing.assert_array_equal(y[..., 0].detach().numpy(), ref.outputs["total_discharge"])
    y.sum().backward()
    j = kernel.OUTPUT_NAMES.index("total_discharge")
    np.testing.assert_allclose(params.grad.numpy(), ref.jacobian[:, :, j, :].sum(0),
                               rtol=1e-12, atol=1e-300)
    assert np.abs(params.grad.numpy()).max() > 0


@pytest.mark.slow
def test_demo_runs_the_shipped_bundle_on_the_sample(tmp_path, capsys):
    """``lgar-demo`` without options: the shipped dLGAR bundle on the package's sample basins."""
    import netCDF4

    from bmi_lgar.cli import demo_main

    with pytest.raises(SystemExit) as e:
        demo_main(["--out", str(tmp_path), "--threads", "1"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "median NSE" in out and "03439000" in out
    with netCDF4.Dataset(tmp_path / "simulation.nc") as nc:
        assert nc.dimensions["basin"].size == 5
        assert np.all(np.isfinite(nc["streamflow"][:]))


def test_simulation_without_gradient_in_pieces_equals_the_differentiable_run(monkeypatch):
    model = _model(3).eval()
    f = storm_forcing(60, peak_mm_per_h=40.0, seed=9)
    forcing = torch.tensor(np.stack([f.precip_mm_per_h, np.full(60, 15.0), f.pet_mm_per_h * 24],
                                    -1)[:, None, :].repeat(2, 1))
    batch = {"forcing": forcing, "x_attr": torch.randn(2, 4, dtype=torch.float64),
             "raw_attr": torch.as_tensor(RAW), "warmup": 10}
    full = model(batch)
    monkeypatch.setattr(M, "CHUNK_HOURS", 50)
    with torch.no_grad():
        pieces = model(batch)
    assert full["streamflow"].max() > 0
    for k, v in full.items():
        assert torch.equal(v.detach(), pieces[k]), k
