"""Data reader (forcing series by name, basin selections), PET and input encoding, including
bad input."""
import gzip
import shutil

import numpy as np
import pytest

from delta_core.data.camels import CamelsDataset, DataError, SAMPLE_DIR
from delta_core.normalization import AttributeEncoder
from delta_core.pet import extraterrestrial_radiation, hargreaves


def test_sample_loads_with_string_ids():
    ds = CamelsDataset()
    ids = ds.basin_ids()
    assert ids[0] == "01022500" and len(ids) == 5
    ts = ds.load(ids, "1995-10-01", "1995-12-31")
    assert ts.prcp.shape == (92, 5)
    assert str(ts.dates[0]) == "1995-10-01"
    assert np.all(ts.pet >= 0)


def test_series_by_name_and_stacked_forcing():
    from bmi_dhbv.model import FORCING_NAMES

    ds = CamelsDataset()
    ts = ds.load(["01022500", "03439000"], "1995-10-01", "1995-10-31")
    for name in ("prcp", "tmax", "tmin", "tmean", "pet"):
        assert ts[name] is ts.series[name] and ts[name] is getattr(ts, name)
    np.testing.assert_array_equal(ts.tmean, 0.5 * (ts.tmax + ts.tmin))
    x = ts.forcing(FORCING_NAMES)
    assert x.shape == (31, 2, len(FORCING_NAMES))
    for i, name in enumerate(FORCING_NAMES):
        np.testing.assert_array_equal(x[..., i], ts[name])
    with pytest.raises(DataError, match="'srad' was not loaded; pass it in forcings="):
        ts["srad"]
    with pytest.raises(DataError, match="unknown forcing variable.*'wind'"):
        ts["wind"]
    with pytest.raises(DataError, match="unknown forcing variable.*'wind'"):
        ds.load(["01022500"], forcings=("wind",))
    more = ds.load(["01022500", "03439000"], "1995-10-01", "1995-10-31", forcings=("srad",))
    assert more["srad"].shape == (31, 2) and np.all(more["srad"] > 0)
    assert more.slice_dates("1995-10-05", "1995-10-06")["srad"].shape == (2, 2)


def test_resolve_basins_accepts_ids_lists_files_and_subsets(tmp_path):
    ds = CamelsDataset()
    assert ds.resolve_basins(None) == ds.basin_ids() == ds.resolve_basins("all")
    assert ds.resolve_basins("01022500") == ["01022500"]
    assert ds.resolve_basins("01022500,03439000") == ["01022500", "03439000"]
    assert ds.resolve_basins(" 01022500 , 03439000 ") == ["01022500", "03439000"]
    assert ds.resolve_basins(["03439000", "01022500"]) == ["03439000", "01022500"]
    f = tmp_path / "ids.txt"
    f.write_text("# my basins\n03439000\n\n01022500  # Maine\n")
    assert ds.resolve_basins(str(f)) == ["03439000", "01022500"]
    assert set(ds.resolve_basins("531_clean")) <= set(ds.basin_ids())
    with pytest.raises(DataError, match="neither a subset.*nor a gauge id"):
        ds.resolve_basins("1022500")
    with pytest.raises(DataError, match=r"unknown basin\(s\) \['99999999'\].*leading zeros"):
        ds.resolve_basins("01022500,99999999")
    with pytest.raises(DataError, match="holds no gauge ids"):
        ds.resolve_basins(",")
    f.write_text("# nothing\n")
    with pytest.raises(DataError, match="holds no gauge ids"):
        ds.resolve_basins(str(f))


def test_ra_matches_fao56_example():
    # FAO-56 example 8: 20 deg S, 3 September (J = 246): Ra = 32.2 MJ m-2 day-1
    assert extraterrestrial_radiation(-20.0, np.array([246]))[0, 0] == pytest.approx(32.2, abs=0.1)


def test_hargreaves_clips_inverted_range():
    pet = hargreaves(np.array([[5.0]]), np.array([[8.0]]), 45.0, np.array([180]))
    assert pet[0, 0] == 0.0


def _copy_sample(tmp_path, edit):
    root = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, root)
    f = root / "timeseries" / "01022500.csv.gz"
    lines = gzip.open(f, "rt").read().splitlines()
    lines = edit(lines)
    with gzip.open(f, "wt") as g:
        g.write("\n".join(lines) + "\n")
    return CamelsDataset(root)


def test_nan_forcing_is_named(tmp_path):
    def edit(lines):
        cols = lines[100].split(",")
        cols[1] = ""
        lines[100] = ",".join(cols)
        return lines
    ds = _copy_sample(tmp_path, edit)
    with pytest.raises(DataError, match=r"precipitation is NaN.*01022500.*1980-04-09"):
        ds.load(["01022500"])


