"""Plot the hourly hydrograph of realizations/camels_sample (dHBV hourly mode, replayed as ngen
runs it) beside the daily model (daily mode, same spin-up, Daymet daily forcing) and the
observed daily means, for 20 days from ``--start``.

    python scripts/plot_hourly_hydrograph.py --out benchmarks/dhbv_hourly_hydrograph.png
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bmi_dhbv import BmiDHBV  # noqa: E402
from delta_core.data.camels import CamelsDataset  # noqa: E402
from delta_core.ngen import crosswalk as B  # noqa: E402
from delta_core.ngen import replay as R  # noqa: E402

REAL = Path(__file__).resolve().parents[1] / "realizations" / "camels_sample"
CID, GID, AREA_KM2 = "cat-01022500", "01022500", 587.676


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", default="1997-03-30", help="first day plotted")
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--out", required=True, help="PNG to write")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp()) / "camels_sample"
    shutil.copytree(REAL, tmp, ignore=shutil.ignore_patterns("output"))
    res = R.replay(tmp / "realization.json", tmp / "catchment_data.geojson", write=False)
    flow = res["catchments"][CID]["flow_m3s"]
    t0 = json.loads((tmp / "realization.json").read_text())["time"]["start_time"][:10]
    cfg = yaml.safe_load((tmp / "config" / f"{CID}.yaml").read_text())
    cfg.update(time_step_seconds=86400,
               spinup_forcing=str((tmp / "config" / cfg["spinup_forcing"]).resolve()))
    (tmp / "daily.yaml").write_text(yaml.safe_dump(cfg))
    n_days = len(flow) // 24
    ts = CamelsDataset().load([GID], start=t0)
    m = BmiDHBV()
    m.initialize(str(tmp / "daily.yaml"))
    daily = []
    for d in range(n_days):
        for name, v in ((B.PRECIP, ts.prcp), (B.TEMP, ts.tmean), (B.TMAX, ts.tmax),
                        (B.TMIN, ts.tmin)):
            m.set_value(name, np.array([v[d, 0]]))
        m.update()
        daily.append(m.get_value_ptr(B.RUNOFF_DEPTH)[0])
    i0 = int((np.datetime64(a.start) - np.datetime64(t0)).astype(int))
    days = np.arange(a.days)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(np.arange(24 * a.days) / 24, flow[24 * i0:24 * (i0 + a.days)],
            label="hourly mode (default bundle dhbv_hourly.pt), hourly")
    q_day = np.asarray(daily[i0:i0 + a.days]) * AREA_KM2 * 1e6 / 86400
    ax.step(np.append(days, a.days), np.append(q_day, q_day[-1]), where="post",
            label="daily mode (dhbv_dynamic.pt), daily mean")
    ax.plot(days + 0.5, ts.qobs[i0:i0 + a.days, 0] * AREA_KM2 * 1e3 / 86400, "k.",
            label="observed daily mean")
    ax.set_xlabel(f"days from {a.start}")
    ax.set_ylabel("m3 s-1")
    ax.set_title(f"CAMELS {GID}, realizations/camels_sample replayed (synthetic hourly forcing)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print(f"wrote {a.out}; peak hourly flow of the run {flow.max():.1f} m3 s-1")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
