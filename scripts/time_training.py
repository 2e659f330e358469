"""Time training epochs of a run configuration, in one process or under torchrun.

    python scripts/time_training.py CONFIG RUN_DIR [--epochs 1]
    torchrun --standalone --nproc_per_node 2 scripts/time_training.py CONFIG RUN_DIR

Trains ``--epochs`` epochs (no final bundle/evaluation) and, on process 0, prints one line
``RESULT {json}`` with the number of processes, the device and the epoch times [s] from
``RUN_DIR/training_log.csv``. RUN_DIR must not hold a checkpoint of another run.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

from delta_core.config import RunConfig
from delta_core.training import train


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="YAML run configuration")
    ap.add_argument("run_dir", help="run directory (checkpoint and training_log.csv)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs to time (default 1)")
    args = ap.parse_args(argv)
    cfg = RunConfig.from_yaml(args.config)
    cfg.run_dir = args.run_dir
    t0 = time.time()
    train(cfg, progress=False, max_epochs=args.epochs)
    if int(os.environ.get("RANK", "0")) == 0:
        rows = list(csv.DictReader(open(Path(args.run_dir) / "training_log.csv")))
        print("RESULT", json.dumps({
            "config": args.config, "processes": int(os.environ.get("WORLD_SIZE", "1")),
            "device": cfg.training.device, "backend": cfg.training.backend,
            "epoch_seconds": [float(r["seconds"]) for r in rows],
            "loss": [float(r["loss"]) for r in rows], "total_seconds": time.time() - t0}),
            flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
