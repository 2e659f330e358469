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
  on 1 and 2 threads (per substep per basin, and the speedup);
* the NextGen BMI (:class:`bmi_lgar.bmi.BmiLGAR`, texture-table column of CAMELS 09480000,
  hourly, one 3600 s substep): latency of one ``set_value`` x 2 + ``update`` with backend cpp
  and python (the lowest of ``--repeat`` medians of ``--bmi-calls`` hours, same warm-up).

Prints a Markdown table with the machine (CPU model, cores, compiler and flags); ``--out``
writes it. Other jobs on the machine slow every figure: run it on an idle machine to compare.

Example::

    python scripts/benchmark_lgar.py --out benchmarks/lgar_kernel.md
"""
from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import yaml

from bmi_lgar import kernel
from bmi_lgar.forcing import read_forcing
from bmi_lgar.lgar_config import read_lgar_config
from bmi_lgar.physics import Lgar
from bmi_lgar.reference import CASES, base_dir, reference_workdir
from delta_core.benchmarking import best_median, best_of, machine_info, machine_line
from delta_core.ngen.crosswalk import PET, PRECIP

REPO = Path(__file__).resolve().parents[1]
CASE = "Phillipsburg_fixed300_nocache"


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


#: Texture attributes of CAMELS 09480000 (clay loam) for the BMI column.
BMI_ATTRIBUTES = {"sand_frac": 41.1498547899355, "silt_frac": 28.1180467371064,
                  "clay_frac": 28.8165607541358, "soil_depth_statsgo": 1.22140798674422}


def bmi_update_latency(backend: str, precip, pet, n_calls: int, repeat: int) -> float:
    """Seconds per hour of the BMI (two set_value and one update) with ``backend``, forcing
    cycled from ``precip``/``pet`` [mm/h]."""
    from bmi_lgar.bmi import BmiLGAR

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(yaml.safe_dump({"attributes": BMI_ATTRIBUTES, "latitude": 31.36,
                                        "area_km2": 212.8, "start_time": "2000-01-01 00:00:00",
                                        "backend": backend, "allow_exceed_end_time": True}))
        m = BmiLGAR()
        m.initialize(str(path))
    x, y = np.empty(1), np.empty(1)
    i = [0]

    def hour() -> None:
        k = i[0] % len(precip)
        i[0] += 1
        x[0], y[0] = precip[k], pet[k]
        m.set_value(PRECIP, x)
        m.set_value(PET, y)
        m.update()

    return best_median(hour, n_calls, repeat, warmup=100)


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", type=Path, default=REPO.parent / "shared" / "reference" / "lgar",
                    help="the shared LGAR reference folder")
    ap.add_argument("--steps", type=int, default=1000,
                    help="hours of the Python-vs-kernel comparison (12 substeps each)")
    ap.add_argument("--basins", type=int, default=8, help="columns of the threads measure")
    ap.add_argument("--repeat", type=int, default=3, help="best of N (after one warm-up)")
    ap.add_argument("--bmi-calls", type=int, default=1000,
                    help="hours per median of the BMI latency")
    ap.add_argument("--note", default="", help="conditions of the run, in words")
    ap.add_argument("--out", help="write the Markdown table here")
    a = ap.parse_args(argv)
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
    bmi = {b: bmi_update_latency(b, p_all[:, 0], e_all[:, 0], a.bmi_calls, a.repeat)
           for b in ("python", "cpp")}
    info = machine_info(getattr(kernel.core(), "BUILD_INFO", {}), a.note)
    lines = [f"LGAR kernel benchmark: {CASE} (3 layers, {sub_per_step} substeps of 300 s per "
             f"hour); best of {a.repeat} after a warm-up, same for every backend", "",
             f"machine: {machine_line(info)}", "",
             "| measure | us per substep (per basin) | ratio |", "|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} |" for r in rows]
    lines += ["", f"BMI (texture-table column, hourly, one 3600 s substep; lowest of {a.repeat} "
              f"medians of {a.bmi_calls} hours, Phillipsburg forcing cycled):", "",
              "| BmiLGAR backend | us per hour (2 x set_value + update) | ratio |",
              "|---|---|---|",
              f"| python (port) | {bmi['python'] * 1e6:.0f} | 1 |",
              f"| cpp (kernel) | {bmi['cpp'] * 1e6:.0f} | {bmi['python'] / bmi['cpp']:.1f}x "
              f"faster |"]
    lines += ["", "Reproduce: `python scripts/benchmark_lgar.py --out benchmarks/lgar_kernel.md`"]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return text


if __name__ == "__main__":
    main()
