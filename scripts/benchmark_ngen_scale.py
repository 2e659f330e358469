#!/usr/bin/env python
"""Many catchments in one process, as ngen runs them: one BMI instance per catchment.

For N = 1, 100, 1000 (``--n``) instances of a model's BMI (shipped bundle, sample basin
01022500's attributes, hourly host step), each spun up on the same daily spin-up file
(``--spinup``, default the 11 years of ``realizations/camels_sample/spinup``), then stepped
through ``--hours`` hourly updates with ngen's per-step calls (``set_value`` of each input,
``update``, ``get_value`` of the main output): start-up time per catchment (initialize with
spin-up), time per catchment-hour, and the process's peak resident memory (``ru_maxrss``) and its
growth per catchment. Each N runs in a fresh process. Writes ``OUT/ngen_scale.md`` and ``.json``.

    OMP_NUM_THREADS=1 python scripts/benchmark_ngen_scale.py --model dhbv --out benchmarks
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPINUP = {"dhbv": REPO / "realizations" / "camels_sample" / "spinup" / "cat-01022500.csv",
          "dcfe": REPO / "realizations" / "dcfe_camels_sample" / "spinup" / "cat-01022500.csv.gz"}


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def one_run(model: str, n: int, hours: int, spinup: Path, bundle: str | None = None) -> dict:
    """Run in this process: n instances, spin-up, hours of hourly updates."""
    import numpy as np
    import torch
    import yaml

    from delta_core.config import CAMELS_ATTRIBUTES
    from delta_core.data.camels import CamelsDataset
    from delta_core.ngen.crosswalk import PRECIP, RUNOFF_DEPTH, TEMP
    from delta_core.registry import model_spec

    torch.set_num_threads(1)
    ds = CamelsDataset()
    gid = "01022500"
    attrs = {k: v[0] for k, v in ds.attributes([gid], CAMELS_ATTRIBUTES).items()}
    tmp = Path(tempfile.mkdtemp(prefix="ngen_scale_"))
    cfg = {"attributes": attrs, "latitude": float(ds.basins[gid]["gauge_lat"]),
           "area_km2": 587.7, "time_step_seconds": 3600, "start_time": "1996-10-01 00:00:00",
           "spinup_forcing": str(spinup), **({"bundle": bundle} if bundle else {})}
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cls = model_spec(model).load_bmi_class()
    rss0 = rss_kb()
    t0 = time.perf_counter()
    models = []
    for _ in range(n):
        m = cls()
        m.initialize(str(path))
        models.append(m)
    t_start = time.perf_counter() - t0
    rss1 = rss_kb()
    rng = np.random.default_rng(0)
    p = np.where(rng.random(hours) < 0.1, rng.gamma(1.0, 2.0, hours), 0.0)
    temp = 8.0 + 6.0 * np.sin(2 * np.pi * (np.arange(hours) % 24 - 9) / 24)
    pv, tv, out = np.zeros(1), np.zeros(1), np.zeros(1)
    t0 = time.perf_counter()
    for h in range(hours):
        pv[0], tv[0] = p[h], temp[h]
        for m in models:
            m.set_value(PRECIP, pv)
            m.set_value(TEMP, tv)
            m.update()
            m.get_value(RUNOFF_DEPTH, out)
    t_run = time.perf_counter() - t0
    return {"model": model, "n": n, "hours": hours,
            "startup_s_per_catchment": t_start / n, "startup_s_total": t_start,
            "us_per_catchment_hour": t_run / (n * hours) * 1e6, "run_s": t_run,
            "rss_kb_per_catchment": (rss1 - rss0) / n,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="dhbv", choices=sorted(SPINUP))
    ap.add_argument("--n", default="1,100,1000", help="catchment counts (comma-separated)")
    ap.add_argument("--hours", type=int, default=720, help="hourly updates (default 720: 30 d)")
    ap.add_argument("--spinup", help="daily (dHBV) or hourly (dCFE) spin-up CSV")
    ap.add_argument("--bundle", help="weight bundle (default: the BMI's default)")
    ap.add_argument("--out", help="folder for ngen_scale_<model>.md/.json")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    spinup = Path(a.spinup) if a.spinup else SPINUP[a.model]
    a.bundle = str(Path(a.bundle).resolve()) if a.bundle else None
    if a.child:
        print("RESULT " + json.dumps(one_run(a.model, a.child, a.hours, spinup, a.bundle)),
              flush=True)
        return 0
    rows = []
    for n in (int(x) for x in a.n.split(",")):
        cmd = [sys.executable, __file__, "--model", a.model, "--hours", str(a.hours),
               "--spinup", str(spinup), "--child", str(n)] + (["--bundle", a.bundle]
                                                               if a.bundle else [])
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        row = json.loads(next(l for l in res.stdout.splitlines() if l.startswith("RESULT"))[7:])
        rows.append(row)
        print(row, flush=True)
    lines = [f"{a.model} BMI, one process, N catchments x {a.hours} hourly updates "
             f"(spin-up: {spinup.name}, {platform.processor() or platform.machine()}, "
             f"python {platform.python_version()}; "
             f"`python scripts/benchmark_ngen_scale.py --model {a.model}`)", "",
             "| N | start-up per catchment (with spin-up) | per catchment-hour | "
             "memory per catchment | peak RSS |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['n']} | {r['startup_s_per_catchment'] * 1e3:.1f} ms | "
              f"{r['us_per_catchment_hour']:.1f} µs | {r['rss_kb_per_catchment']:.0f} kB | "
              f"{r['peak_rss_mb']:.0f} MB |" for r in rows]
    print("\n".join(lines))
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"ngen_scale_{a.model}.md").write_text("\n".join(lines) + "\n")
        (out / f"ngen_scale_{a.model}.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
