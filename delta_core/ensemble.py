"""Ensembles of model runs, scored from their saved simulations (no model is run again).

A member is a ``simulation.nc`` written by ``<model>-eval`` or a ``delta-experiment`` run
(:func:`delta_core.netcdf_io.write_simulation`): daily streamflow [mm d-1] and the observations
of its basins. Members may differ in seed, forcing set or model class; they must share basins
and days (the ensemble takes the basins and days all members have, and refuses members whose
observations disagree, i.e. runs on other data). The ensemble's streamflow is the members' mean
(or a weighted mean), and its spread the members' standard deviation, minimum and maximum each
day: an uncertainty band to plot beside the mean.

A member may also be the ``--out`` folder of ``delta-experiment pub`` or ``pur``: its folds'
held-out simulations (``fold_*/test/simulation.nc``, disjoint basins, the same days) read as one,
so that an ensemble of ungauged-basin predictions is scored on every basin held out so far.

    delta-experiment ensemble --members runs/dhbv/test runs/lstm/test --out runs/ens
    delta-experiment ensemble --members runs/exp/pub_dhbv runs/exp/pub_lstm --out runs/ens_pub
"""
from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np

#: Outputs written beside the ensemble mean ``streamflow`` [mm d-1].
SPREAD_OUTPUTS = {
    "streamflow_sd": ("mm d-1", "standard deviation of the members' streamflow"),
    "streamflow_min": ("mm d-1", "smallest member streamflow"),
    "streamflow_max": ("mm d-1", "largest member streamflow"),
}


def read_simulation(path: str | Path) -> dict:
    """A ``simulation.nc`` (or the folder holding one, or a ``delta-experiment pub|pur`` folder:
    its folds merged by :func:`merge_folds`) as :func:`~delta_core.evaluation.simulate` returns
    it: ``dates``, ``gauge_ids``, ``qobs``, ``outputs`` (every daily series, e.g.
    ``streamflow``, an ensemble's spread), ``area_km2``, ``lat`` and the file's global attributes
    as ``attrs``."""
    path = Path(path)
    if path.is_dir() and not (path / "simulation.nc").is_file():
        folds = sorted(path.glob("fold_*/test/simulation.nc"))
        if folds:
            return merge_folds([read_simulation(f) for f in folds], str(path))
    if path.is_dir():
        path = path / "simulation.nc"
    if not path.is_file():
        raise FileNotFoundError(f"no simulation.nc at {path} (write one with <model>-eval --out, "
                                f"or give a delta-experiment pub/pur folder with fold_*/test/)")
    with netCDF4.Dataset(path) as nc:
        if "streamflow" not in nc.variables or "qobs" not in nc.variables:
            raise ValueError(f"{path} has no streamflow and qobs series")
        t = nc.variables["time"]
        unit = t.units.split()[0]
        scale = {"days": 86400, "hours": 3600, "seconds": 1}[unit]
        if unit != "days":
            raise ValueError(f"{path}: ensembles combine daily series, this one is in {unit}")
        seconds = np.asarray(t[:], dtype=np.int64) * scale
        dates = (np.datetime64("1970-01-01", "s") + seconds.astype("timedelta64[s]")
                 ).astype("datetime64[D]")
        read = lambda k: np.asarray(nc.variables[k][:].filled(np.nan), dtype=float)  # noqa: E731
        series = [k for k, v in nc.variables.items()
                  if v.dimensions == ("time", "basin") and k != "qobs"]
        return {"dates": dates, "gauge_ids": [str(g) for g in nc.variables["gauge_id"][:]],
                "qobs": read("qobs"), "outputs": {k: read(k) for k in series},
                "area_km2": read("area"), "lat": read("lat"),
                "attrs": {k: nc.getncattr(k) for k in nc.ncattrs()}, "path": str(path)}


def merge_folds(folds: list[dict], path: str) -> dict:
    """The held-out simulations of a split experiment's folds (:func:`read_simulation` each) as
    one simulation of all their basins, in fold order.

    Raises
    ------
    ValueError
        Folds on other days or with a basin in two folds (not one split experiment).
    """
    seen: dict[str, str] = {}
    for f in folds:
        if not np.array_equal(f["dates"], folds[0]["dates"]):
            raise ValueError(f"{f['path']}: its days differ from {folds[0]['path']}'s: folds of "
                             f"one experiment share the test period")
        for g in f["gauge_ids"]:
            if g in seen:
                raise ValueError(f"basin {g} is in {seen[g]} and {f['path']}: the folds of a "
                                 f"split experiment hold disjoint basins")
            seen[g] = f["path"]
    keys = set.intersection(*(set(f["outputs"]) for f in folds))
    cat = lambda k: np.concatenate([f[k] for f in folds], axis=-1)  # noqa: E731
    return {"dates": folds[0]["dates"], "gauge_ids": list(seen), "qobs": cat("qobs"),
            "outputs": {k: np.concatenate([f["outputs"][k] for f in folds], axis=1)
                        for k in sorted(keys)},
            "area_km2": cat("area_km2"), "lat": cat("lat"),
            "attrs": {**folds[0]["attrs"], "folds": len(folds)}, "path": path}


