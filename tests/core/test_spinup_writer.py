"""The realization writers' spin-up and path checks: by default each config cycles its
catchment's own run forcing (``spinup: {forcing: ../forcing/<file>}``); ``--spinup-forcing DIR``
cycles another directory of hourly files; every path written is checked, and a run forcing that
does not cover ``--start``..``--end`` is refused in one line (ngen would abort)."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import yaml

from conftest import REPO
from delta_core.ngen import replay as R

EXAMPLE = REPO / "realizations" / "ngen_example"
GEOJSON = EXAMPLE / "catchment_data.geojson"
PERIOD = ["--start", "2015-12-01 00:00:00", "--end", "2015-12-30 23:00:00"]


def _write(tmp_path, name: str, *extra: str, model: str = "bmi_dcfe") -> int:
    import importlib

    writer = importlib.import_module(f"{model}.realization")
    return writer.main(["--catchments", str(GEOJSON), "--stand-in", "03439000", "--out",
                        str(tmp_path / name), *PERIOD, *extra])


def _config(out, cid: str = "cat-27") -> dict:
    return yaml.safe_load((out / "config" / f"{cid}.yaml").read_text())


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_default_spinup_cycles_the_run_forcing(tmp_path):
    """Without spin-up options an hourly config cycles its own forcing file (relative to the
    config folder, existing after the copy); --cold-start writes none."""
    with pytest.warns(UserWarning, match=r"30 days of forcing, fewer than --spinup-years 1"):
        assert _write(tmp_path, "own") == 0
    spin = _config(tmp_path / "own")["spinup"]
    assert spin["forcing"].startswith("../forcing/cat-27") and spin["years"] == 1
    assert (tmp_path / "own" / "config" / spin["forcing"]).is_file()
    assert _write(tmp_path, "cold", "--cold-start") == 0
    cfg = _config(tmp_path / "cold")
    assert "spinup" not in cfg and "spinup_forcing" not in cfg


def test_replay_with_the_default_spinup_starts_warm(tmp_path):
    """ngen's call sequence on the default realization: each catchment's BMI spins up on its
    own December at initialize, so the run starts from other stores than the cold start and its
    runoff differs."""
    with pytest.warns(UserWarning):
        assert _write(tmp_path, "own") == 0
        assert _write(tmp_path, "cold", "--cold-start") == 0
        own = R.replay(tmp_path / "own" / "realization.json", GEOJSON, write=False)
    cold = R.replay(tmp_path / "cold" / "realization.json", GEOJSON, write=False)
    for cid in own["catchments"]:
        a, b = own["catchments"][cid]["main_m"], cold["catchments"][cid]["main_m"]
        assert np.all(np.isfinite(a)) and not np.allclose(a, b), cid


def test_writer_refuses_a_forcing_that_does_not_cover_the_run(tmp_path, capsys):
    """--end beyond the forcing (ngen: "Forcing had bad index 720") is refused in one line that
    names the file, its period, the run's and the fix, before any config is written."""
    import bmi_dcfe.realization as writer

    assert writer.main(["--catchments", str(GEOJSON), "--stand-in", "03439000", "--out",
                        str(tmp_path / "o"), "--start", "2015-12-01 00:00:00", "--end",
                        "2015-12-31 00:00:00"]) == 2
    line = _one_line_error(capsys)
    assert re.match(r"error: .*/forcing/cat-\d+_.*\.csv: the forcing of cat-\d+ covers "
                    r"2015-12-01 00:00:00 \.\. 2015-12-30 23:00:00, but the run needs "
                    r"2015-12-01 00:00:00 \.\. 2015-12-31 00:00:00 .*extend the forcing$", line)
    assert not (tmp_path / "o" / "config").exists()


