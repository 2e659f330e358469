"""The NextGen BMI of every registered model with a BMI component (``bmi_model_name`` runs over them): ngen's hard
requirements, time control, errors, state files, host/model step aggregation, the CSDMS
bmi-tester and a replay of ngen's call sequence over a realization."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import GAUGE, REPO, TESTS
from delta_core.bmi.base import BmiError
from delta_core.bmi.variables import bmi_markdown, with_table
from delta_core.bundle import BundleError
from delta_core.ngen.crosswalk import PRECIP, RUNOFF_DEPTH, RUNOFF_FLUX, TEMP
from delta_core.registry import model_spec


def test_bmi_md_table_is_the_declared_variables(bmi_model_name):
    """Each BMI.md's variable table is generated from the model's declared variables."""
    spec = model_spec(bmi_model_name)
    path = bmi_markdown(spec)
    if not path.is_file():
        pytest.skip(f"{bmi_model_name} has no BMI.md")
    text = path.read_text()
    assert with_table(text, spec) == text, f"{path}: stale table, run python scripts/bmi_tables.py"


def test_variables_are_the_declared_ones(bmi_model_name, make_bmi):
    """Every BMI variable is a declared one, with its declared units (a rate per host step)."""
    m = make_bmi(bmi_model_name, n_steps=2)
    declared = {(v.standard_name, v.kind == "input"): v
                for v in model_spec(bmi_model_name).variables if v.standard_name}
    rate = {3600: "mm h-1", 86400: "mm d-1"}[int(m.get_time_step())]
    for name in m.get_input_var_names() + m.get_output_var_names():
        v = declared[(name, name in m.get_input_var_names())]
        assert m.get_var_units(name) == (rate if v.per_step else v.units), name


def _host_steps(name):
    return model_spec(name).load_bmi_class().HOST_STEPS


def _feed(m, rng, hour=None):
    """Set every input to a plausible random value (precipitation-like >= 0)."""
    for name in m.get_input_var_names():
        if "temperature" in name:
            x = rng.uniform(-5, 25)
        else:
            x = rng.exponential(0.4) * (rng.uniform() < 0.3)
        m.set_value(name, np.array([x]))


def _run(m, n, seed=0, outputs=None):
    rng = np.random.default_rng(seed)
    outputs = outputs or m.get_output_var_names()
    rows = []
    for _ in range(n):
        _feed(m, rng)
        m.update()
        rows.append([m.get_value(o, np.empty(1))[0] for o in outputs])
    return np.array(rows)


@pytest.mark.parametrize("step", [3600, 86400])
def test_ngen_hard_requirements(bmi_model_name, make_bmi, step):
    if step not in _host_steps(bmi_model_name):
        pytest.skip(f"{bmi_model_name} does not run at {step} s")
    m = make_bmi(bmi_model_name, step)
    assert m.get_time_units() == "s" and m.get_time_step() == step and m.get_start_time() == 0
    assert m.get_input_item_count() == len(m.get_input_var_names()) > 0
    assert m.get_output_item_count() == len(m.get_output_var_names()) > 0
    assert RUNOFF_DEPTH in m.get_output_var_names() and m.get_var_units(RUNOFF_DEPTH) == "m"
    for name in m.get_input_var_names() + m.get_output_var_names():
        assert m.get_var_type(name) == "float64" and m.get_var_itemsize(name) == 8
        assert m.get_var_nbytes(name) == 8 and m.get_var_grid(name) == 0
        assert isinstance(m.get_var_units(name), str) and m.get_var_units(name)
        ptr = m.get_value_ptr(name)
        assert ptr.shape == (1,) and ptr.dtype == np.float64
    assert m.get_grid_type(0) == "scalar" and m.get_grid_size(0) == 1
    _run(m, 30)
    dest = np.empty(1)
    for name in m.get_output_var_names():
        m.get_value_at_indices(name, dest, np.array([0]))
        assert np.isfinite(dest[0]) and dest[0] == m.get_value_ptr(name)[0]


def test_value_ptr_is_live(bmi_model_name, make_bmi):
    """The pointer follows the runoff every step, over at least 48 hours and until runoff has
    been made (a model starting with a dry column and empty stores may take some days)."""
    m = make_bmi(bmi_model_name)
    ptr = m.get_value_ptr(RUNOFF_DEPTH)
    rng = np.random.default_rng(0)
    seen = []
    for hour in range(24 * 30):
        _feed(m, rng)
        m.update()
        seen.append(m.get_value(RUNOFF_DEPTH, np.empty(1))[0])
        assert ptr[0] == seen[-1], hour
        if hour >= 47 and max(seen) > 0:
            break
    assert max(seen) > 0
    p = m.get_value_ptr(PRECIP)
    m.set_value(PRECIP, np.array([2.5]))
    assert p[0] == 2.5


def test_misuse_is_named(bmi_model_name, make_bmi):
    m = make_bmi(bmi_model_name)
    with pytest.raises(BmiError, match="unknown variable 'rain'.*inputs"):
        m.get_value("rain", np.empty(1))
    with pytest.raises(BmiError, match="output variable"):
        m.set_value(RUNOFF_DEPTH, np.array([1.0]))
    with pytest.raises(BmiError, match="2 item"):
        m.set_value(PRECIP, np.array([1.0, 2.0]))
    with pytest.raises(BmiError, match=">= 0"):
        m.set_value(PRECIP, np.array([-1.0]))
    with pytest.raises(BmiError, match=r"temperature = 300.0 degC: must be in the plausible "
                                       r"range -90..70 degC \(a temperature in K\?"):
        m.set_value(TEMP, np.array([300.0]))  # K given as degC: refused at set_value
    m.get_value_ptr(TEMP)[0] = 300.0  # written behind set_value's back: caught at update
    with pytest.raises(BmiError, match="300.0 degC at model time 0.0 s: must be in the plausible"):
        m.update()
    m.finalize()
    with pytest.raises(BmiError, match="after finalize"):
        m.update()
    fresh = model_spec(bmi_model_name).load_bmi_class()()
    with pytest.raises(BmiError, match="before initialize"):
        fresh.update()


def test_spinup_rows_pass_the_checks_of_set_value(bmi_model_name, make_bmi, tmp_path):
    """Spin-up rows get the one check of set_value: negative precipitation and a temperature in
    K are refused naming the file, line, column and value (they gave NaN states before)."""
    cls = model_spec(bmi_model_name).load_bmi_class()
    core = make_bmi(bmi_model_name).core
    kinds = [(list(cls.SPINUP_COLUMNS), core.step_seconds if cls.DAILY_SPINUP_COLUMNS
              else core.spinup_step_seconds or core.step_seconds)]
    if cls.DAILY_SPINUP_COLUMNS:  # daily rows too
        kinds.append(([c for c in cls.DAILY_SPINUP_COLUMNS if c != "tmean_c"], 86400))
    cases = [(cols, np.timedelta64(int(step), "s"), col, value, msg) for cols, step in kinds
             for col, value, msg in (
                 (cols[0], -1.0, "must be >= 0"),
                 (next(c for c in cols if c.endswith("_c")), 285.0,
                  r"must be in the plausible range.*in K\?"))]
    for cols, step, col, value, msg in cases:
        lines = [",".join(["date", *cols])]
        for k in range(3):
            vals = [value if c == col and k == 1 else 5.0 if c.endswith("_c") else 1.0
                    for c in cols]
            when = str(np.datetime64("1980-12-01T00:00") + k * step).replace("T", " ")
            lines.append(",".join([when, *map(str, vals)]))
        path = tmp_path / f"spin_{col}.csv"
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(BmiError, match=rf"spinup_forcing .*{path.name} line 3 \(.*\): "
                                           rf"column {col} = {value}: {msg}"):
            make_bmi(bmi_model_name, spinup_forcing=str(path))


def test_every_accessor_names_bad_names_sizes_and_indices(bmi_model_name, make_bmi):
    m = make_bmi(bmi_model_name)
    for call in (lambda: m.get_var_units("nope"), lambda: m.get_var_type("nope"),
                 lambda: m.get_var_itemsize("nope"), lambda: m.get_value_ptr("nope"),
                 lambda: m.get_value_at_indices("nope", np.zeros(1), [0]),
                 lambda: m.set_value("nope", np.zeros(1))):
        with pytest.raises(BmiError, match="unknown variable 'nope'.*inputs"):
            call()
    with pytest.raises(BmiError, match="destination has 3"):
        m.get_value(RUNOFF_DEPTH, np.zeros(3))
    with pytest.raises(BmiError, match="indices"):
        m.get_value_at_indices(RUNOFF_DEPTH, np.zeros(1), [1])
    with pytest.raises(BmiError, match="unknown grid 3"):
        m.get_grid_size(3)
    with pytest.raises(BmiError, match="not initialized"):
        model_spec(bmi_model_name).load_bmi_class()().get_var_units(PRECIP)


def test_time_control(bmi_model_name, make_bmi):
    m = make_bmi(bmi_model_name, n_steps=48)
    m.update_until(24 * 3600.0)
    assert m.get_current_time() == 24 * 3600.0
    with pytest.raises(BmiError, match="whole number"):
        m.update_until(24 * 3600.0 + 1800)
    with pytest.raises(BmiError, match="past"):
        m.update_until(3600.0)
    m.update_until(m.get_end_time())
    with pytest.raises(BmiError, match="end time"):
        m.update()


def test_config_errors_name_the_key(bmi_model_name, make_bmi, random_bundle, tmp_path):
    for extra, msg in (({"colour": "red"}, "unknown key.*colour"),
                       ({"latitude": None}, r"missing required key\(s\) \['latitude'\]"),
                       ({"backend": "cuda"}, "backend must be"),
                       ({"start_time": "yesterday"}, "start_time must be an ISO datetime"),
                       ({"time_step_seconds": 900}, "time_step_seconds"),
                       ({"latitude": 123.0}, "latitude"),
                       ({"area_km2": -1}, "area_km2"),
                       ({"end_time": "1980-01-01"}, "before start_time"),
                       ({"attributes": {"p_mean": 3.0}}, "lacks")):
        m = make_bmi(bmi_model_name, initialize=False, **extra)
        with pytest.raises(BmiError, match=msg):
            m.initialize(str(m.config_path))
    other = next((n for n in ("toy", "dhbv") if n != bmi_model_name))
    m = make_bmi(bmi_model_name, initialize=False, bundle=str(random_bundle(other)))
    with pytest.raises(BmiError, match=f"holds model '{other}'"):
        m.initialize(str(m.config_path))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(random_bundle(bmi_model_name).read_bytes()[:1000])
    for bad in (broken, tmp_path / "missing.pt"):
        m = make_bmi(bmi_model_name, initialize=False, bundle=str(bad))
        with pytest.raises(BundleError, match=bad.name):
            m.initialize(str(m.config_path))
    with pytest.raises(BmiError, match="cannot read BMI config"):
        model_spec(bmi_model_name).load_bmi_class()().initialize(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize("split", [24 * 3 + 13, 24 * 4])
def test_save_restore_bit_for_bit(bmi_model_name, make_bmi, tmp_path, split):
    a = make_bmi(bmi_model_name)
    ref = _run(a, 24 * 8, seed=1)
    b = make_bmi(bmi_model_name)
    first = _run(b, split, seed=1)
    b.save_state(tmp_path / "s.npz")
    c = make_bmi(bmi_model_name)
    c.load_state(tmp_path / "s.npz")
    assert c.get_current_time() == split * 3600.0
    rng = np.random.default_rng(1)
    for _ in range(split):  # replay the random stream up to the split
        _feed(c, rng)
    rest = []
    for _ in range(24 * 8 - split):
        _feed(c, rng)
        c.update()
        rest.append([c.get_value(o, np.empty(1))[0] for o in c.get_output_var_names()])
    np.testing.assert_array_equal(np.vstack([first, rest]), ref)


def test_truncated_state_file_and_values_after_finalize_are_refused(bmi_model_name, make_bmi,
                                                                     tmp_path):
    m = make_bmi(bmi_model_name)
    _run(m, 3)
    m.save_state(tmp_path / "s.npz")
    data = (tmp_path / "s.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(BmiError, match=rf"state file {tmp_path / 'cut.npz'}: truncated"):
        make_bmi(bmi_model_name).load_state(tmp_path / "cut.npz")
    m.finalize()
    for call in (lambda: m.get_value(RUNOFF_DEPTH, np.empty(1)), lambda: m.get_value_ptr(PRECIP),
                 lambda: m.get_value_at_indices(RUNOFF_DEPTH, np.empty(1), np.array([0])),
                 lambda: m.set_value(PRECIP, np.array([1.0]))):
        with pytest.raises(BmiError, match="after finalize"):
            call()


def test_state_file_of_another_bundle_is_refused(bmi_model_name, make_bmi, random_bundle, tmp_path):
    m = make_bmi(bmi_model_name)
    _run(m, 24)
    m.save_state(tmp_path / "s.npz")
    other = next((n for n in ("toy", "dhbv") if n != bmi_model_name))
    with pytest.raises(BmiError, match="not a|different bundle"):
        make_bmi(other).load_state(tmp_path / "s.npz")


def test_host_steps_within_a_model_step_sum_to_it(bmi_model_name, make_bmi):
    """A day of hourly host steps releases exactly the daily model's runoff (no water made or
    lost). Temperature is constant within a day, so a daily max/min input equals it."""
    spec = model_spec(bmi_model_name)
    if spec.step_seconds != 86400 or not {3600, 86400} <= set(_host_steps(bmi_model_name)):
        pytest.skip("needs a daily model that runs at hourly and daily host steps")
    h, d = make_bmi(bmi_model_name, 3600), make_bmi(bmi_model_name, 86400)
    if h.core.step_seconds == 3600:
        pytest.skip("the model steps hourly under an hourly host (no daily core to sum to)")
    # a state saved within a model step cannot start another run
    state = h.config_path.with_suffix(".mid.npz")
    h.update_until(5 * 3600.0)
    h.save_state(state)
    with pytest.raises(BmiError, match="middle of a model step"):
        make_bmi(bmi_model_name, 3600, initial_state=str(state))
    h = make_bmi(bmi_model_name, 3600)
    rng = np.random.default_rng(3)
    for _ in range(20):
        p, t = rng.exponential(3.0) * (rng.uniform() < 0.5), rng.uniform(-3, 20)
        hourly = 0.0
        for _ in range(24):
            for name in h.get_input_var_names():
                h.set_value(name, np.array([t if "temperature" in name else p / 24.0]))
            h.update()
            hourly += h.get_value(RUNOFF_DEPTH, np.empty(1))[0]
        for name in d.get_input_var_names():
            d.set_value(name, np.array([t if "temperature" in name else p]))
        d.update()
        daily = d.get_value(RUNOFF_DEPTH, np.empty(1))[0]
        assert hourly == pytest.approx(daily, rel=1e-12, abs=1e-15)


def test_host_step_longer_than_model_step(make_bmi):
    """An hourly core under a daily host: 24 model steps per update, amounts split evenly;
    equal to 24 hourly host steps with the same forcing."""
    import toy_model

    class HourlyCore(toy_model.ToyCore):
        step_seconds = 3600

    class HourlyBmi(toy_model.BmiToy):
        def _make_core(self, model, norm, x_attr, cfg):
            return HourlyCore(0.02, 0.01, 5.0)

    runs = {}
    for step in (86400, 3600):
        m = make_bmi("toy", step, initialize=False)
        b = HourlyBmi()
        b.initialize(str(m.config_path))
        out = []
        for day in range(5):
            p, t = 10.0 * (day % 2), 8.0 + day
            for _ in range(86400 // step):
                b.set_value(PRECIP, np.array([p if step == 86400 else p / 24]))
                b.set_value(TEMP, np.array([t]))
                b.update()
                out.append(b.get_value(RUNOFF_FLUX, np.empty(1))[0] * step)
        runs[step] = np.array(out).reshape(5, -1).sum(1)
    np.testing.assert_allclose(runs[86400], runs[3600], rtol=1e-12)
    assert runs[86400].max() > 0


@pytest.mark.slow
def test_bmi_tester_conformance(bmi_model_name, make_bmi, tmp_path):
    pytest.importorskip("bmi_tester", reason="pip install bmi-tester 'gimli.units<0.4'")
    pytest.importorskip("gimli.units", reason="without gimli.units bmi-tester skips unit checks")
    m = make_bmi(bmi_model_name, n_steps=10)
    stage = tmp_path / "stage"
    stage.mkdir()
    shutil.copy(m.config_path, stage / "config.yaml")
    cls = model_spec(bmi_model_name).bmi_class
    module, _, name = cls.rpartition(".")
    exe = shutil.which("bmi-test") or str(Path(sys.executable).parent / "bmi-test")
    import delta_core

    # the folder the package was imported from (site-packages when installed), and tests/ (toy)
    pkg_root = str(Path(delta_core.__file__).resolve().parent.parent)
    # bmi-test's pytest finds this repository's pyproject.toml above .venv: -n 0 keeps its
    # dependent tests in one process (pytest-xdist would spread them over workers)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), pkg_root]),
               PYTEST_ADDOPTS=os.environ.get("PYTEST_ADDOPTS", "") + " -n 0")
    res = subprocess.run([exe, f"{module}:{name}", "--root-dir", str(stage), "--config-file",
                          "config.yaml"], cwd=stage, env=env, capture_output=True, text=True,
                         timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and " failed" not in out and "passed" in out, out[-6000:]


def test_replay_of_a_realization_matches_direct_stepping(bmi_model_name, make_bmi, tmp_path):
    """ngen's call sequence over an hourly realization (AORC-style forcing in mm s-1 and K) gives
    the same runoff as stepping the BMI directly with converted forcing."""
    from delta_core.ngen.replay import replay

    src = REPO / "realizations" / "camels_sample"
    forcing = np.genfromtxt(src / "forcing" / f"cat-{GAUGE}.csv", delimiter=",", names=True,
                            dtype=None, encoding=None, max_rows=24 * 10)
    (tmp_path / "forcing").mkdir()
    np.savetxt(tmp_path / "forcing" / f"cat-{GAUGE}.csv",
               np.array([[str(r[0]), repr(float(r[1])), repr(float(r[2]))] for r in forcing]),
               fmt="%s", delimiter=",", header="time,precip_rate,TMP_2maboveground",
               comments="")
    m = make_bmi(bmi_model_name, start_time=str(forcing[0][0]))
    cfg = yaml.safe_load(m.config_path.read_text())
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / f"cat-{GAUGE}.yaml").write_text(yaml.safe_dump(cfg))
    cls = model_spec(bmi_model_name).bmi_class
    real = {"global": {"formulations": [{"name": "bmi_python", "params": {
        "model_type_name": bmi_model_name, "python_type": cls, "module_path": str(TESTS),
        "init_config": "./config/{{id}}.yaml", "main_output_variable": RUNOFF_DEPTH,
        "allow_exceed_end_time": True,
        "variables_names_map": {PRECIP: "precip_rate", TEMP: "TMP_2maboveground"},
        "output_variables": [RUNOFF_DEPTH], "output_header_fields": ["q_m"]}}],
        "forcing": {"file_pattern": ".*{{id}}.*.csv", "path": "./forcing/",
                    "provider": "CsvPerFeature"}},
        "time": {"start_time": str(forcing[0][0]), "end_time": str(forcing[-1][0]),
                 "output_interval": 3600}, "output": {"root": "./output/"}}
    (tmp_path / "realization.json").write_text(json.dumps(real))
    area = cfg["area_km2"]
    (tmp_path / "catchments.geojson").write_text(json.dumps({"type": "FeatureCollection",
        "features": [{"type": "Feature", "id": f"cat-{GAUGE}", "properties": {
            "areasqkm": area, "toid": f"nex-{GAUGE}"}, "geometry": None}]}))
    res = replay(tmp_path / "realization.json", tmp_path / "catchments.geojson")
    got = res["catchments"][f"cat-{GAUGE}"]["main_m"]
    direct = []
    for r in forcing:
        m.set_value(PRECIP, np.array([float(r[1]) * 3600.0]))  # mm s-1 -> mm h-1
        m.set_value(TEMP, np.array([float(r[2]) - 273.15]))
        m.update()
        direct.append(m.get_value(RUNOFF_DEPTH, np.empty(1))[0])
    np.testing.assert_allclose(got, direct, rtol=1e-12, atol=1e-18)
    flow = res["catchments"][f"cat-{GAUGE}"]["flow_m3s"]
    np.testing.assert_allclose(flow, np.array(direct) * area * 1e6 / 3600, rtol=1e-12)
    assert (tmp_path / "output" / f"cat-{GAUGE}.csv").is_file()


def test_instances_share_the_loaded_bundle(bmi_model_name, make_bmi, monkeypatch):
    """ngen creates one instance per catchment: the bundle is loaded once per process."""
    import delta_core.evaluation as ev

    calls = []
    real = ev.load_model
    monkeypatch.setattr(ev, "load_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    from delta_core.bmi import adapter

    adapter._MODELS.clear()
    a, b = make_bmi(bmi_model_name), make_bmi(bmi_model_name)
    assert len(calls) == 1 and len(adapter._MODELS) == 1
    np.testing.assert_array_equal(a.get_value(RUNOFF_DEPTH, np.zeros(1)),
                                  b.get_value(RUNOFF_DEPTH, np.zeros(1)))
