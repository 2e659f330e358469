"""Hourly hydrographs of the shipped realizations, replayed as ngen runs them, with rain bars.

For each realization folder: replays it (``ngen-replay``'s code, no files written), reads the
hourly precipitation its first catchment receives (the column its ``variables_names_map``
gives, in mm h-1) and plots a window of ``--days`` days around the largest rain hour: rain bars
on top, the catchment's hourly flow [m3 s-1] below, midnights marked. Prints, per realization,
the hour of the largest rain, the first hour of its storm and the first hour from then on in
which the flow rises (so "rain at 14:00
raises the flow from 14:00" can be read off), a day-periodicity check: the mean absolute
flow change across midnight divided by that across the other hours (about 1 without a
day-end artefact), and a step check: within recessions (three falling hours in a row), the
largest ratio of an hour's fall to the larger of its neighbours' (about 1 on a smooth
recession; a step, e.g. the end of a truncated unit hydrograph, shows as much more).

    python scripts/plot_realizations.py --out benchmarks/hydrographs
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from delta_core.ngen import crosswalk as B  # noqa: E402
from delta_core.ngen import replay as R  # noqa: E402

REALIZATIONS = Path(__file__).resolve().parents[1] / "realizations"


def hourly_rain(real_dir: Path, cid: str) -> np.ndarray:
    """Precipitation [mm h-1] of catchment ``cid`` from its forcing file."""
    real = json.loads((real_dir / "realization.json").read_text())
    params, forcing = R._formulation(real, cid)
    pattern = re.compile(forcing["file_pattern"].replace("{{id}}", re.escape(cid)))
    folder = real_dir / forcing["path"]
    path = next(p for p in sorted(folder.iterdir()) if pattern.fullmatch(p.name))
    f = R.CsvForcing(path)
    column = f.resolve(params.get("variables_names_map", {}).get(B.PRECIP, B.PRECIP))
    return np.asarray(B.convert(f.columns[column], f.units[column], "mm h-1", column))


def midnight_ratio(q: np.ndarray) -> float:
    """Mean |flow change| into hour 00:00 over that into the other hours (run starts 00:00)."""
    dq = np.abs(np.diff(q))
    at_midnight = dq[23::24]
    others = np.delete(dq, np.s_[23::24])
    return float(at_midnight.mean() / max(others.mean(), 1e-30))


def recession_step(q: np.ndarray) -> float:
    """Largest ratio of a falling hour's fall to the larger fall of the hours either side of
    it, over hours whose neighbours fall too (1 where no three hours fall in a row)."""
    fall = -np.diff(np.asarray(q, dtype=float))
    mid, side = fall[1:-1], np.maximum(fall[:-2], fall[2:])
    inside = (mid > 0) & (fall[:-2] > 0) & (fall[2:] > 0)
    return float(np.max(mid[inside] / side[inside], initial=1.0))


def plot(real_dir: Path, days: int, out: Path) -> str:
    tmp = Path(tempfile.mkdtemp()) / real_dir.name
    shutil.copytree(real_dir, tmp, ignore=shutil.ignore_patterns("output"))
    res = R.replay(tmp / "realization.json", tmp / "catchment_data.geojson", write=False)
    cid = sorted(res["catchments"])[0]
    q = res["catchments"][cid]["flow_m3s"]
    rain = hourly_rain(tmp, cid)[:len(q)]
    times = res["times"]
    peak = int(np.argmax(rain))
    start = peak
    while start > 0 and rain[start - 1] > 0:
        start -= 1
    rising = np.flatnonzero(np.diff(q[start - 1:]) > 0) if start > 0 else np.array([0])
    rise = start + int(rising[0]) if len(rising) else len(q) - 1
    lo = max(0, min(peak - 24 * (days // 3), len(q) - 24 * days))
    hi = min(len(q), lo + 24 * days)
    h = np.arange(lo, hi)
    fig, (ax_r, ax_q) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True,
                                     gridspec_kw={"height_ratios": [1, 2.2]})
    ax_r.bar(h, rain[lo:hi], width=1.0, color="tab:blue")
    ax_r.invert_yaxis()
    ax_r.set_ylabel("rain\nmm h-1")
    ax_q.plot(h, q[lo:hi], color="k", lw=1)
    for m in range(lo + (-lo) % 24, hi, 24):
        for ax in (ax_r, ax_q):
            ax.axvline(m, color="0.85", lw=0.6, zorder=0)
    ax_q.set_ylabel(f"{cid} flow\nm3 s-1")
    ax_q.set_xlabel(f"hours from {str(times[0])[:16]} (grey lines: midnight)")
    ratio, step = midnight_ratio(q), recession_step(q)
    ax_r.set_title(f"{real_dir.name}: replayed as ngen runs it; midnight/other-hour flow change "
                   f"{ratio:.2f}; recession step {step:.1f}", fontsize=9)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{real_dir.name}.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)
    return (f"{real_dir.name}: {cid}, largest rain {rain[peak]:.2f} mm h-1 at {times[peak]} "
            f"(its storm from {times[start]}), flow rises from {times[rise]}; "
            f"peak flow {q.max():.3g} m3 s-1; "
            f"midnight/other-hour flow change {ratio:.2f}; recession step {step:.1f} -> {png}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="realization folders (default: all in realizations/)")
    ap.add_argument("--days", type=int, default=6, help="days plotted (default 6)")
    ap.add_argument("--out", required=True, help="output folder for the PNGs")
    a = ap.parse_args(argv)
    names = a.names or sorted(p.name for p in REALIZATIONS.iterdir() if p.is_dir())
    for name in names:
        print(plot(REALIZATIONS / name, a.days, Path(a.out)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
