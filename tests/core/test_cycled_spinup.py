"""The BMIs' cycled spin-up (``spinup: {forcing: ...}``): the leading years of an hourly
CsvPerFeature file run in one batched call per cycle until the stores settle, ending where the
per-hour BMI path ends (to rounding)."""
from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest

from delta_core.bmi.base import BmiError
from delta_core.hourly_forcing import write_directory
from delta_core.ngen.crosswalk import PRECIP, TEMP
from delta_core.registry import model_spec

#: The shipped default bundle of each hourly model (dynamic parameters for dCFE and dHBV).
MODELS = ["dcfe", "dhbv", "dlgar"]
DAYS = 4


def _forcing(tmp_path, days: int = DAYS, start: str = "1981-01-01", warm: float = 0.0
             ) -> tuple:
    """An hourly forcing file of ``days`` days (storms, a diurnal cycle around freezing, or
    ``warm`` degC above): its path, precipitation [mm h-1] and temperature [degC]."""
    rng = np.random.default_rng(7)
    n = 24 * days
    prcp = np.where(rng.random(n) < 0.2, rng.gamma(1.0, 3.0, n), 0.0)
    temp = 2.0 + warm + 6.0 * np.sin(2 * np.pi * (np.arange(n) - 9) / 24) + np.linspace(4, -3, n)
    path = write_directory(tmp_path / "forcing", ["27"], np.datetime64(start), prcp[:, None],
                           temp[:, None])[0]
    return path, prcp, temp


def _bmi(make_bmi, name: str, **extra):
    bundle = model_spec(name).load_bmi_class().default_bundle_for(3600)
    return make_bmi(name, bundle=str(bundle), **extra)


@pytest.mark.parametrize("name", MODELS)
def test_cycled_spinup_equals_the_per_hour_path(make_bmi, tmp_path, name):
    """Two cycles of the batched spin-up end in the state of the BMI stepped hour by hour over
    the file (set_value, update) and then the core stepped over it again."""
    path, prcp, temp = _forcing(tmp_path)
    with pytest.warns(UserWarning, match=r"did not settle in 2 cycles of 4 days"):
        spun = _bmi(make_bmi, name, start_time="1981-01-01 00:00:00",
                    spinup={"forcing": str(path), "max_cycles": 2, "tolerance": 1e-9})
    assert spun.spinup_cycles == 2
    ref = _bmi(make_bmi, name, start_time="1981-01-01 00:00:00")
    for p, t in zip(prcp, temp):
        ref.set_value(PRECIP, np.array([p]))
        ref.set_value(TEMP, np.array([t]))
        ref.update()
    t0 = dt.datetime(1981, 1, 1)
    for h, (p, t) in enumerate(zip(prcp, temp)):
        row = {"prcp": float(p), "tmean": float(t), "pet": None}
        ref.core.step([row[f] for f in ref.core.fields], t0 + dt.timedelta(hours=h))
    want, got = ref.core.get_state(), spun.core.get_state()
    assert set(want) == set(got)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-9, atol=1e-12, err_msg=key)
    assert np.any(spun.core.store_values() != _bmi(make_bmi, name).core.store_values())


@pytest.mark.parametrize("name", MODELS)
def test_cycled_spinup_stops_when_the_stores_settle(make_bmi, tmp_path, name):
    """With the default tolerance (0.1 % per cycle) the cycles stop before max_cycles, and one
    more cycle changes no store by more than that."""
    path, _, _ = _forcing(tmp_path, days=30, warm=10.0)  # no snow piling up cycle on cycle
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = _bmi(make_bmi, name, spinup={"forcing": str(path), "max_cycles": 40})
    assert 1 < m.spinup_cycles < 40
    before = m.core.store_values()
    forcings, starts = m._hourly_rows(path, 1)
    m.core.run_steps(forcings, starts)
    after = m.core.store_values()
    assert np.all(np.abs(after - before) <= 1e-3 * np.abs(after) + 1e-6)


def test_cycled_spinup_takes_the_leading_years(make_bmi, tmp_path):
    """``years`` cuts the file: 1 year of a 2-year file is 365 days."""
    path, _, _ = _forcing(tmp_path, days=2 * 365 + 1, start="1981-01-01")
    m = _bmi(make_bmi, "dcfe")
    rows, starts = m._hourly_rows(path, 1)
    assert len(rows) == 24 * 365 and starts[-1] == dt.datetime(1981, 12, 31, 23)
    assert len(m._hourly_rows(path, 5)[0]) == 24 * (2 * 365 + 1)


