"""The dHBV NextGen BMI (bmi_dhbv.BmiDHBV), what is specific to it: daily and hourly state files
and initial states, the hourly scheme, agreement with delta_core.evaluation.simulate and between
backends, the numpy LSTM, PET input, spin-up CSV and error messages. ngen's generic requirements
run for every model in test_generic_bmi.py.

Uses a small randomly initialised bundle (the shipped weights need not exist).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from bmi_dhbv import BmiDHBV, hbv
from bmi_dhbv.model import LOWER, UPPER
from bmi_dhbv.model import FORCING_NAMES
from delta_core.bmi.base import BmiError
from delta_core.config import DataConfig, RunConfig
from delta_core.data.camels import CamelsDataset
from delta_core.networks import LSTMStepper
from delta_core.ngen import crosswalk as B
from dhbv_helpers import make_random_bundle

GAUGE = "01022500"


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return make_random_bundle(tmp_path_factory.mktemp("bundle") / "bundle.pt")


@pytest.fixture(scope="session")
def basin():
    ds = CamelsDataset()
    attrs = {k: v[0] for k, v in ds.attributes([GAUGE], DataConfig().attributes).items()}
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


# -- state files --------------------------------------------------------------------------------
@pytest.mark.parametrize("step,split", [(86400, 17), (3600, 24 * 8)])
def test_save_restore_bit_for_bit(make, tmp_path, step, split):
    """Daily host steps, and an hourly state saved at a day boundary that also serves as
    initial_state (the generic file covers hourly restores mid-day)."""
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
    with np.load(state) as z:
        meta = json.loads(str(z["meta"]))
    assert (meta["format"], meta["version"]) == ("dhbv/state", 2)
    assert meta["signature"] == {"pet_input": False, "n_components": 4}
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
    with pytest.raises(BmiError, match="start_time is"):
        make(initial_state=str(state))
    with pytest.raises(BmiError, match="does not match"):
        make(time_step_seconds=86400).load_state(state)
    with pytest.raises(BmiError, match="cannot read dhbv state file"):
        make().load_state(tmp_path / "missing.npz")
    daily = make(time_step_seconds=86400)
    daily.update()
    daily.save_state(state)
    with pytest.raises(BmiError, match="model options.*'pet_input': False"):
        make(time_step_seconds=86400, pet_source="input").load_state(state)


def test_cold_start_stores_at_initialize(make):
    """Before the first update the store outputs hold the cold-start stores, not 0."""
    for step in (3600, 86400):
        m = make(time_step_seconds=step)
        assert m.get_value_ptr(B.SWE)[0] == 2 * hbv.COLD_START_MM  # snowpack + meltwater
        for name in (B.SOIL, UPPER, LOWER):
            assert m.get_value_ptr(name)[0] == hbv.COLD_START_MM, name
        assert m.get_value_ptr(B.RUNOFF_DEPTH)[0] == 0.0


# -- the hourly scheme ---------------------------------------------------------------------------
def test_hourly_mode_is_the_hourly_model(make, bundle, basin):
    """Hourly mode steps HBV every hour: fed daily forcing spread over the hours as in the
    hourly model (rain in stochastic storms, PET sine, temperature the daily mean), its runoff summed to days
    equals bmi_dhbv.substeps.simulate of the same bundle (LSTM lagged a day) to rounding."""
    from bmi_dhbv import substeps
    from delta_core.evaluation import load_model
    from delta_core.inputs import build_inputs

    n_days = 60
    ts = basin["ts"]
    m = make(pet_source="input")
    assert m.core.step_seconds == 3600 and len(m.core.unit_hydrograph) == 360
    model, norm, _ = load_model(bundle, dtype=torch.float64)
    sch = model.options.within_day
    forcing = ts.forcing(FORCING_NAMES)[:n_days]  # [D, 1, 3]
    rain_w = sch.draw(n_days, 1, np.random.default_rng(8))  # this bundle's pattern: storms
    pet_w = sch.pet_weights().numpy()
    runoff = []
    for d in range(n_days):
        p, t, pet = forcing[d, 0]
        for h in range(24):
            m.set_value(B.PRECIP, np.array([p * rain_w[d, 0, h]]))
            m.set_value(B.TEMP, np.array([t]))
            m.set_value(B.PET, np.array([pet * pet_w[h]]))
            m.update()
            runoff.append(m.get_value_ptr(B.RUNOFF_DEPTH)[0] * 1000.0)
    inputs = build_inputs(ts.slice_dates(str(ts.dates[0]), str(ts.dates[n_days - 1])),
                          {k: [str(v)] for k, v in basin["attrs"].items()}, norm)
    batch = inputs.batch(np.arange(n_days), np.arange(1), 0, torch.float64)
    batch["rain_weights"] = torch.from_numpy(rain_w)
    with torch.no_grad():
        ref = substeps.simulate(model, batch, 24, sch, lag_days=1)
    np.testing.assert_allclose(np.reshape(runoff, (n_days, 24)).sum(1), ref["streamflow"][:, 0],
                               rtol=1e-10, atol=1e-12)


def test_hourly_mode_has_no_day_end_jumps(make):
    """Constant hourly forcing: the hourly runoff changes smoothly; the hours at day boundaries
    change it no more than the hours within days do (no daily pulse)."""
    m = make(pet_source="input")
    q = []
    for h in range(24 * 30):
        m.set_value(B.PRECIP, np.array([0.2]))
        m.set_value(B.TEMP, np.array([12.0]))
        m.set_value(B.PET, np.array([0.08]))
        m.update()
        q.append(m.get_value_ptr(B.RUNOFF_DEPTH)[0])
    q = np.reshape(q, (30, 24))[5:]  # after the first days' filling
    step = np.abs(np.diff(q.ravel()))
    at_midnight = step[23::24]
    within = np.delete(step, np.s_[23::24])
    assert q.min() > 0
    assert at_midnight.max() <= 3.0 * within.max() + 1e-15
    assert step.max() <= 0.05 * q.max()


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
    xf = norm.forcing.transform(basin["ts"].forcing(FORCING_NAMES)[:50])  # [T, 1, 3]
    xa = torch.as_tensor(x_attr)
    with torch.no_grad():
        seq, _ = model.dynamic_parameters(model.lstm_inputs(torch.as_tensor(xf), xa))
    lstm = LSTMStepper(model.dynamic_net, x_attr[0])
    for d in range(xf.shape[0]):
        unit = (1 / (1 + np.exp(-lstm.step(xf[d, 0])))).reshape(len(model.dynamic_names), -1)
        for j, name in enumerate(model.dynamic_names):
            lo, hi, _ = hbv.PARAMETER_RANGES[name]
            np.testing.assert_allclose(lo + unit[j] * (hi - lo), seq[name][d, 0].numpy(),
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["cpp", "torch"])
def test_daily_bmi_reproduces_simulate(make, bundle, basin, backend):
    from delta_core.evaluation import load_model, simulate

    ts = basin["ts"]
    first = str(ts.dates[0])
    end = "1981-06-30" if backend == "cpp" else "1980-06-30"
    n = int((np.datetime64(end) - ts.dates[0]).astype(int)) + 1
    model, norm, _ = load_model(bundle, dtype=torch.float64, backend=backend)
    sim = simulate(model, norm, basin["dataset"], [GAUGE], first, end, dtype=torch.float64)
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
    np.testing.assert_allclose(warm.core.states, ref.core.states, rtol=1e-14)
    a = run_daily(warm, ts.prcp[n:n + 5, 0], ts.tmean[n:n + 5, 0], ts.tmax[n:n + 5, 0],
                  ts.tmin[n:n + 5, 0])
    b = run_daily(ref, ts.prcp[n:n + 5, 0], ts.tmean[n:n + 5, 0], ts.tmax[n:n + 5, 0],
                  ts.tmin[n:n + 5, 0])
    np.testing.assert_allclose(a, b, rtol=1e-13)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,prcp_mm_day,tmax_c,tmin_c\n2000-01-01,1,2,1\n2000-01-03,1,2,1\n")
    with pytest.raises(BmiError, match="does not follow"):
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
    with pytest.raises(BmiError, match="precipitation_rate = nan.*must be finite"):
        m.update()
    m.get_value_ptr(B.PRECIP)[0] = 0.0
    m.get_value_ptr(B.TEMP)[0] = 285.0  # Kelvin passed as degC
    with pytest.raises(BmiError, match="temperature = 285.0 degC.*plausible range"):
        m.update()
    m.get_value_ptr(B.TEMP)[0] = np.nan
    with pytest.raises(BmiError, match="temperature = nan"):
        m.update()


def test_dhbv_config_errors(make, tmp_path):
    """dHBV's own keys: pet_source, and the backend of an NN-recharge bundle (torch only). The
    common keys are checked for every model in test_generic_bmi.py."""
    with pytest.raises(BmiError, match="pet_source must be 'hargreaves' or 'input'"):
        make(pet_source="penman")
    nnr = _nn_recharge_bundle(tmp_path / "nnr.pt")
    with pytest.raises(BmiError, match="nn_recharge.*backend: torch"):
        make(bundle=str(nnr), backend="cpp")
    m = make(bundle=str(nnr))  # no backend key: torch is chosen for NN recharge
    assert m.backend == "torch"
    m.set_value(B.PRECIP, np.array([2.0]))
    m.update_until(48 * 3600.0)
    assert math.isfinite(m.get_value_ptr(B.RUNOFF_DEPTH)[0])
    from bmi_dhbv import kernel

    assert make().backend == ("cpp" if kernel.cpp_available() else "torch")  # default


def _nn_recharge_bundle(path):
    from bmi_dhbv.model import SPEC
    from delta_core.bundle import save_bundle
    from delta_core.inputs import Normalization
    from delta_core.spec import Engine

    cfg = RunConfig.from_dict({"model": "dhbv", "physics": {"n_components": 2, "nn_recharge": True},
                               "network": {"static_hidden": 16, "dynamic_hidden": 8}})
    ds = CamelsDataset()
    ids = ds.basin_ids()
    ts = ds.load(ids, end="1985-09-30")
    norm = Normalization.fit(ds, ids, cfg.data.attributes, ts, SPEC.forcings)
    torch.manual_seed(0)
    model = SPEC.build_model(cfg.physics, cfg.network, len(norm.attributes.feature_names),
                             Engine("torch"))
    return save_bundle(path, model="dhbv", state_dict=model.state_dict(), config=cfg.to_dict(),
                       normalization=norm.to_dict(), provenance={})


@pytest.mark.parametrize("step", [3600, 86400])
def test_shipped_bundle_initializes(basin, tmp_path, step):
    """Without a bundle key the BMI runs the shipped hourly bundle in hourly mode and the daily
    default bundle in daily mode."""
    from bmi_dhbv.bmi import HOURLY_BUNDLE
    from bmi_dhbv.model import DEFAULT_BUNDLE
    from delta_core.bundle import load_bundle

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"attributes": basin["attrs"], "latitude": basin["lat"],
                                   "area_km2": basin["area"], "start_time": "2000-01-01",
                                   "time_step_seconds": step}))
    m = BmiDHBV()
    m.initialize(str(cfg))
    m.set_value(B.PRECIP, np.array([1.0]))
    m.update_until(86400.0 * 3)
    assert m.get_value_ptr(B.RUNOFF_DEPTH)[0] >= 0
    m.save_state(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:
        meta = json.loads(str(z["meta"]))
    want = HOURLY_BUNDLE if step == 3600 and HOURLY_BUNDLE.is_file() else DEFAULT_BUNDLE
    assert meta["bundle_checksum"] == load_bundle(want)["checksum"]
    assert m.core.n_components == 16 and m.core.step_seconds == step


def test_hourly_bundle_refuses_daily_steps(basin, tmp_path):
    """A bundle whose HBV steps hourly is not run with daily host steps (its rates are
    hourly): the error names the bundle's physics step."""
    from bmi_dhbv.bmi import HOURLY_BUNDLE

    if not HOURLY_BUNDLE.is_file():
        pytest.skip("no hourly bundle shipped")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"attributes": basin["attrs"], "latitude": basin["lat"],
                                   "area_km2": basin["area"], "start_time": "2000-01-01",
                                   "time_step_seconds": 86400, "bundle": str(HOURLY_BUNDLE)}))
    with pytest.raises(Exception, match="stepping every 3600 s: use it with time_step_seconds"):
        BmiDHBV().initialize(str(cfg))


