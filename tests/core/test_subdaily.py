"""The sub-daily engine and what feeds it: within-day patterns, the step engine, hourly forcing
files and `<model>-eval --hourly-forcing`."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from delta_core import subdaily
from delta_core.hourly_forcing import (HourlyForcingError, read_directory, trailing_hargreaves,
                                       write_directory)
from delta_core.patterns import WithinDay, basin_rng, spread_rain, to_hourly

from bmi_dhbv.bmi import HOURLY_BUNDLE as HOURLY


# -- patterns ----------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", [WithinDay("uniform"), WithinDay("block", 20, 4),
                                     WithinDay("block", 0, 24), WithinDay("stochastic"),
                                     WithinDay("stochastic", storm_hours_mean=1.0,
                                               max_storm_hours=1, storms_extra_mean=0.0)])
def test_patterns_keep_daily_totals(pattern):
    w = pattern.draw(300, 4, np.random.default_rng(0))
    assert w.shape == (300, 4, 24) and (w >= 0).all()
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=0, atol=1e-14)
    daily = torch.rand(300, 4, dtype=torch.float64) * 50
    np.testing.assert_allclose(subdaily.daily_sums(to_hourly(daily, torch.from_numpy(w))).numpy(),
                               daily.numpy(), rtol=1e-13)


def test_stochastic_storms_are_short_peaked_and_seeded():
    """Storms of a few hours at any hour of the day; one-hour storms with a single storm per
    day put the day's total into one hour; draws are reproducible per seed and basin."""
    p = WithinDay("stochastic")
    w = p.draw(5000, 1, np.random.default_rng(1))[:, 0]
    wet = (w > 0).sum(1)
    assert 3.0 < wet.mean() < 6.0 and wet.min() >= 1 and wet.max() <= 24
    peaks = np.bincount(w.argmax(1), minlength=24)
    assert (peaks > 0).all()  # peaks at every hour of the day
    one = WithinDay("stochastic", storm_hours_mean=1.0, max_storm_hours=1, storms_extra_mean=0.0)
    assert ((one.draw(100, 2, np.random.default_rng(3)) > 0).sum(-1) == 1).all()
    a = p.draw_for_basins(50, ["01022500", "03439000"])
    b = p.draw_for_basins(50, ["03439000"])
    np.testing.assert_array_equal(a[:, 1], b[:, 0])  # independent of the other basins
    assert not np.array_equal(a[:, 0], a[:, 1])
    other = WithinDay("stochastic", seed=7).draw_for_basins(50, ["03439000"])
    assert not np.array_equal(other, b)
    np.testing.assert_array_equal(p.draw(5, 1, basin_rng(0, "x")), p.draw(5, 1, basin_rng(0, "x")))


def test_centred_storms_keep_the_storms_and_fix_their_hour():
    """storm_centre_hour moves each day's storms as a whole: the same hourly amounts, their
    mean hour at the given hour (to the hour) unless the storms wrap around midnight."""
    rng = lambda: basin_rng(0, "01022500")  # noqa: E731
    drawn = WithinDay("stochastic").draw(2000, 1, rng())[:, 0]
    centred = WithinDay("stochastic", storm_centre_hour=15).draw(2000, 1, rng())[:, 0]
    np.testing.assert_array_equal(np.sort(centred, -1), np.sort(drawn, -1))
    for k in range(2000):  # a rotation of the day's hours
        assert any(np.array_equal(np.roll(drawn[k], s), centred[k]) for s in range(24))
    mean_hour = (centred * np.arange(24)).sum(-1)
    assert np.mean(np.abs(mean_hour - 15) <= 0.5) > 0.95
    assert np.std((drawn * np.arange(24)).sum(-1)) > 4.0
    with pytest.raises(ValueError, match="for stochastic rain only"):
        WithinDay("uniform", storm_centre_hour=15)
    with pytest.raises(ValueError, match="an hour 0..23"):
        WithinDay("stochastic", storm_centre_hour=24)


def test_pattern_errors():
    with pytest.raises(ValueError, match="within one day"):
        WithinDay("block", 20, 6)
    with pytest.raises(ValueError, match="choose one of"):
        WithinDay("gauss")
    with pytest.raises(ValueError, match="no fixed weights"):
        WithinDay("stochastic").rain_weights()
    with pytest.raises(ValueError, match="day_start_hour must lie in -23..0"):
        WithinDay("uniform", day_start_hour=3)


