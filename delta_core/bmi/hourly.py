"""Pieces an hourly core of a daily-trained δ model needs, shared by the models' cores.

* :class:`TrailingHargreaves`: hourly PET from temperature alone, as Hargreaves of the trailing
  24 hours (their max and min, the day-of-year radiation) times the hour's weight of the daily
  PET (the disaggregation the model was trained with); warns once when the temperature is
  constant over 24 hours (daily-mean forcing), where Hargreaves gives 0.
* :class:`DayAggregate`: sums an hourly host's forcing over each calendar day, so daily networks
  (LSTMs) can step at the first hour of the next day.

Both keep their state in a float64 array (``state``) that a core saves and restores.
"""
from __future__ import annotations

import datetime as dt
import warnings

import numpy as np

from delta_core.pet import extraterrestrial_radiation, hargreaves_scalar


class TrailingHargreaves:
    """Hourly Hargreaves PET [mm per hour] from the trailing 24 hourly temperatures.

    Parameters
    ----------
    latitude : float
        Degrees north.
    hour_weights : sequence of 24 float
        Fraction of the daily PET in each hour of the day (sums to 1).
    model : str
        Model name for the warning.
    """

    def __init__(self, latitude: float, hour_weights, model: str):
        self._weights = [float(w) for w in hour_weights]
        self._ra = extraterrestrial_radiation(latitude, np.arange(1, 367))[:, 0].tolist()
        self._model = model
        self.reset()

    def reset(self) -> None:
        self._temps: list[float] = []  # trailing hourly temperatures [degC], oldest first
        self.warned = False
        self._ra_day, self._ra_today = -1, 0.0

    def push(self, t: float) -> None:
        """Add the temperature of the hour about to be stepped."""
        temps = self._temps
        if len(temps) == 24:
            del temps[0]
        temps.append(t)

    def pet(self, start: dt.datetime) -> float:
        """PET of the hour starting at ``start`` [mm] (after :meth:`push` of its temperature):
        Hargreaves from the trailing 24 hours' max/min temperature (fewer at the start of a run)
        times the hour's weight."""
        temps = self._temps
        tmax, tmin = max(temps), min(temps)
        if tmax == tmin and len(temps) == 24 and not self.warned:
            self.warned = True
            warnings.warn(f"{self._model}: air temperature constant over the 24 hours before "
                          f"{start} (daily-mean forcing?): Hargreaves PET is 0 until it varies; "
                          f"give PET as an input (pet_source: input) for such forcing",
                          stacklevel=3)
        day = start.toordinal()
        if day != self._ra_day:
            self._ra_day = day
            self._ra_today = self._ra[start.timetuple().tm_yday - 1]
        return hargreaves_scalar(tmax, tmin, self._ra_today) * self._weights[start.hour]

    @property
    def temps(self) -> np.ndarray:
        """The trailing 24 hourly temperatures [degC], NaN before the first hours of a run."""
        return np.array([np.nan] * (24 - len(self._temps)) + self._temps)

    @temps.setter
    def temps(self, value: np.ndarray) -> None:
        self._temps = [float(x) for x in np.asarray(value)[-24:] if not np.isnan(x)]

    @property
    def state(self) -> np.ndarray:
        return np.concatenate([self.temps, [float(self.warned)]])

    @state.setter
    def state(self, value: np.ndarray) -> None:
        self.temps = value[:24]
        self.warned = bool(value[24])


class DayAggregate:
    """Daily sums of an hourly host's forcing: precipitation and PET summed, temperature
    averaged, by the calendar day of each hour's start.

    :meth:`add` returns the previous day's ``(P [mm d-1], T [degC], PET [mm d-1])`` at the first
    hour of a new day (a partial day scaled to 24 hours), else None.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: ordinal of the current day (-1: none yet), sums of P, T, PET, number of hours
        self.state = np.array([-1.0, 0.0, 0.0, 0.0, 0.0])

    def add(self, start: dt.datetime, p: float, t: float, pet: float
            ) -> tuple[float, float, float] | None:
        s = self.state
        today = start.toordinal()
        done = None
        if s[0] != today:
            if s[0] >= 0 and s[4] > 0:
                n = s[4]
                done = (s[1] * 24.0 / n, s[2] / n, s[3] * 24.0 / n)
            s[:] = (today, 0.0, 0.0, 0.0, 0.0)
        s[1] += p
        s[2] += t
        s[3] += pet
        s[4] += 1.0
        return done


class HourlyInputs:
    """The per-hour forcing path of an hourly core of a daily-trained model: the hour's PET
    (given, or :class:`TrailingHargreaves`) and, with an LSTM, its new daily output at the
    first hour of each day (:class:`DayAggregate` of the day before, normalised).

    Parameters
    ----------
    latitude, hour_weights, model :
        As :class:`TrailingHargreaves`.
    lstm : LSTMStepper, optional
        The daily LSTM (None: no dynamic parameters).
    forcing_norm : ForcingNormalizer, optional
        Normalises a day's ``(P, T, PET)`` for the LSTM.
    """

    def __init__(self, latitude: float, hour_weights, model: str, lstm=None, forcing_norm=None):
        self.pet_model = TrailingHargreaves(latitude, hour_weights, model)
        self.days = DayAggregate()
        self._lstm, self._norm = lstm, forcing_norm

    def reset(self) -> None:
        self.pet_model.reset()
        self.days.reset()

    def hour(self, start: dt.datetime, p: float, t: float, pet: float | None
             ) -> tuple[float, np.ndarray | None]:
        """PET of the hour [mm] and the LSTM's raw output for a new day (None within a day or
        without an LSTM)."""
        self.pet_model.push(t)
        if pet is None:
            pet = self.pet_model.pet(start)
        if self._lstm is None:
            return pet, None
        done = self.days.add(start, p, t, pet)
        return pet, None if done is None else self._lstm.step(self._norm.transform_day(done))