@pytest.mark.parametrize("spinup, message", [
    ({"forcing": "nope.csv"}, r"spinup forcing: .*nope.csv"),
    ({"forcing": "f.csv", "cycles": 3}, r"unknown key\(s\) \['cycles'\]"),
    ({"forcing": "f.csv", "max_cycles": 0}, r"spinup.max_cycles .* positive integer"),
    ({"forcing": "f.csv", "tolerance": 2}, r"spinup.tolerance .* in \(0, 1\)"),
    ("f.csv", r"must be a mapping with forcing: PATH"),
])
def test_cycled_spinup_refusals(make_bmi, spinup, message):
    with pytest.raises(BmiError, match=message):
        make_bmi("dcfe", spinup=spinup)


def test_cycled_spinup_excludes_other_starts(make_bmi, tmp_path):
    path, _, _ = _forcing(tmp_path)
    with pytest.raises(BmiError, match="not spinup_forcing and spinup"):
        make_bmi("dcfe", spinup_forcing=str(path), spinup={"forcing": str(path)})
    with pytest.raises(BmiError, match="needs time_step_seconds: 3600"):
        make_bmi("dcfe", step=86400, spinup={"forcing": str(path)})


def test_cycled_spinup_needs_pet_when_pet_is_an_input(make_bmi, tmp_path):
    path, _, _ = _forcing(tmp_path)
    with pytest.raises(BmiError, match=r"has no PET column.*'PET \[mm h-1\]'"):
        make_bmi("dcfe", pet_source="input", spinup={"forcing": str(path)})


@pytest.mark.parametrize("name", ["dcfe", "dlgar"])
def test_cycled_spinup_with_pet_as_an_input(make_bmi, tmp_path, name):
    """With ``pet_source: input`` the file's PET column (header ``pet [mm h-1]``, as the writers
    map it) feeds the spin-up; one cycle ends where the BMI stepped over the file ends."""
    from delta_core.ngen.crosswalk import PET

    rng = np.random.default_rng(3)
    n = 24 * DAYS
    prcp = np.where(rng.random(n) < 0.2, rng.gamma(1.0, 3.0, n), 0.0)
    temp = 12.0 + 6.0 * np.sin(2 * np.pi * (np.arange(n) - 9) / 24)
    pet = 0.3 * np.clip(np.sin(2 * np.pi * (np.arange(n) - 6) / 24), 0, None)
    path = write_directory(tmp_path / "f", ["27"], np.datetime64("1981-01-01"), prcp[:, None],
                           temp[:, None], pet[:, None])[0]
    path.write_text(path.read_text().replace("PET [mm h-1]", "pet [mm h-1]"))
    with pytest.warns(UserWarning, match="did not settle in 1 cycles"):
        spun = _bmi(make_bmi, name, pet_source="input",
                    spinup={"forcing": str(path), "max_cycles": 1})
    ref = _bmi(make_bmi, name, pet_source="input")
    inputs = ref.get_input_var_names()
    for p, t, e in zip(prcp, temp, pet):
        for var, x in ((PRECIP, p), (TEMP, t), (PET, e)):
            if var in inputs:
                ref.set_value(var, np.array([x]))
        ref.update()
    want, got = ref.core.get_state(), spun.core.get_state()
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", ["dcfe", "dhbv"])
def test_batched_hours_after_a_partial_day(make_bmi, name):
    """The batched run completes a partial day in progress (5 hours stepped) at its first hour
    as :meth:`HourlyAdapter.hour` does: the LSTM sees it scaled to 24 hours."""
    rng = np.random.default_rng(11)
    n = 5 + 24 * 3
    t0 = dt.datetime(1981, 3, 1, 19)
    starts = [t0 + dt.timedelta(hours=h) for h in range(n)]
    rows = [[float(p), float(t), None] for p, t in
            zip(np.where(rng.random(n) < 0.3, rng.gamma(1.0, 2.0, n), 0.0),
                6.0 + 5.0 * np.sin(np.arange(n) / 4.0))]
    stepped, batched = _bmi(make_bmi, name).core, _bmi(make_bmi, name).core
    for core in (stepped, batched):
        for row, start in zip(rows[:5], starts[:5]):
            core.step(row, start)
    for row, start in zip(rows[5:], starts[5:]):
        stepped.step(row, start)
    batched.run_steps(rows[5:], starts[5:])
    want, got = stepped.get_state(), batched.get_state()
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-9, atol=1e-12, err_msg=key)
