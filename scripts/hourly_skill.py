"""Skill of a model run hourly, under named within-day rain patterns; hourly forcing files.

Scores a bundle (daily sums of its hourly run against daily observations, states spun up on all
forcing before --start) once per pattern, with the pattern replacing the bundle's own
(``<model>-eval --rain-pattern``). Patterns:

* ``uniform``: each day's rain over 24 hours;
* ``block3``: in 3 hours from 14:00; ``block3@00``: in 3 hours from 00:00 (the earliest a day's
  rain can fall: a diagnostic of timing); ``block6``: in 6 hours from 12:00 (the training scheme
  of the first dCFE and dLGAR bundles);
* ``stochastic``: storms at random hours (:mod:`delta_core.patterns`), seed 0; ``stochastic:N``
  seed N; ``bundle``: the bundle's own pattern (also for a daily bundle);
* ``storms@H``: the storms of ``stochastic`` (seed 0), each day's moved so that their mean hour is
  H: their intensities without their random timing (a diagnostic of what the timing costs);
* a suffix ``/dayH`` (H in -23..0) moves the data's day: e.g. ``stochastic/day-17`` puts each
  day's storms in the 24 hours from 07:00 of the day before (``within_day.day_start_hour``).

Writes ``OUT/<pattern>.csv`` (per basin) and ``OUT/summary.csv`` (median NSE/KGE per pattern)
and prints the table. ``--collect OUT1 OUT2 ...`` prints one markdown table of several runs
(model x pattern). ``--write-forcing DIR --pattern P`` writes the pack's daily forcing spread by
pattern P as hourly files in ngen's CsvPerFeature form (the input of ``--hourly-forcing``).

    python scripts/hourly_skill.py --data ../shared/data/camels_us_daily \\
        --bundle bmi_dhbv/weights/dhbv_hourly.pt --out benchmarks/hourly/dhbv_hourly
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

PATTERNS = {
    "uniform": {"rain": "uniform"},
    "block3": {"rain": "block", "rain_start_hour": 14, "rain_hours": 3},
    "block3@00": {"rain": "block", "rain_start_hour": 0, "rain_hours": 3},
    "block6": {"rain": "block", "rain_start_hour": 12, "rain_hours": 6},
    "stochastic": {"rain": "stochastic", "seed": 0},
}


def pattern_fields(name: str) -> dict | None:
    """WithinDay fields of a named pattern (``stochastic:N``: seed N; ``bundle``: None, the
    bundle's own); the data's day is the calendar day unless a ``/dayH`` suffix moves it (the
    fields replace those of the bundle's pattern, the others keep the bundle's values)."""
    if "/day" in name:
        base, hour = name.split("/day", 1)
        fields = pattern_fields(base)
        if fields is None:
            raise ValueError("the bundle's own pattern takes no /day suffix")
        return {**fields, "day_start_hour": int(hour)}
    if name == "bundle":
        return None
    if name.startswith("stochastic:"):
        return {"rain": "stochastic", "seed": int(name.split(":", 1)[1]), "day_start_hour": 0}
    if name.startswith("storms@"):
        return {"rain": "stochastic", "seed": 0, "storm_centre_hour": int(name[7:]),
                "day_start_hour": 0}
    if name not in PATTERNS:
        raise ValueError(f"pattern {name!r}: choose from {list(PATTERNS)}, stochastic:SEED, "
                         f"storms@HOUR or bundle")
    return {**PATTERNS[name], "day_start_hour": 0}


def score(bundle: str, data: str, basins: str, patterns: list[str], start: str, end: str,
          out: Path, physics: dict | None = None) -> list[dict]:
    """Evaluate ``bundle`` under each pattern; write per-basin CSVs and summary.csv."""
    from delta_core.data.camels import CamelsDataset
    from delta_core.evaluation import evaluate_model, write_metrics_csv

    ds = CamelsDataset(data)
    ids = ds.resolve_basins(basins)
    out.mkdir(parents=True, exist_ok=True)
    summary = []
    for name in patterns:
        t0 = time.time()
        res = evaluate_model(bundle, ds, ids, start, end, pattern=pattern_fields(name),
                             physics=physics, progress=True, warn_overlap=False)
        write_metrics_csv(out / f"{name.replace(':', '_').replace('/', '_')}.csv", res["rows"])
        summary.append({"bundle": Path(bundle).name, "pattern": name,
                        "median_nse": f"{res['median_nse']:.3f}",
                        "median_kge": f"{res['median_kge']:.3f}", "basins": res["n_basins"],
                        "period": f"{start}..{end}", "seconds": f"{time.time() - t0:.0f}"})
        print(f"{name}: median NSE {res['median_nse']:.3f}, KGE {res['median_kge']:.3f} "
              f"({res['n_basins']} basins, {time.time() - t0:.0f} s)", flush=True)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summary[0]))
        w.writeheader()
        w.writerows(summary)
    return summary


def collect(dirs: list[str]) -> str:
    """One markdown table (rows: runs; columns: patterns; NSE / KGE) of summary.csv files."""
    runs = {d: list(csv.DictReader(open(Path(d) / "summary.csv"))) for d in dirs}
    patterns = list(dict.fromkeys(r["pattern"] for rows in runs.values() for r in rows))
    lines = ["| run | bundle | " + " | ".join(patterns) + " | basins |",
             "|---|---|" + "---:|" * len(patterns) + "---:|"]
    for d, rows in runs.items():
        by = {r["pattern"]: r for r in rows}
        cells = [f"{by[p]['median_nse']} / {by[p]['median_kge']}" if p in by else "" for p in patterns]
        lines.append(f"| {Path(d).name} | `{rows[0]['bundle']}` | " + " | ".join(cells)
                     + f" | {rows[0]['basins']} |")
    return "\n".join(lines)


def write_forcing(data: str, basins: str, pattern: str, start: str, end: str, out: Path) -> None:
    """The pack's daily forcing from ``start`` to ``end`` spread by ``pattern`` as hourly files
    (precipitation and PET by the pattern, temperature the daily mean; PET column given)."""
    import torch

    from delta_core.data.camels import CamelsDataset
    from delta_core.hourly_forcing import write_directory
    from delta_core.patterns import WithinDay
    from delta_core.subdaily import step_forcing

    ds = CamelsDataset(data)
    ids = ds.resolve_basins(basins)
    ts = ds.load(ids, start=start, end=end)
    wd = WithinDay(**pattern_fields(pattern))
    forcing = torch.from_numpy(ts.forcing(("prcp", "tmean", "pet")))
    batch = {}
    if wd.stochastic:
        batch["rain_weights"] = torch.from_numpy(wd.draw_for_basins(len(ts.dates), ids))
    s = step_forcing(forcing, wd, batch)
    paths = write_directory(out, ids, np.datetime64(start), s.prcp.numpy(), s.temp.numpy(),
                            s.pet.numpy())
    print(f"wrote {len(paths)} hourly forcing files ({start}..{end}, pattern {pattern}) to {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/camels_us_daily",
                    help="CAMELS pack directory (default: ../shared/data/camels_us_daily)")
    ap.add_argument("--basins", default="all", help="basin ids, a file of ids or a subset name "
                                                    "(default: all)")
    ap.add_argument("--bundle", help="bundle of an hourly model to score")
    ap.add_argument("--patterns", default="uniform,block3,stochastic",
                    help="comma-separated patterns (default: uniform,block3,stochastic)")
    ap.add_argument("--start", default="1995-10-01", help="first day (default: 1995-10-01)")
    ap.add_argument("--end", default="2010-09-30", help="last day (default: 2010-09-30)")
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--collect", nargs="+", metavar="OUT", help="print the table of earlier runs")
    ap.add_argument("--write-forcing", metavar="DIR", help="write hourly forcing files instead")
    ap.add_argument("--pattern", default="stochastic", help="pattern of --write-forcing")
    ap.add_argument("--hourly-steps", action="store_true",
                    help="run a daily dHBV bundle hourly (steps_per_day 24, LSTM lagged a day)")
    ap.add_argument("--lag-days", type=int, choices=(0, 1),
                    help="dHBV: dynamic parameters of day d from the LSTM after day d - LAG")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    try:
        if a.collect:
            print(collect(a.collect))
        elif a.write_forcing:
            write_forcing(a.data, a.basins, a.pattern, a.start, a.end, Path(a.write_forcing))
        elif a.bundle and a.out:
            patterns = a.patterns.split(",")
            for p in patterns:
                pattern_fields(p)
            physics = {"steps_per_day": 24, "dynamic_lag_days": 1} if a.hourly_steps else {}
            if a.lag_days is not None:
                physics["dynamic_lag_days"] = a.lag_days
            score(a.bundle, a.data, a.basins, patterns, a.start, a.end, Path(a.out), physics)
        else:
            ap.error("give --bundle and --out, --collect, or --write-forcing")
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
