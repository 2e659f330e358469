#!/usr/bin/env python
"""Benchmark the CFE backends: PyTorch reference ("torch") vs compiled kernel ("cpp").

Measures, in one process, on random basins that cross CFE's thresholds (the batch of
tests/test_cfe_kernel.py) with hourly rain and PET:

* forward throughput (no gradients) in basin-hours/s;
* forward + backward of a training-like batch (loss on Q_OUT, gradients to every parameter);
  both backends run the same problem (default 100 basins x 30 days x 24 h: the torch reference is
  a Python loop over hours and would take minutes for a 730-day window);
* a full dCFE training iteration with the kernel (100 basins x 730 days after 365 days warm-up,
  networks + snow + CFE, float64), for the scale of training.

The same warm-up and best-of-N for every backend (:mod:`delta_core.benchmarking`); torch and
the kernel run on the number of threads given (one by default, set once for both). Prints a
Markdown table with cpp/torch ratios, the machine (CPU model, usable cores, load average,
compiler flags) and the command; ``--out`` writes it. Ratios are the figures to compare between
machines; absolute figures hold for the machine named.

Example::

    OMP_NUM_THREADS=1 python scripts/benchmark_cfe.py --out benchmarks/cfe_kernel.md \\
        --note "another 1-thread job ran on the second core"
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import torch

from bmi_dcfe import kernel, physics
from delta_core.benchmarking import CLOCKS, best_of, machine_info, machine_line


def problem(n_basins: int, hours: int):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_cfe_kernel import random_batch

    return random_batch(n_basins, hours, seed=0)


def forward(backend: str, n_basins: int, hours: int, repeat: int, clock: str) -> float:
    p, s0, rain, pet = problem(n_basins, hours)
    opts = physics.CfeOptions(mass_conserving=True)

    def go():
        with torch.no_grad():
            kernel.run(s0, p, rain, pet, opts, outputs=("Q_OUT",), backend=backend)
    return n_basins * hours / best_of(go, repeat, clock=clock)


def forward_backward(backend: str, n_basins: int, hours: int, repeat: int, clock: str) -> float:
    p, s0, rain, pet = problem(n_basins, hours)
    opts = physics.CfeOptions(mass_conserving=True)
    names = ("satdk", "smcmax", "bb", "cgw", "k_lf", "k_nash", "refkdt", "giuh_ordinates")

    def go():
        leaves = {n: getattr(p, n).clone().requires_grad_(True) for n in names}
        pp = physics.CfeParameters(**{**p.__dict__, **leaves})
        _, out = kernel.run(s0, pp, rain, pet, opts, outputs=("Q_OUT",), backend=backend)
        out["Q_OUT"].sum().backward()
    return best_of(go, repeat, clock=clock)


def training_iteration(repeat: int, clock: str) -> float:
    from bmi_dcfe.model import SPEC
    from delta_core.spec import Engine

    torch.manual_seed(0)
    model = SPEC.build_model({}, {}, 35, Engine("cpp", torch.float64)).train()
    d, b = 730, 100
    g = torch.Generator().manual_seed(0)
    prcp = torch.rand(d, b, generator=g, dtype=torch.float64) * 12 * (torch.rand(d, b, generator=g) < 0.4)
    temp = torch.randn(d, b, generator=g, dtype=torch.float64) * 8 + 8
    pet = torch.rand(d, b, generator=g, dtype=torch.float64) * 4
    f = torch.stack([prcp, temp, pet], -1)
    batch = {"forcing": f, "x_forcing": f, "x_attr": torch.randn(b, 35, dtype=torch.float64),
             "warmup": 365}

    def go():
        model.zero_grad()
        model(batch)["streamflow"].sum().backward()
    return best_of(go, repeat, clock=clock)


def bmi_latency(backend: str, n_updates: int, repeat: int, clock: str) -> float:
    """Mean wall time of one hourly ``update`` of BmiDCFE (shipped bundle, sample basin
    01022500), with the two ``set_value`` calls and one ``get_value`` of the runoff that ngen
    makes per step [s]; best of ``repeat`` runs of ``n_updates`` after a warm-up run."""
    import tempfile

    import numpy as np
    import yaml

    from bmi_dcfe import BmiDCFE
    from delta_core.config import CAMELS_ATTRIBUTES
    from delta_core.data.camels import CamelsDataset
    from delta_core.ngen.crosswalk import PRECIP, RUNOFF_DEPTH, TEMP

    ds = CamelsDataset()
    gid = "01022500"
    attrs = {k: v[0] for k, v in ds.attributes([gid], CAMELS_ATTRIBUTES).items()}
    cfg = {"attributes": attrs, "latitude": float(ds.basins[gid]["gauge_lat"]),
           "area_km2": 573.6, "start_time": "1990-01-01 00:00:00", "backend": backend}
    rng = np.random.default_rng(0)
    prcp = np.where(rng.random(n_updates) < 0.1, rng.gamma(1.0, 2.0, n_updates), 0.0)
    temp = 10 + 8 * np.sin(np.arange(n_updates) * 2 * np.pi / 24)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.yaml"
        path.write_text(yaml.safe_dump(cfg))
        buf, p1, t1 = np.zeros(1), np.zeros(1), np.zeros(1)
        now = CLOCKS[clock]

        def go():
            m = BmiDCFE()
            m.initialize(str(path))
            t0 = now()
            for h in range(n_updates):
                p1[0], t1[0] = prcp[h], temp[h]
                m.set_value(PRECIP, p1)
                m.set_value(TEMP, t1)
                m.update()
                m.get_value(RUNOFF_DEPTH, buf)
            return now() - t0
        go()
        return min(go() for _ in range(max(1, repeat))) / n_updates


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and the kernel")
    ap.add_argument("--basins", type=int, default=100)
    ap.add_argument("--days", type=int, default=30, help="days of the compared problem")
    ap.add_argument("--repeat", type=int, default=5,
                    help="best of N after one warm-up, for every backend")
    ap.add_argument("--clock", choices=list(CLOCKS), default="wall",
                    help="wall, or cpu (this process's CPU time: leaves out the time other jobs "
                         "hold the core on a shared machine; one thread only)")
    ap.add_argument("--note", default="", help="conditions of the run, written with the figures "
                    "(e.g. other jobs on the machine)")
    ap.add_argument("--out", help="write the Markdown table here")
    a = ap.parse_args(argv)
    if a.clock == "cpu" and a.threads != 1:
        ap.error("--clock cpu sums the CPU time of all threads: use it with --threads 1")
    torch.set_num_threads(a.threads)
    kernel.compiled_threads(a.threads)
    hours = 24 * a.days
    work = a.basins * hours
    rows = []
    fwd = {bk: forward(bk, a.basins, hours, a.repeat, a.clock) for bk in ("torch", "cpp")}
    rows.append(("forward, basin-hours/s", f"{fwd['torch']:.3g}", f"{fwd['cpp']:.3g}",
                 f"{fwd['cpp'] / fwd['torch']:.0f}x"))
    fb = {bk: forward_backward(bk, a.basins, hours, a.repeat, a.clock) for bk in ("torch", "cpp")}
    rows.append((f"forward+backward {a.basins} x {a.days} d x 24 h, s", f"{fb['torch']:.3f}",
                 f"{fb['cpp']:.4f}", f"{fb['torch'] / fb['cpp']:.0f}x"))
    rows.append(("forward+backward, basin-hours/s", f"{work / fb['torch']:.3g}",
                 f"{work / fb['cpp']:.3g}", f"{fb['torch'] / fb['cpp']:.0f}x"))
    lat = {bk: bmi_latency(bk, 2000 if bk == "cpp" else 300, a.repeat, a.clock)
           for bk in ("torch", "cpp")}
    rows.append(("BmiDCFE hourly update (+2 set_value, 1 get_value), us",
                 f"{lat['torch'] * 1e6:.0f}", f"{lat['cpp'] * 1e6:.1f}",
                 f"{lat['torch'] / lat['cpp']:.0f}x"))
    it = training_iteration(a.repeat, a.clock)
    info = machine_info(dict(getattr(kernel._core, "BUILD_INFO", {})), a.note,
                        omp_num_threads=os.environ.get("OMP_NUM_THREADS"))
    command = "python scripts/benchmark_cfe.py " + " ".join(
        shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv))
    if info["omp_num_threads"]:
        command = f"OMP_NUM_THREADS={info['omp_num_threads']} " + command
    lines = [f"CFE kernel benchmark (torch and the kernel on {a.threads} thread(s); every backend "
             f"one warm-up, then the best of {a.repeat}; {a.clock} clock)", "",
             f"Machine: {machine_line(info)}", "", f"Command: `{command.strip()}`", "",
             "| measure | torch | cpp | cpp vs torch |", "|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows]
    lines += ["", f"dCFE training iteration (100 basins x 730 days hourly after 365 days warm-up, "
                  f"networks + snow + kernel, float64, forward+backward): {it:.2f} s"]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return text


if __name__ == "__main__":
    main()
