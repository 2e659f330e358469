"""What stepping dHBV hourly costs in skill: daily vs hourly runs of the same networks.

For each variant the bundle simulates the basins from the first day of data (cold start) to the
end of the test period; HBV steps daily, or hourly on the daily forcing spread over the hours
(:mod:`bmi_dhbv.substeps`: rain uniform over the day or in a block of a few hours, PET by sine
weights, temperature the daily mean; dynamic parameters from the daily LSTM lagged one day, as
the hourly BMI computes them); hourly flows are summed to days and scored against the daily
observations of the test period. Writes ``OUT/hourly_skill.csv`` (per basin and variant),
``OUT/hourly_skill.md`` (median NSE/KGE per variant) and prints the table.

    python scripts/hourly_skill.py --data ../shared/data/camels_us_daily --out runs/hourly_skill
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from delta_core.data.camels import CamelsDataset
from delta_core.evaluation import basin_metrics, load_model, simulate, summarize, training_dtype

WEIGHTS = Path(__file__).resolve().parents[1] / "bmi_dhbv" / "weights"
BLOCK3 = {"rain_disaggregation": "block", "rain_start_hour": 14, "rain_hours": 3}
HOURLY = {"steps_per_day": 24, "dynamic_lag_days": 1}
#: key -> (description, bundle file, physics overrides: None = as trained)
VARIANTS = {
    "daily": ("daily model, daily steps", "dhbv_dynamic.pt", None),
    "hourly": ("daily model, hourly steps, rain uniform", "dhbv_dynamic.pt",
               {**HOURLY, "rain_disaggregation": "uniform"}),
    "hourly-block3": ("daily model, hourly steps, rain in 3 h", "dhbv_dynamic.pt",
                      {**HOURLY, **BLOCK3}),
    "tuned": ("hourly fine-tuned, rain uniform", "dhbv_dynamic_hourly.pt", None),
    "tuned-block3": ("hourly fine-tuned, rain in 3 h", "dhbv_dynamic_hourly.pt", BLOCK3),
}


def run_variant(bundle: Path, overrides: dict | None, ds: CamelsDataset, ids: list[str],
                start: str, end: str) -> list[dict]:
    from delta_core.bundle import load_bundle

    b = load_bundle(bundle)
    dtype = training_dtype(b)
    model, norm, _ = load_model(b, dtype=dtype)
    if overrides:
        model.options = dataclasses.replace(model.options, **overrides)
    sim = simulate(model, norm, ds, ids, start, end, batch_basins=32, dtype=dtype,
                   progress=True)
    return basin_metrics(sim)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="CAMELS pack directory")
    ap.add_argument("--basins", default="all", help="basin ids, a file of ids or a subset name")
    ap.add_argument("--start", default="1995-10-01")
    ap.add_argument("--end", default="2010-09-30")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated variants of {list(VARIANTS)} (default: all whose "
                         f"bundle exists)")
    ap.add_argument("--out", required=True, help="output directory")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    ds = CamelsDataset(a.data)
    ids = ds.resolve_basins(a.basins)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, table = [], []
    for key in a.variants.split(","):
        if key not in VARIANTS:
            ap.error(f"unknown variant {key!r}; valid: {list(VARIANTS)}")
        name, file, overrides = VARIANTS[key]
        if not (WEIGHTS / file).is_file():
            print(f"skipping {name!r}: {WEIGHTS / file} not found")
            continue
        t0 = time.time()
        metrics = run_variant(WEIGHTS / file, overrides, ds, ids, a.start, a.end)
        s = summarize(metrics)
        table.append((name, file, s["median_nse"], s["median_kge"], s["n_basins"],
                      time.time() - t0))
        rows += [{"variant": name, **m} for m in metrics]
        print(f"{name}: median NSE {s['median_nse']:.3f}, KGE {s['median_kge']:.3f} "
              f"({s['n_basins']} basins, {time.time() - t0:.0f} s)", flush=True)
    with open(out / "hourly_skill.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [f"dHBV daily vs hourly steps, test period {a.start}..{a.end}, {len(ids)} basins "
             f"(`python scripts/hourly_skill.py --data DATA --out OUT`)", "",
             "| variant | bundle | median NSE | median KGE | basins | wall time |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | `{f}` | {nse:.3f} | {kge:.3f} | {nb} | {sec:.0f} s |"
              for n, f, nse, kge, nb, sec in table]
    (out / "hourly_skill.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
