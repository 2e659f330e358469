"""Compare dhbv-eval results with Table 2 of Feng et al. (2022).

Reads OUT/metrics.csv of one or more ``dhbv-eval`` runs and prints a Markdown table: median NSE
and KGE, and the spatial correlation between simulated baseflow fraction (bfi_sim) and the CAMELS
baseflow_index signature (hydro_signatures.csv of the data pack, used for evaluation only).

Example::

    python scripts/table2.py --signatures ../shared/data/camels_us_daily/hydro_signatures.csv \
        "δn(γt,βt)=runs/eval/dynamic_all" "δn=runs/eval/static_all"
"""
from __future__ import annotations

import argparse
import csv

import numpy as np

PAPER = {"δ1": (0.640, 0.560), "δn": (0.714, 0.739), "δn(βt)": (0.729, 0.725),
         "δn(γt)": (0.716, 0.731), "δn(γt,βt)": (0.732, 0.760)}


def read_metrics(path: str) -> dict[str, dict[str, float]]:
    with open(path, newline="") as f:
        return {r["gauge_id"]: {k: float(v) for k, v in r.items() if k != "gauge_id"}
                for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="LABEL=DIR", help="dhbv-eval output directories")
    ap.add_argument("--signatures", required=True, help="hydro_signatures.csv of the data pack")
    args = ap.parse_args(argv)
    with open(args.signatures, newline="") as f:
        bfi_obs = {r["gauge_id"]: float(r["baseflow_index"] or "nan") for r in csv.DictReader(f)}
    print("| model | basins | median NSE | median KGE | BFI spatial corr. | paper NSE | paper BFI corr. |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.runs:
        label, d = spec.split("=", 1)
        m = read_metrics(f"{d}/metrics.csv")
        ids = [i for i in m if np.isfinite(m[i]["nse"])]
        nse = np.median([m[i]["nse"] for i in ids])
        kge = np.median([m[i]["kge"] for i in ids])
        pairs = np.array([(m[i]["bfi_sim"], bfi_obs.get(i, np.nan)) for i in ids])
        ok = np.isfinite(pairs).all(1)
        corr = np.corrcoef(pairs[ok, 0], pairs[ok, 1])[0, 1]
        p_nse, p_bfi = PAPER.get(label.split(" ")[0], (np.nan, np.nan))
        print(f"| {label} | {len(ids)} | {nse:.3f} | {kge:.3f} | {corr:.3f} | {p_nse:.3f} | {p_bfi:.3f} |")


if __name__ == "__main__":
    main()
