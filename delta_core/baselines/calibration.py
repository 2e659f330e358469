"""Per-basin calibration by Dynamically Dimensioned Search (DDS; Tolson and Shoemaker 2007),
the classical baseline that δ models are compared with.

:func:`dds` runs one independent DDS per parameter set ("basin") and evaluates the candidates of
all basins in one batched call per iteration, so a batched model engine (a δ model's physics with
parameters given directly) calibrates many basins at the cost of one simulation per iteration.
Parameters live in the unit cube [0, 1]^P (the model maps them to its physical ranges).

A model takes part by naming a :class:`CalibrationTarget` in its spec
(:attr:`delta_core.spec.ModelSpec.calibration_target`); :func:`calibrate` runs DDS on it with a
KGE objective over a calibration period, and :func:`region_stratified_basins` picks basins
spread over the HUC-02 regions.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from delta_core.metrics import kge

#: evaluate(x [n_sets, P] in [0, 1]) -> objective [n_sets] (to maximise; NaN counts as -inf).
Objective = Callable[[np.ndarray], np.ndarray]


def dds(evaluate: Objective, n_params: int, n_sets: int, n_evals: int = 500, r: float = 0.2,
        seed: int = 0, x0: np.ndarray | None = None, progress: bool = False,
        checkpoint: str | Path | None = None, every: int = 10, key: str = ""
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximise ``evaluate`` by DDS, independently for each of ``n_sets`` parameter sets.

    Each iteration i (1..n_evals-1) perturbs every dimension of the best point with probability
    ``1 - ln(i)/ln(n_evals)`` (at least one dimension), by ``r`` x N(0, 1) (the range is 1),
    reflecting at the bounds; a candidate at least as good as the best replaces it (greedy).

    Parameters
    ----------
    evaluate : callable
        Objective of a batch of points, larger is better.
    n_params, n_sets : int
        Dimensions and number of independent searches.
    n_evals : int
        Evaluations per search, the initial point included.
    r : float
        Perturbation size (DDS default 0.2).
    x0 : ndarray [n_sets, n_params], optional
        Initial points (default: uniform random).
    checkpoint : path, optional
        File (``.npz``) the search state is saved to every ``every`` iterations and resumed
        from when it exists: an interrupted search continues bit for bit (the random generator's
        state is saved with the points). A checkpoint of other settings (``n_params``,
        ``n_sets``, ``n_evals``, ``r``, ``seed``, ``key``) is an error, not silently resumed.
    key : str
        Identifies what is calibrated (e.g. the basin ids) in the checkpoint.

    Returns
    -------
    (best points [n_sets, P], best objectives [n_sets], best objective after each evaluation
    [n_evals, n_sets])
    """
    if n_evals < 1 or not 0 < r <= 1:
        raise ValueError(f"DDS needs n_evals >= 1 and 0 < r <= 1, got {n_evals}, {r}")
    settings = {"n_params": n_params, "n_sets": n_sets, "n_evals": n_evals, "r": r, "seed": seed,
                "key": key}
    rng = np.random.default_rng(seed)
    state = _load_checkpoint(checkpoint, settings, rng) if checkpoint else None
    if state is None:
        best = rng.uniform(size=(n_sets, n_params)) if x0 is None else np.array(x0, dtype=float)
        f_best = _clean(evaluate(best))
        history = [f_best.copy()]
    else:
        best, f_best, history = state
    steps = range(len(history), n_evals)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="DDS", total=n_evals - 1, initial=len(history) - 1)
    for i in steps:
        p_select = 1.0 - math.log(i) / math.log(n_evals) if n_evals > 1 else 1.0
        select = rng.uniform(size=best.shape) < p_select
        none = ~select.any(axis=1)
        select[none, rng.integers(0, n_params, none.sum())] = True
        cand = np.where(select, best + r * rng.standard_normal(best.shape), best)
        cand = _reflect(cand)
        f = _clean(evaluate(cand))
        better = f >= f_best
        best[better] = cand[better]
        f_best = np.where(better, f, f_best)
        history.append(f_best.copy())
        if checkpoint and (i % every == 0 or i == n_evals - 1):
            _save_checkpoint(checkpoint, settings, rng, best, f_best, history)
    return best, f_best, np.array(history)


