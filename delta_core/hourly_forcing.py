"""Hourly forcing files (ngen's CsvPerFeature form) for evaluating a model as NextGen runs it.

A directory holds one file per basin, ``<gauge_id>.csv`` or ``cat-<gauge_id>.csv``, with hourly
rows (hour-beginning times, consecutive, whole days from 00:00 to 23:00) and the columns

* ``time``: ``YYYY-MM-DD HH:MM:SS`` (taken as the calendar of the data pack's days);
* ``precip_rate``: precipitation rate, default unit mm s-1 (ngen's), or the unit in the header,
  e.g. ``precip_rate [mm h-1]``;
* ``TMP_2maboveground``: air temperature, default K, or ``[degC]``;
* optional ``PET [mm h-1]`` (any water-rate unit, given in the header): potential
  evapotranspiration. Without it PET is computed as the BMIs do: Hargreaves of the trailing 24
  hours' temperatures times the hour's share of the model's PET pattern
  (:func:`trailing_hargreaves`; a basin whose temperature is constant over 24 hours, daily-mean
  forcing, gets the BMIs' fallback diurnal range from then on, warned once per basin).

Every problem is one line naming the file and the row: a missing column, a unit that is not a
precipitation rate or a temperature, a gap or a repeated time, NaN or negative precipitation,
NaN temperature or PET, a temperature outside the plausible range.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from delta_core.bmi.hourly import FLAT_DAYS, FLAT_RANGE_C, HISTORY_HOURS, FlatTemperature
from delta_core.ngen.crosswalk import T_PLAUSIBLE, normalize_units
from delta_core.pet import extraterrestrial_radiation, hargreaves_from_ra

PRECIP_COLUMN = "precip_rate"
TEMP_COLUMN = "TMP_2maboveground"
PET_COLUMN = "PET"
#: Precipitation / PET rate units -> factor to mm per hour.
RATE_TO_MM_PER_HOUR = {"mm s-1": 3600.0, "mm h-1": 1.0, "m s-1": 3.6e6, "kg m-2 s-1": 3600.0,
                       "m h-1": 1000.0}
TEMP_UNITS = ("K", "degC")


class HourlyForcingError(ValueError):
    """A problem with an hourly forcing file (the message names file and row)."""


@dataclass
class HourlyForcing:
    """Hourly forcing of B basins over the same whole days.

    Attributes
    ----------
    start : numpy.datetime64
        First hour (00:00 of the first day).
    prcp : ndarray [H, B]
        Precipitation [mm per hour].
    temp : ndarray [H, B]
        Air temperature [degC].
    pet : ndarray [H, B] or None
        PET [mm per hour] where every file has a PET column, else None.
    """

    start: np.datetime64
    prcp: np.ndarray
    temp: np.ndarray
    pet: np.ndarray | None

    @property
    def first_day(self) -> np.datetime64:
        return self.start.astype("datetime64[D]")

    @property
    def n_days(self) -> int:
        return self.prcp.shape[0] // 24


    def until(self, last_day: str) -> "HourlyForcing":
        """The hours up to the end of ``last_day`` (ISO date)."""
        n = 24 * int((np.datetime64(last_day, "D") - self.first_day).astype(int) + 1)
        if n <= 0:
            raise HourlyForcingError(f"the hourly forcing starts {self.first_day}, after "
                                     f"{last_day}")
        cut = lambda x: None if x is None else x[:n]  # noqa: E731
        return HourlyForcing(self.start, cut(self.prcp), cut(self.temp), cut(self.pet))


def find_file(directory: Path, gauge_id: str) -> Path:
    """The file of a basin in ``directory`` (``<id>.csv`` or ``cat-<id>.csv``)."""
    for name in (f"{gauge_id}.csv", f"cat-{gauge_id}.csv"):
        if (directory / name).is_file():
            return directory / name
    raise HourlyForcingError(f"{directory}: no hourly forcing file for basin {gauge_id} "
                             f"(expected {gauge_id}.csv or cat-{gauge_id}.csv)")


def _column(header: list[str], name: str, path: Path, required: bool = True
            ) -> tuple[int, str | None] | None:
    """Index and unit (None: none in the header) of column ``name``, matched exactly, else
    without regard to case (``pet [mm h-1]`` for ``PET``)."""
    parsed = []
    for h in header:
        m = re.fullmatch(r"(.+?)\s*\[(.*)\]", h.strip())
        parsed.append((m.group(1).strip(), m.group(2).strip()) if m else (h.strip(), None))
    for same in (lambda b: b == name, lambda b: b.lower() == name.lower()):
        for i, (base, unit) in enumerate(parsed):
            if same(base):
                return i, unit
    if required:
        raise HourlyForcingError(f"{path}: no column {name!r} (columns: {header}); hourly "
                                 f"forcing needs time, {PRECIP_COLUMN}, {TEMP_COLUMN}")
    return None


def _rate_factor(unit: str, column: str, path: Path) -> float:
    u = normalize_units(unit)
    if u not in RATE_TO_MM_PER_HOUR:
        raise HourlyForcingError(f"{path}: column {column!r} has unit [{unit}], not a water rate; "
                                 f"use one of {sorted(RATE_TO_MM_PER_HOUR)}")
    return RATE_TO_MM_PER_HOUR[u]


def read_file(path: Path) -> tuple[np.datetime64, np.ndarray, np.ndarray, np.ndarray | None]:
    """One basin's file: first hour, precipitation [mm h-1], temperature [degC], PET [mm h-1]
    (None without a PET column), checked as the module docstring says."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise HourlyForcingError(f"{path}: empty file")
        rows = list(reader)
    if not rows:
        raise HourlyForcingError(f"{path}: no data rows")
    it, _ = _column(header, "time", path)
    ip, up = _column(header, PRECIP_COLUMN, path)
    itt, ut = _column(header, TEMP_COLUMN, path)
    pet_col = _column(header, PET_COLUMN, path, required=False)
    p_factor = _rate_factor(up or "mm s-1", PRECIP_COLUMN, path)
    t_unit = normalize_units(ut or "K")
    if t_unit not in TEMP_UNITS:
        raise HourlyForcingError(f"{path}: column {TEMP_COLUMN!r} has unit [{ut}], not a "
                                 f"temperature; use [K] or [degC]")
    if pet_col is not None and pet_col[1] is None:
        raise HourlyForcingError(f"{path}: column {PET_COLUMN!r} has no unit; write it in the "
                                 f"header, e.g. 'PET [mm h-1]' (ngen cannot convert it either)")
    cols = [ip, itt] + ([pet_col[0]] if pet_col else [])
    values = np.empty((len(rows), len(cols)))
    times = np.empty(len(rows), dtype="datetime64[s]")
    for r, row in enumerate(rows):
        line = r + 2
        try:
            times[r] = np.datetime64(row[it].strip().replace(" ", "T"), "s")
            values[r] = [float(row[c]) if row[c].strip() else np.nan for c in cols]
        except (ValueError, IndexError):
            raise HourlyForcingError(f"{path}, line {line}: cannot read {row!r} (expected "
                                     f"time 'YYYY-MM-DD HH:MM:SS' and numbers)") from None
    _check_times(times, path)
    prcp = values[:, 0] * p_factor
    temp = values[:, 1] - 273.15 if t_unit == "K" else values[:, 1]
    pet = values[:, 2] * _rate_factor(pet_col[1], PET_COLUMN, path) if pet_col else None
    _check_values(prcp, "precipitation", times, path, negative=True)
    _check_values(temp, "temperature", times, path, plausible=T_PLAUSIBLE, unit="degC")
    if pet is not None:
        _check_values(pet, "PET", times, path, negative=True)
    return times[0], prcp, temp, pet


