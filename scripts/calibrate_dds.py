#!/usr/bin/env python
"""Per-basin DDS calibration of a δ model's process model (the classical baseline beside it).

The model's calibration target (HBV with one component for ``--model dhbv``, CFE for ``dcfe``:
the same engine as the δ model, parameters in the same ranges, given directly), KGE objective on
the training period (1980-10-01..1995-09-30; states spun up on the data before it), ``--evals``
evaluations per basin (DDS, Tolson and Shoemaker 2007, r = 0.2,
``delta_core.baselines.calibration``), all basins' candidates simulated in one batch per
iteration. Then the test period (1995-10-01..2010-09-30, states continued from the calibration
run) is scored and compared with the δ model's bundle (default: the shipped one) on the same
basins; the calibrated model keeps that bundle's physics configuration (HBV: one component,
no dynamic parameters).

Basins: ``--n`` basins stratified by HUC-02 region (``--select region``, default) or spread over
the aridity ranking of the pack (``--select aridity``), or ``--basins``.

The search state is saved in ``OUT/dds_checkpoint.npz`` every 10 iterations: rerunning the
same command after an interruption continues it (the wall time printed is then that of the
last part only).
Writes ``OUT/dds_metrics.csv`` (per basin: region, aridity, calibration KGE, test NSE/KGE of the
calibrated model and the δ model), ``OUT/dds_parameters.csv`` and prints the medians and wall time.

Example::

    OMP_NUM_THREADS=1 python scripts/calibrate_dds.py --model dhbv --n 447 \\
        --data ../shared/data/camels_us_daily --out dds_hbv
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from delta_core.bundle import load_bundle
from delta_core.baselines.calibration import calibrate, region_stratified_basins
from delta_core.data.camels import CamelsDataset, date_index
from delta_core.evaluation import load_model, simulate, training_dtype
from delta_core.metrics import kge, nse
from delta_core.registry import model_spec

CAL = ("1980-10-01", "1995-09-30")
TEST = ("1995-10-01", "2010-09-30")


def aridity_spread_basins(aridity: dict[str, float], n: int) -> list[str]:
    """``n`` basins evenly spaced in the aridity ranking."""
    ranked = sorted(aridity, key=aridity.get)
    picks = np.unique(np.linspace(0, len(ranked) - 1, n).round().astype(int))
    return sorted(ranked[k] for k in picks)


def pick_basins(ds: CamelsDataset, a: argparse.Namespace) -> list[str]:
    if a.basins:
        return ds.resolve_basins(a.basins)
    ids = ds.basin_ids()
    raw = ds.attributes(ids, ["huc_02", "aridity"])
    aridity = dict(zip(ids, map(float, raw["aridity"])))
    if a.select == "aridity":
        return aridity_spread_basins(aridity, a.n)
    return region_stratified_basins(dict(zip(ids, raw["huc_02"])), aridity, a.n)


def delta_model_flow(b: dict, ds: CamelsDataset, ids: list[str]) -> np.ndarray:
    """Test-period streamflow [T, B] of the δ model's bundle ``b``."""
    dtype = training_dtype(b)
    model, norm, _ = load_model(b, dtype=dtype)
    return simulate(model, norm, ds, ids, *TEST, dtype=dtype)["outputs"]["streamflow"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="dhbv", help="δ model whose process model is calibrated")
    ap.add_argument("--data", required=True, help="CAMELS-format data directory")
    ap.add_argument("--n", type=int, default=100, help="number of basins")
    ap.add_argument("--select", choices=("region", "aridity"), default="region",
                    help="basin selection for --n: stratified by HUC-02 region, or aridity spread")
    ap.add_argument("--basins", help="comma-separated gauge ids instead of --n")
    ap.add_argument("--evals", type=int, default=500, help="DDS evaluations per basin")
    ap.add_argument("--bundle", default=None, help="δ model bundle to compare with (default: shipped)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    spec = model_spec(a.model)
    bundle = load_bundle(a.bundle or spec.default_bundle)
    if bundle["model"] != a.model:
        raise SystemExit(f"--bundle is a {bundle['model']!r} bundle, not {a.model!r}")
    target = spec.load_calibration_target()(bundle["config"]["physics"])

    ds = CamelsDataset(a.data)
    ids = pick_basins(ds, a)
    ts = ds.load(ids, end=TEST[1], forcings=target.forcings, progress=True)
    forcing = torch.from_numpy(ts.forcing(target.forcings)).double()
    cal = slice(date_index(ts.dates, CAL[0], "start"), date_index(ts.dates, CAL[1], "end") + 1)
    t0 = date_index(ts.dates, TEST[0], "start")

    start = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    best, cal_kge = calibrate(target, forcing, ts.qobs, cal, a.evals, a.seed, progress=True,
                              checkpoint=out / "dds_checkpoint.npz",
                              key=f"{a.model} {bundle['config']['physics']} {','.join(ids)}")
    wall = time.time() - start
    q_dds = target.simulate(best, forcing, t0)
    q_delta = delta_model_flow(bundle, ds, ids)
    o = ts.qobs[t0:]
    raw = ds.attributes(ids, ["huc_02", "aridity"])
    rows = [{"gauge_id": g, "huc_02": raw["huc_02"][b], "aridity": raw["aridity"][b],
             "cal_kge": cal_kge[b], "dds_nse": nse(q_dds[:, b], o[:, b]),
             "dds_kge": kge(q_dds[:, b], o[:, b]), "delta_nse": nse(q_delta[:, b], o[:, b]),
             "delta_kge": kge(q_delta[:, b], o[:, b])} for b, g in enumerate(ids)]
    write_outputs(out, rows, ids, target.physical(best))
    med = lambda k, sel=None: float(np.nanmedian([r[k] for r in rows if sel is None or sel(r)]))  # noqa: E731
    arid = lambda r: float(r["aridity"]) > 1.0  # noqa: E731
    print(f"{a.model}: {len(ids)} basins ({sum(map(arid, rows))} arid) in "
          f"{len(set(raw['huc_02']))} regions, {a.evals} DDS evaluations each, "
          f"wall {wall:.0f} s (this invocation)")
    print(f"test {TEST[0]}..{TEST[1]} median NSE / KGE: DDS {med('dds_nse'):.3f} / "
          f"{med('dds_kge'):.3f}; δ model {med('delta_nse'):.3f} / {med('delta_kge'):.3f}")
    print(f"arid basins: DDS {med('dds_nse', arid):.3f} / {med('dds_kge', arid):.3f}; "
          f"δ model {med('delta_nse', arid):.3f} / {med('delta_kge', arid):.3f}")


def write_outputs(out: Path, rows: list[dict], ids: list[str], phys: dict[str, np.ndarray]) -> None:
    with open(out / "dds_metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()}
                    for r in rows)
    with open(out / "dds_parameters.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["gauge_id", *phys])
        for b, g in enumerate(ids):
            w.writerow([g, *(repr(float(v[b])) for v in phys.values())])


if __name__ == "__main__":
    main()
