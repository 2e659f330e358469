#!/usr/bin/env python
"""Differences of the LGAR port (bmi_lgar) from LGAR-C's reference runs, per run and column.

For every run of ``shared/reference/lgar`` (:data:`bmi_lgar.reference.CASES`): the largest per-step
|port - LGAR-C| [m] and the relative difference of the sums of each data_variables column, the
number of steps whose ``%6.15f`` text differs, and for data_layers the steps with another number
of fronts, the printed lines that differ and the largest differences of depth [mm], theta and psi
[mm]. LGAR-C writes 15 decimals (data_variables) and 6 (data_layers), so differences at or below
half a unit of the last digit are the precision written. Also LGAR-C's end-of-run balance.

Usage: ``python scripts/lgar_reference_errors.py [--ref DIR] [--only NAME ...] [--out FILE.md]``
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bmi_lgar.reference import (CASES, REF, base_dir, compare_layers, compare_variables,
                                read_log_totals, reference_workdir)
from bmi_lgar.runner import run_lgar


def report_case(name: str, ref: Path, workdir: Path) -> list[str]:
    """Markdown lines for one run."""
    case = CASES[name]
    start = time.perf_counter()
    run = run_lgar(case.path(case.config, ref), base_dir=base_dir(case, workdir))
    seconds = time.perf_counter() - start
    lines = [f"### {name} ({len(run.time)} steps, {seconds:.1f} s)", "",
             "| column | max per-step abs diff [m] | cumulative rel diff | printed mismatches |",
             "|---|---|---|---|"]
    for col, s in compare_variables(run, case.path(case.variables, ref)).items():
        lines.append(f"| {col} | {s['max_abs']:.2e} | {s['cum_rel']:.2e} | "
                     f"{s['printed_mismatches']} |")
    if case.layers:
        s = compare_layers(run, case.path(case.layers, ref))
        lines += ["", f"data_layers: {s['steps']} steps, front-count mismatches "
                      f"{s['front_count_mismatches']}, printed-line mismatches "
                      f"{s['printed_mismatches']}, max |diff| depth {s['depth_mm']:.2e} mm, "
                      f"theta {s['theta']:.2e}, psi {s['psi_mm']:.2e} mm"]
    if case.log:
        theirs = read_log_totals(case.path(case.log, ref)).get("Global balance")
        lines += ["", f"global balance: port {run.totals_cm['global_balance']:.6e} cm, "
                      f"LGAR-C {theirs} cm"]
    return lines + [""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", type=Path, default=REF, help="reference folder")
    parser.add_argument("--only", nargs="*", default=sorted(CASES), choices=sorted(CASES))
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = reference_workdir(Path(tmp), args.ref)
        for name in args.only:
            block = report_case(name, args.ref, workdir)
            print("\n".join(block), flush=True)
            lines += block
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
