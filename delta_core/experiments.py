"""Experiments that take many training runs: seed spread, prediction in ungauged basins (PUB)
and in ungauged regions (PUR), each run end to end by one command (``delta-experiment``).

* ``seeds``: the same run config trained with each seed; every run scored on all its basins in
  the test period; the table gives each seed's median NSE/KGE, their mean and sample standard
  deviation, and the median NSE/KGE of the seeds' ensemble mean (streamflow averaged per day).
* ``pub``: k folds of basins stratified by HUC-02 region (each region's basins dealt in turn to
  the folds after a seeded shuffle); fold i is predicted by a model trained on the other folds
  only, in the test period; the table gives each fold's medians and those of all held-out basins
  together (every basin predicted once, by a model that never saw it).
* ``pur``: the same with whole regions held out: folds are groups of HUC-02 regions
  (default: four contiguous groups of about equal basin counts).

Each run lives in ``OUT/<run>/`` (its training run directory, resumable; ``test/`` its held-out
metrics.csv and simulation.nc). A run whose ``bundle.pt`` exists is not trained again, so an
interrupted experiment resumes by rerunning the same command. The tables go to
``OUT/summary.csv`` and ``OUT/summary.md``, per-basin held-out (or ensemble) metrics to
``OUT/metrics.csv``.
"""
from __future__ import annotations

import argparse
import copy
import csv
from pathlib import Path

import numpy as np

from delta_core.config import RunConfig
from delta_core.data.camels import CamelsDataset

EXPERIMENTS = ("seeds", "pub", "pur")


def pub_folds(regions: dict[str, str], k: int, seed: int = 0) -> list[list[str]]:
    """``k`` folds of gauge ids, stratified by region: each region's basins, shuffled with
    ``seed``, are dealt to the folds in turn (the fold that gets a region's first basin rotates,
    so fold sizes differ by at most one)."""
    if k < 2:
        raise ValueError(f"PUB needs at least 2 folds, got {k}")
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    nxt = 0
    for region in sorted(set(regions.values())):
        ids = sorted(g for g, r in regions.items() if r == region)
        for g in rng.permutation(ids):
            folds[nxt % k].append(str(g))
            nxt += 1
    return [sorted(f) for f in folds]


