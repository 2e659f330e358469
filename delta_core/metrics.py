"""Streamflow metrics (numpy, NaN-masked). Each takes 1-D ``sim`` and ``obs`` in the same units.

All pairs where ``obs`` or ``sim`` is NaN are dropped first; a metric needing more data than
remains returns NaN.
"""
from __future__ import annotations

import numpy as np


def _pair(sim: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sim, obs = np.asarray(sim, np.float64), np.asarray(obs, np.float64)
    if sim.shape != obs.shape:
        raise ValueError(f"sim and obs shapes differ: {sim.shape} vs {obs.shape}")
    ok = np.isfinite(sim) & np.isfinite(obs)
    return sim[ok], obs[ok]


def nse(sim, obs) -> float:
    """Nash-Sutcliffe efficiency ``1 - Σ(s-o)² / Σ(o-mean(o))²``."""
    s, o = _pair(sim, obs)
    den = np.sum((o - o.mean()) ** 2) if len(o) else 0.0
    return float(1.0 - np.sum((s - o) ** 2) / den) if len(o) > 1 and den > 0 else np.nan


def kge(sim, obs) -> float:
    """Kling-Gupta efficiency (Gupta et al. 2009): ``1 - sqrt((r-1)² + (α-1)² + (β-1)²)``,
    α = σs/σo, β = μs/μo."""
    s, o = _pair(sim, obs)
    if len(o) < 2 or o.std() == 0 or o.mean() == 0:
        return np.nan
    r = np.corrcoef(s, o)[0, 1] if s.std() > 0 else 0.0
    alpha, beta = s.std() / o.std(), s.mean() / o.mean()
    return float(1.0 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))


def pearson_r(sim, obs) -> float:
    """Pearson correlation."""
    s, o = _pair(sim, obs)
    return float(np.corrcoef(s, o)[0, 1]) if len(o) > 1 and s.std() > 0 and o.std() > 0 else np.nan


def rmse(sim, obs) -> float:
    """Root mean square error."""
    s, o = _pair(sim, obs)
    return float(np.sqrt(np.mean((s - o) ** 2))) if len(o) else np.nan


def pbias(sim, obs) -> float:
    """Percent bias ``100 Σ(s-o) / Σo``."""
    s, o = _pair(sim, obs)
    return float(100.0 * np.sum(s - o) / np.sum(o)) if len(o) and np.sum(o) > 0 else np.nan


def fhv(sim, obs, h: float = 0.02) -> float:
    """Percent bias of the top ``h`` fraction of the flow-duration curve (Yilmaz et al. 2008)."""
    s, o = _pair(sim, obs)
    if len(o) == 0:
        return np.nan
    n = max(int(np.round(h * len(o))), 1)
    s_hi, o_hi = np.sort(s)[::-1][:n], np.sort(o)[::-1][:n]
    return float(100.0 * np.sum(s_hi - o_hi) / np.sum(o_hi)) if np.sum(o_hi) > 0 else np.nan


def flv(sim, obs, low: float = 0.3, floor: float = 1e-6) -> float:
    """Percent bias of the bottom ``low`` fraction of the flow-duration curve in log space
    (Yilmaz et al. 2008): ``-100 [Σ(log s - log s_min) - Σ(log o - log o_min)] / Σ(log o - log o_min)``;
    flows are floored at ``floor`` before the log."""
    s, o = _pair(sim, obs)
    if len(o) == 0:
        return np.nan
    n = max(int(np.round(low * len(o))), 1)
    s_lo = np.log(np.clip(np.sort(s)[:n], floor, None))
    o_lo = np.log(np.clip(np.sort(o)[:n], floor, None))
    qs, qo = np.sum(s_lo - s_lo.min()), np.sum(o_lo - o_lo.min())
    return float(-100.0 * (qs - qo) / qo) if qo > 0 else np.nan


#: Metrics computed per basin by the evaluation, by name.
METRICS = {"nse": nse, "kge": kge, "r": pearson_r, "rmse": rmse, "pbias": pbias,
           "fhv": fhv, "flv": flv}


def all_metrics(sim, obs) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one basin."""
    return {name: fn(sim, obs) for name, fn in METRICS.items()}
