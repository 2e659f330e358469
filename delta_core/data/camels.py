"""Reader for directories in the CAMELS-US daily pack format.

A data directory holds ``basins.csv`` (gauge_id, lat, area, flags), ``attributes.csv`` (static
catchment attributes) and ``timeseries/<gauge_id>.csv.gz`` (daily Daymet forcing and observed
streamflow). Gauge ids are strings (leading zeros matter). The package ships a 5-basin sample
(:data:`SAMPLE_DIR`), so everything works without the full pack.

Quirks handled: tmin > tmax on some days (mean taken as is, range clipped at 0 for PET); missing
streamflow is NaN; Caravan-only flows below 0.005 mm/day read as 0 (kept: the loss adds 1e-6).
"""
from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from delta_core.pet import hargreaves

#: The 5-basin sample shipped with the package (full 1980-2010 series).
SAMPLE_DIR = Path(__file__).resolve().parent / "camels_sample"

FORCING_COLUMNS = ("prcp_mm_day", "tmax_c", "tmin_c")
Q_COLUMN = "qobs_mm_day"


class DataError(ValueError):
    """Raised for missing, malformed or physically impossible input data."""


@dataclass
class BasinTimeseries:
    """Daily forcing and observations of B basins over T days (arrays ``[T, B]``, float64).

    Attributes
    ----------
    gauge_ids : list of str
    dates : ndarray [T] of datetime64[D]
    prcp : precipitation [mm/day]
    tmean : mean air temperature (tmax + tmin) / 2 [degC]
    pet : Hargreaves potential evapotranspiration [mm/day]
    qobs : observed streamflow [mm/day], NaN where missing
    lat : latitude [degrees north], [B]
    area_km2 : catchment area used for mm <-> m3/s (forcing-header area) [km2], [B]
    """

    gauge_ids: list[str]
    dates: np.ndarray
    prcp: np.ndarray
    tmean: np.ndarray
    pet: np.ndarray
    qobs: np.ndarray
    lat: np.ndarray
    area_km2: np.ndarray
    tmax: np.ndarray = field(repr=False, default=None)
    tmin: np.ndarray = field(repr=False, default=None)

    def forcing(self) -> np.ndarray:
        """Model forcing ``[T, B, 3]``: P [mm/day], T [degC], PET [mm/day]."""
        return np.stack([self.prcp, self.tmean, self.pet], axis=-1)

    def slice_dates(self, start: str, end: str) -> "BasinTimeseries":
        """Sub-period from ``start`` to ``end`` inclusive (ISO dates)."""
        i0, i1 = date_index(self.dates, start), date_index(self.dates, end) + 1
        sl = slice(i0, i1)
        return BasinTimeseries(self.gauge_ids, self.dates[sl], self.prcp[sl], self.tmean[sl],
                               self.pet[sl], self.qobs[sl], self.lat, self.area_km2,
                               None if self.tmax is None else self.tmax[sl],
                               None if self.tmin is None else self.tmin[sl])


def date_index(dates: np.ndarray, day: str) -> int:
    """Index of ISO date ``day`` in ``dates``; error if outside."""
    d = np.datetime64(day, "D")
    if d < dates[0] or d > dates[-1]:
        raise DataError(f"date {day} outside the data period {dates[0]}..{dates[-1]}")
    return int((d - dates[0]).astype(int))


