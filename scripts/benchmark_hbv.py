#!/usr/bin/env python
"""Benchmark the HBV backends: PyTorch reference ("torch") vs compiled kernel ("cpp").

Measures, in one process:

* forward throughput (no gradients) in basin-days/s and component-days/s, on forcing synthesised
  from the shipped 5-basin CAMELS sample (basins tiled with random rain scaling and temperature
  shifts), for a large batch (default 531 basins: torch's vectorised ops are efficient there) and
  a small one (default 5 basins: torch is bound by per-op overhead); the torch backend runs a
  shorter period (it is slow), rates are per unit of work;
* forward + backward time of a training batch (default 100 basins x 730 days x 16 components,
  dynamic BETA/BETAET, float32, loss on the streamflow);
* single-basin single-day latency: ``kernel.step_numpy`` vs ``hbv.step`` on tensors.

Prints a table with cpp/torch ratios and writes it to ``--out`` (``.md``: Markdown, otherwise
JSON).

Example::

    python scripts/benchmark_hbv.py --out bench.json
    python scripts/benchmark_hbv.py --quick --out bench.md
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    from bmi_dhbv import hbv, kernel
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bmi_dhbv import hbv, kernel

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def synth_forcing(n_days: int, n_basins: int, seed: int = 0):
    """Forcing [T, B] (float64 tensors) tiled from the 5-basin sample with perturbations."""
    from delta_core.data.camels import CamelsDataset

    ds = CamelsDataset()
    ts = ds.load(ds.basin_ids())
    rng = np.random.default_rng(seed)
    total = ts.prcp.shape[0]
    reps = -(-n_days // total)
    src = rng.integers(0, ts.prcp.shape[1], n_basins)
    prcp = np.tile(ts.prcp, (reps, 1))[:n_days, src] * rng.uniform(0.6, 1.5, n_basins)
    tmean = np.tile(ts.tmean, (reps, 1))[:n_days, src] + rng.uniform(-4.0, 4.0, n_basins)
    pet = np.tile(ts.pet, (reps, 1))[:n_days, src] * rng.uniform(0.8, 1.2, n_basins)
    return tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in (prcp, tmean, pet))


def random_params(n_days, n_basins, n_comps, dtype, dynamic=(), seed=1):
    g = torch.Generator().manual_seed(seed)
    par = {}
    for name, (lo, hi, _) in hbv.PARAMETER_RANGES.items():
        shape = (n_days, n_basins, n_comps) if name in dynamic else (n_basins, n_comps)
        par[name] = (lo + torch.rand(*shape, generator=g, dtype=torch.float64) * (hi - lo)).to(dtype)
    return par


def machine_info(kernel_threads: int) -> dict:
    """CPU model, core count, versions and the kernel's compiler and flags (printed with the
    results: absolute figures hold for this machine only)."""
    import os

    from bmi_dhbv import _core

    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    build = dict(getattr(_core, "BUILD_INFO", {}))
    return {"cpu_model": model, "logical_cpus": os.cpu_count(), "python": sys.version.split()[0],
            "torch": torch.__version__, "platform": platform.platform(),
            "kernel_threads_multi": kernel_threads, "compiler": build.get("compiler", "?"),
            "compile_flags": build.get("flags", "?")}


def timeit(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls [s] (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_forward(backend, n_days, n_basins, n_comps, dtype, repeat):
    p, t, pet = (x.to(dtype) for x in synth_forcing(n_days, n_basins))
    par = random_params(n_days, n_basins, n_comps, dtype)
    s0 = hbv.cold_states(n_basins, n_comps, dtype)

    def fn():
        with torch.no_grad():
            kernel.run(p, t, pet, par, s0, backend=backend)

    sec = timeit(fn, repeat)
    return {"n_days": n_days, "n_basins": n_basins, "n_comps": n_comps, "seconds": sec,
            "basin_days_per_s": n_days * n_basins / sec,
            "component_days_per_s": n_days * n_basins * n_comps / sec}


def bench_train(backend, n_days, n_basins, n_comps, dtype, repeat):
    p, t, pet = (x.to(dtype) for x in synth_forcing(n_days, n_basins, seed=3))
    base = random_params(n_days, n_basins, n_comps, dtype, dynamic=("BETA", "BETAET"))
    s0 = hbv.cold_states(n_basins, n_comps, dtype)
    target = torch.rand(n_days, n_basins, dtype=dtype)

    def fn():
        par = {k: v.clone().requires_grad_() for k, v in base.items()}
        res = kernel.run(p, t, pet, par, s0, keep_storages=False, backend=backend)
        q = res.fluxes["q0"] + res.fluxes["q1"] + res.fluxes["q2"]
        loss = ((q - target) ** 2).mean()
        loss.backward()

    sec = timeit(fn, repeat)
    return {"n_days": n_days, "n_basins": n_basins, "n_comps": n_comps, "seconds": sec,
            "component_days_per_s": n_days * n_basins * n_comps / sec}


def bench_call(backend, n_comps, n_calls):
    """Median latency of one ``kernel.run`` call on 1 basin x 1 day without gradients: the
    per-call overhead that small problems (BMI spin-up, single basins) pay."""
    p, t, pet = (x.float() for x in synth_forcing(1, 1, seed=7))
    par = random_params(1, 1, n_comps, torch.float32)
    s0 = hbv.cold_states(1, n_comps, torch.float32)
    times = []
    with torch.no_grad():
        for i in range(n_calls + 100):
            t0 = time.perf_counter()
            kernel.run(p, t, pet, par, s0, backend=backend)
            if i >= 100:  # the first 100 calls warm up
                times.append(time.perf_counter() - t0)
    return {"n_comps": n_comps, "calls": n_calls, "latency_us": float(np.median(times)) * 1e6}


def bench_step(backend, n_comps, n_calls):
    p, t, pet = (x[:, 0].tolist() for x in synth_forcing(n_calls, 1, seed=5))
    par = random_params(1, 1, n_comps, torch.float64)
    if backend == "cpp":
        states = np.full((5, n_comps), hbv.COLD_START_MM)
        pars = np.ascontiguousarray(np.stack([par[n][0].numpy() for n in hbv.PARAMETER_NAMES]))
        out = np.empty(12)

        def fn():
            for i in range(n_calls):
                kernel.step_numpy(states, p[i], t[i], pet[i], pars, out=out)
    else:
        tp = {k: v for k, v in par.items()}
        forc = [(torch.tensor([[a]], dtype=torch.float64), torch.tensor([[b]], dtype=torch.float64),
                 torch.tensor([[c]], dtype=torch.float64)) for a, b, c in zip(p, t, pet)]

        def fn():
            st = tuple(hbv.cold_states(1, n_comps, torch.float64).unbind(0))
            with torch.no_grad():
                for a, b, c in forc:
                    st, fl = hbv.step(st, a, b, c, tp)
                    torch.stack([f.mean(-1) for f in fl])

    sec = timeit(fn, 2)
    return {"n_comps": n_comps, "calls": n_calls, "latency_us": sec / n_calls * 1e6}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None,
                    help="write the results here (.md: Markdown table, otherwise JSON)")
    ap.add_argument("--basins", type=int, default=531, help="basins of the forward benchmark")
    ap.add_argument("--years", type=float, default=10.0, help="years of the cpp forward run")
    ap.add_argument("--torch-days", type=int, default=365,
                    help="days of the (slow) torch forward run; rates are per unit of work")
    ap.add_argument("--small-basins", type=int, default=5,
                    help="basins of the small-batch forward benchmark (overhead-bound for torch)")
    ap.add_argument("--components", type=int, default=16)
    ap.add_argument("--dtype", choices=list(DTYPES), default="float32",
                    help="dtype of the forward benchmark (training batch is always float32)")
    ap.add_argument("--train-basins", type=int, default=100)
    ap.add_argument("--train-days", type=int, default=730)
    ap.add_argument("--threads", type=int, default=0,
                    help="kernel threads for the multi-thread row (0: all logical CPUs)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (best is kept)")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = ap.parse_args(argv)
    if not kernel.cpp_available():
        print("the C++ kernel (bmi_dhbv._core) is not built", file=sys.stderr)
        return 1
    if args.quick:
        args.basins, args.years, args.torch_days, args.small_basins = 50, 1.0, 60, 2
        args.train_basins, args.train_days, args.repeat = 20, 120, 1
    dtype = DTYPES[args.dtype]
    n_days = int(round(args.years * 365.25))
    C = args.components
    import os

    hw = args.threads or os.cpu_count() or 1  # threads of the multi-thread kernel row
    rows = []
    res: dict = {"machine": machine_info(hw)}

    def add(name, unit, torch_v, cpp_v, higher_is_better):
        ratio = (cpp_v / torch_v) if higher_is_better else (torch_v / cpp_v)
        rows.append({"metric": name, "unit": unit, "torch": torch_v, "cpp": cpp_v,
                     "speedup_cpp_vs_torch": ratio})

    # forward throughput
    torch.set_num_threads(1)  # every "1 thread" row: torch and kernel on one thread
    fwd_t = bench_forward("torch", args.torch_days, args.basins, C, dtype, args.repeat)
    kernel.compiled_threads(1)
    fwd_c1 = bench_forward("cpp", n_days, args.basins, C, dtype, args.repeat)
    kernel.compiled_threads(hw)
    fwd_cn = bench_forward("cpp", n_days, args.basins, C, dtype, args.repeat)
    small_t = bench_forward("torch", args.torch_days, args.small_basins, C, dtype, args.repeat)
    kernel.compiled_threads(1)
    small_c = bench_forward("cpp", n_days, args.small_basins, C, dtype, args.repeat)
    kernel.compiled_threads(hw)
    res["forward"] = {"torch": fwd_t, "cpp_1_thread": fwd_c1, f"cpp_{hw}_threads": fwd_cn,
                      "small_batch_torch": small_t, "small_batch_cpp_1_thread": small_c}
    add(f"forward {args.dtype}, cpp 1 thread", "basin-days/s", fwd_t["basin_days_per_s"],
        fwd_c1["basin_days_per_s"], True)
    add(f"forward {args.dtype}, cpp 1 thread", "component-days/s",
        fwd_t["component_days_per_s"], fwd_c1["component_days_per_s"], True)
    add(f"forward {args.dtype}, cpp {hw} threads", "component-days/s",
        fwd_t["component_days_per_s"], fwd_cn["component_days_per_s"], True)
    add(f"forward {args.dtype}, {args.small_basins} basins, cpp 1 thread", "component-days/s",
        small_t["component_days_per_s"], small_c["component_days_per_s"], True)
    # training batch
    kernel.compiled_threads(1)
    tr_t = bench_train("torch", args.train_days, args.train_basins, C, torch.float32, args.repeat)
    tr_c = bench_train("cpp", args.train_days, args.train_basins, C, torch.float32, args.repeat)
    res["train_batch"] = {"torch": tr_t, "cpp": tr_c}
    add(f"forward+backward {args.train_basins}x{args.train_days}x{C} float32", "s",
        tr_t["seconds"], tr_c["seconds"], False)
    # single step
    kernel.compiled_threads(hw)
    st_t = bench_step("torch", C, 300 if args.quick else 2000)
    st_c = bench_step("cpp", C, 3000 if args.quick else 100000)
    res["single_step"] = {"torch": st_t, "cpp": st_c}
    kernel.compiled_threads(1)
    call_t, call_c = bench_call("torch", C, 2000), bench_call("cpp", C, 2000)
    res["run_call"] = {"torch": call_t, "cpp": call_c}
    add(f"kernel.run call, 1 basin x 1 day x {C}, no grad, median", "us/call",
        call_t["latency_us"], call_c["latency_us"], False)
    add(f"single-basin step, {C} comps, float64", "us/call", st_t["latency_us"],
        st_c["latency_us"], False)
    res["table"] = rows

    lines = ["| metric | unit | torch | cpp | cpp speed-up |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['metric']} | {r['unit']} | {r['torch']:.4g} | {r['cpp']:.4g} | "
                     f"{r['speedup_cpp_vs_torch']:.1f}x |")
    table = "\n".join(lines)
    print(table)
    m = res["machine"]
    print(f"(torch forward ran {fwd_t['n_days']} days, cpp {n_days} days; {args.basins} basins x "
          f"{C} components; every row 1 thread (torch and kernel) except the {hw}-thread kernel "
          f"row; best of {args.repeat} after one warm-up for both backends)\n"
          f"machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs; kernel: {m['compiler']} "
          f"{m['compile_flags']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix.lower() == ".md":
            args.out.write_text("# HBV backend benchmark\n\n" + table + "\n\n```json\n"
                                + json.dumps(res["machine"], indent=1) + "\n```\n")
        else:
            args.out.write_text(json.dumps(res, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