def test_data_day_before_midnight_moves_the_rain_earlier():
    """day_start_hour -k: a data day's rain falls k hours earlier, the same amounts in the same
    order; the first k hours of the first day fall before the run, the last k hours are dry;
    PET and temperature stay on the calendar day."""
    daily = torch.rand(10, 3, dtype=torch.float64) * 20
    w = torch.from_numpy(WithinDay("stochastic").draw(10, 3, np.random.default_rng(2)))
    base = to_hourly(daily, w)
    moved = spread_rain(daily, w, -8)
    np.testing.assert_array_equal(moved[:-8].numpy(), base[8:].numpy())
    assert (moved[-8:] == 0).all()
    assert torch.equal(spread_rain(daily, w, 0), base)
    forcing = torch.stack([daily, torch.full_like(daily, 5.0), daily / 10], -1)
    plain = subdaily.step_forcing(forcing, WithinDay("block", 14, 3), {})
    early = subdaily.step_forcing(forcing, WithinDay("block", 14, 3, day_start_hour=-8), {})
    np.testing.assert_array_equal(early.prcp[:-8].numpy(), plain.prcp[8:].numpy())
    assert torch.equal(early.pet, plain.pet) and torch.equal(early.temp, plain.temp)
    assert early.prcp[6::24].gt(0).all()  # 14:00 of the data day is 06:00 of the calendar day


def test_older_bundles_keep_their_pattern():
    """Flat keys of bundles written before physics.within_day are read as they were trained;
    a config that mixes both forms is refused."""
    from delta_core.config import ConfigError
    from delta_core.registry import model_spec

    spec = model_spec("dcfe")
    old = spec.physics_section({"rain_disaggregation": "block", "rain_start_hour": 10,
                                "rain_hours": 3})
    assert old.pattern == WithinDay("block", 10, 3, "sine")
    assert spec.physics_section({}).pattern.rain == "stochastic"  # new default
    old_hbv = model_spec("dhbv").physics_section({"steps_per_day": 24, "rain_hours": 6}, "x")
    assert old_hbv.pattern.rain == "uniform"  # dHBV's former default
    with pytest.raises(ConfigError, match="within_day both given"):
        spec.physics_section({"rain_hours": 3, "within_day": {"rain": "uniform"}})


# -- the step engine ---------------------------------------------------------------------------
def _reservoir_block(k: torch.Tensor, inflow: torch.Tensor):
    """A linear reservoir: the physics of a toy model as an engine block function."""
    def block(state, s0, s1, grad):
        out = []
        for s in range(s0, s1):
            state = state + inflow[s]
            q = k * state
            state = state - q
            out.append(q)
        return state, {"q": torch.stack(out)}
    return block


@pytest.mark.parametrize("block_steps", [None, 24, 48 * 5])
def test_run_steps_is_independent_of_blocks(block_steps):
    """Warm-up without gradient, blocks carrying the state: the same flows and routing
    history whatever the block size, gradients only through the simulated steps."""
    inflow = torch.rand(24 * 30, 3, dtype=torch.float64)
    k = torch.full((3,), 0.1, dtype=torch.float64, requires_grad=True)
    ref = _reservoir_block(k.detach(), inflow)(torch.zeros(3, dtype=torch.float64), 0, 720, True)
    state, series, tails = subdaily.run_steps(
        _reservoir_block(k, inflow), torch.zeros(3, dtype=torch.float64), 720, 24 * 10,
        block_steps, torch.Tensor.detach, history={"q": 30})
    torch.testing.assert_close(series["q"], ref[1]["q"][240:], rtol=1e-14, atol=0)
    torch.testing.assert_close(tails["q"], ref[1]["q"][210:240], rtol=1e-14, atol=0)
    torch.testing.assert_close(state, ref[0], rtol=1e-14, atol=0)
    assert series["q"].requires_grad and not tails["q"].requires_grad
    _, _, short = subdaily.run_steps(_reservoir_block(k, inflow), torch.zeros(3), 720, 24,
                                     block_steps, torch.Tensor.detach, history={"q": 30})
    assert (short["q"][:6] == 0).all()  # history before the first step: zeros


def test_step_forcing_checks_hourly_shape():
    forcing = torch.rand(3, 2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="24 hours per day"):
        subdaily.step_forcing(forcing, WithinDay("uniform"),
                              {"hourly_forcing": torch.zeros(71, 2, 3)})
    s = subdaily.step_forcing(forcing, WithinDay("block", 0, 1), {})
    assert torch.equal(s.prcp[::24], forcing[..., 0]) and torch.equal(s.temp[23::24], forcing[..., 1])


