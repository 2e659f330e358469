"""Plot the hourly hydrograph of realizations/dlgar_camels_arid (the shipped dLGAR bundle in
BmiLGAR, replayed as ngen runs it, synthetic hourly forcing from Daymet with the rain in 6 h
from 12:00) with its hourly rain,
beside the δ model's own daily run (the same bundle on the daily Daymet forcing, as lgar-eval
runs it, same spin-up start) and the observed daily means, for ``--days`` days from ``--start``.

    python scripts/plot_dlgar_hydrograph.py --out benchmarks/dlgar_hourly_hydrograph.png
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
import torch
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from delta_core.data.camels import CamelsDataset  # noqa: E402
from delta_core.evaluation import load_model  # noqa: E402
from delta_core.ngen import replay as R  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "realizations" / "dlgar_camels_arid"
PACK = REPO.parent / "shared" / "data" / "camels_us_daily"
CID, GID = "cat-09480000", "09480000"


def daily_model_run(bundle: str, start: str, spinup_start: str, end: str) -> np.ndarray:
    """The bundle's daily streamflow [mm/day] of GID from ``start`` to ``end``, states spun up
    from ``spinup_start``."""
    model, norm, _ = load_model(bundle, torch.float64)
    ds = CamelsDataset(PACK)
    ts = ds.load([GID], start=spinup_start, end=end)
    warmup = int((np.datetime64(start) - np.datetime64(spinup_start)).astype(int))
    attrs = ds.attributes([GID], norm.attributes.names)
    raw = ds.attributes([GID], list(model.raw_attributes))
    forcing = torch.tensor(np.stack([getattr(ts, n)[:, 0] for n in norm.forcing.names],
                                    -1)[:, None, :], dtype=torch.float64)
    batch = {"forcing": forcing, "x_attr": torch.as_tensor(norm.attributes.transform(attrs,
                                                                                   [GID])),
             "raw_attr": torch.tensor([[float(raw[n][0]) for n in model.raw_attributes]],
                                      dtype=torch.float64), "warmup": warmup}
    with torch.no_grad():
        return model(batch)["streamflow"][:, 0].numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", default="2006-07-10", help="first day plotted")
    ap.add_argument("--days", type=int, default=40)
    ap.add_argument("--out", required=True, help="PNG to write")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp()) / REAL.name
    shutil.copytree(REAL, tmp, ignore=shutil.ignore_patterns("output"))
    res = R.replay(tmp / "realization.json", tmp / "catchment_data.geojson", write=False)
    flow = res["catchments"][CID]["flow_m3s"]
    real = json.loads((tmp / "realization.json").read_text())
    t0, t1 = real["time"]["start_time"][:10], real["time"]["end_time"][:10]
    cfg = yaml.safe_load((tmp / "config" / f"{CID}.yaml").read_text())
    area = float(cfg["area_km2"])
    forcing = R.CsvForcing(tmp / "forcing" / f"{CID}.csv")
    rain_mm_h = forcing.columns["precip_rate"] * 3600.0
    spin0 = str(np.datetime64(t0) - np.timedelta64(365, "D"))
    from delta_core.registry import model_spec

    bundle = str(model_spec("dlgar").default_bundle)
    q_model = daily_model_run(bundle, t0, spin0, t1)
    obs = CamelsDataset(PACK).load([GID], start=t0, end=t1).qobs[:, 0]
    i0 = int((np.datetime64(a.start) - np.datetime64(t0)).astype(int))
    h = np.arange(24 * a.days) / 24
    days = np.arange(a.days)
    to_m3s = area * 1e3 / 86400  # mm/day -> m3/s
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(h, flow[24 * i0:24 * (i0 + a.days)], lw=1,
            label="BmiLGAR, shipped bundle, hourly (ngen replay)")
    q_day = q_model[i0:i0 + a.days] * to_m3s
    ax.step(np.append(days, a.days), np.append(q_day, q_day[-1]), where="post",
            label="δ model daily run (lgar-eval), daily mean")
    ax.plot(days + 0.5, obs[i0:i0 + a.days] * to_m3s, "k.", label="observed daily mean")
    ax.set_xlabel(f"days from {a.start}")
    ax.set_ylabel("discharge [m3 s-1]")
    top = ax.twinx()
    top.bar(h, rain_mm_h[24 * i0:24 * (i0 + a.days)], width=1 / 24, color="tab:gray",
            alpha=0.5)
    top.set_ylim(top.get_ylim()[1] * 3, 0)
    top.set_ylabel("rain [mm h-1]")
    ax.set_title(f"CAMELS {GID} (Santa Cruz R. nr Lochiel AZ, aridity 2.46), "
                 f"realizations/dlgar_camels_arid replayed")
    ax.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print(f"wrote {a.out}; WY{t1[:4]} runoff: hourly BMI {flow.sum() * 3600 / (area * 1e3):.1f} "
          f"mm, daily model {q_model.sum():.1f} mm, observed {np.nansum(obs):.1f} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
