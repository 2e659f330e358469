"""Training losses, picked by name from :data:`LOSSES`; NaN observations are masked."""
from __future__ import annotations

from typing import Callable

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _masked(sim: torch.Tensor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.isfinite(obs)
    return sim[mask], obs[mask]


def rmse_log_combined(sim: torch.Tensor, obs: torch.Tensor, alpha: float = 0.25) -> torch.Tensor:
    """Feng et al. (2022) Eq. 1-2: ``(1-α) RMSE(Q) + α RMSE(log10(sqrt(Q + 1e-6) + 0.1))``.

    Parameters
    ----------
    sim, obs : Tensor [T, B]
        Simulated and observed streamflow [mm/day]; NaN in ``obs`` is masked.
    alpha : float
        Weight of the log-transformed term.
    """
    s, o = _masked(sim, obs)
    if s.numel() == 0:
        return sim.sum() * 0.0
    rmse = torch.sqrt(torch.mean((s - o) ** 2))
    tr = lambda q: torch.log10(torch.sqrt(q + 1e-6) + 0.1)  # noqa: E731
    rmse_log = torch.sqrt(torch.mean((tr(s) - tr(o.clamp(min=0.0))) ** 2))
    return (1.0 - alpha) * rmse + alpha * rmse_log


def nse_loss(sim: torch.Tensor, obs: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """Mean over basins of ``1 - NSE`` (basins with < 2 observations are ignored)."""
    losses = []
    for b in range(obs.shape[1]):
        s, o = _masked(sim[:, b], obs[:, b])
        if o.numel() < 2:
            continue
        losses.append(torch.sum((s - o) ** 2) / (torch.sum((o - o.mean()) ** 2) + 0.1))
    return torch.stack(losses).mean() if losses else sim.sum() * 0.0


#: Registry of losses by name.
LOSSES: dict[str, LossFn] = {"rmse_log_combined": rmse_log_combined, "nse": nse_loss}


def get_loss(name: str) -> LossFn:
    """Loss by name; an unknown name lists the valid ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid: {sorted(LOSSES)}") from None
