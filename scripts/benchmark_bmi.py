#!/usr/bin/env python
"""Latency of the dHBV NextGen BMI (bmi_dhbv.BmiDHBV), one process, one catchment.

Measures, for each available HBV backend (cpp, torch), with the same warm-up, the same number
of calls and the lowest of ``--repeat`` per-round medians for every backend (torch and the
kernel on one thread):

* ``update()`` latency per daily step (LSTM step + HBV step + routing);
* ``update()`` latency per hourly step (HBV steps every hour), separately for hours 1..23 of a
  day and hour 0, where the LSTM also steps with the day before;
* one ngen interval: the ~50 BMI calls ngen makes per output interval (time queries, input
  metadata and ``set_value`` for each input, ``update``, output metadata and
  ``get_value_at_indices``), hourly;
* a 30-year daily run (water years 1981-2010) of CAMELS basin 01022500, feeding the forcing
  with ``set_value`` and reading the main output each day.

Uses the shipped bundle if present (or ``--bundle``), otherwise a randomly initialised bundle of
the default architecture (16 components, LSTM hidden 64, MLP 2 x 256), which costs the same.
Prints a table with the machine (CPU model, usable cores, load average, the kernel's compiler
flags and instruction set); ``--out DIR`` also writes ``benchmark_bmi.json`` and
``benchmark_bmi.md``. Ratios are the figures to compare between machines; absolute figures hold
for the machine named.

Example::

    OMP_NUM_THREADS=1 python scripts/benchmark_bmi.py --out benchmarks \\
        --note "another 1-thread job ran on the second core"
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

try:  # the installed package, else the source tree this script lives in
    import bmi_dhbv  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from delta_core.benchmarking import CLOCKS, machine_info, machine_line

GAUGE = "01022500"

#: The clocks of :data:`delta_core.benchmarking.CLOCKS` in ns.
NS_CLOCKS: dict[str, Callable[[], int]] = {"wall": time.perf_counter_ns,
                                           "cpu": time.process_time_ns}


def random_bundle(path: Path) -> Path:
    import torch

    from delta_core.bundle import save_bundle
    from delta_core.config import RunConfig
    from delta_core.data.camels import CamelsDataset
    from delta_core.inputs import Normalization
    from delta_core.registry import model_spec

    cfg = RunConfig.from_dict({"model": "dhbv", "physics": {"n_components": 16}})
    ds = CamelsDataset()
    ids = ds.basin_ids()
    ts = ds.load(ids, end="1985-09-30")
    norm = Normalization.fit(ds, ids, cfg.data.attributes,
                             ts.slice_dates("1980-10-01", "1985-09-30"), cfg.spec.forcings)
    torch.manual_seed(0)
    model = model_spec("dhbv").build_model(cfg.physics, cfg.network,
                                           len(norm.attributes.feature_names))
    return save_bundle(path, model="dhbv", state_dict=model.state_dict(), config=cfg.to_dict(),
                       normalization=norm.to_dict(), provenance={"note": "random (benchmark)"})


def make_bmi(bundle: Path, workdir: Path, step: int, backend: str, start: str):
    import yaml

    from bmi_dhbv import BmiDHBV
    from delta_core.config import DataConfig
    from delta_core.data.camels import CamelsDataset

    ds = CamelsDataset()
    attrs = {k: v[0] for k, v in ds.attributes([GAUGE], DataConfig().attributes).items()}
    cfg = {"bundle": str(bundle), "attributes": attrs,
           "latitude": float(ds.basins[GAUGE]["gauge_lat"]),
           "area_km2": float(ds.basins[GAUGE]["area_forcing_header_km2"]),
           "time_step_seconds": step, "start_time": start, "backend": backend}
    path = workdir / f"bench_{step}_{backend}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    m = BmiDHBV()
    m.initialize(str(path))
    return m


def stats_us(ns: list[int]) -> dict:
    """Median, mean and 95th percentile [µs] of call times [ns]."""
    a = np.asarray(ns, dtype=float) / 1e3
    return {"n": int(a.size), "median_us": float(np.median(a)), "mean_us": float(a.mean()),
            "p95_us": float(np.percentile(a, 95))}


def best_round(one_round: Callable[[], dict[str, list[int]]], repeat: int) -> dict[str, dict]:
    """Runs ``one_round`` (call times [ns] per measurement) once untimed, then ``repeat``
    times; per measurement, the statistics of the round with the lowest median."""
    one_round()
    best: dict[str, dict] = {}
    for _ in range(max(1, repeat)):
        for key, ns in one_round().items():
            st = stats_us(ns)
            if key not in best or st["median_us"] < best[key]["median_us"]:
                best[key] = st
    return best


def daily_round(m, ts, n: int, now_ns: Callable[[], int]) -> dict[str, list[int]]:
    """``n`` daily updates (forcing set before each): their call times [ns]."""
    from delta_core.ngen import crosswalk as B

    p, t, tx, tn = ts.prcp[:, 0], ts.tmean[:, 0], ts.tmax[:, 0], ts.tmin[:, 0]
    arr = {k: np.zeros(1) for k in (B.PRECIP, B.TEMP, B.TMAX, B.TMIN)}
    ns = []
    for i in range(n):
        j = i % len(p)
        arr[B.PRECIP][0], arr[B.TEMP][0], arr[B.TMAX][0], arr[B.TMIN][0] = p[j], t[j], tx[j], tn[j]
        for k, v in arr.items():
            m.set_value(k, v)
        t0 = now_ns()
        m.update()
        ns.append(now_ns() - t0)
    return {"daily_update": ns}


def hourly_round(m, n_days: int, now_ns: Callable[[], int], seed: int = 0) -> dict[str, list[int]]:
    """``n_days`` days of hourly updates: call times [ns] of hours 1..23 and of hour 0 (where
    the LSTM also steps)."""
    from delta_core.ngen import crosswalk as B

    rng = np.random.default_rng(seed)
    within, boundary = [], []
    pv, tv = np.zeros(1), np.zeros(1)
    for d in range(n_days):
        for h in range(24):
            pv[0] = rng.gamma(0.5, 1.0) if rng.random() < 0.2 else 0.0
            tv[0] = 5.0 + 6.0 * np.sin(2 * np.pi * (h - 9) / 24)
            m.set_value(B.PRECIP, pv)
            m.set_value(B.TEMP, tv)
            t0 = now_ns()
            m.update()
            dt_ns = now_ns() - t0
            (boundary if h == 0 else within).append(dt_ns)
    return {"hourly_update": within, "hourly_update_day_start": boundary}


def ngen_interval_round(m, n: int, now_ns: Callable[[], int]) -> dict[str, list[int]]:
    """``n`` hourly intervals of the BMI calls ngen makes per output interval (NGEN_BMI.md):
    their times [ns]."""
    from delta_core.ngen import crosswalk as B

    main = B.RUNOFF_DEPTH
    outs = [B.RUNOFF_DEPTH, B.RUNOFF_FLUX, B.ET, B.SWE, B.SOIL, B.BASEFLOW]
    val = np.zeros(1)
    dest = np.zeros(1)
    idx = np.array([0])
    ns = []
    for i in range(n):
        t0 = now_ns()
        m.get_current_time()
        m.get_current_time()
        for name in m.get_input_var_names():
            m.get_input_item_count()
            m.get_input_var_names()
            m.get_var_itemsize(name)
            m.get_var_units(name)
            m.get_var_type(name)
            m.get_var_nbytes(name)
            val[0] = 0.3 if name == B.PRECIP else 4.0
            m.set_value(name, val)
        m.get_time_step()
        m.update()
        for name in [main] + outs:
            m.get_var_type(name)
            m.get_var_itemsize(name)
            m.get_value_at_indices(name, dest, idx)
            m.get_var_units(name)
        ns.append(now_ns() - t0)
    return {"ngen_hourly_interval_50_calls": ns}


def run_30_years(bundle, workdir, backend, now: Callable[[], float]) -> dict:
    """One 30-year daily run (fresh BMI): forcing via ``set_value``, the runoff read each day."""
    from delta_core.ngen import crosswalk as B
    from delta_core.data.camels import CamelsDataset

    ts = CamelsDataset().load([GAUGE], start="1980-10-01", end="2010-09-30")
    t_init = time.perf_counter()
    m = make_bmi(bundle, workdir, 86400, backend, str(ts.dates[0]))
    t_init = time.perf_counter() - t_init
    cols = [(B.PRECIP, ts.prcp[:, 0]), (B.TEMP, ts.tmean[:, 0]), (B.TMAX, ts.tmax[:, 0]),
            (B.TMIN, ts.tmin[:, 0])]
    buf = np.zeros(1)
    dest = np.zeros(1)
    q = np.empty(len(ts.dates))
    t0 = now()
    for i in range(len(ts.dates)):
        for name, series in cols:
            buf[0] = series[i]
            m.set_value(name, buf)
        m.update()
        q[i] = m.get_value_at_indices(B.RUNOFF_DEPTH, dest, [0])[0]
    wall = now() - t0
    m.finalize()
    return {"days": int(len(ts.dates)), "initialize_s": t_init, "run_s": wall,
            "us_per_day": wall / len(ts.dates) * 1e6,
            "mean_runoff_mm_day": float(q.mean() * 1e3)}


def bench_30_years(bundle, workdir, backend, repeat: int, clock: str) -> dict:
    """The fastest of ``repeat`` 30-year runs after an untimed one."""
    now = CLOCKS[clock]
    run_30_years(bundle, workdir, backend, now)
    return min((run_30_years(bundle, workdir, backend, now) for _ in range(max(1, repeat))),
               key=lambda r: r["run_s"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--bundle", help="weight bundle (default: shipped, else random of the "
                    "default architecture)")
    ap.add_argument("--backends", default="cpp,torch", help="comma-separated (default cpp,torch)")
    ap.add_argument("--daily-steps", type=int, default=1000,
                    help="daily updates per round (every backend)")
    ap.add_argument("--hourly-days", type=int, default=60,
                    help="days of hourly updates per round (every backend)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed rounds after one untimed round, every backend; the round with "
                         "the lowest median is kept (30-year run: the fastest run)")
    ap.add_argument("--skip-30y", action="store_true", help="skip the 30-year runs")
    ap.add_argument("--clock", choices=list(CLOCKS), default="wall",
                    help="wall, or cpu (this process's CPU time: leaves out the time other jobs "
                         "hold the core on a shared machine)")
    ap.add_argument("--note", default="", help="conditions of the run, written with the figures "
                    "(e.g. other jobs on the machine)")
    ap.add_argument("--out", help="folder for benchmark_bmi.json and benchmark_bmi.md")
    return ap.parse_args(argv)


def pick_bundle(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    from bmi_dhbv.model import DEFAULT_BUNDLE

    if args.bundle:
        return Path(args.bundle), "given"
    if DEFAULT_BUNDLE.is_file():
        return DEFAULT_BUNDLE, "shipped"
    return random_bundle(tmp / "random.pt"), "random (default architecture)"


def bench_backend(backend: str, bundle: Path, tmp: Path, ts, args: argparse.Namespace) -> dict:
    """Every measurement of one backend."""
    r = {}
    now_ns = NS_CLOCKS[args.clock]
    m = make_bmi(bundle, tmp, 86400, backend, str(ts.dates[0]))
    r.update(best_round(lambda: daily_round(m, ts, args.daily_steps, now_ns), args.repeat))
    m = make_bmi(bundle, tmp, 3600, backend, "2015-12-01 00:00:00")
    r.update(best_round(lambda: hourly_round(m, args.hourly_days, now_ns), args.repeat))
    m = make_bmi(bundle, tmp, 3600, backend, "2015-12-01 00:00:00")
    r.update(best_round(lambda: ngen_interval_round(m, 24 * args.hourly_days, now_ns),
                        args.repeat))
    if not args.skip_30y:
        r["run_30_years_daily"] = bench_30_years(bundle, tmp, backend, args.repeat, args.clock)
    return r


def markdown(results: dict, args: argparse.Namespace, command: str) -> str:
    """The results as Markdown: table, 30-year runs, timing rule, machine, command."""
    kind = results["bundle_kind"]
    lines = [f"dHBV BMI latency (bundle: {kind}; one process, one catchment, torch and the "
             f"kernel on 1 thread)", "",
             "| backend | measurement | median µs | mean µs | p95 µs | n |",
             "|---|---|---:|---:|---:|---:|"]
    for backend, r in results["backends"].items():
        for key, s in r.items():
            if not key.startswith("run_"):
                lines.append(f"| {backend} | {key} | {s['median_us']:.1f} | {s['mean_us']:.1f} | "
                             f"{s['p95_us']:.1f} | {s['n']} |")
    for backend, r in results["backends"].items():
        if "run_30_years_daily" in r:
            y = r["run_30_years_daily"]
            lines += ["", f"30-year daily run ({backend}, {y['days']} days, basin {GAUGE}): "
                          f"initialize {y['initialize_s']:.2f} s, run {y['run_s']:.2f} s "
                          f"({y['us_per_day']:.1f} µs/day incl. set_value/get_value)"]
    lines += ["", f"Every backend: one untimed round, then {args.repeat} rounds of the same "
                  f"calls; the round with the lowest median is shown (30-year run: the fastest "
                  f"of {args.repeat} after an untimed one); {args.clock} clock.", "",
              f"Machine: {machine_line(results['machine'])}", "", f"Command: `{command}`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from bmi_dhbv import kernel
    from delta_core.data.camels import CamelsDataset

    torch.set_num_threads(1)
    kernel.compiled_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_bmi_"))
    bundle, kind = pick_bundle(args, tmp)
    ts = CamelsDataset().load([GAUGE], start="1990-10-01", end="2000-09-30")
    build = dict(kernel._core.BUILD_INFO) if kernel.cpp_available() else None
    isa = kernel.instruction_set() if kernel.cpp_available() else None
    results = {"bundle": str(bundle), "bundle_kind": kind,
               "machine": machine_info(build, args.note, isa=isa,
                                       omp_num_threads=os.environ.get("OMP_NUM_THREADS")),
               "backends": {}}
    for backend in args.backends.split(","):
        if backend == "cpp" and not kernel.cpp_available():
            print("cpp backend: compiled kernel not available, skipped")
            continue
        results["backends"][backend] = bench_backend(backend, bundle, tmp, ts, args)
    command = "python scripts/benchmark_bmi.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if results["machine"]["omp_num_threads"]:
        command = f"OMP_NUM_THREADS={results['machine']['omp_num_threads']} " + command
    results["command"] = command.strip()
    results["clock"], results["repeat"] = args.clock, args.repeat
    text = markdown(results, args, results["command"])
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmark_bmi.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "benchmark_bmi.md").write_text(text + "\n")
        print(f"wrote {out / 'benchmark_bmi.json'} and {out / 'benchmark_bmi.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
