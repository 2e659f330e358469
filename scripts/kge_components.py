#!/usr/bin/env python
"""Medians of KGE's components and the high-flow bias over basins, per metrics file.

Reads per-basin metrics CSVs (``<model>-eval`` or ``scripts/hourly_skill.py`` output: columns
``nse``, ``kge``, ``r``, ``pbias`` and ``fhv``) and prints, for each, the median NSE, KGE,
correlation r, variability error |alpha - 1| (from KGE = 1 - sqrt((r - 1)^2 + (alpha - 1)^2 +
(beta - 1)^2) with beta = 1 + pbias / 100) and FHV (% bias of the top 2 % of flows).

Example::

    python scripts/kge_components.py benchmarks/hourly/dhbv_hourly/{uniform,block3,stochastic}_day-8.csv
"""
from __future__ import annotations

import argparse
import csv

import numpy as np


def components(path: str) -> dict[str, float]:
    """Median NSE, KGE, r, |alpha - 1| and FHV [%] over the basins of one metrics CSV."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    col = {k: np.array([float(r[k]) for r in rows]) for k in ("nse", "kge", "r", "pbias", "fhv")}
    beta = 1.0 + col["pbias"] / 100.0
    alpha_err = np.sqrt(np.clip((1 - col["kge"]) ** 2 - (col["r"] - 1) ** 2 - (beta - 1) ** 2,
                                0.0, None))
    return {"nse": np.nanmedian(col["nse"]), "kge": np.nanmedian(col["kge"]),
            "r": np.nanmedian(col["r"]), "|alpha-1|": np.nanmedian(alpha_err),
            "fhv %": np.nanmedian(col["fhv"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="+", help="per-basin metrics CSV files")
    args = ap.parse_args(argv)
    for path in args.csv:
        c = components(path)
        print(path + ": " + ", ".join(f"{k} {v:.3f}" if k != "fhv %" else f"{k} {v:.1f}"
                                     for k, v in c.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
