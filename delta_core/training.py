"""Model-agnostic training loop for δ models (Feng et al. 2022 protocol by default).

Each iteration draws ``batch_basins`` training basins and, per basin, a window of
``window_days`` days preceded by ``warmup_days`` of forcing that only spins up the states. An
epoch is ``ceil(n_basins * n_train_days / (batch_basins * window_days))`` iterations. Windows
start no earlier than ``warmup_days`` after the first day of data, so every warm-up has full
length (with the default periods this drops the first three months of 1980-10..1980-12 as
targets). Everything random is seeded; a checkpoint after each epoch holds model, optimiser,
RNG states and history, so an interrupted run resumes exactly where it stopped.

With a validation period (``data.validation_start``/``validation_end``) the model is scored
after every epoch (median NSE over the training basins, states spun up on the ``warmup_days``
before it); the bundle keeps the weights of the best epoch, and ``training.patience`` stops the
run when that score has not improved for so many epochs.
"""
from __future__ import annotations

import csv
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from delta_core.bundle import save_bundle
from delta_core.config import RunConfig
from delta_core.data.camels import CamelsDataset, date_index
from delta_core.inputs import ModelInputs, Normalization, build_inputs, raw_attribute_array
from delta_core.losses import get_loss
from delta_core.provenance import code_provenance
from delta_core.spec import Engine

OPTIMIZERS = {"adadelta": torch.optim.Adadelta, "adam": torch.optim.Adam}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainingData:
    """Everything the loop needs, from data start to the end of the training period."""

    ids: list[str]
    inputs: ModelInputs
    norm: Normalization
    first_target: int  # index of the first allowed window start
    last_target: int  # index of the last training day
    #: Per basin, the standard deviation of observed streamflow over the training targets
    #: [mm/day] (the NSE* loss's scale).
    basin_std: np.ndarray
    validation: tuple[int, int] | None = None  # indices of the validation period's first, last day


def prepare_training_data(cfg: RunConfig, progress: bool = False
                          ) -> tuple[CamelsDataset, TrainingData]:
    """Load the training basins and fit normalisation on the training period only."""
    spec = cfg.spec
    dataset = CamelsDataset(cfg.data.root)
    ids = dataset.resolve_basins(cfg.data.basins)
    val = cfg.data.validation
    end = max(cfg.data.train_end, val[1]) if val else cfg.data.train_end
    ts = dataset.load(ids, end=end, forcings=spec.forcings, progress=progress,
                      forcing_set=cfg.data.forcing_set)
    i_start = date_index(ts.dates, cfg.data.train_start, "data.train_start")
    if cfg.training.init_from:  # the networks keep the inputs they were trained on
        norm = Normalization.from_dict(init_bundle(cfg)["normalization"])
    else:
        norm = Normalization.fit(dataset, ids, cfg.data.attributes,
                                 ts.slice_dates(cfg.data.train_start, cfg.data.train_end),
                                 spec.forcings)
    inputs = build_inputs(ts, dataset.attributes(ids, cfg.data.attributes), norm,
                          raw_attribute_array(dataset, ids, spec.raw_attributes))
    first = max(i_start, cfg.training.warmup_days)
    last = date_index(ts.dates, cfg.data.train_end, "data.train_end")
    if last - first + 1 < cfg.training.window_days:
        raise ValueError(f"training period {cfg.data.train_start}..{cfg.data.train_end} is too "
                         f"short for {cfg.training.warmup_days} warm-up + "
                         f"{cfg.training.window_days} window days")
    with warnings.catch_warnings():  # a basin without observations: scale 0, no terms anyway
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nan_to_num(np.nanstd(ts.qobs[first:last + 1], axis=0))
    validation = None
    if val:
        validation = (date_index(ts.dates, val[0], "data.validation_start"),
                      date_index(ts.dates, val[1], "data.validation_end"))
    return dataset, TrainingData(ids, inputs, norm, first, last, std, validation)


