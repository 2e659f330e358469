"""The hourly path of the δ models' BMI cores, one for every model.

:class:`HourlyAdapter` is what an hourly core of a daily-trained model does between the host's
forcing and the model's physics (PET, the daily LSTM, the snow routine ahead of a snow-free
physics, daily spin-up rows, their state); the cores of dHBV, dCFE and dLGAR each hold one and
supply only their physics. Its pieces:

* :class:`TrailingHargreaves`: hourly PET from temperature alone, as Hargreaves of the trailing
  24 hours (their max and min, the day-of-year radiation) times the hour's weight of the daily
  PET (the disaggregation the model was trained with). Forcing whose temperature is constant
  within each day (daily means) has no diurnal range: see :class:`FlatTemperature`.
* :class:`DailyForcing`: a daily row's mean temperature and PET (Hargreaves of the day's max and
  min), for daily steps and daily spin-up rows.
* :class:`DayAggregate`: sums an hourly host's forcing over each calendar day, so daily networks
  (LSTMs) can step at the first hour of the next day.

Each keeps their state in a float64 array (``state``) that a core saves and restores.
"""
from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from delta_core import snow as snow_routine
from delta_core import subdaily
from delta_core.patterns import pet_hour_weights
from delta_core.pet import extraterrestrial_radiation, hargreaves_from_ra, hargreaves_scalar

#: A temperature range [degC] below this counts as none (constant temperature).
FLAT_RANGE_C = 0.01
#: Consecutive days [d] each of constant temperature that identify daily-mean forcing (one or
#: two such days occur in real data: Daymet has days with tmin >= tmax, which the writers'
#: synthetic hourly forcing turns into flat days).
FLAT_DAYS = 3
#: Trailing hours [h] :class:`TrailingHargreaves` keeps to detect them.
HISTORY_HOURS = 24 * FLAT_DAYS
#: Fallback diurnal temperature range [degC] for daily-mean forcing: the CAMELS-US Daymet
#: basin-mean ``tmax - tmin`` (447 basins, 1980-2010: mean 12.6, median 12.3, 10th-90th
#: percentile 10.8-14.8 degC). Hargreaves PET scales with its square root, so a basin whose true
#: range is in that 10-90 % band gets PET within -6 % .. +11 % of its own.
DEFAULT_DIURNAL_RANGE_C = 12.0

#: The BMI configuration keys of :class:`FlatTemperature`.
FLAT_TEMPERATURE_KEYS = {
    "flat_temperature": "what to do when the air temperature is constant within each of 3 "
                        "consecutive days (daily-mean forcing: Hargreaves PET would be 0 or "
                        "follow day-to-day changes): fallback (default: from then on Hargreaves "
                        "with fallback_diurnal_range_c around the trailing 24 h mean) or "
                        "refuse (stop with an error)",
    "fallback_diurnal_range_c": f"diurnal temperature range [degC] of flat_temperature: fallback "
                                f"(default {DEFAULT_DIURNAL_RANGE_C:g}, the CAMELS-US Daymet "
                                f"mean)",
}


