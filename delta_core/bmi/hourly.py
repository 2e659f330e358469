"""Pieces an hourly core of a daily-trained δ model needs, shared by the models' cores.

* :class:`TrailingHargreaves`: hourly PET from temperature alone, as Hargreaves of the trailing
  24 hours (their max and min, the day-of-year radiation) times the hour's weight of the daily
  PET (the disaggregation the model was trained with). Forcing whose temperature is constant
  within each day (daily means) has no diurnal range: see :class:`FlatTemperature`.
* :class:`DailyForcing`: a daily row's mean temperature and PET (Hargreaves of the day's max and
  min), for daily steps and daily spin-up rows.
* :class:`DayAggregate`: sums an hourly host's forcing over each calendar day, so daily networks
  (LSTMs) can step at the first hour of the next day.

Both keep their state in a float64 array (``state``) that a core saves and restores.
"""
from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np

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
        self._lstm, self._norm = lstm, forcing_norm
        self.days = DayAggregate()

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

    def whole_days(self, starts: list[dt.datetime], p: np.ndarray, t: np.ndarray, pet: list,
                   raw_now: np.ndarray, net=None) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`hour` over whole days at once: the PET of every hour and the LSTM's raw output
        in force on each day, the LSTM run over the days in one call.

        Parameters
        ----------
        starts : list of datetime
            Consecutive hours (with an LSTM: whole days from 00:00).
        p, t : ndarray [H]
            Precipitation [mm] and air temperature [degC] of each hour.
        pet : list of float or None [H]
            Given PET [mm] of each hour (None: Hargreaves).
        raw_now : ndarray [n_out]
            The LSTM output in force before the first hour (kept on the first day unless a day
            in progress is completed there).
        net : LSTMNet, optional
            The network the LSTM stepper was made from (needed with an LSTM).

        Returns
        -------
        (pet [H] mm, raw [D, n_out]) or None
            With an LSTM, None where the hours are not whole days after the day in progress
            (the caller steps them with :meth:`hour` instead); without one, any consecutive
            hours pass and ``raw`` is empty.
        """
        n = len(starts)
        s = self.days.state
        if self._lstm is not None and (n % 24 or starts[0].hour
                                       or s[0] == starts[0].toordinal()):
            return None
        if all(x is not None for x in pet):
            pet_h = np.array(pet, dtype=float)
            self.pet_model.temps = np.concatenate([self.pet_model.temps, t])
        else:
            series = self.pet_model.series(t, starts)
            pet_h = np.array([series[i] if x is None else x for i, x in enumerate(pet)])
        if self._lstm is None:
            return pet_h, np.zeros((0, 0))
        sums = [np.add.accumulate(x.reshape(-1, 24), axis=1)[:, -1] for x in (p, t, pet_h)]
        days = [(a * 24.0 / 24.0, b / 24.0, c * 24.0 / 24.0) for a, b, c in zip(*sums)]
        pending = s[0] >= 0 and s[4] > 0  # completed at the first hour, as DayAggregate.add
        rows = ([(s[1] * 24.0 / s[4], s[2] / s[4], s[3] * 24.0 / s[4])] if pending else [])
        rows += days[:-1]
        out = (self._lstm.run(net, np.stack([self._norm.transform_day(d) for d in rows]))
               if rows else np.zeros((0, len(raw_now))))
        s[:] = (starts[-1].toordinal(), *(x[-1] for x in sums), 24.0)
        return pet_h, out if pending else np.concatenate([np.asarray(raw_now)[None], out])