def _save_checkpoint(path: str | Path, settings: dict, rng: np.random.Generator,
                     best: np.ndarray, f_best: np.ndarray, history: list[np.ndarray]) -> None:
    """Write the search state atomically (a temporary file renamed over ``path``)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    meta = json.dumps({"settings": settings, "rng": rng.bit_generator.state})
    np.savez(tmp, best=best, f_best=f_best, history=np.array(history), meta=np.array(meta))
    os.replace(tmp, path)


def _load_checkpoint(path: str | Path, settings: dict, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None:
    """The saved state (and ``rng`` restored to it), or None when ``path`` does not exist."""
    if not Path(path).exists():
        return None
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        if meta["settings"] != settings:
            raise ValueError(f"DDS checkpoint {path} was written with other settings "
                             f"{meta['settings']}, not {settings}: remove it or use another path")
        rng.bit_generator.state = meta["rng"]
        return z["best"].copy(), z["f_best"].copy(), list(z["history"])


def _reflect(x: np.ndarray) -> np.ndarray:
    """Reflect at 0 and 1; what is still outside goes to the bound."""
    x = np.where(x < 0.0, -x, x)
    x = np.where(x > 1.0, 2.0 - x, x)
    return np.clip(x, 0.0, 1.0)


def _clean(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=float)
    return np.where(np.isfinite(f), f, -np.inf)


class CalibrationTarget(Protocol):
    """A process model with its parameters given directly, for per-basin calibration.

    Attributes
    ----------
    names : tuple of str
        Calibrated parameters, in the order of the unit-cube columns.
    forcings : tuple of str
        Daily forcing variables of :meth:`simulate`, in order (data reader names).
    """

    names: tuple[str, ...]
    forcings: tuple[str, ...]

    def physical(self, unit: np.ndarray) -> dict[str, np.ndarray]:
        """Physical values ``{name: [B]}`` of unit-cube points ``[B, P]``."""

    def simulate(self, unit: np.ndarray, forcing: torch.Tensor, warmup: int) -> np.ndarray:
        """Daily streamflow [mm/day] ``[D - warmup, B]`` of raw daily forcing ``[D, B, F]``
        (float64), the first ``warmup`` days only spinning up the states."""


def calibrate(target: CalibrationTarget, forcing: torch.Tensor, qobs: np.ndarray,
              cal: slice, n_evals: int = 500, seed: int = 0, progress: bool = False,
              checkpoint: str | Path | None = None, key: str = ""
              ) -> tuple[np.ndarray, np.ndarray]:
    """DDS of ``target`` per basin, maximising KGE over the days ``cal``.

    Parameters
    ----------
    forcing : Tensor [D, B, F]
        Raw daily forcing from the first day of data (the days before ``cal.start`` spin up).
    qobs : ndarray [D, B]
        Observed streamflow [mm/day] (NaN: missing).
    cal : slice
        Calibration days (indices into ``forcing``).
    checkpoint, key
        Resumable search (see :func:`dds`).

    Returns
    -------
    (best unit-cube points [B, P], calibration-period KGE [B])
    """
    c0, c1 = cal.start, cal.stop
    obs = qobs[c0:c1]

    def objective(unit: np.ndarray) -> np.ndarray:
        q = target.simulate(unit, forcing[:c1], c0)
        return np.array([kge(q[:, b], obs[:, b]) for b in range(q.shape[1])])

    best, f_best, _ = dds(objective, len(target.names), forcing.shape[1], n_evals, seed=seed,
                          progress=progress, checkpoint=checkpoint, key=key)
    return best, f_best


def region_stratified_basins(regions: dict[str, str], aridity: dict[str, float], n: int
                             ) -> list[str]:
    """``n`` basins stratified by region: each region gets its share of ``n`` in proportion
    to its size (largest remainders, at least one per region when ``n`` allows), picked evenly
    along the region's aridity ranking. Returns sorted gauge ids."""
    if not 0 < n <= len(regions):
        raise ValueError(f"n must be in 1..{len(regions)}, got {n}")
    groups: dict[str, list[str]] = {}
    for g in sorted(regions):
        groups.setdefault(regions[g], []).append(g)
    total = len(regions)
    quota = {r: n * len(v) / total for r, v in groups.items()}
    take = {r: min(len(groups[r]), max(1 if n >= len(groups) else 0, int(q)))
            for r, q in quota.items()}
    by_remainder = sorted(groups, key=lambda r: quota[r] - int(quota[r]), reverse=True)
    while sum(take.values()) != n:
        step = 1 if sum(take.values()) < n else -1
        for r in by_remainder if step > 0 else reversed(by_remainder):
            if sum(take.values()) == n:
                break
            if (step > 0 and take[r] < len(groups[r])) or (step < 0 and take[r] > 1):
                take[r] += step
    picks = []
    for r, ids in groups.items():
        ranked = sorted(ids, key=aridity.get)
        k = np.unique(np.linspace(0, len(ranked) - 1, take[r]).round().astype(int)) if take[r] else []
        picks += [ranked[i] for i in k]
    return sorted(picks)
