"""The dHBV NextGen BMI (bmi_dhbv.BmiDHBV): ngen's hard requirements, values, time, state files,
the hourly scheme, agreement with delta_core.evaluation.simulate, and error messages.

Uses a small randomly initialised bundle (the shipped weights need not exist).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from bmi_dhbv import BmiDHBV
from bmi_dhbv import bmi as B
from bmi_dhbv import kernel
from delta_core.bmi_base import BmiError
from delta_core.networks import LSTMStepper
from delta_core.bundle import BundleError, save_bundle
from delta_core.config import RunConfig
from delta_core.data.camels import CamelsDataset
from delta_core.inputs import Normalization
from delta_core.registry import model_module

GAUGE = "01022500"


def make_random_bundle(path, n_components=4, dynamic_hidden=16, static_hidden=32, seed=0):
    """A bundle of a randomly initialised dHBV with normalisation fitted on the 5-basin sample."""
    cfg = RunConfig.from_dict({"physics": {"n_components": n_components},
                               "network": {"static_hidden": static_hidden,
                                           "dynamic_hidden": dynamic_hidden}})
    ds = CamelsDataset()
    ids = ds.basin_ids()
    ts = ds.load(ids, end="1985-09-30")
    norm = Normalization.fit(ds, ids, cfg.data.attributes, ts.slice_dates("1980-10-01", "1985-09-30"))
    torch.manual_seed(seed)
    model = model_module("dhbv").build_model(cfg.physics, cfg.to_dict()["network"],
                                             len(norm.attributes.feature_names))
    return save_bundle(path, model="dhbv", state_dict=model.state_dict(), config=cfg.to_dict(),
                       normalization=norm.to_dict(), provenance={"note": "random test bundle"})


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return make_random_bundle(tmp_path_factory.mktemp("bundle") / "bundle.pt")


@pytest.fixture(scope="session")
def basin():
    ds = CamelsDataset()
    attrs = {k: v[0] for k, v in ds.attributes([GAUGE], RunConfig().data.attributes).items()}
    ts = ds.load([GAUGE], end="1981-12-31")
    return {"attrs": attrs, "ts": ts, "lat": float(ts.lat[0]), "area": float(ts.area_km2[0]),
            "dataset": ds}


@pytest.fixture
def make(tmp_path, bundle, basin):
    counter = [0]

    def _make(**over):
        cfg = {"bundle": str(bundle), "attributes": basin["attrs"], "latitude": basin["lat"],
               "area_km2": basin["area"], "time_step_seconds": 3600,
               "start_time": "2015-12-01 00:00:00"}
        cfg.update(over)
        cfg = {k: v for k, v in cfg.items() if v is not None}
        counter[0] += 1
        path = tmp_path / f"config_{counter[0]}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        m = BmiDHBV()
        m.initialize(str(path))
        return m

    return _make


def hourly_forcing(n_days, seed=1):
    """Synthetic hourly precipitation [mm/h] and temperature [degC] with a diurnal cycle."""
    rng = np.random.default_rng(seed)
    n = 24 * n_days
    p = np.where(rng.random(n) < 0.15, rng.gamma(0.8, 2.0, n), 0.0)
    hours = np.arange(n)
    t = 3.0 + 8.0 * np.sin(2 * np.pi * (hours % 24 - 9) / 24) + 5 * np.sin(hours / 24 / 9) \
        + rng.normal(0, 1, n)
    return p, t


def daily_from_hourly(p, t):
    p, t = p.reshape(-1, 24), t.reshape(-1, 24)
    return p.sum(1), t.mean(1), t.max(1), t.min(1)


def run_daily(m, p, t, tmax, tmin, out=B.RUNOFF_DEPTH):
    res = []
    for i in range(len(p)):
        m.set_value(B.PRECIP, np.array([p[i]]))
        m.set_value(B.TEMP, np.array([t[i]]))
        m.set_value(B.TMAX, np.array([tmax[i]]))
        m.set_value(B.TMIN, np.array([tmin[i]]))
        m.update()
        res.append(m.get_value_ptr(out)[0])
    return np.array(res)


def run_hourly(m, p, t, out=B.RUNOFF_DEPTH):
    res = []
    dest = np.zeros(1)
    for i in range(len(p)):
        m.set_value(B.PRECIP, np.array([p[i]]))
        m.set_value(B.TEMP, np.array([t[i]]))
        m.update()
        res.append(m.get_value_at_indices(out, dest, [0])[0])
    return np.array(res)


# -- ngen's hard requirements -----------------------------------------------------------------
@pytest.mark.parametrize("step", [3600, 86400])
def test_ngen_hard_requirements(make, step):
    m = make(time_step_seconds=step)
    ins, outs = m.get_input_var_names(), m.get_output_var_names()
    assert isinstance(ins, tuple) and isinstance(outs, tuple)
    assert m.get_input_item_count() == len(ins) and m.get_output_item_count() == len(outs)
    assert B.RUNOFF_DEPTH in outs and m.get_var_units(B.RUNOFF_DEPTH) == "m"
    for name in ins + outs:
        t, size = m.get_var_type(name), m.get_var_itemsize(name)
        assert t in ("float64", "float") and size == 8 == np.dtype(t).itemsize
        assert m.get_var_nbytes(name) == 8
        assert m.get_var_location(name) == "node"
        g = m.get_var_grid(name)
        assert m.get_grid_size(g) == 1 and m.get_grid_rank(g) == 0
        assert m.get_grid_type(g) == "scalar"
        ptr = m.get_value_ptr(name)
        assert isinstance(ptr, np.ndarray) and ptr.ndim == 1 and ptr.size == 1
        assert ptr.dtype == np.float64
        dest = np.full(1, np.nan)
        assert m.get_value_at_indices(name, dest, [0]) is dest
        assert dest[0] == ptr[0]
    assert m.get_time_units() == "s" and m.get_start_time() == 0.0
    assert m.get_time_step() == float(step) and m.get_current_time() == 0.0
    rate = "mm h-1" if step == 3600 else "mm d-1"
    assert m.get_var_units(B.PRECIP) == rate and m.get_var_units(B.TEMP) == "degC"
    assert m.get_var_units(B.RUNOFF_FLUX) == "m3 s-1"
    for name in (B.ET, B.SURFACE_FLOW, B.INTERFLOW, B.BASEFLOW):
        assert m.get_var_units(name) == rate
    for name in (B.SWE, B.SOIL, B.UPPER, B.LOWER):
        assert m.get_var_units(name) == "mm"
    assert m.get_var_units("hbv__beta") == "1" and m.get_var_units("hbv__betaet") == "1"
    m.finalize()


def test_value_ptr_is_live_and_round_trips(make):
    m = make()
    p_ptr = m.get_value_ptr(B.PRECIP)
    m.set_value(B.PRECIP, np.array([2.5]))
    assert p_ptr[0] == 2.5 and m.get_value_ptr(B.PRECIP) is p_ptr
    dest = np.zeros(1)
    assert m.get_value(B.PRECIP, dest) is dest and dest[0] == 2.5
    m.set_value_at_indices(B.TEMP, np.array([0]), np.array([-3.25]))
    assert m.get_value(B.TEMP, np.zeros(1))[0] == -3.25
    p_ptr[0] = 4.0  # writing through the pointer is an input too
    assert m.get_value(B.PRECIP, np.zeros(1))[0] == 4.0
    q_ptr = m.get_value_ptr(B.RUNOFF_DEPTH)
    soil = m.get_value_ptr(B.SOIL)
    m.update_until(86400.0)
    assert q_ptr is m.get_value_ptr(B.RUNOFF_DEPTH)
    assert q_ptr[0] > 0 and soil[0] > 0
    assert m.get_value(B.RUNOFF_DEPTH, np.zeros(1))[0] == q_ptr[0]
    flux = m.get_value(B.RUNOFF_FLUX, np.zeros(1))[0]
    assert flux == pytest.approx(q_ptr[0] * m._area_km2 * 1e6 / 3600, rel=1e-12)


def test_update_until(make):
    p, t = hourly_forcing(3)
    a, b = make(), make()
    for m in (a, b):
        m.set_value(B.PRECIP, np.array([1.0]))
        m.set_value(B.TEMP, np.array([5.0]))
    for _ in range(30):
        a.update()
    b.update_until(30 * 3600.0)
    assert a.get_current_time() == b.get_current_time() == 30 * 3600.0
    for name in a.get_output_var_names():
        assert a.get_value_ptr(name)[0] == b.get_value_ptr(name)[0], name
    b.update_until(30 * 3600.0)  # no-op
    with pytest.raises(BmiError, match="whole number of time steps"):
        b.update_until(31.5 * 3600.0)
    with pytest.raises(BmiError, match="in the past"):
        b.update_until(10 * 3600.0)


def test_end_time(make):
    m = make(n_steps=2)
    assert m.get_end_time() == 7200.0
    m.update()
    m.update()
    with pytest.raises(BmiError, match="past the end time"):
        m.update()
    m = make(end_time="2015-12-02 00:00:00", time_step_seconds=86400, allow_exceed_end_time=True)
    assert m.get_end_time() == 86400.0
    m.update_until(3 * 86400.0)  # allowed
    m = make()
    assert m.get_end_time() >= 1e15  # default: no end (ngen: allow_exceed_end_time)
    assert m.get_current_time() <= m.get_end_time()


# -- state files --------------------------------------------------------------------------------
@pytest.mark.parametrize("step,split", [(86400, 17), (3600, 24 * 9 + 13), (3600, 24 * 8)])
def test_save_restore_bit_for_bit(make, tmp_path, step, split):
    n_days = 20
    p, t = hourly_forcing(n_days, seed=3)
    if step == 86400:
        pd, td, tx, tn = daily_from_hourly(p, t)
        feed = lambda m, i: (m.set_value(B.PRECIP, np.array([pd[i]])),  # noqa: E731
                             m.set_value(B.TEMP, np.array([td[i]])),
                             m.set_value(B.TMAX, np.array([tx[i]])),
                             m.set_value(B.TMIN, np.array([tn[i]])))
        n = n_days
    else:
        feed = lambda m, i: (m.set_value(B.PRECIP, np.array([p[i]])),  # noqa: E731
                             m.set_value(B.TEMP, np.array([t[i]])))
        n = len(p)
    names = None

    def record(m, i0, i1):
        rows = []
        for i in range(i0, i1):
            feed(m, i)
            m.update()
            rows.append([m.get_value_ptr(k)[0] for k in names])
        return np.array(rows)

    a = make(time_step_seconds=step)
    names = a.get_output_var_names()
    full = record(a, 0, n)
    b = make(time_step_seconds=step)
    first = record(b, 0, split)
    state = tmp_path / f"state_{step}_{split}.npz"
    b.save_state(state)
    b.finalize()
    c = make(time_step_seconds=step)
    c.load_state(state)
    assert c.get_current_time() == split * step
    rest = record(c, split, n)
    assert np.array_equal(np.vstack([first, rest]), full)  # bit for bit
    if step == 3600 and split % 24 == 0:  # a day-boundary state also works as initial_state
        import datetime as dt
        start = dt.datetime(2015, 12, 1) + dt.timedelta(hours=split)
        d = make(time_step_seconds=step, initial_state=str(state), start_time=start.isoformat())
        assert d.get_current_time() == 0.0
        rest2 = []
        for i in range(split, n):
            feed(d, i)
            d.update()
            rest2.append([d.get_value_ptr(k)[0] for k in names])
        assert np.array_equal(np.array(rest2), full[split:])


def test_initial_state_errors(make, tmp_path):
    m = make()
    m.update_until(5 * 3600.0)
    state = tmp_path / "mid.npz"
    m.save_state(state)
    with pytest.raises(BmiError, match="middle of a model day"):
        make(initial_state=str(state))
    m.update_until(24 * 3600.0)
    m.save_state(state)
    with pytest.raises(BmiError, match="start_time is"):
        make(initial_state=str(state))
    with pytest.raises(BmiError, match="does not match"):
        make(time_step_seconds=86400).load_state(state)
    with pytest.raises(BmiError, match="cannot read dHBV state file"):
        make().load_state(tmp_path / "missing.npz")


# -- the hourly scheme ---------------------------------------------------------------------------
def test_hourly_days_sum_to_daily(make):
    n_days = 40
    p, t = hourly_forcing(n_days, seed=5)
    hourly = run_hourly(make(time_step_seconds=3600), p, t)
    pd, td, tx, tn = daily_from_hourly(p, t)
    daily_m = make(time_step_seconds=86400)
    daily = run_daily(daily_m, pd, td, tx, tn)
    sums = hourly.reshape(n_days, 24).sum(1)
    assert daily.min() > 0
    np.testing.assert_allclose(sums, daily, rtol=1e-12, atol=0)
    # hours 1..23 of a day are equal (carry-over part only); hour 24 adds the new part
    h = hourly.reshape(n_days, 24)
    assert np.all(h[:, :23] == h[:, :1])
    assert np.all(h[:, 23] >= h[:, 0])


def test_hourly_components_and_flux_consistent(make):
    p, t = hourly_forcing(5, seed=7)
    m = make()
    for i in range(len(p)):
        m.set_value(B.PRECIP, np.array([p[i]]))
        m.set_value(B.TEMP, np.array([t[i]]))
        m.update()
        comp = sum(m.get_value_ptr(k)[0] for k in (B.SURFACE_FLOW, B.INTERFLOW, B.BASEFLOW))
        assert comp * 1e-3 == pytest.approx(m.get_value_ptr(B.RUNOFF_DEPTH)[0], rel=1e-12)
        for k in m.get_output_var_names():
            v = m.get_value_ptr(k)[0]
            assert math.isfinite(v) and v >= 0, k


# -- agreement with the model ------------------------------------------------------------------
def test_numpy_lstm_equals_torch(bundle, basin):
    from delta_core.evaluation import load_model

    model, norm, _ = load_model(bundle, dtype=torch.float64)
    x_attr = norm.attributes.transform({k: [str(v)] for k, v in basin["attrs"].items()}, ["x"])
    xf = norm.forcing.transform(basin["ts"].forcing()[:50])  # [T, 1, 3]
    xa = torch.as_tensor(x_attr)
    with torch.no_grad():
        seq, _ = model.dynamic_parameters(model.lstm_inputs(torch.as_tensor(xf), xa))
    lstm = LSTMStepper(model.dynamic_net, x_attr[0])
    for d in range(xf.shape[0]):
        unit = (1 / (1 + np.exp(-lstm.step(xf[d, 0])))).reshape(len(model.dynamic_names), -1)
        for j, name in enumerate(model.dynamic_names):
            lo, hi, _ = B.hbv.PARAMETER_RANGES[name]
            np.testing.assert_allclose(lo + unit[j] * (hi - lo), seq[name][d, 0].numpy(),
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["cpp", "torch"])
def test_daily_bmi_reproduces_simulate(make, bundle, basin, backend):
    if backend == "cpp" and not kernel.cpp_available():
        pytest.skip("compiled kernel not built")
    from delta_core.evaluation import load_model, simulate

    ts = basin["ts"]
    first = str(ts.dates[0])
    end = "1981-06-30" if backend == "cpp" else "1980-06-30"
    n = int((np.datetime64(end) - ts.dates[0]).astype(int)) + 1
    model, norm, _ = load_model(bundle, dtype=torch.float64)
    sim = simulate(model, norm, basin["dataset"], [GAUGE], first, end, backend=backend,
                   dtype=torch.float64)
    m = make(time_step_seconds=86400, start_time=first, backend=backend,
             latitude=float(ts.lat[0]))
    outs = {k: [] for k in (B.RUNOFF_DEPTH, B.SOIL, B.ET, B.BASEFLOW, "hbv__beta")}
    for i in range(n):
        m.set_value(B.PRECIP, ts.prcp[i])
        m.set_value(B.TEMP, ts.tmean[i])
        m.set_value(B.TMAX, ts.tmax[i])
        m.set_value(B.TMIN, ts.tmin[i])
        m.update()
        for k in outs:
            outs[k].append(m.get_value_ptr(k)[0])
    ref = sim["outputs"]
    np.testing.assert_allclose(np.array(outs[B.RUNOFF_DEPTH]) * 1e3, ref["streamflow"][:, 0],
                               rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(outs[B.SOIL], ref["soil_moisture"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(outs[B.ET], ref["et"][:, 0], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(outs[B.BASEFLOW], ref["baseflow"][:, 0], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(outs["hbv__beta"], ref["BETA"][:, 0], rtol=1e-6)


def test_backends_agree(make):
    if not kernel.cpp_available():
        pytest.skip("compiled kernel not built")
    p, t = hourly_forcing(10, seed=11)
    a = run_hourly(make(backend="cpp"), p, t)
    b = run_hourly(make(backend="torch"), p, t)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-18)


def test_pet_input_mode(make):
    """PET given as input (equal to the Hargreaves value) gives the Hargreaves run's output."""
    p, t = hourly_forcing(6, seed=13)
    pd, td, tx, tn = daily_from_hourly(p, t)
    a = make(time_step_seconds=86400)
    b = make(time_step_seconds=86400, pet_source="input")
    assert B.PET in b.get_input_var_names() and B.TMAX not in b.get_input_var_names()
    assert B.PET in a.get_output_var_names() and B.PET not in a.get_input_var_names()
    for i in range(len(pd)):
        a.set_value(B.PRECIP, np.array([pd[i]]))
        a.set_value(B.TEMP, np.array([td[i]]))
        a.set_value(B.TMAX, np.array([tx[i]]))
        a.set_value(B.TMIN, np.array([tn[i]]))
        a.update()
        b.set_value(B.PRECIP, np.array([pd[i]]))
        b.set_value(B.TEMP, np.array([td[i]]))
        b.set_value(B.PET, a.get_value_ptr(B.PET).copy())
        b.update()
        assert b.get_value_ptr(B.RUNOFF_DEPTH)[0] == a.get_value_ptr(B.RUNOFF_DEPTH)[0]
    with pytest.raises(BmiError, match="potential_evaporation.*>= 0"):
        b.set_value(B.PET, np.array([-1.0]))


