"""Simulate trained δ models and score them against observed streamflow.

States are spun up on all forcing before the evaluation start (from the first day of data, cold
start), then the model runs through the evaluation period; metrics use that period only.
"""
from __future__ import annotations

import csv
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch

from delta_core.bundle import load_bundle
from delta_core.hourly_forcing import HourlyForcing
from delta_core.data.camels import CamelsDataset, date_index
from delta_core.inputs import Normalization, build_inputs, raw_attribute_array
from delta_core.metrics import all_metrics
from delta_core.registry import model_spec
from delta_core.spec import Engine


def load_model(bundle: str | Path | dict, dtype: torch.dtype = torch.float32,
               backend: str = "cpp", pattern: dict | None = None, physics: dict | None = None):
    """Model (in eval mode), normalisation and bundle dict from a bundle file (or a loaded
    bundle); the physics runs on ``backend``. ``physics``: fields of the model's physics config
    that replace the bundle's (e.g. ``{"steps_per_day": 24, "dynamic_lag_days": 1}`` runs a
    daily dHBV bundle hourly); ``pattern``: :class:`WithinDay` fields that replace its
    within-day pattern (an hourly model only)."""
    b = bundle if isinstance(bundle, dict) else load_bundle(bundle)
    spec = model_spec(b["model"])
    cfg = b["config"]
    norm = Normalization.from_dict(b["normalization"])
    physics_cfg = spec.physics_section(cfg["physics"], f"bundle {b['model']} physics")
    physics = dataclasses.replace(physics_cfg, **physics) if physics else physics_cfg
    if pattern:
        if spec.physics_step(physics) == 86400:
            raise ValueError(f"this {b['model']} bundle steps daily: a within-day pattern needs "
                             f"an hourly model")
        physics = dataclasses.replace(
            physics, within_day=dataclasses.replace(physics.within_day, **pattern))
    model = spec.build_model(physics, cfg["network"], len(norm.attributes.feature_names),
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
             progress: bool = False, hourly: HourlyForcing | None = None,
             forcing_set: str = "daymet") -> dict:
    """Run the model from the first day of data to ``end``; return ``start..end``. A
    stochastic within-day rain pattern is drawn per basin from its seed
    (:meth:`delta_core.patterns.WithinDay.draw_for_basins`).

    With ``hourly`` (:func:`delta_core.hourly_forcing.read_directory` of ``ids``, covering whole
    days up to ``end``) the model runs hourly on those hours: before them on the pack's daily
    forcing spread by its within-day pattern (the spin-up), from their first day on the given
    hours; the networks see the days' aggregates (precipitation and PET summed, temperature
    averaged), as an hourly BMI does. ``forcing_set``: the daily data's source
    (:data:`~delta_core.data.camels.FORCING_SETS`; a bundle's is its ``data.forcing_set``).

    Returns
    -------
    dict with ``dates`` [T], ``gauge_ids``, ``qobs`` [T, B], ``area_km2``, ``lat`` and
    ``outputs`` {name: ndarray [T, B]} in the units of the model spec's ``outputs``.
    """
    from tqdm import tqdm

    ts = dataset.load(ids, end=end, forcings=norm.forcing.names, progress=progress,
                      forcing_set=forcing_set)
    i0 = date_index(ts.dates, start, "start date")
    raw = dataset.attributes(ids, norm.attributes.names)
    inputs = build_inputs(ts, raw, norm,
                          raw_attribute_array(dataset, ids, getattr(model, "raw_attributes", ())))
    outputs: dict[str, list[np.ndarray]] = {}
    steps = np.arange(len(ts.dates))
    pattern = getattr(model, "pattern", None)
    given = None
    if hourly is not None:
        if getattr(model, "physics_step_seconds", 86400) != 3600:
            raise ValueError("this bundle's physics steps daily: hourly forcing needs a model "
                             "whose physics steps hourly (dHBV with steps_per_day 24, dCFE, "
                             "dLGAR)")
        given = _given_hours(hourly, ts.dates, ts.lat, pattern, inputs, norm, list(ids))
    for b0 in tqdm(range(0, len(ids), batch_basins), desc="simulating", disable=not progress):
        basins = np.arange(b0, min(b0 + batch_basins, len(ids)))
        batch = inputs.batch(steps, basins, i0, dtype)
        if pattern is not None and pattern.stochastic:  # seeded per basin: batching-independent
            batch["rain_weights"] = torch.from_numpy(
                pattern.draw_for_basins(len(steps), [ids[b] for b in basins]))
        if given is not None:
            batch["hourly_forcing"] = _spun_up_hours(batch, pattern, given[:, basins], dtype)
        with torch.no_grad():
            out = model(batch)
        for k, v in out.items():
            if k != "final_states":
                outputs.setdefault(k, []).append(v.numpy())
    return {"dates": ts.dates[i0:], "gauge_ids": list(ids), "qobs": ts.qobs[i0:],
            "area_km2": ts.area_km2, "lat": ts.lat,
            "outputs": {k: np.concatenate(v, axis=1) for k, v in outputs.items()}}