def _check_times(times: np.ndarray, path: Path) -> None:
    steps = np.diff(times).astype(np.int64)
    bad = np.flatnonzero(steps != 3600)
    if len(bad):
        r = int(bad[0])
        raise HourlyForcingError(f"{path}, line {r + 3}: time {times[r + 1]} follows {times[r]} "
                                 f"({steps[r]} s); rows must be consecutive hours without gaps")
    hour = int((times[0] - times[0].astype("datetime64[D]")).astype(np.int64))
    if hour != 0 or len(times) % 24:
        raise HourlyForcingError(f"{path}: rows must cover whole days from 00:00 to 23:00 "
                                 f"(first {times[0]}, {len(times)} rows)")


def _check_values(x: np.ndarray, what: str, times: np.ndarray, path: Path,
                  negative: bool = False, plausible: tuple[float, float] | None = None,
                  unit: str = "mm h-1") -> None:
    bad = ~np.isfinite(x)
    if negative:
        bad |= x < 0
    if plausible is not None:
        bad |= (x < plausible[0]) | (x > plausible[1])
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        rule = (f"plausible range {plausible[0]}..{plausible[1]} {unit} (unit in the header?)"
                if plausible else "must be finite and >= 0")
        raise HourlyForcingError(f"{path}, line {r + 2} ({times[r]}): {what} {x[r]:g} {unit}: "
                                 f"{rule}")