def test_hourly_bundle_refused_in_daily_mode(make, tmp_path):
    from delta_core.bundle import load_bundle, save_bundle

    path = make_random_bundle(tmp_path / "h.pt")
    b = load_bundle(path)
    cfg = dict(b["config"], physics={**b["config"]["physics"], "steps_per_day": 24})
    save_bundle(path, model="dhbv", state_dict=b["state_dict"], config=cfg,
                normalization=b["normalization"], provenance={})
    make(bundle=str(path))  # hourly: fine
    with pytest.raises(BmiError, match="use it with time_step_seconds: 3600"):
        make(bundle=str(path), time_step_seconds=86400)


def test_batched_spinup_equals_stepping(make_bmi):
    """dHBV's batched spin-up (LSTM over the sequence in torch, HBV in one kernel call) ends in
    the state of day-by-day stepping, to rounding."""
    import datetime as dt

    m = make_bmi("dhbv", step=86400)
    core = m.core
    if core.backend != "cpp":
        pytest.skip("batched spin-up runs on the compiled kernel")
    rng = np.random.default_rng(2)
    n = 400
    starts = [dt.datetime(1985, 1, 1) + dt.timedelta(days=d) for d in range(n)]
    tmean = 8 + 12 * np.sin(2 * np.pi * np.arange(n) / 365.25) + rng.normal(0, 2, n)
    forcings = [[float(pp), float(tm), float(tm + 5), float(tm - 5), None] for pp, tm in
                zip(np.where(rng.random(n) < 0.4, rng.gamma(1.0, 6.0, n), 0.0), tmean)]
    core.reset()
    for f, s in zip(forcings, starts):
        core.step(f, s)
    stepped = core.get_state()
    core.reset()
    core.spinup(forcings, starts)
    batched = core.get_state()
    for k, v in stepped.items():
        np.testing.assert_allclose(batched[k], v, rtol=1e-9, atol=1e-12, err_msg=k)