@dataclass(frozen=True)
class FlatTemperature:
    """What Hargreaves PET does with forcing whose temperature is constant within each day.

    Attributes
    ----------
    label : str
        The catchment (its BMI config) named in the warning.
    diurnal_range_c : float
        Fallback diurnal temperature range [degC].
    refuse : bool
        Raise instead of falling back.
    """

    label: str
    diurnal_range_c: float = DEFAULT_DIURNAL_RANGE_C
    refuse: bool = False

    @classmethod
    def from_config(cls, cfg: dict, label: str) -> "FlatTemperature":
        """The policy of a BMI config's :data:`FLAT_TEMPERATURE_KEYS` (ValueError if invalid)."""
        mode = cfg.get("flat_temperature", "fallback")
        if mode not in ("fallback", "refuse"):
            raise ValueError(f"{label}: flat_temperature must be 'fallback' or 'refuse', got "
                             f"{mode!r}")
        value = cfg.get("fallback_diurnal_range_c", DEFAULT_DIURNAL_RANGE_C)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 40:
            raise ValueError(f"{label}: fallback_diurnal_range_c must be a number in (0, 40) "
                             f"degC, got {value!r}")
        return cls(label, float(value), mode == "refuse")

    def engage(self, model: str, when: str) -> float:
        """Warn (or with ``refuse`` raise ValueError) that the temperature is flat from
        ``when`` on; return the fallback range [degC]."""
        what = (f"{model} {self.label}: air temperature constant over {when} (daily-mean "
                f"forcing?): Hargreaves PET would be 0 or follow day-to-day changes")
        if self.refuse:
            raise ValueError(f"{what}; give hourly temperature or PET (pet_source: input), or "
                             f"set flat_temperature: fallback")
        warnings.warn(f"{what}; from here on it uses the fallback diurnal range "
                      f"{self.diurnal_range_c:g} degC (fallback_diurnal_range_c; "
                      f"flat_temperature: refuse to stop instead; pet_source: input to give PET)",
                      stacklevel=4)
        return self.diurnal_range_c


