#!/usr/bin/env python
"""Benchmark the HBV backends: PyTorch reference ("torch") vs compiled kernel ("cpp").

Measures, in one process, with the same warm-up and the best of ``--repeat`` repetitions for
every backend (latencies: the lowest of ``--repeat`` medians), torch and the kernel on exactly
the threads each row names:

* forward throughput (no gradients) in component-days/s, on forcing synthesised from the shipped
  5-basin CAMELS sample (basins tiled with random rain scaling and temperature shifts), for a
  large batch (default 531 basins: torch's vectorised ops are efficient there), the same on all
  logical CPUs, a small batch (default 5 basins: torch is bound by per-op overhead) and one basin
  per call (1 x 730 days: the wrapper's per-call cost counts); the torch backend runs a shorter
  period (it is slow), rates are per unit of work;
* forward + backward time of a training batch (default 100 basins x 730 days x 16 components,
  dynamic BETA/BETAET, float32, loss on the streamflow);
* the latency of one ``kernel.run`` call (1 basin x 1 day x 16, no gradients) and of one
  single-basin day, ``kernel.step_numpy`` vs ``hbv.step`` on tensors (the BMI path);
* the kernel's forward and training batch once more on its SSE2 baseline build where the CPU
  runs the AVX2 build (what a CPU without AVX2 gets).

Prints a table with cpp/torch ratios and the machine (CPU model, usable cores, load average,
compiler and flags, instruction set); ``--out`` writes it (``.md``: Markdown, otherwise JSON).
Ratios are the figures to compare between machines; absolute figures hold for the machine named.

Example::

    OMP_NUM_THREADS=1 python scripts/benchmark_hbv.py --out benchmarks/hbv_kernel.md \
        --note "another 1-thread job ran on the second core"
    python scripts/benchmark_hbv.py --quick
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

try:
    from bmi_dhbv import hbv, kernel
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bmi_dhbv import hbv, kernel
from delta_core.benchmarking import CLOCKS, best_median, best_of, machine_info, machine_line

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


class Threads:
    """Context: torch and the kernel on ``n`` threads (both; restored on exit)."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads(), kernel.compiled_threads()
        torch.set_num_threads(self.n)
        kernel.compiled_threads(self.n)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.old[0])
        kernel.compiled_threads(self.old[1])


def bench_forward(backend: str, n_days: int, n_basins: int, n_comps: int, dtype: torch.dtype,
                  repeat: int, clock: str) -> dict:
    """Forward without gradients, one ``kernel.run`` call per repetition."""
    p, t, pet = (x.to(dtype) for x in synth_forcing(n_days, n_basins))
    par = random_params(n_days, n_basins, n_comps, dtype)
    s0 = hbv.cold_states(n_basins, n_comps, dtype)

    def fn():
        with torch.no_grad():
            kernel.run(p, t, pet, par, s0, backend=backend)

    sec = best_of(fn, repeat, clock=clock)
    return {"n_days": n_days, "n_basins": n_basins, "n_comps": n_comps, "seconds": sec,
            "basin_days_per_s": n_days * n_basins / sec,
            "component_days_per_s": n_days * n_basins * n_comps / sec}


def bench_train(backend: str, n_days: int, n_basins: int, n_comps: int, dtype: torch.dtype,
                repeat: int, clock: str) -> dict:
    """Forward + backward of a training batch (fresh parameter leaves each repetition)."""
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

    sec = best_of(fn, repeat, clock=clock)
    return {"n_days": n_days, "n_basins": n_basins, "n_comps": n_comps, "seconds": sec,
            "component_days_per_s": n_days * n_basins * n_comps / sec}


def bench_call(backend: str, n_comps: int, n_calls: int, repeat: int, clock: str) -> dict:
    """Latency of one ``kernel.run`` call on 1 basin x 1 day without gradients: the per-call
    cost that small problems (BMI spin-up, single basins) pay."""
    p, t, pet = (x.float() for x in synth_forcing(1, 1, seed=7))
    par = random_params(1, 1, n_comps, torch.float32)
    s0 = hbv.cold_states(1, n_comps, torch.float32)

    def fn():
        with torch.no_grad():
            kernel.run(p, t, pet, par, s0, backend=backend)

    sec = best_median(fn, n_calls, repeat, clock=clock)
    return {"n_comps": n_comps, "calls": n_calls, "latency_us": sec * 1e6}


