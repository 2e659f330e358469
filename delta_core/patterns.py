"""Within-day patterns: how a day's rain and PET are spread over its 24 hours.

The δ models are trained on daily data but run hourly in NextGen, where rain falls in storms of a
few hours at any time of day. A :class:`WithinDay` pattern turns daily totals into hourly amounts
(hour-beginning 00:00 ... 23:00 of the data's day) with weights that sum to 1 per day, so the
hourly values sum back to the daily totals exactly (up to rounding).

Rain patterns (``rain``):

* ``"uniform"``: 1/24 per hour (the least intense rain a day's total allows);
* ``"block"``: the day's total falls evenly in ``rain_hours`` consecutive hours from
  ``rain_start_hour``;
* ``"stochastic"``: storms at random hours with random durations and a peaked intensity profile
  (:func:`stochastic_weights`), a new draw per day and basin. In training each batch gets a new
  draw from the run's generator (augmentation: the networks learn parameters that work whatever
  the hour of the rain); in evaluation and spin-up the draw is seeded by ``seed`` and the basin.

PET patterns (``pet``): ``"uniform"`` (1/24 per hour) or ``"sine"``, proportional to
``max(0, sin(pi (h - 6) / 12))``: zero at night, peak at 12:00.

Temperature is held at the daily mean for every hour of the day.

Where the data's day lies (``day_start_hour``): daily totals need not be totals of calendar days.
CAMELS' Daymet precipitation is interpolated from gauge totals filed under the day on which the
gauge was read, and most US cooperative gauges are read in the morning, while USGS daily flows
are local calendar days; so a day's rain mostly fell before the flow day it is filed under.
``day_start_hour = -k`` spreads data day d's rain over the 24 hours from ``24 - k`` o'clock of
day d - 1 (:func:`spread_rain`); PET and temperature stay on the calendar day.

Stochastic storms, per wet day and basin: ``1 + min(Poisson(storms_extra_mean), 2)`` storms; each
lasts ``min(Geometric(1 / storm_hours_mean), max_storm_hours)`` hours (at least 1), starts at a
uniform hour so that it ends by 24:00, has its peak at a uniform position within it and
intensities ``1 / (1 + |hour - peak|)`` around it, and takes a share of the day's total
proportional to its duration times a uniform factor in [0.5, 1.5). Defaults (mean storm 3 h,
1.5 storms per wet day, up to 12 h) give rain in about 4-5 hours of a wet day, i.e. in roughly
5-10 % of all hours at the pack's 30-50 % wet days: the range that US hourly gauge climatologies
report for the frequency of hourly precipitation and typical event durations of a few hours
(e.g. Dai 2001, J. Climate 14, 1112-1128; Trenberth et al. 2003, BAMS 84, 1205-1217). These are
plausible within-day patterns for robustness, not a fitted rainfall model; a user with real
hourly forcing (AORC) checks a model on it with ``<model>-eval --hourly-forcing``.
"""
from __future__ import annotations

import functools

import math
import zlib
from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where tensors are made (a BMI may run without it)
    import torch

RAIN_PATTERNS = ("uniform", "block", "stochastic")
PET_PATTERNS = ("uniform", "sine")
#: The flat physics keys of bundles written before the ``within_day`` section, and their field.
LEGACY_KEYS = {"rain_disaggregation": "rain", "rain_start_hour": "rain_start_hour",
               "rain_hours": "rain_hours", "pet_disaggregation": "pet"}


