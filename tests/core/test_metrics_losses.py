"""Metrics against hand-computed values; losses mask NaN."""
import math

import numpy as np
import pytest
import torch

from delta_core import metrics
from delta_core.losses import get_loss, rmse_log_combined


def test_nse_hand_computed():
    obs, sim = np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0])
    # mean(obs) = 7/3; sum sq dev = (4/3)^2 + (1/3)^2 + (5/3)^2 = 42/9
    assert metrics.nse(sim, obs) == pytest.approx(1 - 1 / (42 / 9))
    assert metrics.nse(obs, obs) == 1.0


def test_kge_hand_computed():
    obs = np.array([1.0, 2.0, 3.0, 4.0])
    sim = 2 * obs  # r = 1, alpha = 2, beta = 2
    assert metrics.kge(sim, obs) == pytest.approx(1 - math.sqrt(2.0))
    assert metrics.kge(obs, obs) == pytest.approx(1.0)


def test_nan_observations_masked():
    obs = np.array([1.0, np.nan, 2.0, 4.0])
    sim = np.array([1.0, 100.0, 2.0, 3.0])
    assert metrics.nse(sim, obs) == pytest.approx(metrics.nse(sim[[0, 2, 3]], obs[[0, 2, 3]]))


def test_fhv_flv():
    obs = np.arange(1.0, 101.0)
    assert metrics.fhv(obs, obs) == 0.0
    # top 2 % = the two largest: 99, 100 -> sim 1.1x -> +10 %
    assert metrics.fhv(1.1 * obs, obs) == pytest.approx(10.0)
    # FLV in log space: a constant factor leaves log(q) - log(qmin) unchanged
    assert metrics.flv(3 * obs, obs) == pytest.approx(0.0, abs=1e-9)
    sim = obs.copy()
    sim[:30] = sim[:30] ** 2  # steeper low-flow curve: more log spread than observed -> negative
    assert metrics.flv(sim, obs) < 0


def test_pbias_and_rmse():
    assert metrics.pbias(np.array([2.0, 2.0]), np.array([1.0, 1.0])) == pytest.approx(100.0)
    assert metrics.rmse(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(math.sqrt(2))


def test_loss_masks_nan_and_is_zero_at_truth():
    obs = torch.tensor([[1.0, float("nan")], [2.0, 3.0]])
    sim = torch.tensor([[1.0, 50.0], [2.0, 3.0]])
    assert float(rmse_log_combined(sim, obs)) == pytest.approx(0.0, abs=1e-7)
    sim2 = torch.tensor([[2.0, 50.0], [2.0, 3.0]])
    # RMSE part over the 3 valid values: sqrt(1/3)
    tr = lambda q: math.log10(math.sqrt(q + 1e-6) + 0.1)  # noqa: E731
    expected = 0.75 * math.sqrt(1 / 3) + 0.25 * math.sqrt((tr(2) - tr(1)) ** 2 / 3)
    assert float(rmse_log_combined(sim2, obs)) == pytest.approx(expected, rel=1e-5)


def test_unknown_loss_lists_valid():
    with pytest.raises(ValueError, match="rmse_log_combined"):
        get_loss("mse")


def test_nse_star_scales_each_basin_by_its_training_variance():
    """NSE* (Kratzert et al. 2019): squared errors over observed days, each divided by
    (basin std + 0.1)^2, averaged; a basin's weight follows its std, NaN days are skipped."""
    from delta_core.losses import nse_star

    obs = torch.tensor([[1.0, float("nan")], [2.0, 5.0], [3.0, 7.0]])
    sim = torch.tensor([[2.0, 0.0], [2.0, 4.0], [1.0, 9.0]])
    std = torch.tensor([0.9, 1.9])
    expected = (1 / 1.0 ** 2 + 0 + 4 / 1.0 ** 2 + 1 / 2.0 ** 2 + 4 / 2.0 ** 2) / 5
    assert float(nse_star(sim, obs, basin_std=std)) == pytest.approx(expected, rel=1e-6)
    assert float(nse_star(obs.nan_to_num(), obs, basin_std=std)) == 0.0
    with pytest.raises(ValueError, match="basin_std"):
        nse_star(sim, obs)
