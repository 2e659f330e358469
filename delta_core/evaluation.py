"""Simulate trained δ models and score them against observed streamflow.

States are spun up on all forcing before the evaluation start (from the first day of data, cold
start), then the model runs through the evaluation period; metrics use that period only.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import torch

from delta_core.bundle import load_bundle
from delta_core.data.camels import CamelsDataset, date_index
from delta_core.inputs import Normalization, build_inputs, raw_attribute_array
from delta_core.metrics import all_metrics
from delta_core.registry import model_spec
from delta_core.spec import Engine


def load_model(bundle: str | Path | dict, dtype: torch.dtype = torch.float32,
               backend: str = "cpp"):
    """Model (in eval mode), normalisation and bundle dict from a bundle file (or a loaded
    bundle); the physics runs on ``backend``."""
    b = bundle if isinstance(bundle, dict) else load_bundle(bundle)
    spec = model_spec(b["model"])
    cfg = b["config"]
    norm = Normalization.from_dict(b["normalization"])
    model = spec.build_model(cfg["physics"], cfg["network"], len(norm.attributes.feature_names),
                             Engine(backend, dtype))
    model.load_state_dict(b["state_dict"])
    return model.eval(), norm, b


def training_dtype(bundle: dict) -> torch.dtype:
    """The dtype a bundle was trained in (its run config's training.dtype; float32 if absent):
    evaluation runs in it, so a model trained in float64 is not evaluated in float32."""
    name = bundle.get("config", {}).get("training", {}).get("dtype", "float32")
    return torch.float64 if name == "float64" else torch.float32


def simulate(model, norm: Normalization, dataset: CamelsDataset, ids: list[str], start: str,
             end: str, batch_basins: int = 64, dtype=torch.float32,
             progress: bool = False) -> dict:
    """Run the model from the first day of data to ``end``; return ``start..end``. A
    stochastic within-day rain pattern is drawn per basin from its seed
    (:meth:`delta_core.patterns.WithinDay.draw_for_basins`).

    Returns
    -------
    dict with ``dates`` [T], ``gauge_ids``, ``qobs`` [T, B], ``area_km2``, ``lat`` and
    ``outputs`` {name: ndarray [T, B]} in the units of the model spec's ``outputs``.
    """
    from tqdm import tqdm

    ts = dataset.load(ids, end=end, forcings=norm.forcing.names, progress=progress)
    i0 = date_index(ts.dates, start, "start date")
    raw = dataset.attributes(ids, norm.attributes.names)
    inputs = build_inputs(ts, raw, norm,
                          raw_attribute_array(dataset, ids, getattr(model, "raw_attributes", ())))
    outputs: dict[str, list[np.ndarray]] = {}
    steps = np.arange(len(ts.dates))
    pattern = getattr(model, "pattern", None)
    for b0 in tqdm(range(0, len(ids), batch_basins), desc="simulating", disable=not progress):
        basins = np.arange(b0, min(b0 + batch_basins, len(ids)))
        batch = inputs.batch(steps, basins, i0, dtype)
        if pattern is not None and pattern.stochastic:  # seeded per basin: batching-independent
            batch["rain_weights"] = torch.from_numpy(
                pattern.draw_for_basins(len(steps), [ids[b] for b in basins]))
        with torch.no_grad():
            out = model(batch)
        for k, v in out.items():
            if k != "final_states":
                outputs.setdefault(k, []).append(v.numpy())
    return {"dates": ts.dates[i0:], "gauge_ids": list(ids), "qobs": ts.qobs[i0:],
            "area_km2": ts.area_km2, "lat": ts.lat,
            "outputs": {k: np.concatenate(v, axis=1) for k, v in outputs.items()}}


def basin_metrics(sim: dict, baseflow: str | None = "baseflow") -> list[dict]:
    """One row per basin: gauge_id, NSE, KGE, FHV, FLV, ..., and the simulated baseflow index
    (``baseflow`` output / streamflow) when the model has a ``baseflow`` output."""
    rows = []
    out = sim["outputs"]
    for b, gid in enumerate(sim["gauge_ids"]):
        q, o = out["streamflow"][:, b], sim["qobs"][:, b]
        row = {"gauge_id": gid, **all_metrics(q, o)}
        if baseflow is not None and baseflow in out:
            row["bfi_sim"] = float(out[baseflow][:, b].sum() / max(q.sum(), 1e-12))
        row["q_mean_sim"] = float(np.mean(q))
        row["q_mean_obs"] = float(np.nanmean(o)) if np.isfinite(o).any() else np.nan
        row["n_obs"] = int(np.isfinite(o).sum())
        rows.append(row)
    return rows


def summarize(rows: list[dict]) -> dict:
    """Median NSE/KGE over basins with observations."""
    nse = np.array([r["nse"] for r in rows], dtype=float)
    kge = np.array([r["kge"] for r in rows], dtype=float)
    return {"median_nse": float(np.nanmedian(nse)) if np.isfinite(nse).any() else np.nan,
            "median_kge": float(np.nanmedian(kge)) if np.isfinite(kge).any() else np.nan,
            "n_basins": int(np.isfinite(nse).sum())}


def write_metrics_csv(path: str | Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def warn_if_overlap(train: list | tuple | None, start: str, end: str, what: str,
                 whose: str = "the") -> None:
    """Warn when ``start..end`` overlaps the training period ``train`` (optimistic scores)."""
    if train and str(start) <= str(train[1]) and str(train[0]) <= str(end):
        warnings.warn(f"{what} {start}..{end} overlaps {whose} training period "
                      f"{train[0]}..{train[1]}: scores there are not out-of-sample",
                      stacklevel=3)


def evaluate_model(bundle: str | Path | dict, dataset: CamelsDataset, ids: list[str],
                   start: str, end: str, backend: str = "cpp", out_dir: str | Path | None = None,
                   progress: bool = False, warn_overlap: bool = True) -> dict:
    """Simulate, score and (with ``out_dir``) write metrics.csv and simulation.nc.

    Returns the summary of :func:`summarize` plus ``rows`` (per-basin metrics) and
    ``simulation`` (see :func:`simulate`).
    """
    from delta_core.netcdf_io import write_simulation

    if str(end) < str(start):
        raise ValueError(f"end {end} is before start {start}")
    b = bundle if isinstance(bundle, dict) else load_bundle(bundle)
    dtype = training_dtype(b)
    model, norm, b = load_model(b, dtype=dtype, backend=backend)
    if warn_overlap:
        warn_if_overlap(b["provenance"].get("train_period"), start, end, "evaluation period",
                     "the bundle's")
    spec = model_spec(b["model"])
    sim = simulate(model, norm, dataset, ids, start, end, dtype=dtype, progress=progress)
    rows = basin_metrics(sim, spec.baseflow_output)
    summary = summarize(rows)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_metrics_csv(out_dir / "metrics.csv", rows)
        write_simulation(out_dir / "simulation.nc", sim, spec.output_units,
                         step_seconds=spec.step_seconds,
                         attrs={"model": b["model"], "backend": backend,
                                "bundle_checksum": b["checksum"],
                                "bundle_commit": b["provenance"].get("git_commit", "unknown")})
    return {**summary, "rows": rows, "simulation": sim}
