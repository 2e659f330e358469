"""Ensembles scored from saved simulations (:mod:`delta_core.ensemble`): the mean and spread of
members on their common basins and days, members scored on the same ones, refusals named."""
from __future__ import annotations

import numpy as np
import pytest

from delta_core.ensemble import combine, read_simulation, score_ensemble
from delta_core.experiments import main as experiment_main
from delta_core.metrics import nse
from delta_core.netcdf_io import write_simulation


def _sim(path, ids, start, days, flow, qobs, model="x"):
    dates = np.datetime64(start) + np.arange(days)
    sim = {"dates": dates, "gauge_ids": ids, "qobs": qobs, "outputs": {"streamflow": flow},
           "area_km2": np.full(len(ids), 100.0), "lat": np.full(len(ids), 40.0)}
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_simulation(path, sim, {"streamflow": ("mm d-1", "streamflow")},
                            attrs={"model": model})


@pytest.fixture
def members(tmp_path):
    rng = np.random.default_rng(0)
    days, ids = 60, ["01", "02", "03"]
    obs = rng.gamma(2.0, 1.0, (days + 5, 3))
    a = obs[:days] * 1.3 + 0.1  # too high
    b = obs[5:] * 0.7  # too low, 5 days later start
    pa = _sim(tmp_path / "a" / "simulation.nc", ids, "2000-01-01", days, a, obs[:days], "dhbv")
    pb = _sim(tmp_path / "b" / "simulation.nc", ["03", "02", "01", "04"], "2000-01-06", days,
              np.concatenate([b[:, ::-1], b[:, :1]], 1),
              np.concatenate([obs[5:, ::-1], obs[5:, :1]], 1), "lstm")
    return pa, pb, obs


def test_mean_and_spread_on_common_basins_and_days(members, tmp_path):
    pa, pb, obs = members
    ens = combine([read_simulation(pa), read_simulation(pb.parent)])
    assert ens["gauge_ids"] == ["01", "02", "03"] and len(ens["dates"]) == 55
    assert str(ens["dates"][0]) == "2000-01-06"
    want = 0.5 * ((obs[5:60] * 1.3 + 0.1) + obs[5:60] * 0.7)
    np.testing.assert_allclose(ens["outputs"]["streamflow"], want, rtol=1e-6)
    lo, hi = ens["outputs"]["streamflow_min"], ens["outputs"]["streamflow_max"]
    assert np.all(lo <= ens["outputs"]["streamflow"]) and np.all(ens["outputs"]["streamflow"] <= hi)
    np.testing.assert_allclose(ens["outputs"]["streamflow_sd"], 0.5 * (hi - lo), rtol=1e-5)
    res = score_ensemble([pa, pb], tmp_path / "ens", weights=[1.0, 1.0])
    got = res["ensemble"]["rows"][0]["nse"]
    assert got == pytest.approx(nse(want[:, 0], obs[5:60, 0]), rel=1e-5)
    assert res["ensemble"]["median_nse"] > max(m["median_nse"] for m in res["members"])
    back = read_simulation(tmp_path / "ens")
    np.testing.assert_allclose(back["outputs"]["streamflow"], want, rtol=1e-6)
    assert (tmp_path / "ens" / "summary.csv").read_text().count("\n") == 4


def test_refusals_are_named(members, tmp_path):
    pa, pb, obs = members
    with pytest.raises(ValueError, match="at least 2 members"):
        combine([read_simulation(pa)])
    with pytest.raises(ValueError, match="weights must be 2 positive"):
        combine([read_simulation(pa), read_simulation(pb)], [1.0, 0.0])
    other = _sim(tmp_path / "c" / "simulation.nc", ["01", "02", "03"], "2000-01-01", 60,
                 obs[:60], obs[:60] + 1.0)
    with pytest.raises(ValueError, match="observations differ"):
        combine([read_simulation(pa), read_simulation(other)])
    far = _sim(tmp_path / "d" / "simulation.nc", ["01"], "1990-01-01", 10, obs[:10, :1],
               obs[:10, :1])
    with pytest.raises(ValueError, match="share no basin and day"):
        combine([read_simulation(pa), read_simulation(far)])
    with pytest.raises(FileNotFoundError, match="no simulation.nc"):
        read_simulation(tmp_path / "nowhere")


