"""The pretrained bundles shipped in bmi_dhbv/weights and bmi_dcfe/weights: valid, documented provenance, the demo
runs, and (when the CAMELS pack is beside the repository, as in CI) dhbv-eval reproduces the
test-period median NSE/KGE recorded in the bundle and reported in README."""
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from bmi_dhbv.model import DEFAULT_BUNDLE
from delta_core.bundle import load_bundle
from delta_core.data.camels import CamelsDataset
from delta_core.evaluation import evaluate_model

WEIGHTS = sorted(DEFAULT_BUNDLE.parent.glob("*.pt"))
PACK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camels_us_daily"


def test_default_bundle_is_shipped():
    assert DEFAULT_BUNDLE in WEIGHTS


@pytest.mark.parametrize("path", WEIGHTS, ids=lambda p: p.stem)
def test_bundle_valid_with_provenance(path):
    b = load_bundle(path)
    prov = b["provenance"]
    assert len(prov["basins"]) == 447
    assert prov["train_period"] == ["1980-10-01", "1995-09-30"]
    assert prov["epochs"] == 50 and len(prov["history"]) == 50
    assert b["metrics"]["test_period"] == ["1995-10-01", "2010-09-30"]
    assert b["metrics"]["n_basins"] == 447 and b["metrics"]["median_nse"] > 0.6
    assert len(b["normalization"]["attributes"]["names"]) == 35


def test_demo_runs_on_the_shipped_sample(tmp_path, capsys):
    from bmi_dhbv.cli import demo_main

    with pytest.raises(SystemExit) as e:
        demo_main(["--out", str(tmp_path)])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "median NSE" in out and "01022500" in out
    assert (tmp_path / "hydrographs.png").stat().st_size > 10_000
    with netCDF4.Dataset(tmp_path / "simulation.nc") as nc:
        assert nc.dimensions["basin"].size == 5
        assert np.all(np.isfinite(nc["streamflow"][:]))


@pytest.mark.slow
@pytest.mark.skipif(not PACK.is_dir(), reason=f"CAMELS pack not found at {PACK}")
def test_eval_reproduces_recorded_metrics():
    b = load_bundle(DEFAULT_BUNDLE)
    ds = CamelsDataset(PACK)
    res = evaluate_model(b, ds, ds.basin_ids(), "1995-10-01", "2010-09-30")
    assert res["n_basins"] == 447
    assert res["median_nse"] == pytest.approx(b["metrics"]["median_nse"], abs=1e-4)
    assert res["median_kge"] == pytest.approx(b["metrics"]["median_kge"], abs=1e-4)
    assert round(res["median_nse"], 3) == 0.731  # the figure README reports


def test_dcfe_bundle_valid_with_provenance():
    from bmi_dcfe.model import DEFAULT_BUNDLE as DCFE_BUNDLE

    b = load_bundle(DCFE_BUNDLE)
    assert b["model"] == "dcfe" and b["config"]["training"]["dtype"] == "float64"
    prov = b["provenance"]
    assert len(prov["basins"]) == 447 and prov["train_period"] == ["1980-10-01", "1995-09-30"]
    assert prov["epochs"] == 23 and len(prov["history"]) == 23
    assert b["metrics"]["test_period"] == ["1995-10-01", "2010-09-30"]
    assert b["metrics"]["n_basins"] == 447


@pytest.mark.slow
@pytest.mark.skipif(not PACK.is_dir(), reason=f"CAMELS pack not found at {PACK}")
def test_dcfe_eval_reproduces_recorded_metrics():
    from bmi_dcfe.model import DEFAULT_BUNDLE as DCFE_BUNDLE

    b = load_bundle(DCFE_BUNDLE)
    ds = CamelsDataset(PACK)
    res = evaluate_model(b, ds, ds.basin_ids(), "1995-10-01", "2010-09-30")
    assert res["n_basins"] == 447
    assert res["median_nse"] == pytest.approx(b["metrics"]["median_nse"], abs=1e-4)
    assert res["median_kge"] == pytest.approx(b["metrics"]["median_kge"], abs=1e-4)
    assert round(res["median_nse"], 3) == 0.634  # the figure README reports