def test_spinup_forcing(make, basin, tmp_path):
    ts = basin["ts"]
    n = 60
    csv = tmp_path / "spin.csv"
    lines = ["date,prcp_mm_day,tmax_c,tmin_c"]
    lines += [f"{ts.dates[i]},{float(ts.prcp[i, 0])!r},{float(ts.tmax[i, 0])!r},{float(ts.tmin[i, 0])!r}"
              for i in range(n)]
    csv.write_text("\n".join(lines) + "\n")
    start = str(ts.dates[n])
    warm = make(time_step_seconds=86400, start_time=start, spinup_forcing=str(csv))
    ref = make(time_step_seconds=86400, start_time=str(ts.dates[0]))
    run_daily(ref, ts.prcp[:n, 0], ts.tmean[:n, 0], ts.tmax[:n, 0], ts.tmin[:n, 0])
    assert warm.get_current_time() == 0.0
    np.testing.assert_allclose(warm._states, ref._states, rtol=1e-14)
    a = run_daily(warm, ts.prcp[n:n + 5, 0], ts.tmean[n:n + 5, 0], ts.tmax[n:n + 5, 0],
                  ts.tmin[n:n + 5, 0])
    b = run_daily(ref, ts.prcp[n:n + 5, 0], ts.tmean[n:n + 5, 0], ts.tmax[n:n + 5, 0],
                  ts.tmin[n:n + 5, 0])
    np.testing.assert_allclose(a, b, rtol=1e-13)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,prcp_mm_day,tmax_c,tmin_c\n2000-01-01,1,2,1\n2000-01-03,1,2,1\n")
    with pytest.raises(BmiError, match="consecutive"):
        make(spinup_forcing=str(bad))