@dataclass(frozen=True)
class WithinDay:
    """How daily precipitation (and snowmelt) and PET are spread over the hours of a day
    (the ``physics.within_day`` section of a run config; module docstring)."""

    rain: str = "stochastic"
    rain_start_hour: int = 12
    rain_hours: int = 6
    pet: str = "sine"
    #: Stochastic storms: mean duration [h], longest [h], mean number beyond the first.
    storm_hours_mean: float = 3.0
    max_storm_hours: int = 12
    storms_extra_mean: float = 0.5
    #: Seed of the stochastic draws of evaluation and spin-up (training draws from the run's
    #: generator).
    seed: int = 0
    #: Hour of the calendar day at which the data's day begins [h, -23..0]: the hours of a
    #: data day d's rain are those of [24 d + day_start_hour, 24 d + 24 + day_start_hour), e.g.
    #: -17 for totals read from gauges at 07:00 (:func:`spread_rain`). PET stays on the calendar
    #: day.
    day_start_hour: int = 0
    #: Stochastic storms only, a diagnostic: each day's storms moved together (circularly
    #: within the day) so that their rain-weighted mean hour is this hour [h, 0..23]: the
    #: storms' intensities and durations without their random timing. None: as drawn.
    storm_centre_hour: int | None = None

    def __post_init__(self) -> None:
        if self.rain not in RAIN_PATTERNS:
            raise ValueError(f"within_day.rain {self.rain!r}: choose one of {RAIN_PATTERNS}")
        if self.pet not in PET_PATTERNS:
            raise ValueError(f"within_day.pet {self.pet!r}: choose one of {PET_PATTERNS}")
        if not 1 <= self.rain_hours <= 24 or not 0 <= self.rain_start_hour <= 24 - self.rain_hours:
            raise ValueError(f"rain block of {self.rain_hours} h from {self.rain_start_hour}:00 "
                             f"must lie within one day (1-24 h, ending by 24:00)")
        if not 1.0 <= self.storm_hours_mean <= self.max_storm_hours <= 24:
            raise ValueError(f"within_day: need 1 <= storm_hours_mean ({self.storm_hours_mean}) "
                             f"<= max_storm_hours ({self.max_storm_hours}) <= 24")
        if not -23 <= self.day_start_hour <= 0:
            raise ValueError(f"within_day.day_start_hour must lie in -23..0 (hours before "
                             f"midnight at which the data's day begins), got "
                             f"{self.day_start_hour}")
        if self.storm_centre_hour is not None and (
                self.rain != "stochastic" or not 0 <= self.storm_centre_hour <= 23):
            raise ValueError(f"within_day.storm_centre_hour {self.storm_centre_hour!r}: an hour "
                             f"0..23, for stochastic rain only")
        if self.storms_extra_mean < 0:
            raise ValueError(f"within_day.storms_extra_mean must be >= 0, got "
                             f"{self.storms_extra_mean}")

    @property
    def stochastic(self) -> bool:
        return self.rain == "stochastic"

    def rain_weights(self) -> torch.Tensor:
        """Fixed fraction of the daily total in each hour [24] (float64, sums to 1); a
        stochastic pattern has none (use :meth:`draw`)."""
        import torch

        if self.rain == "uniform":
            return torch.full((24,), 1.0 / 24.0, dtype=torch.float64)
        if self.rain == "block":
            w = torch.zeros(24, dtype=torch.float64)
            w[self.rain_start_hour:self.rain_start_hour + self.rain_hours] = 1.0 / self.rain_hours
            return w
        raise ValueError("a stochastic rain pattern has no fixed weights: draw them (draw())")

    def pet_weights(self) -> torch.Tensor:
        """Fraction of the daily PET in each hour [24] (float64, sums to 1)."""
        import torch

        return torch.tensor(pet_hour_weights(self.pet), dtype=torch.float64)

    def draw(self, n_days: int, n_basins: int, rng: np.random.Generator) -> np.ndarray:
        """Rain weights ``[n_days, n_basins, 24]`` (float64, each day's sum 1): stochastic
        storms from ``rng``, or the fixed weights repeated."""
        if not self.stochastic:
            return np.broadcast_to(self.rain_weights().numpy(), (n_days, n_basins, 24)).copy()
        w = stochastic_weights(n_days, n_basins, rng, self.storm_hours_mean,
                               self.max_storm_hours, self.storms_extra_mean)
        return w if self.storm_centre_hour is None else centre_storms(w, self.storm_centre_hour)

    def draw_for_basins(self, n_days: int, basin_ids: list[str]) -> np.ndarray:
        """Seeded weights ``[n_days, len(basin_ids), 24]``: each basin's draws depend only on
        :attr:`seed`, its id and the day's position, not on which basins run together."""
        return np.stack([self.draw(n_days, 1, basin_rng(self.seed, b))[:, 0]
                         for b in basin_ids], axis=1)

    def spinup_weights(self, n_days: int) -> np.ndarray:
        """Rain weights ``[n_days, 24]`` of a BMI's spin-up from daily rows: the fixed weights,
        or stochastic draws seeded by :attr:`seed` (the same for every catchment: drawn once
        per process and length)."""
        return _spinup_weights(self, n_days).copy()

    @classmethod
    def from_physics(cls, physics: dict, legacy: "WithinDay") -> dict:
        """``physics`` (a config mapping) with the flat keys of older bundles
        (:data:`LEGACY_KEYS`) moved into a ``within_day`` mapping, the keys they did not set
        taking the model's former defaults ``legacy`` (so an old bundle runs as it was
        trained)."""
        flat = {k: physics[k] for k in LEGACY_KEYS if k in physics}
        if not flat:
            return dict(physics)
        if "within_day" in physics:
            raise ValueError(f"physics: {sorted(flat)} and within_day both given; use "
                             f"within_day only")
        out = {k: v for k, v in physics.items() if k not in LEGACY_KEYS}
        out["within_day"] = {"rain": legacy.rain, "rain_start_hour": legacy.rain_start_hour,
                             "rain_hours": legacy.rain_hours, "pet": legacy.pet,
                             **{LEGACY_KEYS[k]: v for k, v in flat.items()}}
        return out


class HourlyPhysics:
    """Mixin of the physics configs of models whose physics always steps hourly (dCFE, dLGAR):
    the pattern of their ``within_day`` field, and the defaults of the flat keys that bundles
    written before that field carry (:meth:`WithinDay.from_physics`)."""

    LEGACY_WITHIN_DAY = WithinDay("block", 12, 6, "sine")
    #: The physics step [s] (:meth:`delta_core.spec.ModelSpec.physics_step`).
    physics_step_seconds = 3600

    @property
    def pattern(self) -> WithinDay:
        """The within-day pattern."""
        return self.within_day