def _given_hours(hourly: HourlyForcing, dates: np.ndarray, lat: np.ndarray, pattern,
                 inputs, norm: Normalization, ids: list[str]) -> np.ndarray:
    """The given hours ``[24 n, B, 3]`` (P mm, T degC, PET mm) of the last ``n`` days of
    ``dates`` (which must end with them); the networks' daily forcing of those days becomes
    their aggregates (``inputs`` changed in place)."""
    from delta_core.hourly_forcing import trailing_hargreaves

    first = date_index(dates, str(hourly.first_day), "first day of the hourly forcing")
    if len(dates) - first != hourly.n_days:
        raise ValueError(f"the hourly forcing covers {hourly.n_days} days from "
                         f"{hourly.first_day}, the run {len(dates) - first}")
    pet = hourly.pet
    if pet is None:
        pet = trailing_hargreaves(hourly.temp, hourly.start, lat, pattern.pet_weights().tolist(),
                                  ids)
    hours = np.stack([hourly.prcp, hourly.temp, pet], axis=-1)
    days = hours.reshape(hourly.n_days, 24, *hours.shape[1:])
    inputs.forcing[first:] = np.stack([days[..., 0].sum(1), days[..., 1].mean(1),
                                       days[..., 2].sum(1)], axis=-1)
    inputs.x_forcing = norm.forcing.transform(inputs.forcing)
    return hours


def _spun_up_hours(batch: dict, pattern, given: np.ndarray, dtype) -> torch.Tensor:
    """Hourly forcing ``[24 D, B, 3]`` of a batch: its daily forcing spread by ``pattern``
    (the batch's rain weights) before the given hours, then the given hours."""
    from delta_core.subdaily import step_forcing

    forcing = batch["forcing"]
    n_spin = forcing.shape[0] - given.shape[0] // 24
    spin = {k: v[:n_spin] for k, v in batch.items() if k == "rain_weights"}
    s = step_forcing(forcing[:n_spin], pattern, spin)
    early = torch.stack([s.prcp, s.temp, s.pet], dim=-1)
    return torch.cat([early, torch.as_tensor(given, dtype=dtype)])


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
                   progress: bool = False, warn_overlap: bool = True,
                   hourly_dir: str | Path | None = None, pattern: dict | None = None,
                   physics: dict | None = None) -> dict:
    """Simulate, score and (with ``out_dir``) write metrics.csv and simulation.nc.

    ``hourly_dir``: a directory of hourly forcing files (:mod:`delta_core.hourly_forcing`): the
    model runs hourly on them (spun up on the pack's daily forcing before their first hour) and
    is scored over the overlap of their whole days with ``start..end``. ``pattern``: fields of
    :class:`~delta_core.patterns.WithinDay` that replace the bundle's within-day pattern (e.g.
    ``{"rain": "block", "rain_start_hour": 14, "rain_hours": 3}``); ``physics``: physics
    config fields that replace the bundle's (:func:`load_model`).

    Returns the summary of :func:`summarize` plus ``rows`` (per-basin metrics) and
    ``simulation`` (see :func:`simulate`).
    """
    from delta_core.netcdf_io import write_simulation

    if str(end) < str(start):
        raise ValueError(f"end {end} is before start {start}")
    b = bundle if isinstance(bundle, dict) else load_bundle(bundle)
    dtype = training_dtype(b)
    model, norm, b = load_model(b, dtype=dtype, backend=backend, pattern=pattern,
                                physics=physics)
    hourly = None
    if hourly_dir is not None:
        from delta_core.hourly_forcing import read_directory

        hourly = read_directory(hourly_dir, ids)
        last = str(hourly.first_day + hourly.n_days - 1)
        start, end = max(str(start), str(hourly.first_day)), min(str(end), last)
        if end < start:
            raise ValueError(f"the hourly forcing in {hourly_dir} ({hourly.first_day}..{last}) "
                             f"does not overlap the evaluation period")
        hourly = hourly.until(end)
    if warn_overlap:
        warn_if_overlap(b["provenance"].get("train_period"), start, end, "evaluation period",
                     "the bundle's")
    spec = model_spec(b["model"])
    forcing_set = b["config"].get("data", {}).get("forcing_set", "daymet")
    sim = simulate(model, norm, dataset, ids, start, end, dtype=dtype, progress=progress,
                   forcing_set=forcing_set,
                   hourly=hourly)
    rows = basin_metrics(sim, spec.baseflow_output)
    summary = summarize(rows)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_metrics_csv(out_dir / "metrics.csv", rows)
        write_simulation(out_dir / "simulation.nc", sim, spec.output_units,
                         step_seconds=spec.step_seconds,
                         attrs={"model": b["model"], "backend": backend,
                                "forcing_set": forcing_set,
                                "bundle_checksum": b["checksum"],
                                "bundle_commit": b["provenance"].get("git_commit", "unknown")})
    return {**summary, "rows": rows, "simulation": sim, "start": str(start), "end": str(end)}