# -- errors ----------------------------------------------------------------------------------------
def test_bad_inputs_named(make):
    m = make()
    with pytest.raises(BmiError, match="precipitation_rate.*finite"):
        m.set_value(B.PRECIP, np.array([np.nan]))
    with pytest.raises(BmiError, match="precipitation_rate.*>= 0"):
        m.set_value(B.PRECIP, np.array([-0.1]))
    with pytest.raises(BmiError, match="temperature.*finite"):
        m.set_value(B.TEMP, np.array([np.nan]))
    with pytest.raises(BmiError, match="precipitation_rate.*>= 0"):
        m.set_value_at_indices(B.PRECIP, [0], np.array([-2.0]))
    m.get_value_ptr(B.PRECIP)[0] = np.nan  # bypassing set_value: caught by update
    with pytest.raises(BmiError, match="precipitation_rate must be finite"):
        m.update()
    m.get_value_ptr(B.PRECIP)[0] = 0.0
    m.get_value_ptr(B.TEMP)[0] = 285.0  # Kelvin passed as degC
    with pytest.raises(BmiError, match="temperature.*is it in K"):
        m.update()
    m.get_value_ptr(B.TEMP)[0] = np.nan
    with pytest.raises(BmiError, match="temperature = nan"):
        m.update()


def test_unknown_names_and_sizes(make):
    m = make()
    for call in (lambda: m.get_var_units("nope"), lambda: m.get_var_type("nope"),
                 lambda: m.get_var_itemsize("nope"), lambda: m.get_value_ptr("nope"),
                 lambda: m.get_value("nope", np.zeros(1)),
                 lambda: m.get_value_at_indices("nope", np.zeros(1), [0]),
                 lambda: m.set_value("nope", np.zeros(1))):
        with pytest.raises(BmiError, match="unknown variable 'nope'.*inputs"):
            call()
    with pytest.raises(BmiError, match="got 2 item"):
        m.set_value(B.PRECIP, np.zeros(2))
    with pytest.raises(BmiError, match="destination has 3"):
        m.get_value(B.RUNOFF_DEPTH, np.zeros(3))
    with pytest.raises(BmiError, match="indices"):
        m.get_value_at_indices(B.RUNOFF_DEPTH, np.zeros(1), [1])
    with pytest.raises(BmiError, match="unknown grid 3"):
        m.get_grid_size(3)
    with pytest.raises(BmiError, match="not initialized"):
        BmiDHBV().get_var_units(B.PRECIP)


