"""The compiled loops of a BMI spin-up (``delta_core._core``) against their Python references:
the LSTM over days (:class:`~delta_core.networks.LSTMStepper`), the degree-day snow routine over
hours (:func:`~delta_core.snow.degree_day_step`), and the vectorised trailing-Hargreaves PET
against its hour-by-hour computation."""
from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest
import torch

from delta_core import snow
from delta_core.bmi.hourly import TrailingHargreaves
from delta_core.kernels import SPINUP_LOOPS
from delta_core.networks import LSTMNet, LSTMStepper

needs_build = pytest.mark.skipif(SPINUP_LOOPS is None, reason="delta_core._core not built")


@needs_build
def test_lstm_sequence_equals_stepper_and_torch():
    torch.manual_seed(0)
    net = LSTMNet(7, 5, hidden=16).double().eval()
    x_attr = np.random.default_rng(0).normal(size=4)
    xf = np.random.default_rng(1).normal(size=(50, 3))
    seq, one, ref = (LSTMStepper(net, x_attr) for _ in range(3))
    for s in (seq, one, ref):  # a state carried in
        s.h, s.c = np.full(16, 0.1), np.full(16, -0.2)
    out = seq.run(net, xf)
    stepped = np.stack([one.step(x) for x in xf])
    torch_out = ref.run_torch(net, xf)
    np.testing.assert_allclose(out, stepped, rtol=0, atol=1e-13)
    np.testing.assert_allclose(out, torch_out, rtol=0, atol=1e-13)
    np.testing.assert_allclose(seq.h, one.h, rtol=0, atol=1e-14)
    np.testing.assert_allclose(seq.c, ref.c, rtol=0, atol=1e-14)


@needs_build
def test_lstm_sequence_rejects_bad_shapes():
    net = LSTMNet(4, 2, hidden=8).double()
    s = LSTMStepper(net, np.zeros(1))
    with pytest.raises(ValueError, match="x: expected shape"):
        SPINUP_LOOPS.lstm_sequence(s.w_in_f, s.b_in, s.w_gates, s.b_gates, s.w_head, s.b_head,
                                   np.zeros((5, 4)), s.h, s.c)


@pytest.mark.parametrize("compiled", [True, False])
def test_snow_series_bit_for_bit(compiled, monkeypatch):
    if compiled and SPINUP_LOOPS is None:
        pytest.skip("delta_core._core not built")
    if not compiled:
        monkeypatch.setattr("delta_core.kernels.SPINUP_LOOPS", None)
    rng = np.random.default_rng(3)
    n = 2000
    p = np.where(rng.random(n) < 0.3, rng.gamma(1.0, 2.0, n), 0.0)
    t = 2.0 * np.sin(np.arange(n) / 50.0) + rng.normal(0, 2, n)  # around the threshold
    args = (0.3, 3.1 / 24, 0.05, 0.1)
    liquid, melt, pack, water = snow.degree_day_series(p, t, *args, 5.0, 0.2)
    sp, sw = 5.0, 0.2
    for i in range(n):
        s = snow.degree_day_step(sp, sw, float(p[i]), float(t[i]), *args)
        sp, sw = s.snowpack, s.meltwater
        assert liquid[i] == s.rain + s.outflow and melt[i] == s.melt
    assert (pack, water) == (sp, sw)
    assert np.isclose(p.sum() + 5.2, liquid.sum() + pack + water, rtol=1e-12)  # water balance


def _hourly(temps, starts, pre, vector):
    m = TrailingHargreaves(45.0, np.full(24, 1 / 24), "cat-x")
    for t, s in zip(*pre):
        m.push(t)
        m.pet(s)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if vector:
            out = m.series(temps, starts)
        else:
            out = []
            for t, s in zip(temps, starts):
                m.push(float(t))
                out.append(m.pet(s))
    return np.asarray(out), m.state, [str(w.message) for w in caught]


@pytest.mark.parametrize("case", range(6))
def test_trailing_hargreaves_series_equals_hour_by_hour(case):
    """Vectorised PET over many hours: the same values, the same state afterwards and the same
    flat-temperature warning at the same hour, from empty, partial and flat histories."""
    rng = np.random.default_rng(case)
    n = int(rng.integers(30, 400))
    s0 = dt.datetime(2001, 12, 30, int(rng.integers(0, 24)))  # crosses a year end
    starts = [s0 + dt.timedelta(hours=i) for i in range(n)]
    temps = 10 + 8 * np.sin(np.arange(n) / 24 * 2 * np.pi) + rng.normal(0, 1, n)
    if case % 2:  # daily-mean temperature for 4 days
        a = int(rng.integers(0, max(1, n - 96)))
        temps[a:a + 96] = np.repeat(rng.normal(5, 3, 4), 24)[:len(temps[a:a + 96])]
    m0 = int(rng.integers(1, 100)) if case >= 2 else 0
    pre_t = np.full(m0, 3.0) if case >= 4 else rng.normal(0, 5, m0)
    pre = (pre_t, [s0 - dt.timedelta(hours=m0 - i) for i in range(m0)])
    a, state_a, warn_a = _hourly(temps, starts, pre, True)
    b, state_b, warn_b = _hourly(temps, starts, pre, False)
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-16)
    np.testing.assert_array_equal(state_a, state_b)
    assert warn_a == warn_b
