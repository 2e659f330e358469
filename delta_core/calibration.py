"""Per-basin calibration by Dynamically Dimensioned Search (DDS; Tolson and Shoemaker 2007),
the classical baseline that δ models are compared with.

:func:`dds` runs one independent DDS per parameter set ("basin") and evaluates the candidates of
all basins in one batched call per iteration, so a batched model engine (a δ model's physics with
parameters given directly) calibrates many basins at the cost of one simulation per iteration.
Parameters live in the unit cube [0, 1]^P (the model maps them to its physical ranges).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: evaluate(x [n_sets, P] in [0, 1]) -> objective [n_sets] (to maximise; NaN counts as -inf).
Objective = Callable[[np.ndarray], np.ndarray]


def dds(evaluate: Objective, n_params: int, n_sets: int, n_evals: int = 500, r: float = 0.2,
        seed: int = 0, x0: np.ndarray | None = None, progress: bool = False
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

    Returns
    -------
    (best points [n_sets, P], best objectives [n_sets], best objective after each evaluation
    [n_evals, n_sets])
    """
    if n_evals < 1 or not 0 < r <= 1:
        raise ValueError(f"DDS needs n_evals >= 1 and 0 < r <= 1, got {n_evals}, {r}")
    rng = np.random.default_rng(seed)
    best = rng.uniform(size=(n_sets, n_params)) if x0 is None else np.array(x0, dtype=float)
    f_best = _clean(evaluate(best))
    history = [f_best.copy()]
    steps = range(1, n_evals)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="DDS", total=n_evals - 1)
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
    return best, f_best, np.array(history)


def _reflect(x: np.ndarray) -> np.ndarray:
    """Reflect at 0 and 1; what is still outside goes to the bound."""
    x = np.where(x < 0.0, -x, x)
    x = np.where(x > 1.0, 2.0 - x, x)
    return np.clip(x, 0.0, 1.0)


def _clean(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=float)
    return np.where(np.isfinite(f), f, -np.inf)