def pur_groups(regions: dict[str, str], k: int = 4) -> list[list[str]]:
    """``k`` groups of contiguous HUC-02 codes with about equal basin counts: the g-th cut of the
    sorted codes falls where the cumulative basin count is closest to ``g n / k``."""
    codes = sorted(set(regions.values()))
    if not 2 <= k <= len(codes):
        raise ValueError(f"PUR needs 2..{len(codes)} region groups, got {k}")
    cum = np.concatenate([[0], np.cumsum([sum(r == c for r in regions.values()) for c in codes])])
    cuts = [0]
    for g in range(1, k):
        options = np.arange(cuts[-1] + 1, len(codes) - (k - g) + 1)
        cuts.append(int(options[np.argmin(np.abs(cum[options] - g * cum[-1] / k))]))
    cuts.append(len(codes))
    return [codes[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def parse_region_groups(text: str) -> list[list[str]]:
    """``"01-03,04-07,08-12,13-18"`` (ranges or single codes, ``+`` joins) -> region groups."""
    groups = []
    for part in text.split(","):
        codes: list[str] = []
        for item in part.split("+"):
            lo, _, hi = item.strip().partition("-")
            hi = hi or lo
            codes += [f"{c:02d}" for c in range(int(lo), int(hi) + 1)]
        groups.append(codes)
    return groups


def run_fold(cfg: RunConfig, name: str, out: Path, train_ids: list[str], test_ids: list[str],
             seed: int | None = None, progress: bool = False) -> dict:
    """Train ``cfg`` on ``train_ids`` into ``out/name`` (unless its bundle exists) and score
    ``test_ids`` in the test period; returns :func:`delta_core.evaluation.evaluate_model`'s
    result."""
    from delta_core.evaluation import evaluate_model
    from delta_core.training import train

    cfg = copy.deepcopy(cfg)
    cfg.run_dir = str(out / name)
    cfg.data.basins = list(train_ids)
    if seed is not None:
        cfg.training.seed = seed
    bundle = Path(cfg.run_dir) / "bundle.pt"
    if not bundle.exists():
        train(cfg, progress=progress)
    dataset = CamelsDataset(cfg.data.root)
    return evaluate_model(bundle, dataset, test_ids, cfg.data.test_start, cfg.data.test_end,
                          out_dir=Path(cfg.run_dir) / "test")


def seed_experiment(cfg: RunConfig, seeds: list[int], out: Path, reuse: dict[int, Path],
                    progress: bool = False) -> list[dict]:
    """Train and score one run per seed (``reuse``: seed -> an existing bundle of that seed);
    returns summary rows, the last ones the mean ± sd and the ensemble mean."""
    from delta_core.evaluation import basin_metrics, evaluate_model, summarize

    dataset = CamelsDataset(cfg.data.root)
    ids = dataset.resolve_basins(cfg.data.basins)
    rows, flows, sim = [], [], None
    for s in seeds:
        if s in reuse:
            res = evaluate_model(reuse[s], dataset, ids, cfg.data.test_start, cfg.data.test_end,
                                 out_dir=out / f"seed_{s}" / "test")
        else:
            res = run_fold(cfg, f"seed_{s}", out, ids, ids, seed=s, progress=progress)
        rows.append({"run": f"seed {s}", "median_nse": res["median_nse"],
                     "median_kge": res["median_kge"], "n_basins": res["n_basins"]})
        sim = res["simulation"]
        flows.append(sim["outputs"]["streamflow"])
    nse, kge = np.array([r["median_nse"] for r in rows]), np.array([r["median_kge"] for r in rows])
    sd = (lambda x: float(np.std(x, ddof=1)) if len(x) > 1 else float("nan"))
    rows.append({"run": f"mean ± sd of {len(seeds)} seeds", "median_nse": float(nse.mean()),
                 "median_kge": float(kge.mean()), "sd_nse": sd(nse), "sd_kge": sd(kge),
                 "n_basins": rows[0]["n_basins"]})
    ens = {**sim, "outputs": {"streamflow": np.mean(flows, axis=0)}}
    per_basin = basin_metrics(ens, baseflow=None)
    rows.append({"run": "ensemble mean of the seeds", **summarize(per_basin)})
    _write_basin_rows(out / "metrics.csv", per_basin)
    return rows


def split_experiment(cfg: RunConfig, folds: list[list[str]], out: Path, label: str,
                     progress: bool = False, only: list[int] | None = None) -> list[dict]:
    """Each fold predicted by a model trained on all other folds; summary rows per fold and
    over all held-out basins. ``only``: run just these fold indices (e.g. one per process or
    machine) and return their rows, without the pooled row and without writing
    ``OUT/metrics.csv``; a later run without ``only`` reuses their bundles."""
    from delta_core.evaluation import summarize

    if only is not None:
        bad = sorted(set(only) - set(range(len(folds))))
        if bad:
            raise ValueError(f"fold index(es) {bad} out of range: this split has folds "
                             f"0..{len(folds) - 1}")
    rows, held_out = [], []
    everyone = sorted(g for f in folds for g in f)
    for i, fold in enumerate(folds):
        if only is not None and i not in only:
            continue
        train_ids = sorted(set(everyone) - set(fold))
        res = run_fold(cfg, f"fold_{i}", out, train_ids, fold, progress=progress)
        rows.append({"run": f"fold {i} ({label(i)})", "median_nse": res["median_nse"],
                     "median_kge": res["median_kge"], "n_basins": res["n_basins"],
                     "n_train": len(train_ids)})
        held_out += [{**r, "fold": i} for r in res["rows"]]
    if only is not None:
        return rows
    rows.append({"run": "all held-out basins", **summarize(held_out)})
    _write_basin_rows(out / "metrics.csv", held_out)
    return rows


def _write_basin_rows(path: Path, rows: list[dict]) -> None:
    from delta_core.evaluation import write_metrics_csv

    path.parent.mkdir(parents=True, exist_ok=True)
    write_metrics_csv(path, rows)


def write_summary(out: Path, rows: list[dict], title: str) -> None:
    """``OUT/summary.csv`` and a Markdown table ``OUT/summary.md``."""
    keys = ["run", "median_nse", "median_kge", "sd_nse", "sd_kge", "n_basins", "n_train"]
    keys = [k for k in keys if any(k in r for r in rows)]
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows({k: _fmt(r.get(k, "")) for k in keys} for r in rows)
    lines = [f"# {title}", "", "| " + " | ".join(keys) + " |",
             "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(_fmt(r.get(k, ""))) for k in keys) + " |" for r in rows]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def _fmt(v):
    return f"{v:.3f}" if isinstance(v, float) else v


def run_experiment(kind: str, cfg: RunConfig, out: Path, seeds: list[int] | None = None,
                   reuse: dict[int, Path] | None = None, folds: int = 5,
                   region_groups: list[list[str]] | None = None, split_seed: int = 0,
                   progress: bool = False, only: list[int] | None = None) -> list[dict]:
    """Run experiment ``kind`` (one of :data:`EXPERIMENTS`) and write its tables to ``out``;
    ``only`` (pub, pur): run just these fold indices and write no tables (see
    :func:`split_experiment`)."""
    out.mkdir(parents=True, exist_ok=True)
    dataset = CamelsDataset(cfg.data.root)
    ids = dataset.resolve_basins(cfg.data.basins)
    regions = dict(zip(ids, dataset.attributes(ids, ["huc_02"])["huc_02"]))
    if kind == "seeds":
        seeds = seeds or [cfg.training.seed]
        rows = seed_experiment(cfg, seeds, out, reuse or {}, progress)
        title = f"{cfg.model}: {len(seeds)} seeds"
    elif kind == "pub":
        fs = pub_folds(regions, folds, split_seed)
        rows = split_experiment(cfg, fs, out, lambda i: f"{len(fs[i])} basins", progress, only)
        title = f"{cfg.model}: prediction in ungauged basins, {folds} region-stratified folds"
    elif kind == "pur":
        groups = region_groups or pur_groups(regions)
        unknown = sorted({c for g in groups for c in g} - set(regions.values()))
        missing = sorted(set(regions.values()) - {c for g in groups for c in g})
        if missing:
            raise ValueError(f"region groups leave out HUC-02 region(s) {missing}")
        fs = [sorted(b for b, r in regions.items() if r in g) for g in groups]
        if any(not f for f in fs):
            raise ValueError(f"a region group has no basins (groups {groups}; codes without "
                             f"basins: {unknown})")
        rows = split_experiment(cfg, fs, out, lambda i: "HUC " + "+".join(groups[i]), progress,
                                only)
        title = f"{cfg.model}: prediction in ungauged regions, {len(groups)} region groups"
    else:
        raise ValueError(f"unknown experiment {kind!r}; valid: {list(EXPERIMENTS)}")
    if only is None:
        write_summary(out, rows, title)
    return rows


def main(argv: list[str] | None = None, prog: str = "delta-experiment") -> int:
    """``delta-experiment {seeds,pub,pur} --config C --out DIR`` or ``delta-experiment ensemble
    --members SIM SIM ... --out DIR`` (also ``delta experiment``)."""
    ap = argparse.ArgumentParser(prog=prog, description=(
        "Run a multi-run experiment end to end: seed spread, prediction in ungauged basins "
        "(PUB, k region-stratified folds) or in ungauged regions (PUR, held-out HUC-02 "
        "groups). Rerun the same command to resume. Writes OUT/summary.{csv,md} and "
        "OUT/metrics.csv."))
    ap.add_argument("experiment", choices=(*EXPERIMENTS, "ensemble"),
                    help="ensemble: score the mean of saved member runs (--members), no training")
    ap.add_argument("--config", help="YAML run configuration of one run (not for ensemble)")
    ap.add_argument("--members", nargs="+", metavar="SIM",
                    help="ensemble: the members' simulation.nc files (or their folders), e.g. "
                         "the --out folders of <model>-eval runs, or pub/pur --out folders "
                         "(their folds' held-out basins as one member); models may differ")
    ap.add_argument("--weights", type=float, nargs="+",
                    help="ensemble: one positive weight per member (default: equal)")
    ap.add_argument("--out", required=True, help="experiment directory")
    ap.add_argument("--seeds", type=int, nargs="+",
                    help="seeds to run (default: the config's seeds)")
    ap.add_argument("--reuse", action="append", default=[], metavar="SEED=BUNDLE",
                    help="score an existing bundle trained with SEED instead of training it")
    ap.add_argument("--folds", type=int, default=5, help="PUB folds (default 5)")
    ap.add_argument("--split-seed", type=int, default=0, help="PUB fold shuffle seed (default 0)")
    ap.add_argument("--regions", help='PUR region groups, e.g. "01-03,04-07,08-12,13-18" '
                                      "(default: 4 contiguous groups of about equal size)")
    ap.add_argument("--fold", type=int, action="append", metavar="I",
                    help="pub/pur: run only fold I (repeatable), e.g. one fold per process or "
                         "machine; writes no tables: rerun without --fold to collect them")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    a = ap.parse_args(argv)
    if a.experiment == "ensemble":
        return _ensemble(ap, a)
    if a.members or a.weights:
        ap.error("--members and --weights are for the ensemble experiment")
    if not a.config:
        ap.error(f"{a.experiment} needs --config")
    if a.fold and a.experiment == "seeds":
        ap.error("--fold applies to pub and pur; for seeds, pass --seeds")
    cfg = RunConfig.from_yaml(a.config)
    reuse = {}
    for item in a.reuse:
        seed, sep, path = item.partition("=")
        if not sep or not seed.strip().isdigit():
            raise ValueError(f"--reuse takes SEED=BUNDLE, got {item!r}")
        reuse[int(seed)] = Path(path)
    groups = parse_region_groups(a.regions) if a.regions else None
    rows = run_experiment(a.experiment, cfg, Path(a.out), a.seeds, reuse, a.folds, groups,
                          a.split_seed, progress=not a.no_progress, only=a.fold)
    for r in rows:
        extra = (f" (sd {r['sd_nse']:.3f} / {r['sd_kge']:.3f})" if "sd_nse" in r else "")
        print(f"{r['run']}: median NSE {r['median_nse']:.3f}, KGE {r['median_kge']:.3f}{extra}")
    return 0


def _ensemble(ap: argparse.ArgumentParser, a: argparse.Namespace) -> int:
    """``delta-experiment ensemble --members SIM SIM ... --out DIR``: the members and their mean
    scored on their common basins and days (:mod:`delta_core.ensemble`)."""
    from delta_core.ensemble import score_ensemble

    if not a.members or len(a.members) < 2:
        ap.error("ensemble needs --members with at least 2 simulations")
    if a.config:
        ap.error("ensemble scores saved simulations: it takes --members, not --config")
    res = score_ensemble(a.members, a.out, a.weights)
    for r in [*res["members"], res["ensemble"]]:
        print(f"{r['member']} ({r['model']}): median NSE {r['median_nse']:.3f}, KGE "
              f"{r['median_kge']:.3f} ({r['n_basins']} basins)")
    print(f"wrote {Path(a.out) / 'summary.csv'}, metrics.csv and simulation.nc (mean, spread)")
    return 0


def cli_main(argv: list[str] | None = None, prog: str = "delta-experiment") -> None:
    """:func:`main` with expected errors as one line and exit code 2
    (:func:`delta_core.cli.run`)."""
    from delta_core import cli

    cli.run(main, argv, prog)