def combine(members: list[dict], weights: list[float] | None = None) -> dict:
    """The ensemble of simulations (:func:`read_simulation`): on the basins and days every member
    has, ``streamflow`` the (weighted) mean of the members' and the spread outputs of
    :data:`SPREAD_OUTPUTS`.

    Raises
    ------
    ValueError
        Fewer than two members, no common basin or day, weights that do not match the members or
        are not positive, or members whose observations differ (other data).
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(members),) or not np.all(w > 0):
        raise ValueError(f"weights must be {len(members)} positive numbers, got {weights}")
    ids = [g for g in members[0]["gauge_ids"] if all(g in m["gauge_ids"] for m in members[1:])]
    dates = members[0]["dates"]
    for m in members[1:]:
        dates = np.intersect1d(dates, m["dates"])
    if not ids or not len(dates):
        raise ValueError("the members share no basin and day: "
                         + "; ".join(f"{m['path']}: {len(m['gauge_ids'])} basins, "
                                     f"{m['dates'][0]}..{m['dates'][-1]}" for m in members))
    flows, qobs = [], None
    for m in members:
        rows = np.searchsorted(m["dates"], dates)
        cols = [m["gauge_ids"].index(g) for g in ids]
        q = m["outputs"]["streamflow"][np.ix_(rows, cols)]
        o = m["qobs"][np.ix_(rows, cols)]
        if qobs is None:
            qobs = o
        elif not np.allclose(o, qobs, rtol=1e-5, atol=1e-6, equal_nan=True):
            raise ValueError(f"{m['path']}: its observations differ from {members[0]['path']}'s "
                             f"on the common basins and days (another data set?)")
        flows.append(q)
    stack = np.stack(flows)
    mean = np.tensordot(w / w.sum(), stack, axes=1)
    first = members[0]
    cols = [first["gauge_ids"].index(g) for g in ids]
    return {"dates": dates, "gauge_ids": ids, "qobs": qobs,
            "area_km2": first["area_km2"][cols], "lat": first["lat"][cols],
            "outputs": {"streamflow": mean, "streamflow_sd": stack.std(axis=0),
                        "streamflow_min": stack.min(axis=0), "streamflow_max": stack.max(axis=0)},
            "members": [m["path"] for m in members], "weights": (w / w.sum()).tolist()}


def score_ensemble(paths: list[str | Path], out: str | Path | None = None,
                   weights: list[float] | None = None) -> dict:
    """Read the members, combine them and score each member and the ensemble on the common
    basins and days; with ``out`` write ``metrics.csv`` (per basin), ``simulation.nc`` (mean and
    spread) and ``summary.csv``.

    Returns
    -------
    dict
        ``members``: per member ``{path, model, median_nse, median_kge, n_basins}``;
        ``ensemble``: the same for the ensemble, plus ``rows`` (per-basin metrics) and
        ``simulation``.
    """
    from delta_core.evaluation import basin_metrics, summarize, write_metrics_csv
    from delta_core.netcdf_io import write_simulation

    members = [read_simulation(p) for p in paths]
    ens = combine(members, weights)
    summary = []
    for m in members:  # each member on the ensemble's basins and days
        rows = np.searchsorted(m["dates"], ens["dates"])
        cols = [m["gauge_ids"].index(g) for g in ens["gauge_ids"]]
        sub = {**ens, "outputs": {"streamflow": m["outputs"]["streamflow"][np.ix_(rows, cols)]}}
        summary.append({"member": m["path"], "model": m["attrs"].get("model", "?"),
                        **summarize(basin_metrics(sub, baseflow=None))})
    rows = basin_metrics(ens, baseflow=None)
    result = {"member": "ensemble mean", "model": "+".join(s["model"] for s in summary),
              **summarize(rows)}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_metrics_csv(out / "metrics.csv", rows)
        write_simulation(out / "simulation.nc", ens,
                         {"streamflow": ("mm d-1", "ensemble mean streamflow"), **SPREAD_OUTPUTS},
                         attrs={"model": "ensemble", "members": " ".join(ens["members"]),
                                "weights": " ".join(f"{x:.6g}" for x in ens["weights"])})
        write_metrics_csv(out / "summary.csv", [*summary, result])
    return {"members": summary, "ensemble": {**result, "rows": rows, "simulation": ens}}