def test_hourly_spinup_from_daily_rows_on_either_backend(make_bmi, monkeypatch):
    """The hourly core's spin-up from daily rows (the shared hourly path spreads them over the
    hours, HBV runs them in one call) runs on the configured backend: torch and the compiled
    kernel end in the same state."""
    import datetime as dt

    from bmi_dhbv import kernel
    from bmi_dhbv.hourly_core import HourlyHBVCore
    from bmi_dhbv.kernel import cpp_available

    used, run = [], kernel.run

    def spy(*args, **kwargs):
        used.append(kwargs["backend"])
        return run(*args, **kwargs)

    if not cpp_available():
        pytest.skip("needs the compiled kernel to compare with")
    monkeypatch.setattr(kernel, "run", spy)
    rng = np.random.default_rng(4)
    n = 40
    starts = [dt.datetime(1985, 3, 1) + dt.timedelta(days=d) for d in range(n)]
    rows = [[float(p), None, float(t + 5), float(t - 5), None] for p, t in
            zip(np.where(rng.random(n) < 0.4, rng.gamma(1.0, 6.0, n), 0.0),
                rng.normal(3.0, 4.0, n))]
    states = []
    for backend in ("cpp", "torch"):
        core = make_bmi("dhbv", backend=backend).core
        assert isinstance(core, HourlyHBVCore) and core.backend == backend
        used.clear()
        core.spinup(rows, starts)
        assert used == [backend]
        states.append(core.get_state())
    for k, v in states[0].items():
        np.testing.assert_allclose(states[1][k], v, rtol=1e-9, atol=1e-12, err_msg=k)


def test_bundle_key_may_name_a_shipped_bundle(make):
    """``bundle: dhbv_static.pt`` (a bare file name) is the package's shipped bundle; a name
    that is neither a file nor a shipped bundle is refused naming the path tried."""
    from bmi_dhbv.model import DEFAULT_BUNDLE

    m = make(bundle="dhbv_static.pt", time_step_seconds=86400)
    assert Path(m._bundle_path) == DEFAULT_BUNDLE.with_name("dhbv_static.pt")
    from delta_core.bundle import BundleError

    with pytest.raises((BmiError, BundleError), match="nope.pt does not exist"):
        make(bundle="nope.pt")
