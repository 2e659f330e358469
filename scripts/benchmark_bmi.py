#!/usr/bin/env python
"""Latency of the dHBV NextGen BMI (bmi_dhbv.BmiDHBV), one process, one catchment.

Measures, for each available HBV backend (cpp, torch):

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
Prints a table; ``--out DIR`` also writes ``benchmark_bmi.json`` and ``benchmark_bmi.md``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:  # the installed package, else the source tree this script lives in
    import bmi_dhbv  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GAUGE = "01022500"


def random_bundle(path: Path) -> Path:
    import torch

    from delta_core.bundle import save_bundle
    from delta_core.config import RunConfig
    from delta_core.data.camels import CamelsDataset
    from delta_core.inputs import Normalization
    from delta_core.registry import model_spec

    cfg = RunConfig.from_dict({"physics": {"n_components": 16}})
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
    from delta_core.config import RunConfig
    from delta_core.data.camels import CamelsDataset

    ds = CamelsDataset()
    attrs = {k: v[0] for k, v in ds.attributes([GAUGE], RunConfig().data.attributes).items()}
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
    a = np.asarray(ns, dtype=float) / 1e3
    return {"n": int(a.size), "median_us": float(np.median(a)), "mean_us": float(a.mean()),
            "p95_us": float(np.percentile(a, 95))}


def bench_daily(m, ts, n: int) -> dict:
    from delta_core.ngen import crosswalk as B

    p, t, tx, tn = ts.prcp[:, 0], ts.tmean[:, 0], ts.tmax[:, 0], ts.tmin[:, 0]
    arr = {k: np.zeros(1) for k in (B.PRECIP, B.TEMP, B.TMAX, B.TMIN)}
    ns = []
    for i in range(n):
        j = i % len(p)
        arr[B.PRECIP][0], arr[B.TEMP][0], arr[B.TMAX][0], arr[B.TMIN][0] = p[j], t[j], tx[j], tn[j]
        for k, v in arr.items():
            m.set_value(k, v)
        t0 = time.perf_counter_ns()
        m.update()
        ns.append(time.perf_counter_ns() - t0)
    return stats_us(ns[50:])


def bench_hourly(m, n_days: int) -> tuple[dict, dict]:
    from delta_core.ngen import crosswalk as B

    rng = np.random.default_rng(0)
    within, boundary = [], []
    pv, tv = np.zeros(1), np.zeros(1)
    for d in range(n_days):
        for h in range(24):
            pv[0] = rng.gamma(0.5, 1.0) if rng.random() < 0.2 else 0.0
            tv[0] = 5.0 + 6.0 * np.sin(2 * np.pi * (h - 9) / 24)
            m.set_value(B.PRECIP, pv)
            m.set_value(B.TEMP, tv)
            t0 = time.perf_counter_ns()
            m.update()
            dt_ns = time.perf_counter_ns() - t0
            (boundary if h == 0 else within).append(dt_ns)  # hour 0: the LSTM steps too
    return stats_us(within[200:]), stats_us(boundary[5:])


def bench_ngen_interval(m, n: int) -> dict:
    """The BMI calls ngen makes per hourly output interval (NGEN_BMI.md)."""
    from delta_core.ngen import crosswalk as B

    main = B.RUNOFF_DEPTH
    outs = [B.RUNOFF_DEPTH, B.RUNOFF_FLUX, B.ET, B.SWE, B.SOIL, B.BASEFLOW]
    val = np.zeros(1)
    dest = np.zeros(1)
    idx = np.array([0])
    ns = []
    for i in range(n):
        t0 = time.perf_counter_ns()
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
        ns.append(time.perf_counter_ns() - t0)
    return stats_us(ns[100:])


def bench_30_years(bundle, workdir, backend) -> dict:
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
    t0 = time.perf_counter()
    for i in range(len(ts.dates)):
        for name, series in cols:
            buf[0] = series[i]
            m.set_value(name, buf)
        m.update()
        q[i] = m.get_value_at_indices(B.RUNOFF_DEPTH, dest, [0])[0]
    wall = time.perf_counter() - t0
    m.finalize()
    return {"days": int(len(ts.dates)), "initialize_s": t_init, "run_s": wall,
            "us_per_day": wall / len(ts.dates) * 1e6,
            "mean_runoff_mm_day": float(q.mean() * 1e3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--bundle", help="weight bundle (default: shipped, else random of the "
                    "default architecture)")
    ap.add_argument("--backends", default="cpp,torch", help="comma-separated (default cpp,torch)")
    ap.add_argument("--daily-steps", type=int, default=3000, help="daily updates timed")
    ap.add_argument("--hourly-days", type=int, default=150, help="days of hourly updates timed")
    ap.add_argument("--skip-30y", action="store_true", help="skip the 30-year run")
    ap.add_argument("--out", help="folder for benchmark_bmi.json and benchmark_bmi.md")
    args = ap.parse_args(argv)

    import torch

    from bmi_dhbv import kernel
    from delta_core.data.camels import CamelsDataset
    from bmi_dhbv.model import DEFAULT_BUNDLE

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_bmi_"))
    if args.bundle:
        bundle, kind = Path(args.bundle), "given"
    elif DEFAULT_BUNDLE.is_file():
        bundle, kind = DEFAULT_BUNDLE, "shipped"
    else:
        bundle, kind = random_bundle(tmp / "random.pt"), "random (default architecture)"
    ts = CamelsDataset().load([GAUGE], start="1990-10-01", end="2000-09-30")
    results = {"bundle": str(bundle), "bundle_kind": kind, "python": platform.python_version(),
               "machine": platform.machine(), "processor": platform.processor(),
               "backends": {}}
    for backend in args.backends.split(","):
        if backend == "cpp" and not kernel.cpp_available():
            print("cpp backend: compiled kernel not available, skipped")
            continue
        r = {}
        m = make_bmi(bundle, tmp, 86400, backend, str(ts.dates[0]))
        n_daily = args.daily_steps if backend == "cpp" else min(args.daily_steps, 800)
        r["daily_update"] = bench_daily(m, ts, n_daily)
        m = make_bmi(bundle, tmp, 3600, backend, "2015-12-01 00:00:00")
        n_days = args.hourly_days if backend == "cpp" else min(args.hourly_days, 40)
        r["hourly_update"], r["hourly_update_day_start"] = bench_hourly(m, n_days)
        m = make_bmi(bundle, tmp, 3600, backend, "2015-12-01 00:00:00")
        r["ngen_hourly_interval_50_calls"] = bench_ngen_interval(m, 24 * n_days)
        if not args.skip_30y and backend == "cpp":
            r["run_30_years_daily"] = bench_30_years(bundle, tmp, backend)
        results["backends"][backend] = r

    lines = [f"dHBV BMI latency (bundle: {kind}; one process, one catchment, "
             f"torch threads 1)", "",
             "| backend | measurement | median µs | mean µs | p95 µs | n |",
             "|---|---|---:|---:|---:|---:|"]
    for backend, r in results["backends"].items():
        for key, s in r.items():
            if key.startswith("run_"):
                continue
            lines.append(f"| {backend} | {key} | {s['median_us']:.1f} | {s['mean_us']:.1f} | "
                         f"{s['p95_us']:.1f} | {s['n']} |")
    for backend, r in results["backends"].items():
        if "run_30_years_daily" in r:
            y = r["run_30_years_daily"]
            lines += ["", f"30-year daily run ({backend}, {y['days']} days, basin {GAUGE}): "
                          f"initialize {y['initialize_s']:.2f} s, run {y['run_s']:.2f} s "
                          f"({y['us_per_day']:.1f} µs/day incl. set_value/get_value)"]
    text = "\n".join(lines)
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
