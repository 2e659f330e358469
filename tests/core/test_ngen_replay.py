"""End-to-end replays of the shipped realizations with ngen's call sequence
(delta_core.ngen.replay), on a random test bundle, and the dhbv-realization writer."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import yaml

from bmi_dhbv import BmiDHBV
from delta_core.ngen import crosswalk as B
from delta_core.ngen import replay as R
from conftest import DATA, REPO
from dhbv_helpers import make_random_bundle


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """Copies of realizations/ whose configs point at a random test bundle."""
    root = tmp_path_factory.mktemp("real")
    bundle = make_random_bundle(root / "bundle.pt")
    dst = root / "realizations"
    shutil.copytree(REPO / "realizations", dst, ignore=shutil.ignore_patterns("output"))
    for cfg in dst.glob("*/config/*.yaml"):
        d = yaml.safe_load(cfg.read_text())
        d["bundle"] = str(bundle)
        cfg.write_text(yaml.safe_dump(d))
    return dst


def test_ngen_example_hourly(staged):
    real = staged / "ngen_example"
    res = R.replay(real / "realization.json", real / "catchment_data.geojson")
    geo = json.loads((real / "catchment_data.geojson").read_text())
    assert sorted(res["catchments"]) == sorted(f["id"] for f in geo["features"])
    assert len(res["times"]) == 720 and res["interval"] == 3600
    for cid, r in res["catchments"].items():
        for name, v in r["outputs"].items():
            assert np.all(np.isfinite(v)) and np.all(v >= 0), (cid, name)
        assert r["units"][B.RUNOFF_DEPTH] == "m"
        assert r["main_m"].sum() > 0
        # ngen's nexus flow (hourly) equals the BMI's own volume-flux output
        np.testing.assert_allclose(r["flow_m3s"], r["outputs"][B.RUNOFF_FLUX], rtol=1e-12)
        lines = (res["output_root"] / f"{cid}.csv").read_text().splitlines()
        assert lines[0].startswith("Time Step,Time,runoff_depth_m") and len(lines) == 721
    for f in geo["features"]:
        nex = f["properties"]["toid"]
        np.testing.assert_allclose(res["nexus"][nex], res["catchments"][f["id"]]["flow_m3s"])
        assert (res["output_root"] / f"{nex}_output.csv").is_file()


def test_hourly_replay_has_no_daily_pulse(staged):
    """dHBV steps hourly under ngen: on the example's real hourly forcing, the hour-to-hour
    change of runoff at midnight is no larger than within days (no day-end release)."""
    real = staged / "ngen_example"
    res = R.replay(real / "realization.json", real / "catchment_data.geojson", write=False)
    for cid, r in res["catchments"].items():
        step = np.abs(np.diff(r["main_m"]))
        assert step[23::24].mean() <= 1.5 * np.delete(step, np.s_[23::24]).mean(), cid


def test_camels_sample_hourly(staged, tmp_path):
    """The shipped hourly CAMELS realization (water year 1997, synthetic hourly forcing from
    Daymet) replays in full to finite outputs without day-end jumps, and the daily sums of its
    hourly runoff stay close to the daily-mode run of the same basin and days on the Daymet
    daily forcing (same spin-up): volume within 10 % (a random bundle here; the shipped bundles'
    agreement is checked in test_shipped_bundles.py)."""
    from delta_core.data.camels import CamelsDataset

    gid, n_days = "01022500", 365
    cid = f"cat-{gid}"  # ngen's catchment id of the gauge
    real = staged / "camels_sample"
    rj = json.loads((real / "realization.json").read_text())
    assert rj["time"]["output_interval"] == 3600
    start = np.datetime64(rj["time"]["start_time"].replace(" ", "T"))
    last = start + np.timedelta64(n_days * 24 - 1, "h")
    assert rj["time"]["end_time"] == str(last).replace("T", " ")  # one whole water year
    res = R.replay(real / "realization.json", real / "catchment_data.geojson",
                   output_root=tmp_path / "out")
    r = res["catchments"][cid]
    assert res["interval"] == 3600 and len(res["times"]) == n_days * 24
    for name, v in r["outputs"].items():
        assert np.all(np.isfinite(v)) and np.all(v >= 0), name
    assert r["main_m"].sum() > 0
    # hourly: ngen's nexus flow (/3600) equals the BMI's own volume flux
    np.testing.assert_allclose(r["flow_m3s"], r["outputs"][B.RUNOFF_FLUX], rtol=1e-12)
    np.testing.assert_allclose(res["nexus"][f"nex-{gid}"], r["flow_m3s"])
    assert (tmp_path / "out" / f"{cid}.csv").is_file()
    assert (tmp_path / "out" / f"nex-{gid}_output.csv").is_file()
    nex = json.loads((real / "nexus_data.geojson").read_text())
    assert [f["id"] for f in nex["features"]] == [f"nex-{gid}"]

    # the daily model on the Daymet daily forcing of the same days, same spin-up
    cfg = yaml.safe_load((real / "config" / f"{cid}.yaml").read_text())
    cfg["time_step_seconds"] = 86400
    cfg["spinup_forcing"] = str((real / "config" / cfg["spinup_forcing"]).resolve())
    path = tmp_path / "daily.yaml"
    path.write_text(yaml.safe_dump(cfg))
    d0 = str(start.astype("datetime64[D]"))
    ts = CamelsDataset().load([gid], start=d0, end=str(last.astype("datetime64[D]")))
    assert str(ts.dates[0]) == d0 and len(ts.dates) == n_days
    # the synthetic hourly forcing holds the Daymet day: P summed over the data day (from 16:00
    # of the day before, --rain-day-start-hour -8), mean/max/min of T over the calendar day
    f = R.CsvForcing(real / "forcing" / f"{cid}.csv")
    assert f.row_seconds == 3600 and f.times[0] == start
    p = R.convert(f.columns["precip_rate"], "mm s-1", "mm h-1")[:n_days * 24]
    t_h = R.convert(f.columns["TMP_2maboveground"], "K", "degC")[:n_days * 24].reshape(-1, 24)
    np.testing.assert_allclose(p[16:-8].reshape(-1, 24).sum(1), ts.prcp[1:, 0], rtol=1e-12,
                               atol=1e-12)
    assert p[:16].sum() <= ts.prcp[0, 0] + 1e-12 and not p[-8:].any()
    np.testing.assert_allclose(t_h.mean(1), ts.tmean[:, 0], rtol=0, atol=1e-9)
    ok = ts.tmax[:, 0] >= ts.tmin[:, 0]
    np.testing.assert_allclose(t_h.max(1)[ok], ts.tmax[ok, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(t_h.min(1)[ok], ts.tmin[ok, 0], rtol=0, atol=1e-9)
    assert np.all(t_h.argmax(1)[ts.tmax[:, 0] > ts.tmin[:, 0]] == 15)
    m = BmiDHBV()
    m.initialize(str(path))
    daily = []
    for d in range(n_days):
        m.set_value(B.PRECIP, np.array([ts.prcp[d, 0]]))
        m.set_value(B.TEMP, np.array([ts.tmean[d, 0]]))
        m.set_value(B.TMAX, np.array([ts.tmax[d, 0]]))
        m.set_value(B.TMIN, np.array([ts.tmin[d, 0]]))
        m.update()
        daily.append(m.get_value_ptr(B.RUNOFF_DEPTH)[0])
    hourly = r["main_m"].reshape(n_days, 24).sum(1)
    daily = np.asarray(daily)
    assert np.all(daily > 0)
    assert abs(hourly.sum() / daily.sum() - 1.0) < 0.10
    step = np.abs(np.diff(r["main_m"]))
    assert step[23::24].mean() <= 1.5 * np.delete(step, np.s_[23::24]).mean()
    assert r["flow_m3s"].max() < 200.0  # the daily pulse train peaked at ~1270 m3 s-1


def test_units_and_errors(staged, tmp_path):
    assert R.convert(1.0, "mm s-1", "mm h-1") == 3600.0
    assert R.convert(1.0, "mm s-1", "mm d-1") == 86400.0
    assert R.convert(273.15, "K", "degC") == 0.0
    assert R.convert(2.0, "m", "mm") == 2000.0
    with pytest.raises(R.ReplayError, match="no unit conversion from 'W m-2' to 'degC'"):
        R.convert(1.0, "W m-2", "degC")
    with pytest.raises(R.ReplayError, match="unknown BMI time units"):
        R.time_units_seconds("fortnights")
    real = staged / "ngen_example"
    bad = json.loads((real / "realization.json").read_text())
    bad["global"]["formulations"][0]["params"]["init_config"] = "./nowhere/{{id}}.yaml"
    (real / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(R.ReplayError, match="init_config .* is not a readable file"):
        R.replay(real / "bad.json", real / "catchment_data.geojson", write=False)
    bad = json.loads((real / "realization.json").read_text())
    bad["global"]["formulations"][0]["params"]["variables_names_map"][B.TEMP] = "DSWRF_surface"
    (real / "bad2.json").write_text(json.dumps(bad))
    with pytest.raises(R.ReplayError, match="DSWRF_surface -> land_surface_air__temperature"):
        R.replay(real / "bad2.json", real / "catchment_data.geojson", ids=["cat-27"],
                 write=False)
    # ngen skips catchment ids without cat-/wb-/agg- and aborts: so does the replay
    geo = json.loads((real / "catchment_data.geojson").read_text())
    geo["features"][0]["id"] = "27"
    (real / "bare.geojson").write_text(json.dumps(geo))
    with pytest.raises(R.ReplayError, match="'27' does not start with cat-, wb-, agg-"):
        R.replay(real / "realization.json", real / "bare.geojson", write=False)


def test_cli_errors_are_one_line_and_keep_the_previous_outputs(tmp_path, capsys):
    """The README's python_type bmi_lgar.BmiLGAR runs; end before start, a misspelt python_type
    and negative forcing are refused in one line naming the file (and catchment, line, time,
    value), exit code 2, and the previous run's output files are left whole."""
    real = tmp_path / "r"
    shutil.copytree(REPO / "realizations" / "dlgar_ngen_example", real,
                    ignore=shutil.ignore_patterns("output"))
    rj = json.loads((real / "realization.json").read_text())
    rj["global"]["formulations"][0]["params"]["python_type"] = "bmi_lgar.BmiLGAR"
    (real / "readme.json").write_text(json.dumps(rj))
    out = tmp_path / "out"
    args = ["--catchments", str(real / "catchment_data.geojson"), "--ids", "cat-27", "--out",
            str(out)]
    assert R.main([str(real / "readme.json"), *args]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before) == 2 and all(len(b) > 10000 for b in before.values())
    capsys.readouterr()

    def refused(change, msg):
        bad = json.loads(json.dumps(rj))
        change(bad)
        (real / "bad.json").write_text(json.dumps(bad))
        assert R.main([str(real / "bad.json"), *args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert re.search(msg, err), err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    refused(lambda r: r["time"].update(end_time="2015-11-30 00:00:00"),
            r"bad.json: time.end_time 2015-11-30 00:00:00 is before time.start_time")
    refused(lambda r: r["global"]["formulations"][0]["params"].update(
        python_type="bmi_lgar.bmi.BmiLgar"), r"bad.json: python_type 'bmi_lgar.bmi.BmiLgar' "
            r"cannot be loaded .*bmi_dhbv.BmiDHBV, bmi_dcfe.BmiDCFE, bmi_lgar.BmiLGAR")
    refused(lambda r: r["global"]["formulations"][0]["params"].update(python_type="BmiLGAR"),
            r"python_type 'BmiLGAR' must be 'package.ClassName'")
    forcing = next((real / "forcing").glob("cat-27*.csv"))
    lines = forcing.read_text().splitlines()
    col = lines[0].split(",").index("precip_rate [m s-1]")
    row = lines[100].split(",")
    row[col] = "-1e-4"
    lines[100] = ",".join(row)
    forcing.write_text("\n".join(lines) + "\n")
    refused(lambda r: None, r"cat-27: .*cat-27_.*\.csv line 101 \(2015-12-05 03:00:00\) column "
                            r"'precip_rate' = -0.0001: .*precipitation_rate = .*must be >= 0")


def test_cli_help(capsys):
    with pytest.raises(SystemExit):
        R.main(["--help"])
    assert "realization" in capsys.readouterr().out


def test_realization_cli(tmp_path, capsys):
    from bmi_dhbv import realization

    table = tmp_path / "attrs.csv"
    from delta_core.config import DataConfig
    from delta_core.data.camels import CamelsDataset

    need = DataConfig().attributes
    attrs = CamelsDataset().attributes(["03439000"], need)
    import csv
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "lat", "area_km2", *need])
        w.writerow(["cat-1", 35.2, 10.5, *(attrs[a][0] for a in need)])
    out = tmp_path / "r"
    assert realization.main(["--table", str(table), "--out", str(out), "--start",
                             "2015-12-01 00:00:00", "--end", "2015-12-02 23:00:00"]) == 0
    real = json.loads((out / "realization.json").read_text())
    params = real["global"]["formulations"][0]["params"]
    assert params["python_type"] == "bmi_dhbv.BmiDHBV"
    assert params["variables_names_map"] == {B.PRECIP: "precip_rate", B.TEMP: "TMP_2maboveground"}
    cfg = yaml.safe_load((out / "config" / "cat-1.yaml").read_text())
    assert cfg["area_km2"] == 10.5 and cfg["latitude"] == 35.2 and len(cfg["attributes"]) == 35
    with pytest.raises(SystemExit):
        realization.main(["--help"])