class TrailingHargreaves:
    """Hourly Hargreaves PET [mm per hour] from the trailing 24 hourly temperatures.

    Once each of the trailing :data:`FLAT_DAYS` blocks of 24 temperatures is constant (range <
    :data:`FLAT_RANGE_C`: daily-mean forcing), the rest of the run uses Hargreaves of the trailing
    24 h mean temperature with the fallback diurnal range of :attr:`policy`
    (:class:`FlatTemperature`), warned once.

    Parameters
    ----------
    latitude : float
        Degrees north.
    hour_weights : sequence of 24 float
        Fraction of the daily PET in each hour of the day (sums to 1).
    model : str
        Model name for the warning.

    Attributes
    ----------
    policy : FlatTemperature
        Set by the core from the BMI config (default: fall back to
        :data:`DEFAULT_DIURNAL_RANGE_C`, the catchment named ``model``).
    """

    def __init__(self, latitude: float, hour_weights, model: str):
        self._weights = [float(w) for w in hour_weights]
        self._ra = extraterrestrial_radiation(latitude, np.arange(1, 367))[:, 0].tolist()
        self._model = model
        self.policy = FlatTemperature(model)
        self.reset()

    def reset(self) -> None:
        self._temps: list[float] = []  # up to HISTORY_HOURS temperatures [degC], oldest first
        self.flat_range: float | None = None  # fallback range [degC] once flat forcing is seen
        self._ra_day, self._ra_today = -1, 0.0

    def push(self, t: float) -> None:
        """Add the temperature of the hour about to be stepped."""
        temps = self._temps
        if len(temps) == HISTORY_HOURS:
            del temps[0]
        temps.append(t)

    def pet(self, start: dt.datetime) -> float:
        """PET of the hour starting at ``start`` [mm] (after :meth:`push` of its temperature):
        Hargreaves from the trailing 24 hours' max/min temperature (fewer at the start of a run),
        or their mean +- half the fallback range once they were flat, times the hour's weight."""
        window = self._temps[-24:]
        tmax, tmin = max(window), min(window)
        if self.flat_range is None and tmax - tmin < FLAT_RANGE_C and self._daily_means():
            self.flat_range = self.policy.engage(
                self._model, f"each of the {FLAT_DAYS} days of 24 hours before {start}")
        if self.flat_range is not None:
            mid = sum(window) / len(window)
            tmax, tmin = mid + 0.5 * self.flat_range, mid - 0.5 * self.flat_range
        day = start.toordinal()
        if day != self._ra_day:
            self._ra_day = day
            self._ra_today = self._ra[start.timetuple().tm_yday - 1]
        return hargreaves_scalar(tmax, tmin, self._ra_today) * self._weights[start.hour]

    def _daily_means(self) -> bool:
        """Whether each 24-hour block of the :data:`HISTORY_HOURS` trailing temperatures is
        constant."""
        temps = self._temps
        return len(temps) == HISTORY_HOURS and all(
            max(temps[i:i + 24]) - min(temps[i:i + 24]) < FLAT_RANGE_C
            for i in range(0, HISTORY_HOURS, 24))

    def series(self, temps: np.ndarray, starts: list[dt.datetime]) -> np.ndarray:
        """PET [mm] of consecutive hours: :meth:`push` and :meth:`pet` of each in turn, computed
        over all hours at once (trailing windows as strided views; equal to rounding)."""
        n = len(starts)
        hours = _hour_clock(starts)
        if hours is None:  # not consecutive hours: one at a time
            out = np.empty(n)
            for i, (t, start) in enumerate(zip(temps, starts)):
                self.push(float(t))
                out[i] = self.pet(start)
            return out
        hour, doy = hours
        if n == 0:
            return np.zeros(0)
        history = len(self._temps)
        allt = np.concatenate([np.asarray(self._temps, dtype=float),
                               np.asarray(temps, dtype=float)])
        # windows of the 24 trailing hours ending at each hour (the first ones shorter: padded
        # with the oldest value, which changes neither their max nor their min)
        padded = np.concatenate([np.full(23, allt[0]), allt])
        win = np.lib.stride_tricks.sliding_window_view(padded, 24)[history:]
        tmax, tmin = win.max(axis=1), win.min(axis=1)
        if self.flat_range is None and n:
            # engaged at the first hour with 72 hours seen whose 3 trailing blocks of 24 hours
            # are each flat (TrailingHargreaves.pet)
            fw = _flat_windows(allt)  # fw[k]: the window ending at allt[k + 23]
            j = np.arange(history, history + n)
            ok = j >= HISTORY_HOURS - 1
            k = j[ok] - 23
            ok[ok] = fw[k] & fw[k - 24] & fw[k - 48]
            first = np.flatnonzero(ok)
            if first.size:
                i = int(first[0])
                self.flat_range = self.policy.engage(
                    self._model, f"each of the {FLAT_DAYS} days of 24 hours before {starts[i]}")
                self._fallback(win, tmax, tmin, i)
        elif self.flat_range is not None:
            self._fallback(win, tmax, tmin, 0)
        ra = np.asarray(self._ra)[doy - 1]
        w = np.asarray(self._weights)[hour]
        pet = 0.0023 * 0.408 * ra * (0.5 * (tmax + tmin) + 17.8) * np.sqrt(
            np.maximum(tmax - tmin, 0.0))
        self._temps = allt[-HISTORY_HOURS:].tolist()
        return np.maximum(pet, 0.0) * w

    def _fallback(self, win: np.ndarray, tmax: np.ndarray, tmin: np.ndarray, i: int) -> None:
        """From hour ``i`` on: the trailing 24 h mean +- half the fallback range (in place)."""
        mid = win[i:].mean(axis=1)
        tmax[i:] = mid + 0.5 * self.flat_range
        tmin[i:] = mid - 0.5 * self.flat_range

    @property
    def temps(self) -> np.ndarray:
        """The trailing :data:`HISTORY_HOURS` hourly temperatures [degC], NaN before the first
        hours of a run."""
        return np.array([np.nan] * (HISTORY_HOURS - len(self._temps)) + self._temps)

    @temps.setter
    def temps(self, value: np.ndarray) -> None:
        self._temps = [float(x) for x in np.asarray(value)[-HISTORY_HOURS:] if not np.isnan(x)]

    @property
    def state(self) -> np.ndarray:
        """The trailing temperatures and the fallback range (0: none engaged)."""
        return np.concatenate([self.temps, [self.flat_range or 0.0]])

    @state.setter
    def state(self, value: np.ndarray) -> None:
        self.temps = value[:-1]
        legacy = len(value) == 25  # state files before the fallback: 24 temperatures, a flag
        self.flat_range = None if legacy else float(value[-1]) or None


