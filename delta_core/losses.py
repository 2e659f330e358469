"""Training losses, picked by name from :data:`LOSSES`; NaN observations are masked.

Each loss is written as sums over the batch (:meth:`Loss.parts`) and a function of those sums
(:meth:`Loss.combine`), so data-parallel training can add the sums of every process before
combining and get exactly the loss (and gradient) of the whole batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


def _masked(sim: torch.Tensor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.isfinite(obs)
    return sim[mask], obs[mask]


@dataclass(frozen=True)
class Loss:
    """A loss as ``combine(parts(sim, obs), alpha)``; calling it evaluates both.

    ``parts(sim [T, B], obs [T, B]) -> Tensor [k]`` holds sums that add over basins;
    ``combine(parts, alpha) -> scalar``.
    """

    name: str
    parts: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    combine: Callable[[torch.Tensor, float], torch.Tensor]
    doc: str = ""

    def __call__(self, sim: torch.Tensor, obs: torch.Tensor, alpha: float = 0.25) -> torch.Tensor:
        return self.combine(self.parts(sim, obs), alpha)


def _log_transform(q: torch.Tensor) -> torch.Tensor:
    return torch.log10(torch.sqrt(q + 1e-6) + 0.1)


def _rmse_log_parts(sim: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    s, o = _masked(sim, obs)
    n = torch.tensor(float(s.numel()), dtype=sim.dtype, device=sim.device)
    return torch.stack([torch.sum((s - o) ** 2),
                        torch.sum((_log_transform(s) - _log_transform(o.clamp(min=0.0))) ** 2),
                        n])


def _rmse_log_combine(p: torch.Tensor, alpha: float) -> torch.Tensor:
    if float(p[2].detach()) == 0:
        return p[0] * 0.0
    return (1.0 - alpha) * torch.sqrt(p[0] / p[2]) + alpha * torch.sqrt(p[1] / p[2])


def _nse_parts(sim: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    terms = []
    for b in range(obs.shape[1]):
        s, o = _masked(sim[:, b], obs[:, b])
        if o.numel() >= 2:
            terms.append(torch.sum((s - o) ** 2) / (torch.sum((o - o.mean()) ** 2) + 0.1))
    total = torch.stack(terms).sum() if terms else sim.sum() * 0.0
    return torch.stack([total, torch.tensor(float(len(terms)), dtype=sim.dtype,
                                             device=sim.device)])


def _nse_combine(p: torch.Tensor, alpha: float) -> torch.Tensor:
    return p[0] / p[1] if float(p[1].detach()) > 0 else p[0] * 0.0


#: Feng et al. (2022) Eq. 1-2: ``(1-α) RMSE(Q) + α RMSE(log10(sqrt(Q + 1e-6) + 0.1))`` over all
#: observed basin-days of the batch [mm/day].
rmse_log_combined = Loss("rmse_log_combined", _rmse_log_parts, _rmse_log_combine)
#: Mean over basins of ``1 - NSE`` (basins with < 2 observations are ignored; alpha unused).
nse_loss = Loss("nse", _nse_parts, _nse_combine)

#: Registry of losses by name.
LOSSES: dict[str, Loss] = {"rmse_log_combined": rmse_log_combined, "nse": nse_loss}


def get_loss(name: str) -> Loss:
    """Loss by name; an unknown name lists the valid ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid: {sorted(LOSSES)}") from None