def test_spinup_forcing_directory_relative_to_the_current_directory(tmp_path, monkeypatch,
                                                                   capsys):
    """--spinup-forcing DIR (relative: to the current directory) gives each config its file
    there, written so that the BMI finds it from the config folder; a directory without a
    catchment's file and a file the BMI cannot read are refused in one line."""
    spin = tmp_path / "spin"
    shutil.copytree(EXAMPLE / "forcing", spin)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="fewer than --spinup-years"):
        assert _write(tmp_path, "a", "--spinup-forcing", "spin") == 0
    path = _config(tmp_path / "a")["spinup"]["forcing"]
    assert (tmp_path / "a" / "config" / path).resolve().parent == spin
    (next(spin.glob("cat-52*"))).unlink()
    assert _write(tmp_path, "b", "--spinup-forcing", "spin") == 2
    assert re.match(r"error: --spinup-forcing spin: no file matching '\.\*\{\{id\}\}\.\*\.csv' "
                    r"for \['cat-52'\] in .*/spin: give one hourly forcing file",
                    _one_line_error(capsys))
    bad = next(spin.glob("cat-27*"))
    bad.write_text(bad.read_text().replace("TMP_2maboveground", "T2"))
    shutil.copy(next(spin.glob("cat-67*")), spin / "cat-52.csv")
    assert _write(tmp_path, "c", "--spinup-forcing", "spin") == 2
    assert re.match(r"error: spin-up forcing of cat-27: .*cat-27.*: no column "
                    r"'TMP_2maboveground'.*--cold-start$", _one_line_error(capsys))
    assert not (tmp_path / "c").exists()


def test_spinup_options_that_exclude_each_other(tmp_path, capsys):
    assert _write(tmp_path, "x", "--cold-start", "--spinup-forcing", str(EXAMPLE / "forcing")
                  ) == 2
    assert "--cold-start excludes --spinup-forcing" in _one_line_error(capsys)
    assert _write(tmp_path, "y", "--time-step", "86400", "--spinup-forcing",
                  str(EXAMPLE / "forcing"), model="bmi_dhbv") == 2
    assert "cycles hourly forcing: use --time-step 3600" in _one_line_error(capsys)


def test_a_daily_forcing_row_covers_its_day(tmp_path, capsys):
    """Daily rows (``--time-step 86400``) cover their whole day: an end at 23:00 of the last
    day is inside the forcing; daily configs get no cycled spin-up by default."""
    from bmi_dhbv import realization

    common = ["--camels", "01022500", "--write-forcing", "--time-step", "86400", "--start",
              "2000-01-01 00:00:00"]
    assert realization.main(common + ["--out", str(tmp_path / "a"),
                                      "--end", "2000-01-03 23:00:00"]) == 0
    cfg = _config(tmp_path / "a", "cat-01022500")
    assert "spinup" not in cfg  # daily steps: no cycled spin-up by default
    assert not cfg.get("spinup_forcing")


def test_other_run_columns_than_the_spinup_reads_are_warned(tmp_path):
    with pytest.warns(UserWarning, match=r"the run reads atmosphere_water__liquid_equivalent_"
                      r"precipitation_rate from column 'APCP_surface', the cycled spin-up from "
                      r"'precip_rate'"):
        assert _write(tmp_path, "m", "--map", "atmosphere_water__liquid_equivalent_"
                      "precipitation_rate=APCP_surface") == 0


@pytest.mark.camels
@pytest.mark.parametrize("model", ["bmi_dcfe", "bmi_dhbv"])
def test_spinup_start_writes_daily_rows_the_bmi_runs(tmp_path, model):
    """``--spinup-start`` writes the basin's daily rows (dCFE and dHBV alike: the BMIs spread
    them over the hours as their bundles were trained) ending the day before ``--start``, and
    the config spins up on them."""
    import importlib

    from conftest import CAMELS_PACK
    from delta_core.registry import model_spec

    out = tmp_path / "out"
    writer = importlib.import_module(f"{model}.realization")
    assert writer.main(["--camels", "01022500", "--camels-root", str(CAMELS_PACK), "--out",
                        str(out), "--start", "2001-10-01 00:00:00", "--end",
                        "2001-10-03 23:00:00", "--time-step", "3600", "--write-forcing",
                        "--spinup-start", "2000-10-01", "--file-pattern", "{{id}}.csv"]) == 0
    rows = (out / "spinup" / "cat-01022500.csv").read_text().splitlines()
    assert rows[0] == "date,prcp_mm_day,tmax_c,tmin_c" and len(rows) == 1 + 365
    assert rows[-1].startswith("2001-09-30,")
    bmi = model_spec(model.split("_")[1]).load_bmi_class()()
    bmi.initialize(str(out / "config" / "cat-01022500.yaml"))
    assert bmi.core.store_values().max() > 0
