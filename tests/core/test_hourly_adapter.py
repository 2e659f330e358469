"""The one hourly path of the BMI cores (:class:`delta_core.bmi.hourly.HourlyAdapter`): every
hourly core steps it, its batched hours equal its single hours, and its state restores bit for
bit."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from delta_core.bmi.hourly import HourlyAdapter
from delta_core.registry import model_spec

MODELS = ["dcfe", "dhbv", "dlgar"]


def _core(make_bmi, name: str):
    bundle = model_spec(name).load_bmi_class().default_bundle_for(3600)
    return make_bmi(name, bundle=str(bundle)).core


def _hours(n_days: int = 3, seed: int = 5):
    """Consecutive hours from 00:00 with storms and a diurnal cycle around freezing."""
    rng = np.random.default_rng(seed)
    n = 24 * n_days
    t0 = dt.datetime(1981, 2, 27)
    starts = [t0 + dt.timedelta(hours=h) for h in range(n)]
    p = np.where(rng.random(n) < 0.25, rng.gamma(1.0, 3.0, n), 0.0)
    t = 1.0 + 6.0 * np.sin(2 * np.pi * (np.arange(n) - 9) / 24) + np.linspace(3, -2, n)
    return starts, p, t


@pytest.mark.parametrize("name", MODELS)
def test_every_hourly_core_steps_the_shared_adapter(make_bmi, name):
    """Each model's hourly core holds the adapter; the snow routine runs in it for the
    snow-free physics (dCFE, dLGAR) and not for HBV, which has its own; the LSTM of dynamic
    parameters is the adapter's where the bundle has one."""
    core = _core(make_bmi, name)
    assert isinstance(core.hourly, HourlyAdapter)
    assert (core.hourly.snow is None) == (name == "dhbv")
    assert (core.hourly.lstm is not None) == bool(core.dynamic_names)


@pytest.mark.parametrize("name", MODELS)
def test_batched_hours_equal_single_hours(make_bmi, name):
    """:meth:`HourlyAdapter.hours` gives each hour's water, PET and melt, and each day's LSTM
    output, that :meth:`HourlyAdapter.hour` in turn gives, and ends in the same state."""
    starts, p, t = _hours()
    one, many = _core(make_bmi, name).hourly, _core(make_bmi, name).hourly
    water, pet, melt, raws = [], [], [], []
    for start, pi, ti in zip(starts, p, t):
        w, e, m, _ = one.hour(start, float(pi), float(ti), None)
        water.append(w), pet.append(e), melt.append(m)
        if start.hour == 0:
            raws.append(one.dynamic_raw.copy())
    got = many.hours(starts, p, list(t), [None] * len(p))
    np.testing.assert_allclose(got.water, water, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got.pet, pet, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got.melt, melt, rtol=1e-12, atol=1e-14)
    assert (got.dynamic is None) == (one.lstm is None)
    if got.dynamic is not None:
        np.testing.assert_allclose(got.dynamic, np.stack(raws), rtol=1e-9, atol=1e-12)
    want, have = one.get_state(), many.get_state()
    assert set(want) == set(have)
    for key, value in want.items():
        np.testing.assert_allclose(have[key], value, rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", MODELS)
def test_adapter_state_restores_bit_for_bit(make_bmi, name):
    """A saved state, restored into a fresh adapter, continues exactly as the original; a state
    of another configuration is refused by name."""
    starts, p, t = _hours(4)
    a, b = _core(make_bmi, name).hourly, _core(make_bmi, name).hourly
    half = 24 * 2 + 7
    for start, pi, ti in zip(starts[:half], p[:half], t[:half]):
        a.hour(start, float(pi), float(ti), None)
    b.set_state(a.get_state())
    for start, pi, ti in zip(starts[half:], p[half:], t[half:]):
        assert a.hour(start, float(pi), float(ti), None) == b.hour(start, float(pi), float(ti),
                                                                   None)
    for key, value in a.get_state().items():
        np.testing.assert_array_equal(b.get_state()[key], value, err_msg=key)
    with pytest.raises(ValueError, match=r"state lacks \['temps'"):
        b.set_state({})


def test_hour_names_what_is_missing():
    """Without PET and without temperature (or latitude) the hour cannot be stepped."""
    adapter = HourlyAdapter("dLGAR", None, snow={"TT": 0.0, "CFMAX": 3.0, "CFR": 0.05,
                                                 "CWH": 0.1})
    with pytest.raises(ValueError, match="an hour without PET needs the air temperature"):
        adapter.hour(dt.datetime(2000, 1, 1), 1.0, None, None)
    with pytest.raises(ValueError, match="with snow needs the hour's air temperature"):
        adapter.hour(dt.datetime(2000, 1, 1), 1.0, None, 0.1)