@pytest.mark.parametrize("module, step, line", [
    ("bmi_dhbv", 3600, "dHBV bundle dhbv_hourly.pt, the shipped default for 3600 s steps "
                       "(no bundle key"),
    ("bmi_dhbv", 86400, "dHBV bundle dhbv_dynamic.pt, the shipped default for 86400 s steps"),
    ("bmi_dcfe", 3600, "dCFE bundle dcfe_hourly.pt, the shipped default for 3600 s steps"),
    ("bmi_lgar", 3600, "dLGAR bundle dlgar_hourly.pt, the shipped default for 3600 s steps "
                       "(bundle: shipped")])
def test_each_writer_runs_and_names_its_best_shipped_bundle(module, step, line, tmp_path,
                                                            capsys):
    """Without --bundle every writer's configs run the model's shipped bundle for the step (the
    hourly fine-tuned ones for hourly steps), and its output says which in one line."""
    import importlib

    main = importlib.import_module(f"{module}.realization").main
    geo = REPO / "realizations" / "ngen_example" / "catchment_data.geojson"
    assert main(["--stand-in", "03439000", "--catchments", str(geo), "--out", str(tmp_path),
                 "--start", "2015-12-01 00:00:00", "--end", "2015-12-02 23:00:00",
                 "--time-step", str(step)]) == 0
    out = capsys.readouterr().out
    assert len([x for x in out.splitlines() if x.startswith("configs run")]) == 1
    assert f"configs run {line}" in out, out