def test_negative_precipitation_is_named(tmp_path):
    def edit(lines):
        cols = lines[5].split(",")
        cols[1] = "-3.0"
        lines[5] = ",".join(cols)
        return lines
    ds = _copy_sample(tmp_path, edit)
    with pytest.raises(DataError, match="negative precipitation.*01022500"):
        ds.load(["01022500"])


def test_unknown_basin_and_not_a_data_dir(tmp_path):
    with pytest.raises(DataError, match="unknown basin.*1022500"):
        CamelsDataset().load(["1022500"])
    with pytest.raises(DataError, match="basins.csv is missing"):
        CamelsDataset(tmp_path)


def test_missing_attribute_is_named():
    with pytest.raises(DataError, match="not_an_attribute"):
        CamelsDataset().attributes(["01022500"], ["p_mean", "not_an_attribute"])
    enc = AttributeEncoder.fit({"p_mean": ["1", "2"], "geol": ["a", ""]})
    with pytest.raises(KeyError, match="geol"):
        enc.transform({"p_mean": ["1"]})


def test_categorical_encoding_roundtrip():
    enc = AttributeEncoder.fit({"x": ["1", "3"], "geol": ["sand", ""]})
    assert enc.feature_names == ["x", "geol=none", "geol=sand"]
    out = enc.transform({"x": ["2"], "geol": ["sand"]})
    np.testing.assert_allclose(out, [[0.0, 0.0, 1.0]])
    enc2 = AttributeEncoder.from_dict(enc.to_dict())
    np.testing.assert_allclose(enc2.transform({"x": ["2"], "geol": [""]}), [[0.0, 1.0, 0.0]])
    with pytest.warns(UserWarning, match="unseen"):
        enc.transform({"x": ["2"], "geol": ["granite"]})


def test_era5l_forcing_set():
    """``forcing_set="era5l"``: ERA5-Land precipitation and mean temperature, the Daymet range
    around that mean for Hargreaves PET, Daymet where ERA5-Land is missing (warned)."""
    from delta_core.config import ConfigError, DataConfig

    ds = CamelsDataset()
    gid = ds.basin_ids()[0]
    day = ds.load([gid], None, "1985-12-31")
    with pytest.warns(UserWarning, match="ERA5-Land missing on .* Daymet used there"):
        era = ds.load([gid], None, "1985-12-31", forcing_set="era5l")
    raw = ds.load([gid], None, "1985-12-31", forcings=("era5l_prcp", "era5l_t2m"))
    ok = np.isfinite(raw["era5l_prcp"][:, 0]) & np.isfinite(raw["era5l_t2m"][:, 0])
    assert ok.sum() > 1500 and (~ok).sum() >= 366  # 1980 has no ERA5-Land
    np.testing.assert_array_equal(era.prcp[ok, 0], raw["era5l_prcp"][ok, 0])
    np.testing.assert_allclose(era.tmean[ok, 0], raw["era5l_t2m"][ok, 0], atol=1e-12)
    np.testing.assert_allclose(era.tmax - era.tmin, np.maximum(day.tmax - day.tmin, 0.0),
                               atol=1e-12)
    np.testing.assert_array_equal(era.prcp[~ok, 0], day.prcp[~ok, 0])
    assert not np.array_equal(era.pet, day.pet) and np.isfinite(era.pet).all()
    with pytest.raises(DataError, match="unknown forcing set 'cmip'"):
        ds.load([gid], forcing_set="cmip")
    with pytest.raises(ConfigError, match="data.forcing_set must be one of"):
        DataConfig(forcing_set="era5")


def test_evaluation_uses_the_bundles_forcing_set(random_bundle, tmp_path):
    """A bundle trained on ERA5-Land is evaluated on ERA5-Land (recorded in simulation.nc)."""
    import netCDF4

    from delta_core.bundle import load_bundle, save_bundle
    from delta_core.evaluation import evaluate_model

    b = load_bundle(random_bundle("dhbv"))
    ds = CamelsDataset()
    ids = ds.basin_ids()[:2]
    out = {}
    for fs in ("daymet", "era5l"):
        cfg = {**b["config"], "data": {**b["config"].get("data", {}), "forcing_set": fs}}
        path = save_bundle(tmp_path / f"{fs}.pt", model=b["model"], state_dict=b["state_dict"],
                           config=cfg, normalization=b["normalization"],
                           provenance=b["provenance"])
        res = evaluate_model(path, ds, ids, "2005-10-01", "2006-09-30", out_dir=tmp_path / fs,
                             warn_overlap=False)
        out[fs] = res["simulation"]["outputs"]["streamflow"]
        with netCDF4.Dataset(tmp_path / fs / "simulation.nc") as nc:
            assert nc.forcing_set == fs
    assert not np.allclose(out["daymet"], out["era5l"])