def test_config_errors(make, bundle, basin, tmp_path):
    with pytest.raises(BmiError, match=r"unknown key\(s\) \['colour'\].*valid keys"):
        make(colour="red")
    with pytest.raises(BmiError, match=r"missing required key\(s\) \['latitude', 'area_km2'\]"):
        make(latitude=None, area_km2=None)
    attrs = dict(basin["attrs"])
    del attrs["p_mean"], attrs["aridity"]
    with pytest.raises(BmiError, match=r"lacks 2 attribute\(s\).*\['p_mean', 'aridity'\]"):
        make(attributes=attrs)
    with pytest.raises(BmiError, match="time_step_seconds must be 3600"):
        make(time_step_seconds=600)
    with pytest.raises(BmiError, match="backend must be"):
        make(backend="cuda")
    with pytest.raises(BmiError, match="start_time must be an ISO datetime"):
        make(start_time="yesterday")
    with pytest.raises(BundleError, match="missing.pt"):
        make(bundle=str(tmp_path / "missing.pt"))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(bundle.read_bytes()[:1000])
    with pytest.raises(BundleError, match="broken.pt"):
        make(bundle=str(broken))
    with pytest.raises(BmiError, match="cannot read BMI config"):
        BmiDHBV().initialize(str(tmp_path / "nope.yaml"))
    with pytest.raises(BmiError, match="before initialize"):
        BmiDHBV().update()


def test_shipped_bundle_initializes(basin, tmp_path):
    from bmi_dhbv.model import DEFAULT_BUNDLE

    if not DEFAULT_BUNDLE.is_file():
        pytest.skip(f"shipped bundle {DEFAULT_BUNDLE} not present yet")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"attributes": basin["attrs"], "latitude": basin["lat"],
                                   "area_km2": basin["area"], "start_time": "2000-01-01"}))
    m = BmiDHBV()
    m.initialize(str(cfg))
    m.set_value(B.PRECIP, np.array([1.0]))
    m.update_until(86400.0 * 3)
    assert m.get_value_ptr(B.RUNOFF_DEPTH)[0] >= 0