def read_basin_list(path: str | Path) -> list[str]:
    """Read gauge ids, one per line (blank lines and '#' comments ignored), kept as strings."""
    ids = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            ids.append(line)
    if not ids:
        raise DataError(f"basin list {path} holds no gauge ids")
    return ids


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class CamelsDataset:
    """A directory in the CAMELS-US daily pack format.

    Parameters
    ----------
    root : path, optional
        Data directory; defaults to the shipped sample.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else SAMPLE_DIR
        for needed in ("basins.csv", "attributes.csv", "timeseries"):
            if not (self.root / needed).exists():
                raise DataError(f"{self.root} is not a CAMELS-format data directory: "
                                f"{needed} is missing")

    @cached_property
    def basins(self) -> dict[str, dict[str, str]]:
        """Rows of basins.csv by gauge id (only basins with a timeseries file)."""
        rows = _read_csv_rows(self.root / "basins.csv")
        return {r["gauge_id"]: r for r in rows
                if (self.root / "timeseries" / f"{r['gauge_id']}.csv.gz").exists()}

    @cached_property
    def _attribute_rows(self) -> dict[str, dict[str, str]]:
        return {r["gauge_id"]: r for r in _read_csv_rows(self.root / "attributes.csv")}

    def basin_ids(self, subset: str | None = None) -> list[str]:
        """Gauge ids with data; ``subset='531_clean'`` keeps the 531-benchmark-list basins
        without area mismatch, ``'no_area_mismatch'`` drops the 15 mismatched ones."""
        ids = sorted(self.basins)
        if subset is None or subset == "all":
            return ids
        flag = lambda i, k: self.basins[i].get(k, "False") == "True"  # noqa: E731
        if subset == "531_clean":
            return [i for i in ids if flag(i, "in_531_benchmark_list")
                    and not flag(i, "area_mismatch_gt10pct")]
        if subset == "no_area_mismatch":
            return [i for i in ids if not flag(i, "area_mismatch_gt10pct")]
        raise DataError(f"unknown basin subset {subset!r}; valid: all, 531_clean, no_area_mismatch")

    def check_basins(self, ids: list[str]) -> None:
        """Raise :class:`DataError` naming any gauge id without data here."""
        unknown = [i for i in ids if i not in self.basins]
        if unknown:
            raise DataError(f"unknown basin(s) {unknown[:10]}{' ...' if len(unknown) > 10 else ''}"
                            f" in {self.root} (gauge ids are strings with leading zeros, "
                            f"e.g. '01022500')")

    def attributes(self, ids: list[str], names: list[str]) -> dict[str, list[str]]:
        """Raw attribute strings ``{name: [value per basin]}`` (empty string = missing)."""
        rows = self._attribute_rows
        missing_basins = [i for i in ids if i not in rows]
        if missing_basins:
            raise DataError(f"basins {missing_basins} have no row in {self.root / 'attributes.csv'}")
        header = next(iter(rows.values())).keys()
        missing = [n for n in names if n not in header]
        if missing:
            raise DataError(f"attribute(s) {missing} not in {self.root / 'attributes.csv'}")
        return {n: [rows[i][n].strip() for i in ids] for n in names}

    def load(self, ids: list[str], start: str | None = None, end: str | None = None,
             ) -> BasinTimeseries:
        """Load forcing and streamflow of ``ids``, computing Hargreaves PET.

        Raises :class:`DataError` for an unknown basin, and for NaN or negative precipitation or
        NaN temperature inside [start, end] (naming basin and date).
        """
        self.check_basins(ids)
        cols = {c: [] for c in FORCING_COLUMNS + (Q_COLUMN,)}
        dates = None
        for gid in ids:
            d, values = _read_timeseries(self.root / "timeseries" / f"{gid}.csv.gz", cols)
            if dates is None:
                dates = d
            elif len(d) != len(dates) or d[0] != dates[0]:
                raise DataError(f"basin {gid} covers {d[0]}..{d[-1]}, others {dates[0]}..{dates[-1]}")
            for c in cols:
                cols[c].append(values[c])
        arr = {c: np.stack(v, axis=1) for c, v in cols.items()}
        lat = np.array([float(self.basins[i]["gauge_lat"]) for i in ids])
        area = np.array([float(self.basins[i]["area_forcing_header_km2"]) for i in ids])
        i0 = 0 if start is None else date_index(dates, start)
        i1 = len(dates) if end is None else date_index(dates, end) + 1
        sl = slice(i0, i1)
        dates = dates[sl]
        prcp, tmax, tmin = arr["prcp_mm_day"][sl], arr["tmax_c"][sl], arr["tmin_c"][sl]
        _check_forcing(ids, dates, prcp, tmax, tmin)
        doy = (dates - dates.astype("datetime64[Y]")).astype(int) + 1
        pet = hargreaves(tmax, tmin, lat, doy)
        return BasinTimeseries(list(ids), dates, prcp, 0.5 * (tmax + tmin), pet,
                               arr[Q_COLUMN][sl], lat, area, tmax, tmin)


def _read_timeseries(path: Path, cols: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    try:
        with gzip.open(path, "rt") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    header = lines[0].split(",")
    missing = [c for c in list(cols) + ["date"] if c not in header]
    if missing:
        raise DataError(f"{path} lacks column(s) {missing}")
    table = np.array([ln.split(",") for ln in lines[1:]])
    dates = table[:, header.index("date")].astype("datetime64[D]")
    if np.any(np.diff(dates).astype(int) != 1):
        raise DataError(f"{path}: dates are not consecutive days")
    out = {}
    for c in cols:
        raw = table[:, header.index(c)]
        out[c] = np.where(raw == "", "nan", raw).astype(np.float64)
    return dates, out


def _check_forcing(ids, dates, prcp, tmax, tmin) -> None:
    for name, a in (("precipitation", prcp), ("tmax", tmax), ("tmin", tmin)):
        bad = np.argwhere(~np.isfinite(a))
        if len(bad):
            t, b = bad[0]
            raise DataError(f"{name} is NaN/inf for basin {ids[b]} on {dates[t]} "
                            f"({len(bad)} bad values in all)")
    bad = np.argwhere(prcp < 0)
    if len(bad):
        t, b = bad[0]
        raise DataError(f"negative precipitation {prcp[t, b]} mm/day for basin {ids[b]} "
                        f"on {dates[t]}")
