"""Train the same short dHBV run on the CPU and on CUDA (PyTorch physics) and compare the weights.

    python scripts/compare_devices.py [--out DIR]

Five sample basins, 4 components, 2 epochs, float64 and float32; prints one line ``AGREE {json}``
with the largest relative weight difference per dtype and both runs' losses and median NSE.
Needs a CUDA device.
"""
from __future__ import annotations

import argparse
import json

import torch

from delta_core.bundle import load_bundle
from delta_core.config import RunConfig
from delta_core.training import train


def run(device: str, dtype: str, out: str) -> dict:
    cfg = RunConfig.from_dict({
        "model": "dhbv", "run_dir": f"{out}/{dtype}_{device}", "physics": {"n_components": 4},
        "network": {"static_hidden": 32, "dynamic_hidden": 16},
        "data": {"basins": ["01022500", "03439000", "06224000", "08023080", "12010000"],
                 "train_start": "1981-01-01", "train_end": "1984-12-31",
                 "test_start": "1985-01-01", "test_end": "1985-12-31"},
        "training": {"epochs": 2, "batch_basins": 5, "window_days": 365, "warmup_days": 365,
                     "backend": "torch", "device": device, "dtype": dtype}})
    return load_bundle(train(cfg, progress=False))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/compare_devices", help="run directories")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    result = {}
    for dtype in ("float64", "float32"):
        cpu, gpu = run("cpu", dtype, args.out), run("cuda", dtype, args.out)
        a, b = cpu["state_dict"], gpu["state_dict"]
        rel = max(float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1e-30)) for k in a)
        result[dtype] = {"max_rel_weight_diff": rel,
                         "median_nse": [cpu["metrics"]["median_nse"], gpu["metrics"]["median_nse"]],
                         "loss_cpu": [h["loss"] for h in cpu["provenance"]["history"]],
                         "loss_cuda": [h["loss"] for h in gpu["provenance"]["history"]]}
    print("AGREE", json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
