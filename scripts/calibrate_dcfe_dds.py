#!/usr/bin/env python
"""Per-basin DDS calibration of CFE (the classical baseline beside dCFE).

The same hourly engine and snow routine as dCFE (``DCFE.simulate`` with parameters given
directly, in the same ranges as the network's), KGE objective on the training period
(1980-10-01..1995-09-30; states spun up on the data before it), 500 evaluations per basin (DDS,
Tolson and Shoemaker 2007, r = 0.2, ``delta_core.calibration``), all basins' candidates simulated
in one batch per iteration. Then the test period (1995-10-01..2010-09-30, states continued from
the calibration run) is scored and compared with the shipped dCFE bundle on the same basins.

Basins: ``--n`` basins spread over the aridity range of the pack (every k-th basin in order of
CAMELS aridity, so arid ones are included), or ``--basins``.

Writes ``OUT/dds_metrics.csv`` (per basin: calibration KGE, test NSE/KGE of DDS-CFE and dCFE),
``OUT/dds_parameters.csv`` and prints the medians.

Example::

    python scripts/calibrate_dcfe_dds.py --data ../shared/data/camels_us_daily --out dds_out
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from bmi_dcfe.model import PARAMETERS
from delta_core.calibration import dds
from delta_core.data.camels import CamelsDataset, date_index
from delta_core.evaluation import load_model
from delta_core.metrics import kge, nse

CAL = ("1980-10-01", "1995-09-30")
TEST = ("1995-10-01", "2010-09-30")


def spread_basins(ds: CamelsDataset, n: int) -> list[str]:
    """``n`` basins evenly spaced in the aridity ranking of the pack."""
    ids = ds.basin_ids()
    arid = {i: float(ds._attribute_rows[i]["aridity"]) for i in ids}
    ranked = sorted(ids, key=arid.get)
    picks = np.unique(np.linspace(0, len(ranked) - 1, n).round().astype(int))
    return sorted(ranked[k] for k in picks)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="CAMELS-format data directory")
    ap.add_argument("--n", type=int, default=50, help="number of basins (aridity-spread)")
    ap.add_argument("--basins", help="comma-separated gauge ids instead of --n")
    ap.add_argument("--evals", type=int, default=500, help="DDS evaluations per basin")
    ap.add_argument("--bundle", default=None, help="dCFE bundle to compare with (default: shipped)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from bmi_dcfe import kernel
    kernel.compiled_threads(a.threads)

    ds = CamelsDataset(a.data)
    ids = ds.resolve_basins(a.basins) if a.basins else spread_basins(ds, a.n)
    from bmi_dcfe.model import SPEC
    bundle = a.bundle or SPEC.default_bundle
    model, norm, _ = load_model(bundle, dtype=torch.float64)
    model.train()  # flows only (the networks are not used: parameters are given)
    ts = ds.load(ids, end=TEST[1], forcings=("prcp", "tmean", "pet"), progress=True)
    forcing = torch.from_numpy(ts.forcing(("prcp", "tmean", "pet"))).double()
    c0, c1 = date_index(ts.dates, CAL[0], "start"), date_index(ts.dates, CAL[1], "end") + 1
    t0 = date_index(ts.dates, TEST[0], "start")
    obs = ts.qobs

    def physical(unit: np.ndarray) -> dict[str, torch.Tensor]:
        u = torch.from_numpy(unit)
        return {p.name: p.from_unit(u[:, i]) for i, p in enumerate(PARAMETERS)}

    def objective(unit: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = model.simulate(physical(unit), forcing[:c1], warmup=c0)["streamflow"].numpy()
        return np.array([kge(q[:, b], obs[c0:c1, b]) for b in range(len(ids))])

    start = time.time()
    best, f_best, _ = dds(objective, len(PARAMETERS), len(ids), a.evals, seed=a.seed,
                          progress=True)
    wall = time.time() - start
    with torch.no_grad():
        q_dds = model.simulate(physical(best), forcing, warmup=t0)["streamflow"].numpy()
        model.eval()
        x_attr = torch.from_numpy(norm.attributes.transform(
            ds.attributes(ids, norm.attributes.names), ids))
        q_dcfe = model({"forcing": forcing, "x_forcing": forcing, "x_attr": x_attr,
                        "warmup": t0})["streamflow"].numpy()
    o = obs[t0:]
    rows = [{"gauge_id": g, "aridity": ds._attribute_rows[g]["aridity"],
             "cal_kge": f_best[b], "dds_nse": nse(q_dds[:, b], o[:, b]),
             "dds_kge": kge(q_dds[:, b], o[:, b]), "dcfe_nse": nse(q_dcfe[:, b], o[:, b]),
             "dcfe_kge": kge(q_dcfe[:, b], o[:, b])} for b, g in enumerate(ids)]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "dds_metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(out / "dds_parameters.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["gauge_id", *(p.name for p in PARAMETERS)])
        phys = physical(best)
        for b, g in enumerate(ids):
            w.writerow([g, *(repr(float(phys[p.name][b])) for p in PARAMETERS)])
    med = lambda k, sel=None: float(np.nanmedian([r[k] for r in rows if sel is None or sel(r)]))  # noqa: E731
    arid = lambda r: float(r["aridity"]) > 1.0  # noqa: E731
    n_arid = sum(arid(r) for r in rows)
    print(f"{len(ids)} basins ({n_arid} arid), {a.evals} DDS evaluations each, wall {wall:.0f} s")
    print(f"test {TEST[0]}..{TEST[1]} median NSE / KGE: DDS-CFE {med('dds_nse'):.3f} / "
          f"{med('dds_kge'):.3f}; dCFE {med('dcfe_nse'):.3f} / {med('dcfe_kge'):.3f}")
    print(f"arid basins: DDS-CFE {med('dds_nse', arid):.3f} / {med('dds_kge', arid):.3f}; "
          f"dCFE {med('dcfe_nse', arid):.3f} / {med('dcfe_kge', arid):.3f}")


if __name__ == "__main__":
    main()
