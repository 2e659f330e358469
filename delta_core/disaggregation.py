"""Daily forcing to hours: the documented, configurable schemes behind hourly models trained on
daily data.

A daily total is spread over the 24 hours of its day (hour-beginning 00:00 ... 23:00, local
day of the data) by fixed weights that sum to 1, so hourly values sum back to the daily total
exactly (up to rounding). Schemes:

* rain ``"uniform"``: 1/24 per hour (the least intense rain a day's total allows);
* rain ``"block"``: the day's total falls evenly in ``rain_hours`` consecutive hours from
  ``rain_start_hour`` (default 6 h from 12:00, the recipe of the shared one-year CFE runs);
* PET ``"uniform"``: 1/24 per hour;
* PET ``"sine"``: proportional to ``max(0, sin(pi (h - 6) / 12))``: zero at night, peak at 12:00.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

RAIN_SCHEMES = ("uniform", "block")
PET_SCHEMES = ("uniform", "sine")


@dataclass(frozen=True)
class HourlyScheme:
    """How daily precipitation (and snowmelt) and PET are spread over the hours of a day."""

    rain: str = "block"
    rain_start_hour: int = 12
    rain_hours: int = 6
    pet: str = "sine"

    def __post_init__(self) -> None:
        if self.rain not in RAIN_SCHEMES:
            raise ValueError(f"rain disaggregation {self.rain!r}: choose one of {RAIN_SCHEMES}")
        if self.pet not in PET_SCHEMES:
            raise ValueError(f"PET disaggregation {self.pet!r}: choose one of {PET_SCHEMES}")
        if not 1 <= self.rain_hours <= 24 or not 0 <= self.rain_start_hour <= 24 - self.rain_hours:
            raise ValueError(f"rain block of {self.rain_hours} h from {self.rain_start_hour}:00 "
                             f"must lie within one day (1-24 h, ending by 24:00)")

    @classmethod
    def of(cls, config) -> "HourlyScheme":
        """The scheme a model's physics config names (its ``rain_disaggregation``,
        ``rain_start_hour``, ``rain_hours`` and ``pet_disaggregation``)."""
        return cls(config.rain_disaggregation, config.rain_start_hour, config.rain_hours,
                   config.pet_disaggregation)

    def rain_weights(self) -> torch.Tensor:
        """Fraction of the daily total in each hour [24] (float64, sums to 1)."""
        if self.rain == "uniform":
            return torch.full((24,), 1.0 / 24.0, dtype=torch.float64)
        w = torch.zeros(24, dtype=torch.float64)
        w[self.rain_start_hour:self.rain_start_hour + self.rain_hours] = 1.0 / self.rain_hours
        return w

    def pet_weights(self) -> torch.Tensor:
        """Fraction of the daily PET in each hour [24] (float64, sums to 1)."""
        if self.pet == "uniform":
            return torch.full((24,), 1.0 / 24.0, dtype=torch.float64)
        w = torch.tensor([max(0.0, math.sin(math.pi * (h - 6) / 12.0)) for h in range(24)],
                         dtype=torch.float64)
        return w / w.sum()


def to_hourly(daily: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Spread daily totals [D, B] over hours by ``weights`` [24]; returns [24 D, B]."""
    d, b = daily.shape
    w = weights.to(daily)
    return (daily.unsqueeze(1) * w.view(1, 24, 1)).reshape(24 * d, b)


def daily_sums(hourly: torch.Tensor) -> torch.Tensor:
    """Sum hourly values [24 D, B] to days [D, B]."""
    h, b = hourly.shape
    if h % 24:
        raise ValueError(f"{h} hours are not whole days")
    return hourly.reshape(h // 24, 24, b).sum(1)