def bench_step(backend: str, n_comps: int, n_calls: int, repeat: int, clock: str) -> dict:
    """One single-basin day: ``kernel.step_numpy`` (cpp) or ``hbv.step`` on tensors (torch),
    ``n_calls`` days per repetition."""
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
        forc = [(torch.tensor([[a]], dtype=torch.float64), torch.tensor([[b]], dtype=torch.float64),
                 torch.tensor([[c]], dtype=torch.float64)) for a, b, c in zip(p, t, pet)]

        def fn():
            st = tuple(hbv.cold_states(1, n_comps, torch.float64).unbind(0))
            with torch.no_grad():
                for a, b, c in forc:
                    st, fl = hbv.step(st, a, b, c, par)
                    torch.stack([f.mean(-1) for f in fl])

    sec = best_of(fn, repeat, clock=clock)
    return {"n_comps": n_comps, "calls": n_calls, "latency_us": sec / n_calls * 1e6}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
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
                    help="threads of torch and the kernel in the multi-thread row (0: all "
                         "logical CPUs); every other row runs both on one thread")
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed repetitions after one warm-up, for every backend; the best is "
                         "kept (latencies: the lowest median)")
    ap.add_argument("--clock", choices=list(CLOCKS), default="wall",
                    help="clock of the one-thread rows: wall, or cpu (this process's CPU time: "
                         "leaves out the time other jobs hold the core on a shared machine); "
                         "the multi-thread row always uses wall")
    ap.add_argument("--note", default="", help="conditions of the run, written with the figures "
                    "(e.g. other jobs on the machine)")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.basins, args.years, args.torch_days, args.small_basins = 50, 1.0, 60, 2
        args.train_basins, args.train_days, args.repeat = 20, 120, 1
    return args