@pytest.mark.parametrize("name", ["dhbv", "dcfe", "dlgar"])
def test_given_hours_equal_the_pattern(name, sample_batch):
    """Each model run on hourly forcing built from a pattern equals its run with that pattern
    (warm days: the snow routine, daily or hourly, passes rain through)."""
    import dataclasses

    model, batch = sample_batch(name)
    if name == "dhbv":
        model.options = dataclasses.replace(model.options, steps_per_day=24, dynamic_lag_days=1)
    else:
        model.config.within_day = WithinDay("stochastic")
    batch = {**batch, "forcing": batch["forcing"].clone()}
    batch["forcing"][..., 1] = 18.0  # no snow
    n_days, n_basins = batch["forcing"].shape[:2]
    w = torch.from_numpy(WithinDay("stochastic").draw(n_days, n_basins, np.random.default_rng(4)))
    steps = subdaily.step_forcing(batch["forcing"], model.pattern, {"rain_weights": w})
    hours = torch.stack([steps.prcp, steps.temp, steps.pet], -1)
    with torch.no_grad():
        a = model({**batch, "rain_weights": w})
        b = model({**batch, "hourly_forcing": hours})
    assert a["streamflow"].sum() > 0
    for k in ("streamflow", "et"):
        torch.testing.assert_close(b[k], a[k], rtol=1e-10, atol=1e-10)


# -- hourly forcing files ----------------------------------------------------------------------
def _files(tmp_path, days=3, **change):
    rng = np.random.default_rng(0)
    h = 24 * days
    p = rng.exponential(1.0, (h, 1)) * (rng.random((h, 1)) < 0.2)
    t = rng.normal(10.0, 3.0, (h, 1))
    write_directory(tmp_path, ["01"], np.datetime64("2000-01-01"), p, t)
    path = tmp_path / "cat-01.csv"
    lines = path.read_text().splitlines()
    for i, line in change.get("lines", {}).items():
        lines[i] = line
    if "header" in change:
        lines[0] = change["header"]
    path.write_text("\n".join(lines) + "\n")
    return p, t, path


def test_hourly_files_round_trip(tmp_path):
    p, t, _ = _files(tmp_path)
    h = read_directory(tmp_path, ["01"])
    np.testing.assert_allclose(h.prcp, p, rtol=1e-15)
    np.testing.assert_allclose(h.temp, t, atol=1e-12)
    assert h.pet is None and h.n_days == 3 and str(h.first_day) == "2000-01-01"


@pytest.mark.parametrize("change, message", [
    ({"header": "time,rain [mm s-1],TMP_2maboveground [K]"}, "no column 'precip_rate'"),
    ({"header": "time,precip_rate [mm],TMP_2maboveground [K]"}, r"unit \[mm\], not a water rate"),
    ({"header": "time,precip_rate [mm s-1],TMP_2maboveground [mm]"}, "not a temperature"),
    ({"header": "time,precip_rate,TMP_2maboveground,PET"}, "'PET' has no unit"),
    ({"lines": {5: "2000-01-01 05:00:00,0.0,280.0"}},  # hour 4 missing
     "line 6: time 2000-01-01T05:00:00 follows 2000-01-01T03:00:00"),
    ({"lines": {5: "2000-01-01 03:00:00,0.0,280.0"}}, "line 6: time 2000-01-01T03:00:00 follows"),
    ({"lines": {10: "2000-01-01 09:00:00,-0.001,280.0"}}, "line 11 .*precipitation -3.6"),
    ({"lines": {10: "2000-01-01 09:00:00,nan,280.0"}}, "line 11 .*precipitation nan"),
    ({"lines": {10: "2000-01-01 09:00:00,0.0,"}}, "line 11 .*temperature nan"),
    ({"lines": {4: "2000-01-01 03:00:00,0.0,12.0"}}, "line 5 .*temperature -261"),
    ({"lines": {4: "yesterday,0.0,280.0"}}, "line 5: cannot read"),
])
def test_hourly_file_errors_name_file_and_row(tmp_path, change, message):
    _, _, path = _files(tmp_path, **change)
    with pytest.raises(HourlyForcingError, match=message) as err:
        read_directory(tmp_path, ["01"])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_hourly_files_missing_or_partial_days(tmp_path):
    with pytest.raises(HourlyForcingError, match="no hourly forcing file for basin 02"):
        _files(tmp_path)
        read_directory(tmp_path, ["01", "02"])
    path = tmp_path / "cat-01.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(HourlyForcingError, match="whole days"):
        read_directory(tmp_path, ["01"])


