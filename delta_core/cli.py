"""Command-line layer shared by every δ model: thin argparse wrappers over importable functions.

A model package binds these to its own console scripts (e.g. ``dhbv-train``), passing its
model name and default bundle.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path



def train_command(argv: list[str] | None, prog: str) -> int:
    """``<model>-train --config train.yaml``: train, checkpoint, resume, write a bundle."""
    from delta_core.config import RunConfig
    from delta_core.training import train

    ap = argparse.ArgumentParser(prog=prog, description=(
        "Train a δ model with the protocol of Feng et al. (2022) by default. Resumes from "
        "RUN_DIR/checkpoint.pt if present; writes RUN_DIR/bundle.pt with test metrics."))
    ap.add_argument("--config", required=True, help="YAML run configuration (unknown keys rejected)")
    ap.add_argument("--run-dir", help="override run_dir of the config")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    cfg = RunConfig.from_yaml(args.config)
    if args.run_dir:
        cfg.run_dir = args.run_dir
    train(cfg, progress=not args.no_progress)
    return 0


def eval_command(argv: list[str] | None, prog: str, default_bundle: Path) -> int:
    """``<model>-eval``: simulate with spin-up, write metrics.csv and simulation.nc."""
    from delta_core.data.camels import CamelsDataset, read_basin_list
    from delta_core.evaluation import evaluate_model

    ap = argparse.ArgumentParser(prog=prog, description=(
        "Evaluate a trained bundle: spin states up on all forcing before --start, simulate to "
        "--end, write OUT/metrics.csv (per basin) and OUT/simulation.nc (CF netCDF)."))
    ap.add_argument("--bundle", default=str(default_bundle), help="weight bundle (default: shipped)")
    ap.add_argument("--data", help="data directory in the CAMELS pack format (default: shipped sample)")
    ap.add_argument("--basins", help="file of gauge ids, one per line, or a subset name: all, "
                                     "531_clean, no_area_mismatch (default: all)")
    ap.add_argument("--start", default="1995-10-01", help="first evaluation day (YYYY-MM-DD)")
    ap.add_argument("--end", default="2010-09-30", help="last evaluation day (YYYY-MM-DD)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--backend", default="cpp", choices=["cpp", "torch"], help="HBV engine")
    ap.add_argument("--plot", action="store_true", help="also write hydrographs.png (<= 12 basins)")
    args = ap.parse_args(argv)
    ds = CamelsDataset(args.data)
    if args.basins is None or args.basins in ("all", "531_clean", "no_area_mismatch"):
        ids = ds.basin_ids(args.basins)
    else:
        ids = read_basin_list(args.basins)
    res = evaluate_model(args.bundle, ds, ids, args.start, args.end, backend=args.backend,
                         out_dir=args.out, progress=True)
    if args.plot:
        from delta_core.plotting import plot_hydrographs

        k = min(12, len(ids))
        sub = {**res["simulation"], "gauge_ids": ids[:k], "qobs": res["simulation"]["qobs"][:, :k],
               "outputs": {n: v[:, :k] for n, v in res["simulation"]["outputs"].items()}}
        plot_hydrographs(sub, res["rows"][:k], Path(args.out) / "hydrographs.png")
    print(f"{args.start}..{args.end}: median NSE {res['median_nse']:.3f}, median KGE "
          f"{res['median_kge']:.3f} over {res['n_basins']} basins -> {args.out}")
    return 0


def demo_command(argv: list[str] | None, prog: str, default_bundle: Path) -> int:
    """``<model>-demo``: the shipped model on the shipped sample basins, test period."""
    from delta_core.data.camels import CamelsDataset
    from delta_core.evaluation import evaluate_model
    from delta_core.plotting import plot_hydrographs

    ap = argparse.ArgumentParser(prog=prog, description=(
        "Simulate the sample basins shipped with the package with the pretrained model "
        "(test period 1995-10-01..2010-09-30), print NSE/KGE per basin, write metrics.csv, "
        "simulation.nc (all fluxes and stores) and hydrographs.png."))
    ap.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    ap.add_argument("--bundle", default=str(default_bundle), help="weight bundle (default: shipped)")
    ap.add_argument("--backend", default="cpp", choices=["cpp", "torch"], help="HBV engine")
    args = ap.parse_args(argv)
    ds = CamelsDataset()
    ids = ds.basin_ids()
    res = evaluate_model(args.bundle, ds, ids, "1995-10-01", "2010-09-30", backend=args.backend,
                         out_dir=args.out)
    print(f"{'gauge_id':<10} {'NSE':>6} {'KGE':>6} {'BFI_sim':>8}")
    for r in res["rows"]:
        print(f"{r['gauge_id']:<10} {r['nse']:6.3f} {r['kge']:6.3f} {r['bfi_sim']:8.3f}")
    print(f"median NSE {res['median_nse']:.3f}, median KGE {res['median_kge']:.3f}")
    png = plot_hydrographs(res["simulation"], res["rows"], Path(args.out) / "hydrographs.png")
    print(f"wrote {args.out}/metrics.csv, {args.out}/simulation.nc, {png}")
    return 0


def run(fn, *args) -> None:
    """Run a command function, turning expected errors into one clear line and exit code 2."""
    from delta_core.bundle import BundleError
    from delta_core.config import ConfigError
    from delta_core.data.camels import DataError

    try:
        sys.exit(fn(*args))
    except (BundleError, ConfigError, DataError, KeyError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


