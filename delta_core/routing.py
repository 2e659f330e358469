"""Gamma unit-hydrograph routing (volume-conserving causal convolution).

Used by dHBV to delay the component-mean runoff and by dCFE and dLGAR for their GIUH;
model-agnostic: the caller gives the hydrograph's length (and a model its parameter ranges).
"""
from __future__ import annotations

import torch


def gamma_unit_hydrograph(route_a: torch.Tensor, route_b: torch.Tensor,
                          length: int) -> torch.Tensor:
    """Gamma unit hydrograph weights, normalised to sum 1.

    ``xi(t) ∝ t^(a-1) exp(-t/theta)`` at t = 0.5, 1.5, ..., with a = route_a + 0.1 and
    theta = route_b + 0.5 (the reference convention).

    Parameters
    ----------
    route_a, route_b : Tensor [B]
        Shape and scale parameters in their physical ranges.
    length : int
        Number of ordinates (days for dHBV's routing, hours for a GIUH).

    Returns
    -------
    Tensor [B, length]
        Weight of lag k (days) at column k.
    """
    a = (route_a + 0.1).unsqueeze(-1)
    theta = (route_b + 0.5).unsqueeze(-1)
    t = torch.arange(length, dtype=route_a.dtype, device=route_a.device) + 0.5
    # log-space for stability; constant gamma(a) theta^a cancels in the normalisation
    logw = (a - 1.0) * torch.log(t) - t / theta
    return torch.softmax(logw, dim=-1)


def gamma_unit_hydrograph_substeps(route_a: torch.Tensor, route_b: torch.Tensor,
                                   steps_per_day: int, days: int) -> torch.Tensor:
    """The gamma unit hydrograph of :func:`gamma_unit_hydrograph` on a finer step.

    The same density (shape ``route_a + 0.1``, scale ``route_b + 0.5`` days) is sampled every
    ``1 / steps_per_day`` days from t = 0.5 d, the time of the daily hydrograph's first ordinate
    (lag 0 days), and normalised: lag ``k * steps_per_day`` substeps carries daily ordinate k's
    density, the substeps between interpolate it. ``steps_per_day = 1`` is
    :func:`gamma_unit_hydrograph` exactly.

    Returns
    -------
    Tensor [B, days * steps_per_day]
        Weight of lag j (substeps) at column j.
    """
    if steps_per_day < 1:
        raise ValueError(f"steps_per_day must be >= 1, got {steps_per_day}")
    a = (route_a + 0.1).unsqueeze(-1)
    theta = (route_b + 0.5).unsqueeze(-1)
    n = days * steps_per_day
    t = torch.arange(n, dtype=route_a.dtype, device=route_a.device) / steps_per_day + 0.5
    return torch.softmax((a - 1.0) * torch.log(t) - t / theta, dim=-1)


def route(q: torch.Tensor, uh: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
    """Convolve runoff with a unit hydrograph: ``out[t] = sum_k uh[k] * q[t-k]``.

    Parameters
    ----------
    q : Tensor [T, B]
        Unrouted runoff [mm/day].
    uh : Tensor [B, L]
        Unit-hydrograph weights (see :func:`gamma_unit_hydrograph`).
    history : Tensor [L-1, B], optional
        Unrouted runoff of the L-1 days before ``q`` (oldest first); zeros if omitted.

    Returns
    -------
    Tensor [T, B]
        Routed runoff [mm/day].
    """
    n_lag = uh.shape[-1]
    if history is None:
        history = q.new_zeros(n_lag - 1, q.shape[1])
    x = torch.cat([history, q], dim=0).T.unsqueeze(0)  # [1, B, L-1+T]
    w = uh.flip(-1).unsqueeze(1)  # [B, 1, L]
    out = torch.nn.functional.conv1d(x, w, groups=q.shape[1])
    return out[0].T
