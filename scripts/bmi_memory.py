#!/usr/bin/env python
"""Memory and start-up time per BMI instance (ngen creates one instance per catchment).

Creates one instance of each model's BMI (shipped bundle, sample basin 01022500, no spin-up),
then ``--n`` more, and prints the growth of the process's resident memory per instance and the
mean start-up time. Bundles and networks are shared by the instances of a process
(``delta_core.bmi.adapter``), so an instance holds its state.

Example::

    OMP_NUM_THREADS=1 python scripts/bmi_memory.py --n 200
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from delta_core.config import CAMELS_ATTRIBUTES
from delta_core.data.camels import CamelsDataset
from delta_core.registry import model_spec


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="instances per model")
    ap.add_argument("--models", default="dhbv,dcfe")
    a = ap.parse_args(argv)
    ds = CamelsDataset()
    gid = "01022500"
    attrs = {k: v[0] for k, v in ds.attributes([gid], CAMELS_ATTRIBUTES).items()}
    cfg = {"attributes": attrs, "latitude": float(ds.basins[gid]["gauge_lat"]),
           "area_km2": 573.6, "start_time": "1990-01-01 00:00:00"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.yaml"
        path.write_text(yaml.safe_dump(cfg))
        for name in a.models.split(","):
            cls = model_spec(name).load_bmi_class()
            first = cls()
            first.initialize(str(path))
            base, t0 = rss_kb(), time.perf_counter()
            keep = []
            for _ in range(a.n):
                m = cls()
                m.initialize(str(path))
                keep.append(m)
            dt = (time.perf_counter() - t0) / a.n
            print(f"{name}: {(rss_kb() - base) / a.n:.0f} kB and {dt * 1e3:.1f} ms start-up per "
                  f"instance ({a.n} instances, no spin-up)")


if __name__ == "__main__":
    main()