def test_bundle_none_is_refused_where_a_bundle_is_needed(tmp_path, capsys):
    from bmi_dcfe import realization

    geo = REPO / "realizations" / "ngen_example" / "catchment_data.geojson"
    assert realization.main(["--stand-in", "03439000", "--catchments", str(geo), "--out",
                             str(tmp_path), "--start", "2015-12-01 00:00:00", "--end",
                             "2015-12-01 23:00:00", "--bundle", "none"]) == 2
    assert capsys.readouterr().err == ("error: --bundle none: dCFE needs a weight bundle; leave "
                                       "--bundle out for the shipped one or give a bundle.pt\n")


def test_writer_warns_when_monthly_rain_is_implausibly_small(tmp_path):
    """ngen's example forcing without its unit ([m s-1]) is read in mm s-1: 0.217 mm in
    December 2015. The writer warns once, naming file, column, unit and total; with the unit
    written in the header it stays silent."""
    import warnings

    from bmi_dhbv import realization

    src = REPO / "realizations" / "ngen_example"
    caught = {}
    for name, header in (("declared", "precip_rate [m s-1]"), ("bare", "precip_rate")):
        dst = tmp_path / name
        (dst / "forcing").mkdir(parents=True)
        for f in (src / "forcing").glob("*.csv"):
            (dst / "forcing" / f.name).write_text(
                f.read_text().replace("precip_rate [m s-1]", header, 1))
        shutil.copy(src / "catchment_data.geojson", dst / "catchment_data.geojson")
        shutil.copy(src / "nexus_data.geojson", dst / "nexus_data.geojson")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            assert realization.main(["--stand-in", "03439000", "--catchments",
                                     str(dst / "catchment_data.geojson"), "--out", str(dst),
                                     "--start", "2015-12-01 00:00:00",
                                     "--end", "2015-12-30 23:00:00"]) == 0
        caught[name] = [str(x.message) for x in w if "mm of rain" in str(x.message)]
    assert caught["declared"] == []
    [msg] = caught["bare"]
    assert re.match(r".*/bare/forcing/cat-27_.*\.csv: column 'precip_rate' read in mm s-1 gives "
                    r"0\.217 mm of rain per 30 days in its wettest month 2015-12 \(3 of 3 "
                    r"forcing file\(s\) checked below 1 mm\): a unit error\? .*"
                    r"'precip_rate \[m s-1\]'", msg), msg