def test_experiment_cli(members, tmp_path, capsys):
    pa, pb, _ = members
    assert experiment_main(["ensemble", "--members", str(pa), str(pb.parent), "--out",
                            str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert "ensemble mean (dhbv+lstm): median NSE" in out
    with pytest.raises(SystemExit):
        experiment_main(["ensemble", "--members", str(pa), "--out", str(tmp_path / "f")])
    with pytest.raises(SystemExit):
        experiment_main(["seeds", "--out", str(tmp_path / "g")])  # needs --config


def test_eval_with_two_bundles_writes_members_and_their_ensemble(tmp_path, capsys):
    """``<model>-eval --bundle A --bundle B``: each member into OUT/member_<i>/, the ensemble
    (mean and spread) into OUT, on the shipped sample."""
    from conftest import REPO
    from delta_core.cli import eval_command
    from delta_core.registry import model_spec

    w = REPO / "bmi_dhbv" / "weights"
    assert eval_command(["--bundle", str(w / "dhbv_static.pt"), "--bundle",
                         str(w / "dhbv_dynamic.pt"), "--basins", "01022500", "--start",
                         "2005-10-01", "--out", str(tmp_path)], "dhbv-eval",
                        model_spec("dhbv")) == 0
    assert "ensemble of 2: median NSE" in capsys.readouterr().out
    a, b, e = (read_simulation(tmp_path / p) for p in ("member_0", "member_1", "."))
    np.testing.assert_allclose(e["outputs"]["streamflow"], 0.5 * (
        a["outputs"]["streamflow"] + b["outputs"]["streamflow"]), rtol=1e-6)
    assert (e["outputs"]["streamflow_max"] >= e["outputs"]["streamflow_min"]).all()


def test_split_experiment_folder_reads_as_one_member(members, tmp_path):
    """A pub/pur --out folder is its folds' held-out simulations merged (disjoint basins, same
    days), so a PUB ensemble is scored on every basin held out so far."""
    pa, _, obs = members
    full = read_simulation(pa)
    pub = tmp_path / "pub"
    for i, cols in enumerate([[0, 2], [1]]):
        _sim(pub / f"fold_{i}" / "test" / "simulation.nc", [full["gauge_ids"][c] for c in cols],
             "2000-01-01", 60, full["outputs"]["streamflow"][:, cols], obs[:60, cols], "dhbv")
    merged = read_simulation(pub)
    assert merged["gauge_ids"] == ["01", "03", "02"] and merged["attrs"]["folds"] == 2
    np.testing.assert_allclose(merged["outputs"]["streamflow"],
                               full["outputs"]["streamflow"][:, [0, 2, 1]], rtol=1e-6)
    res = score_ensemble([pub, pa])  # the same flows: the ensemble equals its members
    assert res["ensemble"]["median_nse"] == pytest.approx(res["members"][0]["median_nse"])
    assert res["ensemble"]["n_basins"] == 3
    _sim(pub / "fold_2" / "test" / "simulation.nc", ["02"], "2000-01-01", 60,
         full["outputs"]["streamflow"][:, [1]], obs[:60, [1]])
    with pytest.raises(ValueError, match="basin 02 is in .*fold_1.* and .*fold_2"):
        read_simulation(pub)
    (pub / "fold_2" / "test" / "simulation.nc").unlink()
    _sim(pub / "fold_3" / "test" / "simulation.nc", ["04"], "2000-02-01", 60,
         full["outputs"]["streamflow"][:, [1]], obs[:60, [1]])
    with pytest.raises(ValueError, match="days differ"):
        read_simulation(pub)
