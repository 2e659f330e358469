"""Training losses, picked by name from :data:`LOSSES`; NaN observations are masked.

Each loss is written as sums over the batch (:meth:`Loss.parts`) and a function of those sums
(:meth:`Loss.combine`), so data-parallel training can add the sums of every process before
combining and get exactly the loss (and gradient) of the whole batch. ``basin_std`` [B] is each
batch basin's standard deviation of observed streamflow over the training period [mm/day]; only
losses with ``needs_basin_std`` read it.
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

    ``parts(sim [T, B], obs [T, B], basin_std [B] | None) -> Tensor [k]`` holds sums that add
    over basins; ``combine(parts, alpha) -> scalar``.
    """

    name: str
    parts: Callable[..., torch.Tensor]
    combine: Callable[[torch.Tensor, float], torch.Tensor]
    doc: str = ""
    needs_basin_std: bool = False

    def __call__(self, sim: torch.Tensor, obs: torch.Tensor, alpha: float = 0.25,
                 basin_std: torch.Tensor | None = None) -> torch.Tensor:
        return self.combine(self.parts(sim, obs, basin_std), alpha)


def _log_transform(q: torch.Tensor) -> torch.Tensor:
    return torch.log10(torch.sqrt(q + 1e-6) + 0.1)


def _rmse_log_parts(sim: torch.Tensor, obs: torch.Tensor, basin_std=None) -> torch.Tensor:
    s, o = _masked(sim, obs)
    n = torch.tensor(float(s.numel()), dtype=sim.dtype, device=sim.device)
    return torch.stack([torch.sum((s - o) ** 2),
                        torch.sum((_log_transform(s) - _log_transform(o.clamp(min=0.0))) ** 2),
                        n])


def _rmse_log_combine(p: torch.Tensor, alpha: float) -> torch.Tensor:
    if float(p[2].detach()) == 0:
        return p[0] * 0.0
    return (1.0 - alpha) * torch.sqrt(p[0] / p[2]) + alpha * torch.sqrt(p[1] / p[2])


def _nse_parts(sim: torch.Tensor, obs: torch.Tensor, basin_std=None) -> torch.Tensor:
    terms = []
    for b in range(obs.shape[1]):
        s, o = _masked(sim[:, b], obs[:, b])
        if o.numel() >= 2:
            terms.append(torch.sum((s - o) ** 2) / (torch.sum((o - o.mean()) ** 2) + 0.1))
    total = torch.stack(terms).sum() if terms else sim.sum() * 0.0
    return torch.stack([total, torch.tensor(float(len(terms)), dtype=sim.dtype,
                                             device=sim.device)])


def _nse_star_parts(sim: torch.Tensor, obs: torch.Tensor,
                    basin_std: torch.Tensor | None = None) -> torch.Tensor:
    if basin_std is None:
        raise ValueError("loss nse_star needs each basin's training-period streamflow standard "
                         "deviation (basin_std)")
    weight = (1.0 / (basin_std.to(sim.dtype) + 0.1) ** 2).expand_as(sim)
    mask = torch.isfinite(obs)
    err = (sim[mask] - obs[mask]) ** 2 * weight[mask]
    return torch.stack([err.sum(), torch.tensor(float(err.numel()), dtype=sim.dtype,
                                                device=sim.device)])


def _mean_combine(p: torch.Tensor, alpha: float) -> torch.Tensor:
    return p[0] / p[1] if float(p[1].detach()) > 0 else p[0] * 0.0


#: Feng et al. (2022) Eq. 1-2: ``(1-α) RMSE(Q) + α RMSE(log10(sqrt(Q + 1e-6) + 0.1))`` over all
#: observed basin-days of the batch [mm/day].
rmse_log_combined = Loss("rmse_log_combined", _rmse_log_parts, _rmse_log_combine)
#: Mean over basins of ``1 - NSE`` (basins with < 2 observations are ignored; alpha unused).
nse_loss = Loss("nse", _nse_parts, _mean_combine)

#: NSE* of Kratzert et al. (2019, Eq. 2): mean over observed basin-days of
#: ``(sim - obs)^2 / (s_b + 0.1)^2``, ``s_b`` the basin's training-period standard deviation of
#: streamflow [mm/day]: every basin weighs alike whatever its flow (alpha unused).
nse_star = Loss("nse_star", _nse_star_parts, _mean_combine, needs_basin_std=True)

#: Registry of losses by name.
LOSSES: dict[str, Loss] = {"rmse_log_combined": rmse_log_combined, "nse": nse_loss,
                           "nse_star": nse_star}


def get_loss(name: str) -> Loss:
    """Loss by name; an unknown name lists the valid ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid: {sorted(LOSSES)}") from None
