#!/usr/bin/env python
"""Benchmark LGAR: the Python port (the reference) vs the compiled kernel, values and sensitivities.

The problem is LGAR-C's Phillipsburg column (3 layers) at a fixed 300 s substep and hourly
forcing (``configs/config_Phillipsburg_fixed300_nocache.txt`` of the shared reference folder;
LGAR-C itself: 1.15 s for its 7500 h = 90000 substeps, 12.8 us per substep). Measured, with the
same warm-up and best-of-N for every backend:

* forward per substep on one core: Python port and kernel on the first ``--steps`` hours, and the
  kernel on the whole 7500 h;
* forward + sensitivities (Jacobian of the 14 outputs to the 27 parameters at every step) on
  the same hours, and its cost relative to the forward;
* threads: ``--basins`` copies of the column (each with its own soil parameters scaled slightly)
  on 1 and 2 threads (per substep per basin, and the speedup).

Prints a Markdown table with the machine (CPU model, cores, compiler and flags); ``--out``
writes it. Other jobs on the machine slow every figure: run it on an idle machine to compare.

Example::

    python scripts/benchmark_lgar.py --out benchmarks/lgar_kernel.md
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from bmi_lgar import kernel
from bmi_lgar.forcing import read_forcing
from bmi_lgar.lgar_config import read_lgar_config
from bmi_lgar.physics import Lgar
from bmi_lgar.reference import CASES, base_dir, reference_workdir

REPO = Path(__file__).resolve().parents[1]
CASE = "Phillipsburg_fixed300_nocache"


def machine_info() -> dict:
    """CPU model, logical CPUs, compiler and flags of the kernel."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    build = dict(getattr(kernel.core(), "BUILD_INFO", {}))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu_model": model, "logical_cpus": os.cpu_count(), "python": sys.version.split()[0],
            "compiler": build.get("compiler", "?"), "compile_flags": build.get("flags", "?"),
            "load": load}


def best_of(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls after one warm-up call [s]."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def load_case(ref: Path, tmp: Path):
    """Config and forcing of the benchmark column."""
    workdir = reference_workdir(tmp, ref)
    case = CASES[CASE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = read_lgar_config(case.path(case.config, ref), base_dir(case, workdir))
    return cfg, read_forcing(cfg.forcing_file)


def python_port(cfg, precip, pet) -> None:
    """The port's forcing-step loop (as run_lgar, without collecting outputs)."""
    model = Lgar(cfg)
    st = model.initial_state()
    for p, e in zip(precip, pet):
        model.step(st, float(p), float(e))


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", type=Path, default=REPO.parent / "shared" / "reference" / "lgar",
                    help="the shared LGAR reference folder")
    ap.add_argument("--steps", type=int, default=1000,
                    help="hours of the Python-vs-kernel comparison (12 substeps each)")
    ap.add_argument("--basins", type=int, default=8, help="columns of the threads measure")
    ap.add_argument("--repeat", type=int, default=3, help="best of N (after one warm-up)")
    ap.add_argument("--out", help="write the Markdown table here")
    a = ap.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cfg, forcing = load_case(a.ref, Path(tmp))
    n_all = cfg.num_forcing_steps
    sub_per_step = cfg.substeps_per_forcing_step
    p_all, e_all = forcing.precip_mm_per_h[:n_all, None], forcing.pet_mm_per_h[:n_all, None]
    n = min(a.steps, n_all)
    p, e = p_all[:n], e_all[:n]
    batch = kernel.pack_configs([cfg])
    us = 1e6 / (n * sub_per_step)
    t_py = best_of(lambda: python_port(cfg, p[:, 0], e[:, 0]), a.repeat)
    t_k = best_of(lambda: kernel.run_kernel(batch, p, e), a.repeat)
    t_s = best_of(lambda: kernel.run_kernel(batch, p, e, sensitivities=True), a.repeat)
    t_all = best_of(lambda: kernel.run_kernel(batch, p_all, e_all), a.repeat)
    rows = [
        (f"forward, Python port, {n} h", f"{t_py * us:.1f}", "1 (reference)"),
        (f"forward, kernel, {n} h", f"{t_k * us:.2f}", f"{t_py / t_k:.0f}x faster than the port"),
        (f"forward, kernel, all {n_all} h ({t_all:.2f} s; LGAR-C 1.15 s)",
         f"{t_all * 1e6 / (n_all * sub_per_step):.2f}", f"{t_all / 1.15:.2f}x LGAR-C's time"),
        (f"forward + sensitivities (27 parameters), kernel, {n} h", f"{t_s * us:.1f}",
         f"{t_s / t_k:.1f}x the kernel forward; {t_py / t_s:.1f}x faster than the port forward"),
    ]
    nb = a.basins
    rng = np.random.default_rng(0)
    big = kernel.pack_configs([cfg] * nb)
    scale = 1.0 + 0.02 * rng.standard_normal((nb, 1))
    big.params[:, [0, 5, 10]] *= scale          # alpha of each layer, per basin
    pb, eb = np.repeat(p, nb, axis=1), np.repeat(e, nb, axis=1)
    per = 1e6 / (n * sub_per_step * nb)
    t1 = best_of(lambda: kernel.run_kernel(big, pb, eb, n_threads=1), a.repeat)
    t2 = best_of(lambda: kernel.run_kernel(big, pb, eb, n_threads=2), a.repeat)
    rows.append((f"forward, kernel, {nb} basins, 1 thread", f"{t1 * per:.2f}", "1"))
    rows.append((f"forward, kernel, {nb} basins, 2 threads", f"{t2 * per:.2f}",
                 f"{t1 / t2:.2f}x speedup"))
    info = machine_info()
    lines = [f"LGAR kernel benchmark: {CASE} (3 layers, {sub_per_step} substeps of 300 s per "
             f"hour); best of {a.repeat} after a warm-up, same for every backend", "",
             f"machine: {info['cpu_model']}, {info['logical_cpus']} logical CPUs, load average "
             f"{info['load']:.1f} at the end (other jobs running slow every figure); python "
             f"{info['python']}; {info['compiler']} `{info['compile_flags']}`", "",
             "| measure | us per substep (per basin) | ratio |", "|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return text


if __name__ == "__main__":
    main()
