"""What the benchmark scripts share: one timing rule for every backend and the machine a
figure comes from.

Timing rule: every backend gets the same warm-up and the best (lowest) of N timed repetitions
(:func:`best_of`); latencies are the lowest of N medians of many calls (:func:`best_median`).
The best of N suppresses the noise of other processes on a shared machine; the machine record
(:func:`machine_info`) names the CPU, the cores this process may use, the load average before
the run and the kernel's compiler flags, so a figure is always quoted with the machine it came
from.

Clocks (:data:`CLOCKS`): ``wall`` (``time.perf_counter``) is what a user waits; ``cpu``
(``time.process_time``: the CPU time of this process, all its threads) leaves out the time other
jobs hold the core, so on a machine shared with other jobs it is the reproducible measure of a
one-thread run (on a quiet machine the two agree). A run on several threads must use ``wall``.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

#: Clocks a benchmark can time with [s].
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """Logical CPUs this process may run on (its affinity mask, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def machine_info(build_info: Mapping | None = None, note: str = "", **extra) -> dict:
    """The machine and software a benchmark ran on.

    Parameters
    ----------
    build_info : mapping, optional
        A compiled kernel's ``BUILD_INFO`` (compiler, flags, libmvec).
    note : str
        Conditions of the run in words (e.g. other jobs on the machine).
    **extra
        Further entries (e.g. the kernel's instruction set).

    Returns
    -------
    dict
        ``cpu_model``, ``logical_cpus``, ``usable_cpus``, ``load_average_1min`` (before the
        run), ``python``, ``torch``, ``numpy``, ``platform``, the build info, ``note`` and
        ``extra``.
    """
    import torch

    info = {"cpu_model": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable_cpus(),
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": np.__version__, "platform": platform.platform()}
    for key in ("compiler", "flags", "libmvec"):
        if build_info is not None and key in build_info:
            info["compile_flags" if key == "flags" else key] = build_info[key]
    info.update(extra)
    info["note"] = note
    return info


def machine_line(info: Mapping) -> str:
    """One line naming the machine of :func:`machine_info` (for a table's caption)."""
    parts = [f"{info['cpu_model']}, {info['logical_cpus']} logical CPUs "
             f"({info['usable_cpus']} usable), load average {info['load_average_1min']} before "
             f"the run; Python {info['python']}, torch {info['torch']}"]
    if "compiler" in info:
        parts.append(f"kernel: {info['compiler']} `{info.get('compile_flags', '?')}`"
                     + (", libmvec" if info.get("libmvec") else ""))
    if info.get("isa"):
        parts.append(f"instruction set {info['isa']}")
    line = "; ".join(parts)
    return line + (f". {info['note']}" if info.get("note") else "")


def best_of(fn: Callable[[], object], repeat: int, warmup: int = 1, clock: str = "wall") -> float:
    """Best time of ``repeat`` calls of ``fn`` after ``warmup`` untimed calls [s], on the
    :data:`CLOCKS` entry ``clock``."""
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = now()
        fn()
        best = min(best, now() - t0)
    return best


def best_median(fn: Callable[[], object], n_calls: int, repeat: int, warmup: int = 100,
                clock: str = "wall") -> float:
    """Latency of one call of ``fn`` [s]: the lowest of ``repeat`` medians of ``n_calls``
    timed calls each, after ``warmup`` untimed calls, on the :data:`CLOCKS` entry ``clock``."""
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    best = float("inf")
    times = np.empty(n_calls)
    for _ in range(max(1, repeat)):
        for i in range(n_calls):
            t0 = now()
            fn()
            times[i] = now() - t0
        best = min(best, float(np.median(times)))
    return best