def test_trailing_hargreaves_equals_the_bmis():
    """The vectorised PET of files without a PET column is the BMIs' per-hour computation."""
    import datetime as dt

    from delta_core.bmi.hourly import TrailingHargreaves
    from delta_core.patterns import pet_hour_weights

    rng = np.random.default_rng(3)
    t = 10 + 8 * np.sin(np.arange(24 * 5) * 2 * np.pi / 24)[:, None] + rng.normal(0, 1, (120, 1))
    w = pet_hour_weights("sine")
    got = trailing_hargreaves(t, np.datetime64("2003-06-01T00:00"), np.array([42.0]), w)[:, 0]
    ref = TrailingHargreaves(42.0, w, "test")
    start = dt.datetime(2003, 6, 1)
    want = []
    for h in range(120):
        ref.push(float(t[h, 0]))
        want.append(ref.pet(start + dt.timedelta(hours=h)))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_eval_on_hourly_files_equals_the_pattern(tmp_path, capsys):
    """`dhbv-eval --hourly-forcing DIR` on files written from the sample's daily forcing with a
    3-hour block (PET column included) scores what `--rain-pattern block --rain-block 14 3`
    scores: spin-up, aggregation for the LSTM and the hourly run agree."""
    from bmi_dhbv.cli import eval_main
    from delta_core.data.camels import CamelsDataset
    from delta_core.evaluation import load_model

    ds = CamelsDataset()
    ids = ds.basin_ids()[:2]
    model, _, _ = load_model(HOURLY, dtype=torch.float64,
                             pattern={"rain": "block", "rain_start_hour": 14, "rain_hours": 3})
    ts = ds.load(ids, start="2006-10-01", end="2007-03-31")
    steps = subdaily.step_forcing(torch.from_numpy(ts.forcing(("prcp", "tmean", "pet"))),
                                  model.pattern, {})
    write_directory(tmp_path / "hourly", ids, np.datetime64("2006-10-01"), steps.prcp.numpy(),
                    steps.temp.numpy(), steps.pet.numpy())
    common = ["--bundle", str(HOURLY), "--basins", ",".join(ids), "--start", "2006-11-01",
              "--threads", "1", "--rain-pattern", "block", "--rain-block", "14", "3"]
    for out, extra in (("files", ["--hourly-forcing", str(tmp_path / "hourly"),
                                  "--end", "2007-06-30"]),  # clipped to the files' last day
                       ("pattern", ["--end", "2007-03-31"])):
        with pytest.raises(SystemExit) as e:
            eval_main(common + extra + ["--out", str(tmp_path / out)])
        assert e.value.code == 0
    import csv

    rows = {k: list(csv.DictReader(open(tmp_path / k / "metrics.csv"))) for k in ("files", "pattern")}
    for a, b in zip(rows["files"], rows["pattern"]):
        assert a["gauge_id"] == b["gauge_id"]
        assert float(a["nse"]) == pytest.approx(float(b["nse"]), abs=1e-5)
        assert float(a["q_mean_sim"]) == pytest.approx(float(b["q_mean_sim"]), rel=1e-5)
    assert "2006-11-01..2007-03-31" in capsys.readouterr().out


def test_eval_pattern_options_are_checked(tmp_path, capsys):
    from bmi_dhbv.cli import eval_main

    with pytest.raises(SystemExit) as e:
        eval_main(["--rain-block", "1", "2", "--out", str(tmp_path)])
    assert e.value.code == 2 and "go with --rain-pattern" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # the daily bundle has no within-day pattern
        eval_main(["--rain-pattern", "uniform",
                   "--out", str(tmp_path)])
    assert e.value.code == 2 and "steps daily" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        eval_main(["--bundle", str(HOURLY), "--day-start-hour", "5", "--out", str(tmp_path)])
    assert e.value.code == 2 and "day_start_hour must lie in -23..0" in capsys.readouterr().err


def test_named_patterns_put_the_rain_in_the_calendar_day_unless_moved():
    """scripts/hourly_skill.py: a named pattern replaces the bundle's data day too (a bundle
    trained with day_start_hour -8 is scored under `stochastic` with rain in the calendar day)."""
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("hourly_skill", REPO / "scripts" / "hourly_skill.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.pattern_fields("stochastic")["day_start_hour"] == 0
    assert mod.pattern_fields("uniform/day-8") == {"rain": "uniform", "day_start_hour": -8}
    assert mod.pattern_fields("bundle") is None
    assert mod.pattern_fields("storms@15/day-8") == {"rain": "stochastic", "seed": 0,
                                                     "storm_centre_hour": 15,
                                                     "day_start_hour": -8}
