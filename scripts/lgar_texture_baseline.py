"""Texture-table LGAR (no learning) on a few arid CAMELS basins: NSE/KGE of daily streamflow.

Per basin: the LGAR parameter set from its CAMELS attributes (:mod:`bmi_lgar.texture`); daily
Daymet forcing through the degree-day snow routine (:mod:`delta_core.snow`, daily, fixed
parameters: the midpoints of its ranges, TT 0 degC, CFMAX 5.25 mm degC-1 d-1, CFR 0.05, CWH 0.1),
then the liquid water and the Hargreaves PET spread over the hours of each day
(:mod:`delta_core.patterns`: rain in a 6-hour block from 12:00, PET by sine weights, as
dCFE), then the hourly :class:`bmi_lgar.core.LgarCore` (the pure-Python port, about 0.3 ms per
hour). Hourly discharge is summed to mm/day and compared with the observations over the test
period (after the warm-up).

    python scripts/lgar_texture_baseline.py                       # 3 arid basins, 2 test years
    python scripts/lgar_texture_baseline.py --basins 09480000 --warmup-start 2000-10-01

With ``--engine kernel`` all basins run together in the C++ kernel (:mod:`bmi_lgar.kernel`, bit
for bit the port), a year at a time with the packed state carried over; ``--basins arid`` (or
any subset name of the data reader) selects basins. The full arid baseline (147 basins, spin-up
from the first day of data, test 1995-10-01..2010-09-30):

    python scripts/lgar_texture_baseline.py --engine kernel --basins arid \
        --warmup-start 1980-10-01 --start 1995-10-01 --end 2010-09-30
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("bmi_lgar") is None:  # not installed: the source tree (no kernel)
    sys.path.insert(0, str(REPO))

from bmi_lgar.core import LgarCore  # noqa: E402
from bmi_lgar.texture import ATTRIBUTES, parameters_from_attributes  # noqa: E402
from delta_core import snow  # noqa: E402
from delta_core.data.camels import CamelsDataset  # noqa: E402
from delta_core.patterns import WithinDay  # noqa: E402
from delta_core.metrics import kge, nse  # noqa: E402

#: Arid basins (aridity > 1; HUC 15, 13) of the data pack.
DEFAULT_BASINS = ("09480000", "09447800", "08324000")
SNOW = {k: 0.5 * (lo + hi) for k, (lo, hi, _) in snow.PARAMETER_RANGES.items()}
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "camels_us_daily"


def liquid_water(prcp: np.ndarray, tmean: np.ndarray) -> np.ndarray:
    """Rain plus snowpack outflow [mm/day] of the daily degree-day routine (cold start)."""
    pack = water = 0.0
    out = np.empty(len(prcp))
    for d, (p, t) in enumerate(zip(prcp.tolist(), tmean.tolist())):
        s = snow.degree_day_step(pack, water, p, t, SNOW["TT"], SNOW["CFMAX"], SNOW["CFR"],
                                 SNOW["CWH"])
        pack, water = s.snowpack, s.meltwater
        out[d] = s.rain + s.outflow
    return out


def simulate(core: LgarCore, liquid: np.ndarray, pet: np.ndarray,
             scheme: WithinDay) -> np.ndarray:
    """Daily discharge [mm/day] of the core run hourly over daily liquid water and PET [mm]."""
    rw, pw = scheme.rain_weights().tolist(), scheme.pet_weights().tolist()
    q = np.empty(len(liquid))
    start = None  # the core's own PET is not used (PET is given)
    for d, (p, e) in enumerate(zip(liquid.tolist(), pet.tolist())):
        total = 0.0
        for h in range(24):
            core.step([p * rw[h], e * pw[h], None], start)
            total += core.flow_new[0]
        q[d] = total
    return q


def run_basin(ds: CamelsDataset, gid: str, warmup_start: str, start: str, end: str,
              scheme: WithinDay) -> dict:
    """NSE, KGE and volumes of one basin over start..end (warm-up from warmup_start)."""
    attrs = {k: v[0] for k, v in ds.attributes([gid], list(ATTRIBUTES)).items()}
    params = parameters_from_attributes(attrs)
    ts = ds.load([gid], start=warmup_start, end=end)
    liquid = liquid_water(ts.prcp[:, 0], ts.tmean[:, 0])
    t0 = time.perf_counter()
    q = simulate(LgarCore(params), liquid, ts.pet[:, 0], scheme)
    wall = time.perf_counter() - t0
    keep = ts.dates >= np.datetime64(start)
    sim, obs = q[keep], ts.qobs[keep, 0]
    ok = np.isfinite(obs)
    return {"basin": gid, "texture": params.layers[0].name, "depth_cm": params.soil_depth_cm,
            "nse": nse(sim, obs), "kge": kge(sim, obs), "q_sim": float(sim[ok].mean()),
            "q_obs": float(obs[ok].mean()), "p": float(ts.prcp[keep, 0].mean()),
            "hours": 24 * len(q), "wall_s": wall}


def run_kernel_engine(ds: CamelsDataset, ids: list[str], warmup_start: str, start: str,
                      end: str, scheme: WithinDay, days_per_call: int = 365) -> list[dict]:
    """:func:`run_basin` for all ``ids`` at once in the C++ kernel (rows in the same form)."""
    import dataclasses

    from bmi_lgar import kernel

    params = []
    for gid in ids:
        attrs = {k: v[0] for k, v in ds.attributes([gid], list(ATTRIBUTES)).items()}
        params.append(parameters_from_attributes(attrs))
    batch = kernel.pack_configs([dataclasses.replace(p.to_config(), endtime_s=3600.0 * 1e9)
                                 for p in params])
    ts = ds.load(ids, start=warmup_start, end=end)
    liquid = np.stack([liquid_water(ts.prcp[:, b], ts.tmean[:, b]) for b in range(len(ids))], 1)
    rw, pw = scheme.rain_weights().numpy(), scheme.pet_weights().numpy()
    q = np.empty(liquid.shape)
    state = None
    t0 = time.perf_counter()
    for d0 in range(0, len(q), days_per_call):
        d1 = min(d0 + days_per_call, len(q))
        rain = (liquid[d0:d1, None, :] * rw[None, :, None]).reshape(-1, len(ids))
        pet = (ts.pet[d0:d1, None, :] * pw[None, :, None]).reshape(-1, len(ids))
        run = kernel.run_kernel(batch, rain, pet, state=state)
        state = run.state
        q[d0:d1] = run.outputs["total_discharge"].reshape(d1 - d0, 24, -1).sum(1) * 1000.0
    wall = time.perf_counter() - t0
    keep = ts.dates >= np.datetime64(start)
    rows = []
    for b, gid in enumerate(ids):
        sim, obs = q[keep, b], ts.qobs[keep, b]
        ok = np.isfinite(obs)
        rows.append({"basin": gid, "texture": params[b].layers[0].name,
                     "depth_cm": params[b].soil_depth_cm, "nse": nse(sim, obs),
                     "kge": kge(sim, obs), "q_sim": float(sim[ok].mean()),
                     "q_obs": float(obs[ok].mean()), "p": float(ts.prcp[keep, b].mean()),
                     "hours": 24 * len(q), "wall_s": wall / len(ids)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--basins", nargs="+", default=list(DEFAULT_BASINS))
    ap.add_argument("--root", default=str(DEFAULT_ROOT), help="CAMELS data directory")
    ap.add_argument("--warmup-start", default="2004-10-01")
    ap.add_argument("--start", default="2005-10-01", help="first day of the test period")
    ap.add_argument("--end", default="2007-09-30", help="last day of the test period")
    ap.add_argument("--engine", choices=("python", "kernel"), default="python",
                    help="the Python port basin by basin, or all basins in the C++ kernel")
    ap.add_argument("--csv", help="also write the rows to this CSV file")
    ap.add_argument("--chunk", type=int, default=25, help="kernel engine: basins per run")
    args = ap.parse_args(argv)
    ds = CamelsDataset(args.root)
    if len(args.basins) == 1 and not args.basins[0].isdigit():
        args.basins = ds.resolve_basins(args.basins[0])
    ds.check_basins(args.basins)
    scheme = WithinDay("block", 12, 6, "sine")
    engine = "C++ kernel" if args.engine == "kernel" else "Python port"
    print(f"texture-table LGAR, {len(args.basins)} basins, test {args.start}..{args.end} "
          f"(warm-up from {args.warmup_start}), {engine}")
    print(f"{'basin':>9} {'texture':>16} {'depth':>6} {'NSE':>7} {'KGE':>7} {'Qsim':>6} "
          f"{'Qobs':>6} {'P':>6} {'wall s':>7}")
    t0 = time.perf_counter()
    if args.engine == "kernel":
        rows = []
        for c0 in range(0, len(args.basins), args.chunk):
            new = run_kernel_engine(ds, list(args.basins[c0:c0 + args.chunk]),
                                    args.warmup_start, args.start, args.end, scheme)
            rows += new
            for r in new:
                print(f"  done {r['basin']:>9} NSE {r['nse']:7.3f} KGE {r['kge']:7.3f}", flush=True)
            print(f"  {len(rows)} basins done, running median NSE "
                  f"{np.median([r['nse'] for r in rows]):.3f}, KGE "
                  f"{np.median([r['kge'] for r in rows]):.3f}", flush=True)
    else:
        rows = [run_basin(ds, g, args.warmup_start, args.start, args.end, scheme)
                for g in args.basins]
    if args.csv:
        import csv

        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    for r in rows:
        print(f"{r['basin']:>9} {r['texture']:>16} {r['depth_cm']:6.1f} {r['nse']:7.3f} "
              f"{r['kge']:7.3f} {r['q_sim']:6.3f} {r['q_obs']:6.3f} {r['p']:6.3f} "
              f"{r['wall_s']:7.1f}")
    hours = sum(r["hours"] for r in rows)
    wall = time.perf_counter() - t0
    print(f"median NSE {np.median([r['nse'] for r in rows]):.3f}, median KGE "
          f"{np.median([r['kge'] for r in rows]):.3f} (Q, P in mm/day); {hours} LGAR hours in "
          f"{wall:.1f} s wall ({1e3 * sum(r['wall_s'] for r in rows) / hours:.3f} ms per hour)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