def pet_hour_weights(pet: str = "sine") -> list[float]:
    """Fraction of the daily PET in each hour (module docstring), as plain floats."""
    if pet not in PET_PATTERNS:
        raise ValueError(f"PET pattern {pet!r}: choose one of {PET_PATTERNS}")
    if pet == "uniform":
        return [1.0 / 24.0] * 24
    w = [max(0.0, math.sin(math.pi * (h - 6) / 12.0)) for h in range(24)]
    total = sum(w)
    return [x / total for x in w]


def basin_rng(seed: int, basin_id: str) -> np.random.Generator:
    """A generator determined by ``seed`` and a basin id (any string)."""
    return np.random.default_rng([int(seed), zlib.crc32(str(basin_id).encode())])


def stochastic_weights(n_days: int, n_basins: int, rng: np.random.Generator,
                       storm_hours_mean: float = 3.0, max_storm_hours: int = 12,
                       storms_extra_mean: float = 0.5) -> np.ndarray:
    """Random storm weights ``[n_days, n_basins, 24]`` (float64, each day's sum exactly 1 up
    to rounding); the storm model is in the module docstring."""
    n = n_days * n_basins
    hours = np.arange(24.0)
    w = np.zeros((n, 24))
    n_storms = 1 + np.minimum(rng.poisson(storms_extra_mean, n), 2)
    for k in range(3):
        length = np.minimum(rng.geometric(1.0 / storm_hours_mean, n), max_storm_hours)
        start = np.floor(rng.random(n) * (25 - length))
        peak = start + rng.random(n) * length - 0.5
        share = length * (0.5 + rng.random(n)) * (k < n_storms)
        inside = (hours >= start[:, None]) & (hours < (start + length)[:, None])
        shape = inside / (1.0 + np.abs(hours - peak[:, None]))
        w += share[:, None] * shape / shape.sum(1, keepdims=True)
    w /= w.sum(1, keepdims=True)
    return w.reshape(n_days, n_basins, 24)


def centre_storms(weights: np.ndarray, hour: int) -> np.ndarray:
    """Each day's weights ``[..., 24]`` rolled (circularly within the day) by the whole hours
    that bring their weighted mean hour nearest to ``hour``: the same storms, fixed timing."""
    hours = np.arange(24)
    shift = np.rint(hour - (weights * hours).sum(-1)).astype(int)
    source = (hours - shift[..., None]) % 24
    return np.take_along_axis(weights, source, axis=-1)


def hourly_rain_weights(pattern: WithinDay, batch: dict, n_days: int, n_basins: int
                        ) -> torch.Tensor:
    """The rain weights of a model run: ``batch["rain_weights"]`` [D, B, 24] where the batch
    carries them (training draws, seeded evaluation draws), else the pattern's fixed weights
    [24]; a stochastic pattern without batch weights draws seeded weights for basins
    "0".."B-1"."""
    w = batch.get("rain_weights")
    if w is not None:
        if tuple(w.shape) != (n_days, n_basins, 24):
            raise ValueError(f"batch rain_weights have shape {tuple(w.shape)}, expected "
                             f"{(n_days, n_basins, 24)}")
        return w
    if pattern.stochastic:
        import torch

        return torch.from_numpy(pattern.draw_for_basins(n_days, [str(b) for b in range(n_basins)]))
    return pattern.rain_weights()


def to_hourly(daily: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Spread daily totals ``[D, B]`` over hours by ``weights`` ``[24]`` or ``[D, B, 24]``;
    returns ``[24 D, B]``."""
    d, b = daily.shape
    w = weights.to(daily)
    if w.dim() == 1:
        return (daily.unsqueeze(1) * w.view(1, 24, 1)).reshape(24 * d, b)
    return (daily.unsqueeze(-1) * w).permute(0, 2, 1).reshape(24 * d, b)


def spread_rain(daily: torch.Tensor, weights: torch.Tensor, day_start_hour: int = 0
                ) -> torch.Tensor:
    """Hourly rain ``[24 D, B]`` of daily totals ``[D, B]`` spread by ``weights`` (as
    :func:`to_hourly`) over data days that begin ``-day_start_hour`` hours before the calendar
    days: the series moves that many hours earlier. The rain of day 0's first hours would fall
    before the run and is dropped; the last hours of the run would hold the rain of the day
    after the data and are dry."""
    import torch

    hourly = to_hourly(daily, weights)
    k = -int(day_start_hour)
    if k == 0:
        return hourly
    return torch.cat([hourly[k:], hourly.new_zeros(k, hourly.shape[1])])


@functools.lru_cache(maxsize=16)
def _spinup_weights(pattern: WithinDay, n_days: int) -> np.ndarray:
    w = pattern.draw(n_days, 1, basin_rng(pattern.seed, "spin-up"))[:, 0]
    w.flags.writeable = False
    return w