def read_directory(directory: str | Path, gauge_ids: list[str]) -> HourlyForcing:
    """The hourly forcing of ``gauge_ids`` from ``directory``; all files must cover the same
    hours."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HourlyForcingError(f"hourly forcing directory {directory} does not exist")
    parts = []
    for gid in gauge_ids:
        path = find_file(directory, gid)
        parts.append((path, *read_file(path)))
    path0, start, p0, _, _ = parts[0]
    for path, s, p, _, _ in parts[1:]:
        if s != start or len(p) != len(p0):
            raise HourlyForcingError(f"{path} covers {s} + {len(p)} h, {path0} {start} + "
                                     f"{len(p0)} h: the files must cover the same hours")
    with_pet = [q[4] is not None for q in parts]
    if any(with_pet) and not all(with_pet):
        missing = [str(q[0]) for q, w in zip(parts, with_pet) if not w]
        raise HourlyForcingError(f"some files have a PET column and others not (without: "
                                 f"{missing[:3]}): give it in all files or in none")
    stack = lambda i: np.stack([q[i] for q in parts], axis=1)  # noqa: E731
    return HourlyForcing(start, stack(2), stack(3), stack(4) if all(with_pet) else None)


def trailing_hargreaves(temp: np.ndarray, start: np.datetime64, lat: np.ndarray,
                        hour_weights, names: list[str] | None = None) -> np.ndarray:
    """Hourly PET [mm h-1] as the BMIs compute it: Hargreaves of the max and min of the trailing
    24 hourly temperatures (fewer at the start), with the day's extraterrestrial radiation, times
    the hour's weight of the daily PET. From a basin's first flat full window on (daily-mean
    forcing, :data:`~delta_core.bmi.hourly.FLAT_DAYS` days in a row), Hargreaves of the
    window's mean +- half the fallback diurnal range (as
    :class:`~delta_core.bmi.hourly.TrailingHargreaves`, warned once per basin).

    Parameters
    ----------
    temp : ndarray [H, B]
        Hourly air temperature [degC], hour-beginning from ``start`` (00:00).
    start : numpy.datetime64
    lat : ndarray [B]
        Latitude [degrees north].
    hour_weights : sequence of 24 float
        Share of the daily PET in each hour of the day.
    names : list of str, optional
        The basins' names in the warning (default: their column numbers).
    """
    h, b = temp.shape
    pad = np.concatenate([np.repeat(temp[:1], 23, axis=0), temp])  # first hours: fewer values
    windows = np.lib.stride_tricks.sliding_window_view(pad, 24, axis=0)  # [H, B, 24]
    tmax, tmin = _fallback_range(windows, start, names or [f"column {i}" for i in range(b)])
    days = start.astype("datetime64[D]") + np.arange(h) // 24
    doy = (days - days.astype("datetime64[Y]")).astype(int) + 1
    ra = extraterrestrial_radiation(np.asarray(lat, dtype=float), doy)  # [H, B]
    w = np.tile(np.asarray(hour_weights, dtype=float), h // 24)[:, None]
    return hargreaves_from_ra(tmax, tmin, ra) * w


def _fallback_range(windows: np.ndarray, start: np.datetime64,
                    names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Max and min [degC] of trailing windows ``[H, B, 24]`` for Hargreaves, the fallback
    diurnal range around the window mean from each basin's first hour ending
    :data:`~delta_core.bmi.hourly.FLAT_DAYS` flat 24-hour blocks on."""
    tmax, tmin = windows.max(-1), windows.min(-1)
    day = np.pad(tmax - tmin < FLAT_RANGE_C, ((HISTORY_HOURS - 24, 0), (0, 0)))
    flat = np.all([day[k * 24:len(day) - (FLAT_DAYS - 1 - k) * 24]
                   for k in range(FLAT_DAYS)], axis=0)
    flat &= (np.arange(len(tmax)) >= HISTORY_HOURS - 1)[:, None]
    engaged = np.maximum.accumulate(flat, axis=0)
    for j in np.flatnonzero(engaged[-1]):
        first = start + np.timedelta64(int(np.argmax(flat[:, j])) + 1 - HISTORY_HOURS, "h")
        half = 0.5 * FlatTemperature(names[j]).engage(
            "hourly forcing", f"each of the {FLAT_DAYS} days of 24 hours from {first}")
        mid = windows[:, j].mean(-1)
        tmax[:, j] = np.where(engaged[:, j], mid + half, tmax[:, j])
        tmin[:, j] = np.where(engaged[:, j], mid - half, tmin[:, j])
    return tmax, tmin


def write_directory(directory: str | Path, gauge_ids: list[str], start: np.datetime64,
                    prcp: np.ndarray, temp: np.ndarray, pet: np.ndarray | None = None) -> list[Path]:
    """Write hourly forcing ``[H, B]`` (precipitation and PET [mm h-1], temperature [degC])
    as ``DIR/cat-<gauge_id>.csv`` in the form :func:`read_directory` reads (precip_rate in
    mm s-1 and TMP_2maboveground in K, ngen's defaults, with their units in the header;
    ``PET [mm h-1]`` if given). Values are written with 17 significant digits."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    times = np.datetime64(start, "s") + np.arange(prcp.shape[0]) * np.timedelta64(3600, "s")
    stamps = np.datetime_as_string(times).astype(object)
    stamps = np.array([t.replace("T", " ") for t in stamps])
    header = ["time", f"{PRECIP_COLUMN} [mm s-1]", f"{TEMP_COLUMN} [K]"]
    header += [f"{PET_COLUMN} [mm h-1]"] if pet is not None else []
    paths = []
    for j, gid in enumerate(gauge_ids):
        cols = [prcp[:, j] / 3600.0, temp[:, j] + 273.15] + ([pet[:, j]] if pet is not None else [])
        path = directory / f"cat-{gid}.csv"
        tmp = path.with_suffix(".csv.tmp")
        with open(tmp, "w") as f:
            f.write(",".join(header) + "\n")
            body = np.column_stack([np.char.mod("%.17g", c) for c in cols])
            f.writelines(f"{t},{','.join(row)}\n" for t, row in zip(stamps, body))
        tmp.replace(path)
        paths.append(path)
    return paths