def run_benchmarks(args: argparse.Namespace, hw: int) -> tuple[list[dict], dict]:
    """Every measurement; returns the table rows and the raw results."""
    dtype = DTYPES[args.dtype]
    n_days, C, rep = int(round(args.years * 365.25)), args.components, args.repeat
    ck = args.clock  # one-thread rows; several threads: wall
    rows: list[dict] = []
    raw: dict = {}

    def add(key, name, unit, threads, torch_r, cpp_r, field, higher_is_better):
        tv, cv = torch_r[field], cpp_r[field]
        rows.append({"metric": name, "unit": unit, "threads": threads, "torch": tv, "cpp": cv,
                     "speedup_cpp_vs_torch": (cv / tv) if higher_is_better else (tv / cv)})
        raw[key] = {"torch": torch_r, "cpp": cpp_r, "threads": threads}

    isa = kernel.instruction_set()
    cd = "component-days/s"
    with Threads(1):
        fwd_t = bench_forward("torch", args.torch_days, args.basins, C, dtype, rep, ck)
        fwd_c = bench_forward("cpp", n_days, args.basins, C, dtype, rep, ck)
        add("forward", f"forward {args.dtype}, {args.basins} basins x {C}", cd, 1, fwd_t, fwd_c,
            "component_days_per_s", True)
    with Threads(hw):
        add("forward_all_cpus", f"same, {hw} threads (wall clock)", cd, hw,
            bench_forward("torch", args.torch_days, args.basins, C, dtype, rep, "wall"),
            bench_forward("cpp", n_days, args.basins, C, dtype, rep, "wall"),
            "component_days_per_s", True)
    with Threads(1):
        add("forward_small", f"forward {args.dtype}, {args.small_basins} basins x {C}", cd, 1,
            bench_forward("torch", args.torch_days, args.small_basins, C, dtype, rep, ck),
            bench_forward("cpp", n_days, args.small_basins, C, dtype, rep, ck),
            "component_days_per_s", True)
        add("forward_one_basin", f"forward {args.dtype}, 1 basin x 730 days x {C} per call", cd,
            1, bench_forward("torch", 730, 1, C, dtype, rep, ck),
            bench_forward("cpp", 730, 1, C, dtype, rep, ck), "component_days_per_s", True)
        tr_t = bench_train("torch", args.train_days, args.train_basins, C, torch.float32, rep, ck)
        tr_c = bench_train("cpp", args.train_days, args.train_basins, C, torch.float32, rep, ck)
        add("train_batch", f"forward+backward {args.train_basins} x {args.train_days} x {C} "
            "float32, dynamic BETA/BETAET", "s", 1, tr_t, tr_c, "seconds", False)
        n_calls = 300 if args.quick else 2000
        add("run_call", f"kernel.run call, 1 basin x 1 day x {C}, no grad", "µs/call", 1,
            bench_call("torch", C, n_calls, rep, ck), bench_call("cpp", C, n_calls, rep, ck),
            "latency_us", False)
        add("single_step", f"single-basin step (BMI path), {C} comps, float64", "µs/call", 1,
            bench_step("torch", C, 300 if args.quick else 2000, rep, ck),
            bench_step("cpp", C, 3000 if args.quick else 100000, rep, ck), "latency_us", False)
        if isa != "sse2":  # what a CPU without AVX2 gets (same torch figures)
            kernel.instruction_set("sse2")
            try:
                add("forward_sse2", f"forward {args.dtype}, {args.basins} basins x {C}, "
                    "cpp SSE2 build", cd, 1, fwd_t,
                    bench_forward("cpp", n_days, args.basins, C, dtype, rep, ck),
                    "component_days_per_s", True)
                add("train_batch_sse2", f"forward+backward {args.train_basins} x "
                    f"{args.train_days} x {C}, cpp SSE2 build", "s", 1, tr_t,
                    bench_train("cpp", args.train_days, args.train_basins, C, torch.float32, rep, ck),
                    "seconds", False)
            finally:
                kernel.instruction_set(isa)
    return rows, raw


def markdown(rows: list[dict], info: dict, args: argparse.Namespace, command: str) -> str:
    """The results as a Markdown document: table, conditions, machine, command."""
    lines = ["| metric | unit | threads (each backend) | torch | cpp | cpp speed-up |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['metric']} | {r['unit']} | {r['threads']} | {r['torch']:.4g} | "
                     f"{r['cpp']:.4g} | {r['speedup_cpp_vs_torch']:.1f}x |")
    n_days = int(round(args.years * 365.25))
    return "\n".join([
        "# HBV backend benchmark", "", *lines, "",
        f"Both backends: one warm-up, then the best of {args.repeat} (latencies: the lowest of "
        f"{args.repeat} medians), {args.clock} clock (the multi-thread row: wall); torch forward "
        f"ran {args.torch_days} days, cpp {n_days} days (rates per unit of work).", "",
        f"Machine: {machine_line(info)}", "",
        f"Command: `{command}`", ""])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not kernel.cpp_available():
        print("the C++ kernel (bmi_dhbv._core) is not built", file=sys.stderr)
        return 1
    from bmi_dhbv import _core

    hw = args.threads or os.cpu_count() or 1
    info = machine_info(_core.BUILD_INFO, args.note, isa=kernel.instruction_set(),
                        omp_num_threads=os.environ.get("OMP_NUM_THREADS"))
    rows, raw = run_benchmarks(args, hw)
    command = "python scripts/benchmark_hbv.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if info["omp_num_threads"]:
        command = f"OMP_NUM_THREADS={info['omp_num_threads']} " + command
    text = markdown(rows, info, args, command.strip())
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix.lower() == ".md":
            args.out.write_text(text + "\n```json\n" + json.dumps(info, indent=1) + "\n```\n")
        else:
            args.out.write_text(json.dumps({"machine": info, "command": command,
                                            "clock": args.clock, "repeat": args.repeat,
                                            "table": rows, **raw}, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