def _hour_clock(starts: list[dt.datetime]) -> tuple[np.ndarray, np.ndarray] | None:
    """Hour of day and day of year of consecutive hourly ``starts``, or None if they are not
    consecutive hours."""
    n = len(starts)
    if n == 0:
        return np.zeros(0, int), np.ones(0, int)
    first = np.datetime64(starts[0].replace(tzinfo=None), "h")
    if starts[-1] - starts[0] != dt.timedelta(hours=n - 1) or starts[0].minute \
            or starts[0].second or starts[0].microsecond:
        return None
    clock = first + np.arange(n)
    day = clock.astype("datetime64[D]")
    doy = (day - day.astype("datetime64[Y]")).astype(int) + 1
    return (clock - day).astype(int), doy


def _flat_windows(allt: np.ndarray) -> np.ndarray:
    """Whether each full window of 24 hours (ending at hour 23, 24, ...) of ``allt`` is flat."""
    if len(allt) < 24:
        return np.zeros(0, bool)
    win = np.lib.stride_tricks.sliding_window_view(allt, 24)
    return (win.max(axis=1) - win.min(axis=1)) < FLAT_RANGE_C


class DailyForcing:
    """A day's precipitation, mean temperature and PET from a daily row ``[P mm d-1, T mean
    degC or None, T max, T min, PET mm d-1 or None]``: the mean temperature from max and min
    where None, PET by Hargreaves from max and min (day-of-year radiation) where None. A day
    whose range is below :data:`FLAT_RANGE_C` counts as flat; once :data:`FLAT_DAYS`
    consecutive flat days were seen (daily-mean forcing), flat days use their mean +- half the
    fallback range of :attr:`policy` (:class:`FlatTemperature`, warned once).

    Parameters
    ----------
    latitude : float
        Degrees north.
    model : str
        Model name for errors and the warning.
    """

    def __init__(self, latitude: float, model: str):
        self._ra = extraterrestrial_radiation(latitude, np.arange(1, 367))[:, 0]
        self._ra_list = self._ra.tolist()
        self._model = model
        self.policy = FlatTemperature(model)
        self.reset()

    def reset(self) -> None:
        self.flat_range: float | None = None  # fallback range [degC] once engaged
        self.flat_days = 0  # consecutive flat days so far

    def day(self, row: list, start: dt.datetime) -> tuple[float, float, float]:
        """P, mean T and PET of the day from ``start`` (floats)."""
        p, t, tmax, tmin, pet = row
        if t is None:
            t = 0.5 * (tmax + tmin)
        if pet is None:
            if tmax is None or tmin is None:
                raise ValueError(f"{self._model} needs PET or the day's max and min temperature")
            tmax, tmin = self._unflatten(tmax, tmin, start)
            pet = hargreaves_scalar(tmax, tmin, self._ra_list[start.timetuple().tm_yday - 1])
        return p, t, pet

    def days(self, rows: list[list], starts: list[dt.datetime]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`day` of consecutive days at once: P, mean T and PET [D] (the flat fallback
        and its warning at the same day as day by day)."""
        x = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)
        if x.size == 0:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        p, t, tmax, tmin, pet = x.T
        t = np.where(np.isnan(t), 0.5 * (tmax + tmin), t)
        need = np.flatnonzero(np.isnan(pet))
        if need.size:
            if np.isnan(tmax[need]).any() or np.isnan(tmin[need]).any():
                raise ValueError(f"{self._model} needs PET or the day's max and min temperature")
            hi, lo = self._unflatten_days(tmax[need], tmin[need], [starts[i] for i in need])
            doy = np.array([starts[i].timetuple().tm_yday for i in need])
            pet = pet.copy()
            pet[need] = hargreaves_from_ra(hi, lo, self._ra[doy - 1])
        return p, t, pet

    def _unflatten(self, tmax: float, tmin: float, start: dt.datetime) -> tuple[float, float]:
        """A day's max and min temperature [degC] for Hargreaves (class docstring)."""
        if abs(tmax - tmin) >= FLAT_RANGE_C:
            self.flat_days = 0
            return tmax, tmin
        self.flat_days += 1
        if self.flat_range is None and self.flat_days >= FLAT_DAYS:
            self.flat_range = self.policy.engage(
                self._model, f"each of the {FLAT_DAYS} days up to the day from {start}")
        if self.flat_range is None:
            return tmax, tmin
        mid = 0.5 * (tmax + tmin)
        return mid + 0.5 * self.flat_range, mid - 0.5 * self.flat_range

    def _unflatten_days(self, tmax: np.ndarray, tmin: np.ndarray, starts: list[dt.datetime]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_unflatten` over consecutive days at once."""
        flat = np.abs(tmax - tmin) < FLAT_RANGE_C
        k = np.arange(len(flat))
        last = np.maximum.accumulate(np.where(~flat, k, -1))  # last non-flat day so far
        run = np.where(last >= 0, k - last, k + 1 + self.flat_days)  # consecutive flat days
        self.flat_days = int(run[-1])
        use = flat if self.flat_range is not None else np.zeros(len(flat), bool)
        if self.flat_range is None:
            hits = np.flatnonzero(run >= FLAT_DAYS)
            if hits.size:
                i = int(hits[0])
                self.flat_range = self.policy.engage(
                    self._model, f"each of the {FLAT_DAYS} days up to the day from {starts[i]}")
                use[i:] = flat[i:]
        if not use.any():
            return tmax, tmin
        mid = 0.5 * (tmax + tmin)
        return (np.where(use, mid + 0.5 * self.flat_range, tmax),
                np.where(use, mid - 0.5 * self.flat_range, tmin))


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


@dataclass
class Hours:
    """What an hourly core's physics takes over consecutive hours (:class:`HourlyAdapter`).

    Attributes
    ----------
    water : ndarray [H]
        Precipitation [mm per hour]; with the snow routine ahead of the physics, the rain and
        release from the pack reaching the ground instead.
    temp : ndarray [H]
        Air temperature [degC] (NaN where not given).
    pet : ndarray [H]
        PET [mm per hour].
    melt : ndarray [H]
        Snowmelt [mm per hour] (zeros without the snow routine).
    dynamic : ndarray [D, n_out] or None
        With an LSTM, its raw output in force on each of the ``H / 24`` days.
    """

    water: np.ndarray
    temp: np.ndarray
    pet: np.ndarray
    melt: np.ndarray
    dynamic: np.ndarray | None = None


class HourlyAdapter:
    """Everything an hourly BMI core of a daily-trained δ model does between the host's forcing
    and the model's physics, one implementation for every model (dHBV, dCFE, dLGAR):

    * PET of each hour: given, or Hargreaves of the trailing 24 hours times the hour's weight of
      the training disaggregation (:class:`TrailingHargreaves`);
    * the daily networks' view: with an LSTM, the host's hours summed to days
      (:class:`DayAggregate`) and the LSTM stepped at the first hour of each day with the day
      before, its raw output (:attr:`dynamic_raw`) holding for the day (the one-day lag of the
      hourly training);
    * the degree-day snow routine ahead of a snow-free physics (dCFE, dLGAR), at hourly rates
      (CFMAX / 24, phase by the hour's temperature);
    * a daily spin-up file's rows spread over their hours as in training
      (:func:`delta_core.subdaily.step_forcing` with the bundle's within-day pattern, seeded
      draws for a stochastic one) with the LSTM's lagged outputs;
    * the state of all of that (:meth:`get_state`, :meth:`set_state`).

    The core supplies the physics: one hour (:meth:`hour` gives its inputs), many hours
    (:meth:`hours`, :meth:`spinup`), and what a new :attr:`dynamic_raw` means for its parameters.

    Parameters
    ----------
    model : str
        Model name for errors and warnings.
    latitude : float or None
        Degrees north (Hargreaves PET); None: PET must be given every hour.
    pattern : WithinDay, optional
        The bundle's within-day pattern (PET weights; rain of daily spin-up rows); None: PET
        weights ``pet_weights`` and no daily spin-up rows.
    lstm : LSTMStepper, optional
        The daily LSTM of dynamic parameters (None: none).
    dynamic_net : LSTMNet, optional
        The network ``lstm`` was made from (batched runs).
    forcing_norm : ForcingNormalizer, optional
        Normalises a day's ``(P, T, PET)`` for the LSTM.
    snow : dict, optional
        Degree-day parameters ``TT, CFMAX (per day), CFR, CWH`` of a snow routine ahead of the
        physics (None: the physics gets the precipitation).
    pet_weights : sequence of 24 float, optional
        The hours' shares of daily PET (default: the pattern's, else the sine weights).
    """

    def __init__(self, model: str, latitude: float | None, pattern=None, lstm=None,
                 dynamic_net=None, forcing_norm=None, snow: dict | None = None,
                 pet_weights=None):
        self.model = model
        self.pattern = pattern
        if pet_weights is None:
            pet_weights = (pattern.pet_weights().tolist() if pattern is not None
                           else pet_hour_weights("sine"))
        self.pet_model = (None if latitude is None else
                          TrailingHargreaves(latitude, pet_weights, model))
        self.daily = None if latitude is None else DailyForcing(latitude, model)
        self.lstm, self._net, self._norm = lstm, dynamic_net, forcing_norm
        self.days = DayAggregate()
        self.snow = None if snow is None else (float(snow["TT"]), float(snow["CFMAX"]) / 24.0,
                                               float(snow["CFR"]), float(snow["CWH"]))
        self.reset()

    def reset(self) -> None:
        """Cold start: no trailing temperatures, no day in progress, empty snow stores, the
        LSTM's state zero and its output before any forcing."""
        if self.pet_model is not None:
            self.pet_model.reset()
            self.daily.reset()
        self.days.reset()
        self.snowpack = self.meltwater = 0.0
        if self.lstm is not None:
            self.lstm.reset()
            self.dynamic_raw = self.lstm.initial_output()
        else:
            self.dynamic_raw = np.zeros(0)

    def set_flat_policy(self, policy: FlatTemperature) -> None:
        """Use ``policy`` for hours whose trailing 24 h temperature is constant and for days of
        daily spin-up rows (no effect without Hargreaves PET)."""
        if self.pet_model is not None:
            self.pet_model.policy = self.daily.policy = policy

    @property
    def swe(self) -> float:
        """Snow water equivalent of the routine ahead of the physics [mm]."""
        return self.snowpack + self.meltwater

    # -- one hour ------------------------------------------------------------------------------
    def hour(self, start: dt.datetime, p: float, t: float | None, pet: float | None
             ) -> tuple[float, float, float, bool]:
        """The physics inputs of the hour from ``start``.

        Parameters
        ----------
        start : datetime
            The hour's start (host clock).
        p : float
            Precipitation [mm].
        t : float or None
            Air temperature [degC] (needed for Hargreaves PET, the snow routine and the LSTM).
        pet : float or None
            PET [mm] (None: Hargreaves).

        Returns
        -------
        water, pet, melt : float
            As :class:`Hours` [mm].
        new_day : bool
            The LSTM stepped (first hour of a day): :attr:`dynamic_raw` holds its new output.
        """
        if t is not None and self.pet_model is not None:
            self.pet_model.push(t)
        if pet is None:
            if t is None or self.pet_model is None:
                raise ValueError(f"{self.model}: an hour without PET needs the air temperature "
                                 f"and the latitude (Hargreaves PET)")
            pet = self.pet_model.pet(start)
        new_day = False
        if self.lstm is not None:
            if t is None:
                raise ValueError(f"{self.model} with dynamic parameters needs the hour's air "
                                 f"temperature (the daily LSTM reads it)")
            done = self.days.add(start, p, t, pet)
            if done is not None:
                self.dynamic_raw = self.lstm.step(self._norm.transform_day(done))
                new_day = True
        if self.snow is None:
            return p, pet, 0.0, new_day
        if t is None:
            raise ValueError(f"{self.model} with snow needs the hour's air temperature")
        s = snow_routine.degree_day_step(self.snowpack, self.meltwater, p, t, *self.snow)
        self.snowpack, self.meltwater = s.snowpack, s.meltwater
        return s.rain + s.outflow, pet, s.melt, new_day

    # -- many hours ----------------------------------------------------------------------------
    def hours(self, starts: list[dt.datetime], p: np.ndarray, t: list, pet: list
              ) -> Hours | None:
        """:meth:`hour` over consecutive hours at once (PET, the LSTM over the days and the snow
        routine each in one call), ending in the state :meth:`hour` in turn reaches (to
        rounding).

        Parameters
        ----------
        starts : list of datetime
            Consecutive hours (with an LSTM: whole days from 00:00 after a completed day).
        p : ndarray [H]
            Precipitation [mm].
        t, pet : list of float or None [H]
            Air temperature [degC] and PET [mm] of each hour (None: not given).

        Returns
        -------
        Hours or None
            None where the hours cannot be taken at once (hours that are not whole days with
            an LSTM; temperature given in some hours only; PET missing without Hargreaves;
            snow without temperature): the core steps them with :meth:`hour`, which also names
            what is missing.
        """
        n = len(starts)
        s = self.days.state
        if self.lstm is not None and (n % 24 or starts[0].hour
                                      or s[0] == starts[0].toordinal()):
            return None
        has_t = all(x is not None for x in t)
        if not has_t and any(x is not None for x in t):
            return None
        temps = np.array(t, dtype=float) if has_t else np.full(n, np.nan)
        if all(x is not None for x in pet):
            pet_h = np.array(pet, dtype=float)
            if has_t and self.pet_model is not None:
                self.pet_model.temps = np.concatenate([self.pet_model.temps, temps])
        elif has_t and self.pet_model is not None:
            series = self.pet_model.series(temps, starts)
            pet_h = np.array([series[i] if x is None else x for i, x in enumerate(pet)])
        else:
            return None
        if self.snow is not None and not has_t:
            return None
        dynamic = self._whole_days(starts, p, temps, pet_h) if self.lstm is not None else None
        water, melt = self._snow_series(p, temps)
        return Hours(water, temps, pet_h, melt, dynamic)

    def _whole_days(self, starts: list[dt.datetime], p: np.ndarray, t: np.ndarray,
                    pet: np.ndarray) -> np.ndarray:
        """The LSTM's raw output in force on each whole day of the hours ``[D, n_out]``: the
        output before the first day (or after the day in progress, completed at its first
        hour), then after each day but the last, the LSTM run over the days in one call."""
        s = self.days.state
        sums = [np.add.accumulate(x.reshape(-1, 24), axis=1)[:, -1] for x in (p, t, pet)]
        days = [(a * 24.0 / 24.0, b / 24.0, c * 24.0 / 24.0) for a, b, c in zip(*sums)]
        pending = s[0] >= 0 and s[4] > 0  # completed at the first hour, as DayAggregate.add
        rows = ([(s[1] * 24.0 / s[4], s[2] / s[4], s[3] * 24.0 / s[4])] if pending else [])
        rows += days[:-1]
        out = (self.lstm.run(self._net, np.stack([self._norm.transform_day(d) for d in rows]))
               if rows else np.zeros((0, len(self.dynamic_raw))))
        s[:] = (starts[-1].toordinal(), *(x[-1] for x in sums), 24.0)
        raw = out if pending else np.concatenate([np.asarray(self.dynamic_raw)[None], out])
        self.dynamic_raw = raw[-1].copy()
        return raw

    def _snow_series(self, p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Water reaching the ground and melt [mm] of the hours (the snow routine, if any)."""
        if self.snow is None:
            return p, np.zeros(len(p))
        water, melt, self.snowpack, self.meltwater = snow_routine.degree_day_series(
            p, t, *self.snow, self.snowpack, self.meltwater)
        return water, melt

    # -- daily spin-up rows --------------------------------------------------------------------
    def spinup(self, rows: list[list], starts: list[dt.datetime]) -> Hours:
        """The hours of daily spin-up rows ``[P mm d-1, T mean (None: (max + min) / 2), T max,
        T min, PET mm d-1 (None: Hargreaves)]``: P and PET spread over each day's hours as in
        training, temperature at the daily mean; the LSTM over the days, day ``d`` getting its
        output after day ``d - 1`` (:attr:`Hours.dynamic`). The hours continue as after the
        last day (its forcing seen by the LSTM; the next hour starts the day after)."""
        if self.daily is None or self.pattern is None:
            raise ValueError(f"{self.model}: a daily spin-up file needs the latitude and the "
                             f"bundle's within-day pattern")
        p, t, pet = self.daily.days(rows, starts)
        daily = torch.from_numpy(np.stack([p, t, pet], -1)[:, None, :])
        weights = torch.from_numpy(self.pattern.spinup_weights(len(p))[:, None])
        steps = subdaily.step_forcing(daily, self.pattern, {"rain_weights": weights})
        prcp, temp, pet_h = (x[:, 0].numpy() for x in (steps.prcp, steps.temp, steps.pet))
        dynamic = None
        if self.lstm is not None:
            raw = self.lstm.run(self._net, self._norm.transform(np.stack([p, t, pet], -1)))
            dynamic = np.concatenate([np.asarray(self.dynamic_raw)[None], raw[:-1]])
            self.dynamic_raw = raw[-1].copy()
        self.days.reset()  # the LSTM has seen the last day already
        water, melt = self._snow_series(prcp, temp)
        return Hours(water, temp, pet_h, melt, dynamic)

    # -- state ---------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """Trailing temperatures, snow stores, the day in progress and the LSTM (copies)."""
        st = {}
        if self.pet_model is not None:
            st["temps"] = self.pet_model.state
        if self.snow is not None:
            st["snow"] = np.array([self.snowpack, self.meltwater])
        if self.lstm is not None:
            st.update(lstm_h=self.lstm.h, lstm_c=self.lstm.c, day=self.days.state,
                      dynamic_raw=self.dynamic_raw)
        return {k: np.array(v, copy=True) for k, v in st.items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`get_state` (ValueError naming what a state of another configuration
        lacks)."""
        lacking = [k for k in self.get_state() if k not in state]
        if lacking:
            raise ValueError(f"{self.model} state lacks {lacking} (saved by another model "
                             f"configuration?)")
        if self.pet_model is not None:
            self.pet_model.state = state["temps"]
        if self.snow is not None:
            self.snowpack, self.meltwater = (float(x) for x in state["snow"])
        if self.lstm is not None:
            if state["lstm_h"].shape != self.lstm.h.shape:
                raise ValueError(f"{self.model} state holds an LSTM of {state['lstm_h'].shape} "
                                 f"units; this bundle's has {self.lstm.h.shape}")
            self.lstm.h, self.lstm.c = state["lstm_h"].copy(), state["lstm_c"].copy()
            self.days.state = state["day"].copy()
            self.dynamic_raw = state["dynamic_raw"].copy()