def init_bundle(cfg: RunConfig) -> dict:
    """The bundle of ``training.init_from``, checked against the run: same model, same
    attributes and forcings, weights that fit the configured networks."""
    from delta_core.bundle import load_bundle

    b = load_bundle(cfg.training.init_from)
    where = f"training.init_from {cfg.training.init_from}"
    if b["model"] != cfg.model:
        raise ValueError(f"{where} is a {b['model']!r} bundle, the run trains {cfg.model!r}")
    norm = Normalization.from_dict(b["normalization"])
    if list(norm.attributes.names) != list(cfg.data.attributes):
        raise ValueError(f"{where} was trained on other attributes than data.attributes")
    if tuple(norm.forcing.names) != tuple(cfg.spec.forcings):
        raise ValueError(f"{where} has forcings {norm.forcing.names}, the model reads "
                         f"{cfg.spec.forcings}")
    return b


def _load_init_weights(cfg: RunConfig, model: torch.nn.Module) -> None:
    try:
        model.load_state_dict(init_bundle(cfg)["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"training.init_from {cfg.training.init_from}: its weights do not fit "
                         f"the configured networks ({str(exc).splitlines()[0]})") from None


def iterations_per_epoch(cfg: RunConfig, data: TrainingData) -> int:
    n_days = data.last_target - data.first_target + 1
    n_batch = min(cfg.training.batch_basins, len(data.ids))
    return max(1, math.ceil(len(data.ids) * n_days / (n_batch * cfg.training.window_days)))


def sample_batch(cfg: RunConfig, data: TrainingData, rng: np.random.Generator, dtype,
                 share: slice = slice(None)) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Random basins and per-basin windows: a model batch, the observed streamflow
    ``[window, B]`` and the basins' training-period streamflow standard deviation ``[B]``. The whole batch is drawn (same draws whatever ``share``); ``share`` keeps
    this process's part of its basins (data-parallel training). A model whose within-day rain
    pattern is stochastic gets new rain weights per batch (``batch["rain_weights"]``
    [D, B, 24], :mod:`delta_core.patterns`): augmentation over the hours of the rain."""
    tc = cfg.training
    n_batch = min(tc.batch_basins, len(data.ids))
    basins = rng.choice(len(data.ids), n_batch, replace=False)
    starts = rng.integers(data.first_target, data.last_target - tc.window_days + 2, n_batch)
    n_days = tc.warmup_days + tc.window_days
    pattern = getattr(cfg.spec.physics_section(cfg.physics), "pattern", None)
    weights = (pattern.draw(n_days, n_batch, rng)[:, share]
               if pattern is not None and pattern.stochastic else None)
    basins, starts = basins[share], starts[share]
    days = (starts - tc.warmup_days)[None, :] + np.arange(n_days)[:, None]
    qobs = data.inputs.qobs[days[tc.warmup_days:], basins[None, :]]
    batch = data.inputs.batch(days, basins, tc.warmup_days, dtype)
    if weights is not None:
        batch["rain_weights"] = torch.from_numpy(np.ascontiguousarray(weights))
    return (batch, torch.as_tensor(np.ascontiguousarray(qobs), dtype=dtype),
            torch.as_tensor(data.basin_std[basins], dtype=dtype))


def validation_score(cfg: RunConfig, data: TrainingData, model: torch.nn.Module, dtype,
                     device=None, batch_basins: int = 64) -> float:
    """Median NSE over the training basins in the validation period, states spun up on the
    ``training.warmup_days`` before it (dropout off; the model is left in training mode)."""
    from delta_core.metrics import nse

    i0, i1 = data.validation
    start = max(0, i0 - cfg.training.warmup_days)
    steps = np.arange(start, i1 + 1)
    pattern = getattr(cfg.spec.physics_section(cfg.physics), "pattern", None)
    scores = []
    model.eval()
    try:
        for b0 in range(0, len(data.ids), batch_basins):
            basins = np.arange(b0, min(b0 + batch_basins, len(data.ids)))
            batch = data.inputs.batch(steps, basins, i0 - start, dtype)
            if pattern is not None and pattern.stochastic:
                batch["rain_weights"] = torch.from_numpy(pattern.draw_for_basins(
                    len(steps), [data.ids[b] for b in basins]))
            batch = {k: v.to(device) if torch.is_tensor(v) and device else v
                     for k, v in batch.items()}
            with torch.no_grad():
                q = model(batch)["streamflow"].cpu().numpy()
            obs = data.inputs.qobs[i0:i1 + 1, basins]
            scores += [nse(q[:, j], obs[:, j]) for j in range(len(basins))]
    finally:
        model.train()
    return float(np.nanmedian(scores))


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


class TrainingInterrupted(RuntimeError):
    """Raised (with a resume hint) when training is interrupted by Ctrl-C."""


@dataclass
class _Run:
    """What an epoch loop updates and a checkpoint holds."""

    model: torch.nn.Module  # the model itself (unwrapped)
    step_model: torch.nn.Module  # what the loop calls: the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator
    history: list
    epoch: int = 0
    #: Best validation epoch so far: {"epoch", "score", "state_dict"}; None without validation.
    best: dict | None = None
    stopped: bool = False  # stopped early (training.patience)

    def state(self, cfg: RunConfig) -> dict:
        st = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
              "numpy_rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
              "history": self.history, "epoch": self.epoch, "config": cfg.to_dict(),
              "best": self.best, "stopped": self.stopped}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            st["cuda_rng"] = torch.cuda.get_rng_state_all()
        return st

    def restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.rng.bit_generator.state = ckpt["numpy_rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        if "cuda_rng" in ckpt and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        self.history, self.epoch = ckpt["history"], ckpt["epoch"]
        self.best, self.stopped = ckpt.get("best"), ckpt.get("stopped", False)


def train(cfg: RunConfig, progress: bool = True, max_epochs: int | None = None) -> Path:
    """Train (or resume) the run of ``cfg``; write the weight bundle and return its path.

    Runs data-parallel when started by ``torchrun`` (see :mod:`delta_core.distributed`):
    every process returns the same path; process 0 writes the files.

    Parameters
    ----------
    cfg : RunConfig
        Validated configuration.
    progress : bool
        Show a progress bar (process 0).
    max_epochs : int, optional
        Stop after this many epochs in this call (for tests of resume); the run stays resumable.
    """
    from delta_core import distributed

    tc = cfg.training
    ctx = distributed.setup(tc.device)
    try:
        return _train(cfg, ctx, progress and ctx.is_main, max_epochs)
    finally:
        distributed.teardown(ctx)


def _train(cfg: RunConfig, ctx, progress: bool, max_epochs: int | None) -> Path:
    tc = cfg.training
    run_dir = Path(cfg.run_dir)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_run_config(cfg, run_dir, ctx)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    dtype = DTYPES[tc.dtype] if tc.dtype in DTYPES else _bad("dtype", tc.dtype, DTYPES)
    opt_cls = OPTIMIZERS.get(tc.optimizer) or _bad("optimizer", tc.optimizer, OPTIMIZERS)
    loss_fn = get_loss(tc.loss)
    torch.manual_seed(tc.seed)
    dataset, data = prepare_training_data(cfg, progress)
    if min(tc.batch_basins, len(data.ids)) < ctx.world:
        raise ValueError(f"a batch of {min(tc.batch_basins, len(data.ids))} basins cannot be "
                         f"shared by {ctx.world} processes: every process needs basins")
    if ctx.is_main:
        from delta_core.evaluation import warn_if_overlap

        d = cfg.data
        warn_if_overlap((d.train_start, d.train_end), d.test_start, d.test_end, "test period")
    model = cfg.spec.build_model(cfg.physics, cfg.network, data.inputs.x_attr.shape[1],
                                 Engine(tc.backend, dtype))
    if tc.init_from:
        _load_init_weights(cfg, model)
    model = model.to(ctx.device)
    step_model = model
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    run = _Run(model, step_model, opt_cls(model.parameters(), lr=tc.learning_rate),
               np.random.default_rng(tc.seed), [])
    ckpt_path = run_dir / "checkpoint.pt"
    ctx.barrier()
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False, map_location="cpu")
        _check_resumable(ckpt.get("config"), cfg, ckpt_path)
        run.restore(ckpt)
        if ctx.is_main:
            print(f"resuming {run_dir} after epoch {run.epoch}")

    stop = tc.epochs if max_epochs is None else min(tc.epochs, run.epoch + max_epochs)
    try:
        _epochs(cfg, ctx, data, run, loss_fn, stop, dtype, ckpt_path, progress)
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"interrupted: rerun the same command to resume from the last checkpoint "
            f"({ckpt_path}, written after every {tc.checkpoint_every} epoch(s))") from None
    if run.epoch < tc.epochs and not run.stopped:
        return ckpt_path
    bundle = run_dir / "bundle.pt"
    if ctx.is_main:
        model.to("cpu")
        if run.best is not None:
            model.load_state_dict(run.best["state_dict"])
        _finish(cfg, dataset, data, model, run, run_dir)
    ctx.barrier()
    return bundle


def _epochs(cfg: RunConfig, ctx, data: TrainingData, run: _Run, loss_fn, stop: int, dtype,
            ckpt_path: Path, progress: bool) -> None:
    from tqdm import tqdm

    tc = cfg.training
    run_dir = Path(cfg.run_dir)
    n_iter = iterations_per_epoch(cfg, data)
    share = ctx.share(min(tc.batch_basins, len(data.ids)))
    params = list(run.model.parameters())
    while run.epoch < stop and not run.stopped:
        epoch = run.epoch + 1
        for group in run.optimizer.param_groups:
            group["lr"] = tc.learning_rate_at(epoch)
        run.step_model.train()
        t0, losses, skipped, in_a_row = time.time(), [], 0, 0
        bar = tqdm(range(n_iter), desc=f"epoch {epoch}/{tc.epochs}", disable=not progress,
                   leave=False)
        for _ in bar:
            batch, qobs, std = sample_batch(cfg, data, run.rng, dtype, share)
            batch = {k: v.to(ctx.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            out = run.step_model(batch)
            parts = ctx.all_sum(loss_fn.parts(out["streamflow"], qobs.to(ctx.device),
                                              std.to(ctx.device)))
            loss = loss_fn.combine(parts, tc.loss_alpha)
            run.optimizer.zero_grad()
            loss.backward()
            bad = _non_finite(loss, params)
            if bad:
                in_a_row += 1
                if in_a_row > tc.skip_nonfinite:
                    _stop_non_finite(bad, epoch, len(losses) + skipped + 1, tc)
                skipped += 1
                continue
            in_a_row = 0
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            run.optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses):.4f}")
        run.epoch = epoch
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": time.time() - t0,
               "iterations": n_iter, "processes": ctx.world, "skipped": skipped,
               "learning_rate": tc.learning_rate_at(epoch)}
        if data.validation is not None:
            row["validation_nse"] = _validate(cfg, data, run, dtype, ctx.device)
        run.history.append(row)
        if ctx.is_main:
            val = (f", validation median NSE {row['validation_nse']:.3f} (best: epoch "
                   f"{run.best['epoch']})" if "validation_nse" in row else "")
            print(f"epoch {epoch}: loss {row['loss']:.4f} ({row['seconds']:.0f} s){val}",
                  flush=True)
            _write_history(run_dir / "training_log.csv", run.history)
            if epoch % tc.checkpoint_every == 0 or epoch == tc.epochs or run.stopped:
                _save_checkpoint(ckpt_path, run.state(cfg))
        ctx.barrier()


def _validate(cfg: RunConfig, data: TrainingData, run: _Run, dtype, device) -> float:
    """Score the epoch just trained; keep its weights if best; set ``run.stopped`` when the
    score has not improved for ``training.patience`` epochs."""
    score = validation_score(cfg, data, run.model, dtype, device)
    if run.best is None or score > run.best["score"]:
        run.best = {"epoch": run.epoch, "score": score,
                    "state_dict": {k: v.detach().cpu().clone()
                                   for k, v in run.model.state_dict().items()}}
    patience = cfg.training.patience
    run.stopped = patience is not None and run.epoch - run.best["epoch"] >= patience
    return score


def _non_finite(loss: torch.Tensor, params: list) -> list[str]:
    """What of the loss and the gradient is non-finite (empty: both finite)."""
    bad = [] if torch.isfinite(loss) else ["the loss"]
    if any(p.grad is not None and not torch.isfinite(p.grad).all() for p in params):
        bad.append("the gradient")
    return bad


def _stop_non_finite(bad: list[str], epoch: int, iteration: int, tc) -> None:
    """Stop before a non-finite loss or gradient reaches the weights (the checkpoint of the
    last epoch stays valid)."""
    hint = " (training.dtype float32: try float64)" if tc.dtype == "float32" else ""
    more = (f" after {tc.skip_nonfinite} skipped batch(es) in a row" if tc.skip_nonfinite
            else "; training.skip_nonfinite lets the run skip such batches")
    raise FloatingPointError(f"{' and '.join(bad)} became non-finite in epoch {epoch}, "
                             f"iteration {iteration}{hint}{more}; the weights were not updated")


def _finish(cfg: RunConfig, dataset: CamelsDataset, data: TrainingData, model, run: _Run,
            run_dir: Path) -> Path:
    """Write the bundle, score it on the test period, record the medians in it and the
    per-basin scores in ``run_dir/test_metrics.csv``."""
    from delta_core.evaluation import evaluate_model, write_metrics_csv

    tc = cfg.training
    provenance = {**code_provenance(),
                  "data_root": str(dataset.root), "basins": data.ids,
                  "train_period": [cfg.data.train_start, cfg.data.train_end],
                  "epochs": tc.epochs, "epochs_run": run.epoch, "history": run.history,
                  **({"validation": {"period": list(cfg.data.validation),
                                     "metric": "median NSE over the training basins",
                                     "selected_epoch": run.best["epoch"],
                                     "score": run.best["score"],
                                     "stopped_early": run.stopped}}
                     if run.best is not None else {}),
                  **({"validation": {**tc.refit_validation, "refit": "the selected number of "
                                     "epochs on all the training years"}}
                     if tc.refit_validation is not None else {}),
                  **({"init_from": {"path": str(tc.init_from),
                                    "checksum": init_bundle(cfg)["checksum"]}}
                     if tc.init_from else {}),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    bundle_path = run_dir / "bundle.pt"
    save_bundle(bundle_path, model=cfg.model, state_dict=model.state_dict(), config=cfg.to_dict(),
                normalization=data.norm.to_dict(), provenance=provenance)
    model.eval()
    metrics = evaluate_model(bundle_path, dataset, data.ids, cfg.data.test_start,
                             cfg.data.test_end, backend=tc.backend, warn_overlap=False)
    save_bundle(bundle_path, model=cfg.model, state_dict=model.state_dict(), config=cfg.to_dict(),
                normalization=data.norm.to_dict(), provenance=provenance,
                metrics={"test_period": [cfg.data.test_start, cfg.data.test_end],
                         "median_nse": metrics["median_nse"], "median_kge": metrics["median_kge"],
                         "n_basins": metrics["n_basins"]})
    write_metrics_csv(run_dir / "test_metrics.csv", metrics["rows"])
    print(f"test {cfg.data.test_start}..{cfg.data.test_end}: median NSE "
          f"{metrics['median_nse']:.3f}, median KGE {metrics['median_kge']:.3f} "
          f"over {metrics['n_basins']} basins; bundle {bundle_path}")
    from delta_core.bundle import load_bundle

    info_path = run_dir / "run_info.yaml"
    info = yaml.safe_load(info_path.read_text()) if info_path.exists() else {}
    info.update(finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                bundle=str(bundle_path), bundle_checksum=load_bundle(bundle_path)["checksum"])
    info_path.write_text(yaml.safe_dump(info, sort_keys=False))
    return bundle_path


#: Config keys that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"run_dir", "training.epochs", "training.threads", "training.checkpoint_every",
                     "training.device", "training.skip_nonfinite"}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "physics":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_resumable(saved: dict | None, cfg: RunConfig, path: Path) -> None:
    """Refuse to resume a checkpoint written under a different configuration."""
    if saved is None:
        return
    a, b = _flatten(saved), _flatten(cfg.to_dict())
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES)
    if diff:
        raise ValueError(f"{path} was written with a different configuration ({', '.join(diff)} "
                         f"differ); use a new run_dir or restore the original settings")


def _bad(what: str, value, valid) -> None:
    raise ValueError(f"unknown {what} {value!r}; valid: {sorted(valid)}")


def _write_run_config(cfg: RunConfig, run_dir: Path, ctx) -> None:
    """config.yaml (reusable as --config) and run_info.yaml (package version, git commit)."""
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    info = {**code_provenance(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "processes": ctx.world, "device": str(ctx.device)}
    (run_dir / "run_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))


def _write_history(path: Path, history: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        fields = list(dict.fromkeys(k for row in history for k in row))
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(history)


def main(argv: list[str] | None = None) -> None:
    """``python -m delta_core.training --config C``: train the model the config names (the entry
    point for ``torchrun --nproc_per_node N -m delta_core.training --config C``)."""
    from delta_core import cli

    cli.run(cli.train_command, argv, "python -m delta_core.training", None)


if __name__ == "__main__":
    main()
