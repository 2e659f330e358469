"""Command-line layer shared by every δ model: thin argparse wrappers over importable functions.

:func:`main` is the ``delta`` command: ``delta SUBCOMMAND --model NAME [options]`` runs the shared
train/eval/demo commands below with the named model's :class:`~delta_core.spec.ModelSpec`, a
model's own commands (:attr:`~delta_core.spec.ModelSpec.commands`: realization, export) and the
model-independent replay and experiment commands. The older per-model console scripts
(``dhbv-train``, ``dcfe-eval``, ...) are aliases that bind the same functions to one spec.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NoReturn, Sequence

from delta_core.benchmarking import usable_cpus
from delta_core.console import one_line_warnings

if TYPE_CHECKING:
    from delta_core.spec import ModelSpec


def backend_type(valid: Sequence[str]) -> Callable[[str], str]:
    """The argparse ``type`` of a ``--backend`` option with choices ``valid``: either spelling of
    the PyTorch reference engine becomes the one in ``valid`` (training, evaluation and the dHBV
    and dCFE BMIs spell it ``torch``, the dLGAR BMI ``python``; every ``--backend`` takes both).

    Parameters
    ----------
    valid : sequence of str
        The option's choices.

    Returns
    -------
    callable
        Maps an option value to its spelling in ``valid`` (other values unchanged).
    """
    reference = ("torch", "python")

    def convert(value: str) -> str:
        if value in reference:
            return next((v for v in valid if v in reference), value)
        return value

    return convert


def default_threads() -> int:
    """Default thread count of eval/demo: half the CPUs this process may run on (at least 1), so
    a command does not oversubscribe a machine that is also doing other work."""
    return max(1, usable_cpus() // 2)


def _add_engine_args(ap: argparse.ArgumentParser) -> None:
    from delta_core.spec import BACKENDS

    ap.add_argument("--backend", default="cpp", choices=list(BACKENDS), type=backend_type(BACKENDS),
                    help="physics engine: compiled kernel (cpp, default) or PyTorch reference "
                         "(torch, also spelled python)")
    ap.add_argument("--threads", type=int, default=default_threads(),
                    help="CPU threads for the networks and the kernel (default: half the CPUs, "
                         f"here {default_threads()})")


def _add_pattern_args(ap: argparse.ArgumentParser) -> None:
    from delta_core.patterns import RAIN_PATTERNS

    g = ap.add_argument_group("hourly runs (models whose physics steps hourly)")
    g.add_argument("--hourly-forcing", metavar="DIR",
                   help="run on hourly forcing files: DIR/<gauge_id>.csv or cat-<gauge_id>.csv "
                        "with time, precip_rate [mm s-1], TMP_2maboveground [K] (ngen's "
                        "CsvPerFeature; units in the header override), optional 'PET [mm h-1]'; "
                        "spun up on the pack's daily forcing before their first hour, daily sums "
                        "scored over the overlap with --start/--end")
    g.add_argument("--rain-pattern", choices=RAIN_PATTERNS,
                   help="spread each day's rain over its hours this way instead of the bundle's "
                        "pattern (delta_core.patterns; default: the bundle's)")
    g.add_argument("--rain-block", nargs=2, type=int, metavar=("START_HOUR", "HOURS"),
                   help="with --rain-pattern block: HOURS hours from START_HOUR:00 (default 12 6)")
    g.add_argument("--pattern-seed", type=int,
                   help="with --rain-pattern stochastic: seed of the storms (default: the bundle's, 0)")
    g.add_argument("--day-start-hour", type=int, metavar="H",
                   help="the data's day begins at H:00 of the calendar day (-23..0; e.g. -8: "
                        "from 16:00 of the day before; default: the bundle's)")


def pattern_override(args: argparse.Namespace) -> dict | None:
    """The :class:`~delta_core.patterns.WithinDay` fields the pattern options set (None: the
    bundle's pattern)."""
    day = getattr(args, "day_start_hour", None)
    shift = {} if day is None else {"day_start_hour": day}
    if args.rain_pattern is None:
        if args.rain_block or args.pattern_seed is not None:
            raise ValueError("--rain-block and --pattern-seed go with --rain-pattern")
        return shift or None
    out = {"rain": args.rain_pattern, **shift}
    if args.rain_block:
        if args.rain_pattern != "block":
            raise ValueError("--rain-block goes with --rain-pattern block")
        out.update(rain_start_hour=args.rain_block[0], rain_hours=args.rain_block[1])
    if args.pattern_seed is not None:
        if args.rain_pattern != "stochastic":
            raise ValueError("--pattern-seed goes with --rain-pattern stochastic")
        out["seed"] = args.pattern_seed
    return out


def _set_threads(n: int) -> None:
    import torch

    if n < 1:
        raise ValueError(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)


def train_command(argv: list[str] | None, prog: str, spec: ModelSpec | None) -> int:
    """``<model>-train --config train.yaml``: train, checkpoint, resume, write a bundle
    (``spec`` None: the model the config names). Under ``torchrun``, data-parallel."""
    from delta_core.config import ConfigError, RunConfig
    from delta_core.training import train

    what = f"{spec.name} ({spec.description})" if spec else "the model the config names"
    ap = argparse.ArgumentParser(prog=prog, description=(
        f"Train {what} with the protocol of Feng et al. (2022) by default. Resumes from "
        "RUN_DIR/checkpoint.pt if present; writes RUN_DIR/bundle.pt with test metrics. Started "
        "with torchrun --nproc_per_node N, trains data-parallel over N processes."))
    ap.add_argument("--config", required=True, help="YAML run configuration (unknown keys rejected)")
    ap.add_argument("--run-dir", help="override run_dir of the config")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    cfg = RunConfig.from_yaml(args.config, spec.name if spec else None)
    if spec is not None and cfg.model != spec.name:
        raise ConfigError(f"{args.config} configures model {cfg.model!r}; {prog} trains "
                          f"{spec.name!r}")
    if args.run_dir:
        cfg.run_dir = args.run_dir
    train(cfg, progress=not args.no_progress)
    return 0


def eval_command(argv: list[str] | None, prog: str, spec: ModelSpec) -> int:
    """``<model>-eval``: simulate with spin-up, write metrics.csv and simulation.nc."""
    from delta_core.bundle import load_bundle
    from delta_core.data.camels import SUBSETS, CamelsDataset
    from delta_core.evaluation import evaluate_model

    ap = argparse.ArgumentParser(prog=prog, description=(
        "Evaluate a trained bundle: spin states up on all forcing before --start, simulate to "
        "--end, write OUT/metrics.csv (per basin) and OUT/simulation.nc (CF netCDF)."))
    ap.add_argument("--bundle", action="append", required=spec.default_bundle is None,
                    help="weight bundle (a training run's bundle.pt"
                         + ("" if spec.default_bundle is None else "; default: the shipped one")
                         + "); give it again for an ensemble: each member is evaluated into "
                           "OUT/member_<i>/, their mean and spread into OUT "
                           "(delta-experiment ensemble)")
    ap.add_argument("--data", help="data directory in the CAMELS pack format (default: shipped sample)")
    ap.add_argument("--basins", help=f"gauge id(s), comma-separated (01022500,01333000), a file "
                                     f"of ids one per line, or a subset: {', '.join(SUBSETS)} "
                                     f"(default: all)")
    ap.add_argument("--start", default="1995-10-01",
                    help="first evaluation day (YYYY-MM-DD; default: 1995-10-01, the test period)")
    ap.add_argument("--end", default="2010-09-30",
                    help="last evaluation day (YYYY-MM-DD; default: 2010-09-30)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--plot", action="store_true", help="also write hydrographs.png (<= 12 basins)")
    _add_pattern_args(ap)
    _add_engine_args(ap)
    args = ap.parse_args(argv)
    _set_threads(args.threads)
    paths = args.bundle or [str(spec.default_bundle)]
    ds = CamelsDataset(args.data)
    ids = ds.resolve_basins(args.basins)
    outs = [Path(args.out)] if len(paths) == 1 else [Path(args.out) / f"member_{i}"
                                                     for i in range(len(paths))]
    for path, out in zip(paths, outs):
        res = evaluate_model(load_bundle(path, model=spec.name), ds, ids, args.start, args.end,
                             backend=args.backend, out_dir=out, progress=True,
                             hourly_dir=args.hourly_forcing, pattern=pattern_override(args))
        if len(paths) > 1:
            print(f"member {path}: median NSE {res['median_nse']:.3f}, median KGE "
                  f"{res['median_kge']:.3f}")
    if len(paths) > 1:
        from delta_core.ensemble import score_ensemble

        ens = score_ensemble(outs, args.out)["ensemble"]
        res = {**res, **{k: ens[k] for k in ("median_nse", "median_kge", "n_basins", "rows")},
               "simulation": ens["simulation"]}
    if args.plot:
        k = min(12, len(ids))
        sim = res["simulation"]
        sub = {**sim, "gauge_ids": ids[:k], "qobs": sim["qobs"][:, :k],
               "outputs": {n: v[:, :k] for n, v in sim["outputs"].items()}}
        _plot(spec, sub, res["rows"][:k], Path(args.out) / "hydrographs.png")
    what = f"ensemble of {len(paths)}: " if len(paths) > 1 else ""
    print(f"{res['start']}..{res['end']}: {what}median NSE {res['median_nse']:.3f}, median KGE "
          f"{res['median_kge']:.3f} over {res['n_basins']} basins -> {args.out}")
    return 0


def demo_command(argv: list[str] | None, prog: str, spec: ModelSpec) -> int:
    """``<model>-demo``: the shipped model on the shipped sample basins, test period."""
    from delta_core.bundle import load_bundle
    from delta_core.data.camels import CamelsDataset
    from delta_core.evaluation import evaluate_model

    ap = argparse.ArgumentParser(prog=prog, description=(
        f"Simulate the sample basins shipped with the package with the pretrained {spec.name} "
        "(test period 1995-10-01..2010-09-30), print NSE/KGE per basin, write metrics.csv, "
        "simulation.nc (all fluxes and stores) and hydrographs.png."))
    ap.add_argument("--out", default=f"{spec.name}_demo_out",
                    help=f"output directory (default: {spec.name}_demo_out)")
    ap.add_argument("--bundle", default=str(spec.default_bundle),
                    help="weight bundle (default: the shipped one)")
    _add_engine_args(ap)
    args = ap.parse_args(argv)
    _set_threads(args.threads)
    bundle = load_bundle(args.bundle, model=spec.name)
    ds = CamelsDataset()
    res = evaluate_model(bundle, ds, ds.basin_ids(), "1995-10-01", "2010-09-30",
                         backend=args.backend, out_dir=args.out)
    extra = [k for k in ("bfi_sim",) if k in res["rows"][0]]
    print(f"{'gauge_id':<10} {'NSE':>6} {'KGE':>6}" + "".join(f" {k:>8}" for k in extra))
    for r in res["rows"]:
        print(f"{r['gauge_id']:<10} {r['nse']:6.3f} {r['kge']:6.3f}"
              + "".join(f" {r[k]:8.3f}" for k in extra))
    print(f"median NSE {res['median_nse']:.3f}, median KGE {res['median_kge']:.3f}")
    png = _plot(spec, res["simulation"], res["rows"], Path(args.out) / "hydrographs.png")
    print(f"wrote {args.out}/metrics.csv, {args.out}/simulation.nc, {png}")
    return 0


def _plot(spec: ModelSpec, sim: dict, rows: list[dict], path: Path) -> Path:
    from delta_core.plotting import plot_hydrographs

    return plot_hydrographs(sim, rows, path, flow_components=spec.flow_components,
                            units=spec.output_units["streamflow"][0])


def run(fn, *args) -> None:
    """Run a command function, turning expected errors into one clear line and exit code 2
    (130 after Ctrl-C); warnings print as one line each (:func:`one_line_warnings`)."""
    from delta_core.bmi.base import BmiError
    from delta_core.bundle import BundleError
    from delta_core.config import ConfigError
    from delta_core.data.camels import DataError
    from delta_core.training import TrainingInterrupted

    one_line_warnings()
    try:
        sys.exit(fn(*args))
    except TrainingInterrupted as exc:
        print(f"\n{exc}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
    except (BundleError, ConfigError, DataError, BmiError, KeyError, ValueError,
            FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


#: The subcommands of ``delta`` that every model has.
SHARED_COMMANDS: dict[str, Callable] = {"train": train_command, "eval": eval_command,
                                        "demo": demo_command}

#: The subcommands a model provides itself (:attr:`~delta_core.spec.ModelSpec.commands`).
MODEL_COMMANDS = ("realization", "export")

#: The subcommands that take no ``--model``: name -> ``"module:function"`` of a
#: ``function(argv, prog)``.
PLAIN_COMMANDS = {"replay": "delta_core.ngen.replay:main",
                  "experiment": "delta_core.experiments:cli_main"}

#: One line of help per subcommand (with the older console scripts that run it).
SUMMARIES = {
    "train": "train a model from a YAML run configuration (also <model>-train)",
    "eval": "evaluate a bundle on CAMELS-format data (also <model>-eval)",
    "demo": "run a shipped model on the shipped sample basins (also <model>-demo)",
    "realization": "write NextGen per-catchment configs and realization.json "
                   "(also <model>-realization)",
    "export": "export a trained model's parameters for its original C model",
    "replay": "replay ngen's BMI call sequence over a realization without ngen (also ngen-replay)",
    "experiment": "run a seed, PUB or PUR experiment end to end (also delta-experiment)",
}


def _registered() -> list[str]:
    from delta_core.registry import MODELS

    return sorted(MODELS)


def delta_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser of ``delta`` up to the subcommand and ``--model`` (the rest of the options
    belong to the command it delegates to).

    Returns
    -------
    parser : argparse.ArgumentParser
        The top-level parser.
    subparsers : dict of str to argparse.ArgumentParser
        The parser of each subcommand.
    """
    models = ", ".join(_registered())
    ap = argparse.ArgumentParser(prog="delta", description=(
        "Differentiable hydrologic models for NOAA NextGen: train, evaluate, run and deploy. "
        f"Registered models: {models}."), epilog=(
        "'delta SUBCOMMAND --model NAME --help' lists the options of a model's subcommand."))
    sub = ap.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    parsers = {}
    for name, summary in SUMMARIES.items():
        p = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                           add_help=False, allow_abbrev=False)
        if name not in PLAIN_COMMANDS:
            what = ("(default: the model the config names)" if name == "train"
                    else "(required)")
            p.add_argument("--model", metavar="NAME", help=f"one of {models} {what}")
            p.add_argument("-h", "--help", action="store_true",
                           help="show this help; with --model, the model's options")
        parsers[name] = p
    return ap, parsers


def _fail(message: str) -> NoReturn:
    """Exit with ``message`` as one line on stderr and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _supports(spec: ModelSpec, command: str) -> bool:
    """Whether ``delta COMMAND --model <spec.name>`` exists."""
    if command == "demo":
        return spec.default_bundle is not None
    return command in SHARED_COMMANDS or command in spec.commands


def _run_model_command(command: str, model: str, argv: list[str]) -> None:
    """Run ``delta COMMAND --model MODEL`` with the options ``argv``."""
    from delta_core.registry import model_spec

    if model not in _registered():
        _fail(f"unknown model {model!r}; registered: {', '.join(_registered())}")
    spec = model_spec(model)
    if not _supports(spec, command):
        able = [n for n in _registered() if _supports(model_spec(n), command)]
        _fail(f"model {model} has no {command} command; models with one: {', '.join(able)}")
    prog = f"delta {command} --model {model}"
    if command in SHARED_COMMANDS:
        run(SHARED_COMMANDS[command], argv, prog, spec)
    else:
        raise SystemExit(spec.load_command(command)(argv, prog))


def main(argv: list[str] | None = None) -> None:
    """The ``delta`` command: ``delta SUBCOMMAND [--model NAME] [options]``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Raises
    ------
    SystemExit
        Always, with the command's exit code (2 for a usage error).
    """
    ap, parsers = delta_parser()
    args, rest = ap.parse_known_args(sys.argv[1:] if argv is None else argv)
    command = args.command
    if command in PLAIN_COMMANDS:
        module, _, fn = PLAIN_COMMANDS[command].partition(":")
        raise SystemExit(getattr(importlib.import_module(module), fn)(rest, f"delta {command}"))
    if args.help:
        if args.model is None:
            parsers[command].print_help()
            raise SystemExit(0)
        rest.append("--help")
    if args.model is not None:
        _run_model_command(command, args.model, rest)
    elif command == "train":
        run(train_command, rest, "delta train", None)
    else:
        _fail(f"delta {command} needs --model, one of: {', '.join(_registered())}")


if __name__ == "__main__":
    main()