def test_realization_cli_errors_are_one_line(tmp_path, capsys):
    from bmi_dhbv import realization

    assert realization.main(["--camels", "01022500", "--out", str(tmp_path / "a"), "--start",
                             "2000-01-02", "--end", "2000-01-01"]) == 2
    assert capsys.readouterr().err == "error: --end 2000-01-01 is before --start 2000-01-02\n"
    assert realization.main(["--camels", "99999999", "--out", str(tmp_path / "b"), "--start",
                             "2000-01-01", "--end", "2000-01-02"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown basin(s) ['99999999']") and "Traceback" not in err


def test_realization_writer_refuses_what_ngen_refuses(tmp_path, capsys):
    """A missing spin-up file (the BMI's initialize aborts ngen) and catchment ids without
    cat-/wb-/agg- (ngen skips them and aborts) are refused in one line, before any file."""
    from bmi_dhbv import realization

    geo = json.loads((REPO / "realizations" / "ngen_example" / "catchment_data.geojson")
                     .read_text())
    good, bare = tmp_path / "good.geojson", tmp_path / "bare.geojson"
    good.write_text(json.dumps(geo))
    geo["features"][0]["id"] = "27"
    bare.write_text(json.dumps(geo))
    out = tmp_path / "out"
    common = ["--stand-in", "01022500", "--out", str(out), "--start", "2015-12-01 00:00:00",
              "--end", "2015-12-02 00:00:00"]
    for extra, msg in (
            (["--catchments", str(good), "--spinup-forcing", "../spinup/none.csv"],
             rf"error: --spinup-forcing \.\./spinup/none\.csv does not exist \(looked for "
             rf".*/\.\./spinup/none\.csv and {out / 'config'}/\.\./spinup/none\.csv\): .*"
             rf"--cold-start$"),
            (["--catchments", str(bare)], rf"error: {bare}: catchment id '27' does not start "
                                          rf"with cat-, wb-, agg-: .*name it e.g. 'cat-27'")):
        assert realization.main(common + extra) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and re.match(msg, err), err
        assert not out.exists()
    (tmp_path / "spinup").mkdir()
    (tmp_path / "spinup" / "s.csv").write_text("date,prcp_mm_day,tmax_c,tmin_c\n")
    # the spin-up path is relative to out/config
    assert realization.main(common[:3] + [str(tmp_path)] + common[4:] + [
        "--catchments", str(good), "--spinup-forcing", "../spinup/s.csv"]) == 0


def test_realization_pet_input_option(tmp_path):
    from bmi_dhbv import realization

    out = tmp_path / "p"
    assert realization.main(["--camels", "01022500", "--out", str(out), "--start",
                             "2000-01-01 00:00:00", "--end", "2000-01-02 23:00:00",
                             "--pet-source", "input", "--time-step", "86400"]) == 0
    params = json.loads((out / "realization.json").read_text())["global"]["formulations"][0]
    names = params["params"]["variables_names_map"]
    assert names[B.PET] == "pet" and B.TMAX not in names
    assert yaml.safe_load((out / "config" / "cat-01022500.yaml").read_text())["pet_source"] == "input"


@pytest.mark.parametrize("bundles, spread_only", [("dhbv_hourly.pt,dhbv_dynamic_hourly.pt", True),
                                                  ("dhbv_hourly.pt,dcfe_hourly.pt", False)])
def test_realization_writer_ensemble(tmp_path, capsys, bundles, spread_only):
    """--bundle A,B writes an ensemble: the list in every config, the attributes of every member,
    and the outputs its BMI reports (with the spread; of two models, those they share), so the
    realization replays as ngen runs it."""
    from bmi_dhbv import realization
    from delta_core.bmi.ensemble import RUNOFF_SPREAD
    from delta_core.ngen.realization import csv_outputs

    out = tmp_path / "e"
    assert realization.main(["--camels", "01022500", "--out", str(out), "--start",
                             "2000-01-01 00:00:00", "--end", "2000-01-03 23:00:00",
                             "--write-forcing", "--file-pattern", "{{id}}.csv",
                             "--bundle", bundles]) == 0
    assert "configs run an ensemble in dHBV" in capsys.readouterr().out
    cfg = yaml.safe_load((out / "config" / "cat-01022500.yaml").read_text())
    assert cfg["bundle"] == bundles.split(",")
    params = json.loads((out / "realization.json").read_text())["global"]["formulations"][0]
    names = params["params"]["output_variables"]
    single = [v.standard_name for v in csv_outputs("dhbv")]
    assert names[-1] == RUNOFF_SPREAD.standard_name
    assert (names[:-1] == single) == spread_only and set(names[:-1]) <= set(single)
    res = R.replay(out / "realization.json", out / "catchment_data.geojson", write=False)
    assert len(res["times"]) == 72


def test_forcing_column_without_unit_is_passed_raw_as_ngen_does(staged, tmp_path):
    """ngen cannot convert a column whose header has no [unit]: it warns and passes the raw
    value. The replay does the same (so both agree), and says which header to write."""
    import shutil
    import warnings

    src = staged / "ngen_example"
    dst = tmp_path / "nounit"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("output"))
    for f in (dst / "forcing").glob("*.csv"):
        rows = [line.split(",") for line in f.read_text().splitlines()]
        col = rows[0].index("TMP_2maboveground")
        rows[0][col] = "air_temp"  # degC, no unit in the header
        for r in rows[1:]:
            r[col] = repr(float(r[col]) - 273.15)
        f.write_text("\n".join(",".join(r) for r in rows) + "\n")
    rj = json.loads((dst / "realization.json").read_text())
    rj["global"]["formulations"][0]["params"]["variables_names_map"][B.TEMP] = "air_temp"
    (dst / "realization.json").write_text(json.dumps(rj))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = R.replay(dst / "realization.json", dst / "catchment_data.geojson", ids=["cat-27"],
                       write=False)
    msgs = [str(c.message) for c in caught if "no [unit]" in str(c.message)]
    assert len(msgs) == 1 and "'air_temp [degC]'" in msgs[0]
    ref = R.replay(src / "realization.json", src / "catchment_data.geojson", ids=["cat-27"],
                   write=False)
    np.testing.assert_allclose(res["catchments"]["cat-27"]["main_m"],
                               ref["catchments"]["cat-27"]["main_m"], rtol=1e-12, atol=0)


def test_cli_warnings_are_one_line_on_a_line_of_their_own(staged, tmp_path, capsys):
    """The console scripts print a warning as 'warning: <message>' (no source path or code
    line), and in a log file not on the last line of a progress bar."""
    import io
    import warnings

    from tqdm import tqdm

    from delta_core import console

    real = staged / "ngen_example"
    rj = json.loads((real / "realization.json").read_text())
    rj["time"]["end_time"] = "2015-12-01 05:00:00"
    (real / "short.json").write_text(json.dumps(rj))
    original = warnings.formatwarning
    try:
        assert R.main([str(real / "short.json"), "--catchments",
                       str(real / "catchment_data.geojson"), "--ids", "cat-27", "--out",
                       str(tmp_path / "o")]) == 0
        with pytest.warns(UserWarning, match="still recorded"):  # recording is untouched
            warnings.warn("still recorded")
        log = io.StringIO()  # not a terminal, like stderr redirected to a file
        for _ in tqdm(range(3), file=log, leave=False, desc="loading"):
            pass
        log.write(warnings.formatwarning("evaluation period overlaps the\ntraining period",
                                         UserWarning, "x.py", 1))
        err = warnings.formatwarning("evaluation period overlaps the training period",
                                     UserWarning, "x.py", 1)
    finally:
        warnings.formatwarning = original
    assert "Warning" not in err and ".py" not in err
    assert err.splitlines()[-1] == "warning: evaluation period overlaps the training period"
    assert log.getvalue().splitlines()[-1] == err.splitlines()[-1]
    assert console.format_warning("x", DeprecationWarning) == "warning (DeprecationWarning): x"


REAL_NGEN = DATA / "ngen_real"


@pytest.mark.parametrize("name", sorted(p.name for p in REAL_NGEN.iterdir() if p.is_dir()))
def test_replay_equals_real_ngen(name, tmp_path):
    """The replay driver writes, for a shipped realization as shipped (shipped bundles), files
    byte-identical to those the real ngen engine wrote (tests/data/ngen_real/README.md)."""
    import gzip

    real = tmp_path / name
    shutil.copytree(REPO / "realizations" / name, real, ignore=shutil.ignore_patterns("output"))
    R.replay(real / "realization.json", real / "catchment_data.geojson",
             output_root=tmp_path / "out")
    expected = sorted((REAL_NGEN / name).glob("*.csv.gz"))
    assert expected
    for ref in expected:
        got = (tmp_path / "out" / ref.name[:-3]).read_bytes()
        assert got == gzip.decompress(ref.read_bytes()), ref.name


def test_synthetic_hourly_rain_block_keeps_the_daily_totals():
    """--rain-block puts each day's rain evenly in its hours and nowhere else; the default
    spreads it over all 24; both give back the daily total; a block past midnight is refused."""
    from delta_core.ngen.realization import hourly_from_daily

    prcp = np.array([0.0, 12.0, 3.3])
    t = np.array([10.0, 12.0, 8.0])
    even, temp = hourly_from_daily(prcp, t, t + 5, t - 5)
    block, temp_b = hourly_from_daily(prcp, t, t + 5, t - 5, rain_block=(12, 6))
    np.testing.assert_array_equal(temp, temp_b)
    np.testing.assert_allclose(even.sum(1) * 3600.0, prcp, rtol=1e-14)
    np.testing.assert_allclose(block.sum(1) * 3600.0, prcp, rtol=1e-14)
    assert np.all(block[:, :12] == 0) and np.all(block[:, 18:] == 0)
    np.testing.assert_allclose(block[1, 12:18] * 3600.0, 2.0, rtol=1e-14)
    with pytest.raises(ValueError, match="within one day"):
        hourly_from_daily(prcp, t, t + 5, t - 5, rain_block=(20, 6))


def test_synthetic_hourly_rain_can_fall_in_stochastic_storms():
    """--rain-stochastic SEED: each day's rain in storms of a few hours, daily totals kept, the
    same storms for the same seed and gauge, others for another gauge."""
    from delta_core.ngen.realization import hourly_from_daily
    from delta_core.patterns import WithinDay

    prcp = np.full(200, 10.0)
    t = np.full(200, 10.0)
    rain = WithinDay("stochastic", seed=3)
    a, _ = hourly_from_daily(prcp, t, t + 5, t - 5, rain=rain, gauge="01022500")
    np.testing.assert_allclose(a.sum(1) * 3600.0, prcp, rtol=1e-13)
    assert (a > 0).sum(1).mean() < 8  # storms, not all-day rain
    b, _ = hourly_from_daily(prcp, t, t + 5, t - 5, rain=rain, gauge="01022500")
    c, _ = hourly_from_daily(prcp, t, t + 5, t - 5, rain=rain, gauge="09480000")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # --rain-day-start-hour -8: the same storms 8 hours earlier (data day from 16:00 before)
    early, _ = hourly_from_daily(prcp, t, t + 5, t - 5, gauge="01022500",
                                 rain=WithinDay("stochastic", seed=3, day_start_hour=-8))
    np.testing.assert_array_equal(early.reshape(-1)[:-8], a.reshape(-1)[8:])
    assert not early.reshape(-1)[-8:].any()


@pytest.mark.parametrize("name", ["ngen_example", "dcfe_ngen_example", "dlgar_ngen_example"])
def test_example_forcing_rain_is_the_months_rain(name):
    """The precipitation column the ngen-example realizations map, in the unit its header
    declares (precip_rate [m s-1]: the column is 1000 times smaller than ngen's default mm s-1),
    gives December 2015's rain: the month's APCP_surface total (kg m-2 per hour = mm) within 1 %."""
    import json

    from delta_core.ngen import crosswalk as B
    from delta_core.ngen.replay import CsvForcing

    real = REPO / "realizations" / name
    cfg = json.loads((real / "realization.json").read_text())["global"]
    column = cfg["formulations"][0]["params"]["variables_names_map"][B.PRECIP]
    for path in sorted((real / cfg["forcing"]["path"]).glob("*.csv")):
        f = CsvForcing(path)
        rain_mm = B.convert(f.columns[column], f.units[column], "mm h-1").sum()
        apcp_mm = f.columns["APCP_surface"].sum()
        assert 100.0 < apcp_mm < 400.0, (path.name, apcp_mm)
        assert rain_mm == pytest.approx(apcp_mm, rel=0.01), (path.name, rain_mm, apcp_mm)
