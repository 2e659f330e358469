"""Per-basin DDS calibration baseline: the search, the basin selection, and every registered
model's calibration target (a twin experiment recovers a known parameter set's streamflow)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from delta_core.baselines.calibration import calibrate, dds, region_stratified_basins
from delta_core.metrics import kge
from delta_core.registry import MODELS, model_spec

TARGETS = [n for n in sorted(MODELS) if model_spec(n).calibration_target is not None]


def test_dds_finds_the_optimum_of_each_set_independently():
    opt = np.array([[0.2, 0.8, 0.5, 0.1], [0.9, 0.3, 0.6, 0.4], [0.5, 0.5, 0.5, 0.5]])
    f = lambda x: -np.sum((x - opt) ** 2, axis=1)  # noqa: E731
    best, f_best, hist = dds(f, 4, 3, n_evals=400, seed=3)
    assert np.abs(best - opt).max() < 0.03
    assert np.all(np.diff(hist, axis=0) >= 0)  # greedy: the best never gets worse
    assert np.allclose(f_best, f(best)) and hist.shape == (400, 3)
    assert np.all((best >= 0) & (best <= 1))


def test_dds_treats_nan_as_worst_and_rejects_bad_settings():
    f = lambda x: np.where(x[:, 0] > 0.5, np.nan, x[:, 0])  # noqa: E731
    best, f_best, _ = dds(f, 2, 2, n_evals=200, seed=0)
    assert np.all(best[:, 0] <= 0.5) and np.all(f_best > 0.4)
    with pytest.raises(ValueError, match="n_evals"):
        dds(f, 2, 2, n_evals=0)


def test_dds_resumes_from_its_checkpoint_bit_for_bit(tmp_path):
    opt = np.array([[0.2, 0.8, 0.5], [0.9, 0.3, 0.6]])
    f = lambda x: -np.sum((x - opt) ** 2, axis=1)  # noqa: E731
    straight = dds(f, 3, 2, n_evals=60, seed=4)
    calls = {"n": 0}

    def interrupted(x):
        calls["n"] += 1
        if calls["n"] == 37:  # after the checkpoint of iteration 30
            raise KeyboardInterrupt
        return f(x)

    ckpt = tmp_path / "dds.npz"
    with pytest.raises(KeyboardInterrupt):
        dds(interrupted, 3, 2, n_evals=60, seed=4, checkpoint=ckpt, key="a,b")
    resumed = dds(f, 3, 2, n_evals=60, seed=4, checkpoint=ckpt, key="a,b")
    for a, b in zip(straight, resumed):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="other settings"):
        dds(f, 3, 2, n_evals=60, seed=4, checkpoint=ckpt, key="a,c")


def test_region_stratified_basins_follow_region_sizes():
    regions = {f"{i:08d}": r for i, r in enumerate(["01"] * 50 + ["02"] * 30 + ["03"] * 20)}
    aridity = {g: float(i % 7) for i, g in enumerate(regions)}
    picks = region_stratified_basins(regions, aridity, 10)
    counts = {r: sum(regions[g] == r for g in picks) for r in ("01", "02", "03")}
    assert counts == {"01": 5, "02": 3, "03": 2} and len(set(picks)) == 10
    assert region_stratified_basins(regions, aridity, 10) == picks  # deterministic
    few = region_stratified_basins({**regions, "99999999": "04"}, {**aridity, "99999999": 1.0}, 10)
    assert "99999999" in few and len(few) == 10  # every region when n allows
    assert sorted(region_stratified_basins(regions, aridity, 100)) == sorted(regions)
    with pytest.raises(ValueError, match="n must be"):
        region_stratified_basins(regions, aridity, 101)


@pytest.fixture(scope="module")
def forcing_of(sample):
    def make(target, start, end):
        ids = sample.basin_ids()[:3]
        ts = sample.load(ids, start, end, forcings=target.forcings)
        return torch.from_numpy(ts.forcing(target.forcings)).double()
    return make


@pytest.mark.parametrize("name", TARGETS)
def test_calibration_target_contract(name, forcing_of):
    target = model_spec(name).load_calibration_target()()
    forcing = forcing_of(target, "1990-10-01", "1991-03-31")
    unit = np.random.default_rng(0).uniform(size=(3, len(target.names)))
    q = target.simulate(unit, forcing, 60)
    assert q.shape == (forcing.shape[0] - 60, 3) and np.all(np.isfinite(q)) and np.all(q >= 0)
    phys = target.physical(unit)
    assert list(phys) == list(target.names) and all(v.shape == (3,) for v in phys.values())
    lo = target.physical(np.zeros((1, len(target.names))))
    hi = target.physical(np.ones((1, len(target.names))))
    for k in target.names:
        assert np.all((phys[k] >= lo[k][0] - 1e-12) & (phys[k] <= hi[k][0] + 1e-12)), k


def test_hbv_twin_experiment_recovers_the_streamflow(forcing_of):
    """Streamflow of a known parameter set as "observations": DDS finds parameters that
    reproduce it (KGE near 1) in the calibration period, far better than its starting points.
    (After the period the fit is looser: 15 parameters from two years are not identifiable.)"""
    target = model_spec("dhbv").load_calibration_target()()
    forcing = forcing_of(target, "1985-10-01", "1989-09-30")
    truth = np.random.default_rng(5).uniform(0.2, 0.8, size=(3, len(target.names)))
    obs = np.full((forcing.shape[0], 3), np.nan)
    obs[365:] = target.simulate(truth, forcing, 365)
    cal = slice(365, 365 + 730)
    best, cal_kge = calibrate(target, forcing, obs, cal, n_evals=300, seed=1)
    assert np.all(cal_kge > 0.95)
    start = np.random.default_rng(1).uniform(size=truth.shape)  # DDS's initial points (seed 1)
    q0 = target.simulate(start, forcing[:cal.stop], cal.start)
    assert all(kge(q0[:, b], obs[cal, b]) < cal_kge[b] - 0.1 for b in range(3))
