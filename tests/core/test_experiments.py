"""Multi-run experiments: PUB folds stratified by region, PUR region groups, and the seed / PUB /
PUR commands end to end on the toy model (two sample basins per fold, one epoch)."""
from __future__ import annotations

import numpy as np
import pytest

from delta_core.experiments import (parse_region_groups, pub_folds, pur_groups,
                                    run_experiment)
from test_generic_models import _tiny_config

REGIONS = {f"{i:08d}": f"{r:02d}" for i, r in enumerate(
    [1] * 12 + [2] * 7 + [3] * 3 + [5] * 20 + [7] * 9 + [10] * 14 + [17] * 5)}


def test_pub_folds_cover_every_basin_once_and_stratify_regions():
    folds = pub_folds(REGIONS, 5, seed=2)
    flat = [g for f in folds for g in f]
    assert sorted(flat) == sorted(REGIONS) and len(set(flat)) == len(flat)
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for region in set(REGIONS.values()):
        per_fold = [sum(REGIONS[g] == region for g in f) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, region
    assert pub_folds(REGIONS, 5, seed=2) == folds and pub_folds(REGIONS, 5, seed=3) != folds
    with pytest.raises(ValueError, match="at least 2"):
        pub_folds(REGIONS, 1)


def test_pur_groups_are_contiguous_and_balanced():
    groups = pur_groups(REGIONS, 3)
    codes = sorted(set(REGIONS.values()))
    assert [c for g in groups for c in g] == codes  # contiguous, in order, all regions
    sizes = [sum(r in g for r in REGIONS.values()) for g in groups]
    assert all(s > 0 for s in sizes) and max(sizes) < 0.6 * len(REGIONS)
    assert len(pur_groups(REGIONS, 7)) == 7
    with pytest.raises(ValueError, match="region groups"):
        pur_groups(REGIONS, 8)


def test_parse_region_groups():
    assert parse_region_groups("01-03,4+6,17") == [["01", "02", "03"], ["04", "06"], ["17"]]


@pytest.fixture
def toy_config(tmp_path):
    cfg = _tiny_config("toy", tmp_path / "unused", epochs=1)
    cfg.data.basins = ["01022500", "03439000", "06224000", "08023080"]
    cfg.training.batch_basins = 2
    return cfg


def test_pub_experiment_predicts_each_basin_by_a_model_that_never_saw_it(toy_config, tmp_path):
    from delta_core.bundle import load_bundle

    rows = run_experiment("pub", toy_config, tmp_path / "pub", folds=2)
    assert [r["run"].split(" (")[0] for r in rows] == ["fold 0", "fold 1", "all held-out basins"]
    assert rows[-1]["n_basins"] == 4 and np.isfinite(rows[-1]["median_nse"])
    held = (tmp_path / "pub" / "metrics.csv").read_text().splitlines()
    assert len(held) == 5 and held[0].startswith("gauge_id")
    for i in (0, 1):
        test_ids = {line.split(",")[0] for line in held[1:] if line.endswith(f",{i}")}
        trained_on = set(load_bundle(tmp_path / "pub" / f"fold_{i}" / "bundle.pt")
                         ["config"]["data"]["basins"])
        assert test_ids and not test_ids & trained_on
    md = (tmp_path / "pub" / "summary.md").read_text()
    assert "all held-out basins" in md and "median_nse" in md
    mtime = (tmp_path / "pub" / "fold_0" / "bundle.pt").stat().st_mtime
    run_experiment("pub", toy_config, tmp_path / "pub", folds=2)  # resumes: nothing retrained
    assert (tmp_path / "pub" / "fold_0" / "bundle.pt").stat().st_mtime == mtime


def test_pub_folds_run_apart_then_collected(toy_config, tmp_path):
    """``only`` trains one fold per call (one per process or machine) and writes no tables; a
    run without it reuses those bundles and writes the same table as a run in one go."""
    out = tmp_path / "pub"
    part = run_experiment("pub", toy_config, out, folds=2, only=[1])
    assert [r["run"].split(" (")[0] for r in part] == ["fold 1"]
    assert (out / "fold_1" / "bundle.pt").exists() and not (out / "fold_0").exists()
    assert not (out / "summary.md").exists() and not (out / "metrics.csv").exists()
    mtime = (out / "fold_1" / "bundle.pt").stat().st_mtime
    run_experiment("pub", toy_config, out, folds=2, only=[0])
    rows = run_experiment("pub", toy_config, out, folds=2)
    assert (out / "fold_1" / "bundle.pt").stat().st_mtime == mtime  # not retrained
    assert rows[1]["median_nse"] == part[0]["median_nse"] and rows[-1]["n_basins"] == 4
    assert "all held-out basins" in (out / "summary.md").read_text()
    with pytest.raises(ValueError, match="out of range"):
        run_experiment("pub", toy_config, out, folds=2, only=[2])


def test_seed_experiment_reports_spread_and_ensemble(toy_config, tmp_path):
    rows = run_experiment("seeds", toy_config, tmp_path / "s", seeds=[1, 2])
    assert [r["run"] for r in rows][:2] == ["seed 1", "seed 2"]
    spread = rows[2]
    assert spread["median_nse"] == pytest.approx((rows[0]["median_nse"] + rows[1]["median_nse"]) / 2)
    assert spread["sd_nse"] >= 0 and np.isfinite(rows[3]["median_nse"])
    again = run_experiment("seeds", toy_config, tmp_path / "s2", seeds=[1, 2],
                           reuse={1: tmp_path / "s" / "seed_1" / "bundle.pt"})
    assert again[0]["median_nse"] == rows[0]["median_nse"]
    assert not (tmp_path / "s2" / "seed_1" / "bundle.pt").exists()


def test_pur_experiment_holds_out_whole_regions(toy_config, tmp_path, sample):
    ids = toy_config.data.basins
    regions = sample.attributes(ids, ["huc_02"])["huc_02"]
    groups = [[regions[0]], sorted(set(regions[1:]) - {regions[0]})]
    rows = run_experiment("pur", toy_config, tmp_path / "pur", region_groups=groups)
    assert rows[0]["run"].startswith("fold 0 (HUC ") and rows[-1]["n_basins"] == 4
    with pytest.raises(ValueError, match="leave out"):
        run_experiment("pur", toy_config, tmp_path / "pur2", region_groups=groups[:1])
