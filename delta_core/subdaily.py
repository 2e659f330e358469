"""Daily networks, sub-daily physics: the one engine behind the δ models' hourly runs.

The networks keep the daily view they are trained on (static parameters once per basin, dynamic
ones from an LSTM over daily aggregates, lagged one day where an hourly host needs them); the
process model steps at its physics step, hourly in NextGen. The loss sees daily sums against
daily observations. This module holds what every model needs for that and writes nothing
model-specific:

* the forcing of the steps (:func:`step_forcing`): daily forcing spread over the hours by the
  model's within-day pattern (:mod:`delta_core.patterns`; a batch may carry its own rain weights,
  e.g. the stochastic draws of training), or hourly forcing given directly
  (``batch["hourly_forcing"]``: what ``<model>-eval --hourly-forcing`` runs);
* the snow routine ahead of a snow-free process model (:func:`liquid_water`);
* warm-up without gradient, state carry and chunking (:func:`run_steps`);
* the warm-up's last flows as the history of a routing convolution (:func:`run_steps`);
* daily sums and end-of-day stores (:func:`daily_sums`, :func:`end_of_day`).

A model supplies its physics as a *block function* ``block(state, s0, s1, grad) -> (state,
{name: Tensor [s1 - s0, B]})`` that advances the steps ``s0 .. s1 - 1`` (whole days) from
``state`` and returns the series it was asked for; :func:`run_steps` calls it over warm-up and
simulation blocks. The BMIs' hourly cores step the same physics with the same rate conversions,
which the tests check value for value (BMI == model).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from delta_core import snow as snow_routine
from delta_core.patterns import WithinDay, hourly_rain_weights, spread_rain, to_hourly

#: ``block(state, s0, s1, grad) -> (state, {name: [s1 - s0, B]})``.
Block = Callable[[Any, int, int, bool], tuple[Any, dict[str, torch.Tensor]]]


@dataclass
class StepForcing:
    """Forcing of every physics step ``[S, B]`` (``S = steps_per_day x days``): precipitation
    [mm per step], air temperature [degC], PET [mm per step]; ``given`` when it came as hourly
    forcing rather than from daily totals."""

    prcp: torch.Tensor
    temp: torch.Tensor
    pet: torch.Tensor
    given: bool = False


def step_forcing(forcing: torch.Tensor, pattern: WithinDay | None, batch: dict,
                 steps_per_day: int = 24) -> StepForcing:
    """The forcing of the physics steps of a run.

    Parameters
    ----------
    forcing : Tensor [D, B, 3]
        Daily P [mm d-1], mean T [degC], PET [mm d-1] (the networks' view).
    pattern : WithinDay or None
        How a day's P and PET are spread over its hours (``steps_per_day = 24``).
    batch : dict
        May hold ``rain_weights`` [D, B, 24] (this run's rain pattern) or ``hourly_forcing``
        [24 D, B, 3] (hourly P [mm], T [degC], PET [mm] given directly, e.g. from AORC files).
    steps_per_day : {1, 24}

    Returns
    -------
    StepForcing
        With one step per day the daily forcing itself; with 24, hourly amounts whose daily
        sums equal the daily totals (temperature held at the daily mean), or the given hours.
    """
    n_days, n_basins = forcing.shape[:2]
    given = batch.get("hourly_forcing")
    if given is not None:
        if steps_per_day != 24:
            raise ValueError("hourly forcing needs a model whose physics steps hourly")
        if tuple(given.shape) != (24 * n_days, n_basins, 3):
            raise ValueError(f"batch hourly_forcing has shape {tuple(given.shape)}, expected "
                             f"{(24 * n_days, n_basins, 3)} (24 hours per day of forcing)")
        p, t, pet = given.to(forcing).unbind(-1)
        return StepForcing(p, t, pet, given=True)
    p, t, pet = forcing.unbind(-1)
    if steps_per_day == 1:
        return StepForcing(p, t, pet)
    if steps_per_day != 24 or pattern is None:
        raise ValueError(f"steps_per_day must be 1 or 24 (with a within-day pattern), got "
                         f"{steps_per_day}")
    rain = spread_rain(p, hourly_rain_weights(pattern, batch, n_days, n_basins),
                       pattern.day_start_hour)
    return StepForcing(rain, t.repeat_interleave(24, dim=0), to_hourly(pet, pattern.pet_weights()))


def liquid_water(forcing: torch.Tensor, steps: StepForcing, pattern: WithinDay, batch: dict,
                 snow: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The degree-day snow routine ahead of a snow-free process model (dCFE, dLGAR).

    From daily forcing the routine runs daily (as trained) and its liquid water is spread over
    the hours by the day's rain weights; from given hourly forcing it runs hourly with the rates
    per hour (CFMAX / 24), as the models' BMIs do.

    Returns
    -------
    liquid : Tensor [24 D, B]
        Rain + release from the pack reaching the ground [mm per hour].
    melt, swe : Tensor [D, B]
        Melt [mm d-1] and SWE at the end of each day [mm].
    """
    if steps.given:
        hourly = {**snow, "CFMAX": snow["CFMAX"] / 24.0}
        liquid, melt, swe = snow_routine.liquid_water(steps.prcp, steps.temp, hourly)
        return liquid, daily_sums(melt), end_of_day(swe)
    p, t = forcing[..., 0], forcing[..., 1]
    liquid, melt, swe = snow_routine.liquid_water(p, t, snow)
    n_days, n_basins = p.shape
    weights = hourly_rain_weights(pattern, batch, n_days, n_basins)
    return spread_rain(liquid, weights, pattern.day_start_hour), melt, swe


def run_steps(block: Block, state: Any, n_steps: int, warmup_steps: int, block_steps: int | None,
              detach: Callable[[Any], Any], history: dict[str, int] | None = None
              ) -> tuple[Any, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Advance the physics over all steps: warm-up blocks without gradient (state detached),
    then the simulation in blocks carrying the state.

    Parameters
    ----------
    block : Block
        The model's physics over a range of steps (module docstring).
    state
        Initial state (the block function's type).
    n_steps, warmup_steps : int
        All steps, and the first ones that only spin up the stores (not returned).
    block_steps : int or None
        Steps per block call (bounds memory; results do not depend on it); None: one call for
        the warm-up and one for the simulation.
    detach : callable
        ``state -> state`` without autograd history.
    history : dict, optional
        ``{name: n}``: also return the last ``n`` warm-up steps of these series (zeros before the
        first step), the history of a routing convolution.

    Returns
    -------
    state, series, warm_tail
        Final state; ``{name: [n_steps - warmup_steps, B]}``; ``{name: [n, B]}`` per history.
    """
    history = history or {}
    size = block_steps or max(n_steps, 1)
    spans = [(s, min(warmup_steps, s + size)) for s in range(0, warmup_steps, size)]
    spans += [(s, min(n_steps, s + size)) for s in range(warmup_steps, n_steps, size)]
    warm: dict[str, list[torch.Tensor]] = {}
    parts: dict[str, list[torch.Tensor]] = {}
    for s0, s1 in spans:
        if s1 <= warmup_steps:
            with torch.no_grad():
                state, out = block(state, s0, s1, False)
            state = detach(state)
            for k, n in history.items():
                if s1 > warmup_steps - n:
                    warm.setdefault(k, []).append(out[k].detach())
        else:
            state, out = block(state, s0, s1, True)
            for k, v in out.items():
                parts.setdefault(k, []).append(v)
    series = {k: v[0] if len(v) == 1 else torch.cat(v) for k, v in parts.items()}
    tails = {}
    for k, n in history.items():
        ref = series[k]
        got = torch.cat(warm[k])[-n:] if k in warm else ref.new_zeros(0, *ref.shape[1:])
        pad = ref.new_zeros(n - got.shape[0], *ref.shape[1:])
        tails[k] = torch.cat([pad, got])
    return state, series, tails


def daily_sums(x: torch.Tensor, steps_per_day: int = 24) -> torch.Tensor:
    """Sum per-step values ``[n D, B]`` to days ``[D, B]`` (one step per day: ``x`` itself)."""
    if steps_per_day == 1:
        return x
    s, b = x.shape
    if s % steps_per_day:
        raise ValueError(f"{s} steps are not whole days of {steps_per_day}")
    return x.reshape(s // steps_per_day, steps_per_day, b).sum(1)


def end_of_day(x: torch.Tensor, steps_per_day: int = 24) -> torch.Tensor:
    """Values at the last step of each day ``[D, B]`` of per-step values ``[n D, ...]``."""
    return x[steps_per_day - 1::steps_per_day]
