"""Where the pack's precipitation day lies: Daymet daily totals regressed on ERA5-Land's.

CAMELS' Daymet precipitation comes from gauge totals filed under the day the gauge was read;
the pack's ERA5-Land precipitation (from Caravan) is a sum of hourly reanalysis values over
local days. For each basin, Daymet's day d is regressed (least squares, no intercept) on
ERA5-Land's days d + 1, d and d - 1 over all days where both exist; the share of the fit on
day d - 1 says how much of a Daymet day's rain fell on the calendar day before: a share s means
a data day that begins about ``24 s`` hours before midnight (``within_day.day_start_hour`` about
``-24 s``).

    python scripts/data_day_offset.py --data ../shared/data/camels_us_daily \\
        --out benchmarks/hourly/data_day_offset.csv
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def day_shares(prcp: np.ndarray, era5: np.ndarray) -> np.ndarray:
    """Least-squares weights of ERA5-Land days d + 1, d, d - 1 in Daymet day d [3]."""
    y = prcp[1:-1]
    a = np.stack([era5[2:], era5[1:-1], era5[:-2]], axis=1)
    ok = ~np.isnan(a).any(axis=1) & ~np.isnan(y)
    if ok.sum() < 3 * 365:
        return np.full(3, np.nan)
    coef, *_ = np.linalg.lstsq(a[ok], y[ok], rcond=None)
    return coef


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/camels_us_daily",
                    help="CAMELS pack directory (default: ../shared/data/camels_us_daily)")
    ap.add_argument("--out", help="per-basin CSV to write (default: none)")
    a = ap.parse_args(argv)
    from delta_core.data.camels import CamelsDataset

    ds = CamelsDataset(a.data)
    ids = ds.resolve_basins("all")
    ts = ds.load(ids, start="1981-01-01", end="2010-09-30", forcings=("era5l_prcp",))
    prcp = ts.forcing(("prcp",))[..., 0]
    era5 = ts.forcing(("era5l_prcp",))[..., 0]
    rows = []
    for b, gauge in enumerate(ids):
        nxt, same, prev = day_shares(prcp[:, b], era5[:, b])
        share = prev / (nxt + same + prev)
        rows.append({"gauge_id": gauge, "w_next": f"{nxt:.4f}", "w_same": f"{same:.4f}",
                     "w_prev": f"{prev:.4f}", "share_prev": f"{share:.4f}",
                     "day_start_hour": f"{-24 * share:.1f}"})
    shares = np.array([float(r["share_prev"]) for r in rows])
    shares = shares[~np.isnan(shares)]
    q10, q50, q90 = np.percentile(shares, [10, 50, 90])
    print(f"{len(shares)} basins: share of a Daymet day's rain on the ERA5-Land day before: "
          f"median {q50:.2f} (10-90 %: {q10:.2f}-{q90:.2f}), i.e. a data day beginning about "
          f"{24 * q50:.0f} h before midnight")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        with open(a.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
