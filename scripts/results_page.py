#!/usr/bin/env python
"""Comparison table and NSE CDF figure of models scored on the same basins.

Each model is ``LABEL=CSV`` or ``LABEL=CSV#PREFIX``: a per-basin metrics file with a
``gauge_id`` (or ``basin``) column and ``nse``/``kge`` columns (``PREFIX`` picks ``PREFIXnse``/``PREFIXkge``,
e.g. ``dds_`` in the DDS files). Medians are over the basins with a finite NSE, for all basins
and for the arid (CAMELS aridity > 1) and humid ones, read from ``--data``'s attributes.

Writes ``OUT.md`` (Markdown table) and ``OUT.png`` (NSE CDFs); ``--subset arid`` scores only the
arid basins (for models trained on them alone, e.g. dLGAR), ``--basins-of CSV`` (repeatable)
only the basins listed in these per-basin files (e.g. the 100 basins of a DDS-CFE run), and
``--basins-of CSV#COLUMN=VALUE`` only its rows with that value (e.g. ``#fold=3``: the basins a
PUR run held out in its fourth region group). "NSE < 0" counts the basins below NSE 0.

Example::

    python scripts/results_page.py --data ../shared/data/camels_us_daily \\
        --out benchmarks/results/comparison \\
        "dHBV δn(γt,βt)=benchmarks/results/dhbv_dynamic.csv" \\
        "DDS-HBV=benchmarks/results/dds_hbv.csv#dds_"
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from delta_core.data.camels import CamelsDataset


def read_rows(path: str) -> tuple[list[dict], str]:
    """Rows of a per-basin CSV and the name of its id column (``gauge_id`` or ``basin``)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    idcol = "basin" if rows and "gauge_id" not in rows[0] and "basin" in rows[0] else "gauge_id"
    require_columns(path, rows, idcol)
    return rows, idcol


def require_columns(path: str, rows: list[dict], *cols: str) -> None:
    """Exit with a message naming the first of ``cols`` that the rows of ``path`` lack."""
    for col in cols:
        if rows and col not in rows[0]:
            raise SystemExit(f"{path} has no column {col!r}; columns: {list(rows[0])}")


def read_scores(arg: str) -> tuple[str, dict[str, tuple[float, float]]]:
    """``LABEL=CSV[#PREFIX]`` -> (label, {gauge_id: (NSE, KGE)})."""
    label, sep, rest = arg.partition("=")
    if not sep:
        raise SystemExit(f"model argument {arg!r} must be LABEL=CSV or LABEL=CSV#PREFIX")
    path, _, prefix = rest.partition("#")
    rows, idcol = read_rows(path)
    require_columns(path, rows, f"{prefix}nse", f"{prefix}kge")
    return label, {r[idcol]: (float(r[f"{prefix}nse"]), float(r[f"{prefix}kge"]))
                   for r in rows}


def basins_of(arg: str) -> set[str]:
    """``CSV`` or ``CSV#COLUMN=VALUE`` -> the basin ids of that file (of its rows with that value)."""
    path, _, cond = arg.partition("#")
    rows, idcol = read_rows(path)
    if not cond:
        return {r[idcol] for r in rows}
    col, sep, value = cond.partition("=")
    if not sep:
        raise SystemExit(f"--basins-of {arg!r}: the filter must be COLUMN=VALUE")
    require_columns(path, rows, col)
    picked = {r[idcol] for r in rows if r[col] == value}
    if not picked:
        raise SystemExit(f"--basins-of {arg!r}: no row of {path} has {col} = {value!r}")
    return picked


def medians(scores: dict[str, tuple[float, float]], keep) -> tuple[float, float, int]:
    vals = np.array([v for g, v in scores.items() if keep(g)], dtype=float).reshape(-1, 2)
    ok = np.isfinite(vals[:, 0])
    if not ok.any():
        return np.nan, np.nan, 0
    return float(np.median(vals[ok, 0])), float(np.nanmedian(vals[ok, 1])), int(ok.sum())


def table(models: list[tuple[str, dict]], aridity: dict[str, float], split: bool = True) -> str:
    """Markdown table of the medians; ``split``: also the arid and humid ones."""
    head = "| model | basins | median NSE | median KGE | NSE < 0 |"
    rule = "|---|---:|---:|---:|---:|"
    if split:
        head += " arid NSE / KGE (n) | humid NSE / KGE (n) |"
        rule += "---:|---:|"
    lines = [head, rule]
    for label, s in models:
        n_all, k_all, n = medians(s, lambda g: True)
        below = sum(v[0] < 0 for v in s.values())
        row = f"| {label} | {n} | {n_all:.3f} | {k_all:.3f} | {below} |"
        if split:
            a = medians(s, lambda g: aridity.get(g, np.nan) > 1.0)
            h = medians(s, lambda g: aridity.get(g, np.nan) <= 1.0)
            row += f" {a[0]:.3f} / {a[1]:.3f} ({a[2]}) | {h[0]:.3f} / {h[1]:.3f} ({h[2]}) |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def cdf_figure(models: list[tuple[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colours = plt.get_cmap("tab10").colors
    for i, (label, s) in enumerate(models):
        nse = np.sort([v[0] for v in s.values() if np.isfinite(v[0])])
        # past ten models the colours repeat: the dash style tells the repeats apart
        ax.plot(nse, np.arange(1, len(nse) + 1) / len(nse), label=f"{label} ({len(nse)})",
                color=colours[i % 10], linestyle=("-", "--", ":")[i // 10 % 3])
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("test-period NSE (1995-10-01..2010-09-30)")
    ax.set_ylabel("fraction of basins with a lower NSE")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="LABEL=CSV or LABEL=CSV#PREFIX, in table order")
    ap.add_argument("--data", required=True, help="CAMELS-format data directory (aridity)")
    ap.add_argument("--out", required=True, help="output path without suffix (.md and .png)")
    ap.add_argument("--subset", choices=("all", "arid", "humid"), default="all",
                    help="score only these basins (arid: CAMELS aridity > 1; default all)")
    ap.add_argument("--basins-of", metavar="CSV", action="append",
                    help="score only the basins of this per-basin file (e.g. a 100-basin DDS "
                         "run), CSV#COLUMN=VALUE only its rows with that value (e.g. "
                         "#fold=3); repeat to take the union of several")
    a = ap.parse_args(argv)
    models = [read_scores(m) for m in a.models]
    if a.basins_of:
        only = set()
        for arg in a.basins_of:
            only |= basins_of(arg)
        models = [(label, {g: v for g, v in s.items() if g in only}) for label, s in models]
    ds = CamelsDataset(a.data)
    ids = ds.basin_ids()
    aridity = dict(zip(ids, map(float, ds.attributes(ids, ["aridity"])["aridity"])))
    if a.subset != "all":
        keep = {g for g, v in aridity.items() if (v > 1.0) == (a.subset == "arid")}
        models = [(label, {g: v for g, v in s.items() if g in keep}) for label, s in models]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md = table(models, aridity, split=a.subset == "all")
    out.with_suffix(".md").write_text(md)
    cdf_figure(models, out.with_suffix(".png"))
    print(md, end="")
    print(f"wrote {out.with_suffix('.md')}, {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
