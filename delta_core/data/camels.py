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
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from delta_core.pet import hargreaves

#: The 5-basin sample shipped with the package (full 1980-2010 series).
SAMPLE_DIR = Path(__file__).resolve().parent / "camels_sample"

#: Daily forcing columns of the timeseries files that every load reads and checks.
FILE_COLUMNS = ("prcp_mm_day", "tmax_c", "tmin_c")
Q_COLUMN = "qobs_mm_day"

#: Basin subsets :meth:`CamelsDataset.basin_ids` knows by name.
SUBSETS = ("all", "531_clean", "no_area_mismatch", "arid", "humid")


@dataclass(frozen=True)
class ForcingVariable:
    """A forcing variable the reader can serve to a model.

    Attributes
    ----------
    units, long_name : str
    column : str or None
        Timeseries-file column, or None for a derived variable.
    skewed : bool
        Normalised after ``log10(sqrt(x) + 0.1)`` (precipitation-like variables).
    """

    units: str
    long_name: str
    column: str | None = None
    skewed: bool = False


#: Catalogue of daily forcing variables (names a model's spec lists in ``forcings``).
FORCING_VARIABLES: dict[str, ForcingVariable] = {
    "prcp": ForcingVariable("mm d-1", "precipitation (Daymet)", "prcp_mm_day", skewed=True),
    "tmax": ForcingVariable("degC", "daily maximum air temperature (Daymet)", "tmax_c"),
    "tmin": ForcingVariable("degC", "daily minimum air temperature (Daymet)", "tmin_c"),
    "tmean": ForcingVariable("degC", "daily mean air temperature, (tmax + tmin) / 2"),
    "pet": ForcingVariable("mm d-1", "potential evapotranspiration (Hargreaves, from tmax, tmin, "
                           "latitude)", skewed=True),
    "srad": ForcingVariable("W m-2", "daylight-average shortwave radiation (Daymet)", "srad_w_m2"),
    "vp": ForcingVariable("Pa", "water vapour pressure (Daymet)", "vp_pa"),
    "dayl": ForcingVariable("s", "day length (Daymet)", "dayl_s"),
    "era5l_prcp": ForcingVariable("mm d-1", "precipitation (ERA5-Land from Caravan, local days; "
                                  "NaN before 1981 and for a few basins)", "era5l_prcp_mm_day",
                                  skewed=True),
    "era5l_t2m": ForcingVariable("degC", "daily mean 2-m air temperature (ERA5-Land from "
                                 "Caravan; NaN before 1981 and for a few basins)",
                                 "era5l_t2m_mean_c"),
}

#: Forcing sets a run can be trained and evaluated on (``data.forcing_set``): which source the
#: models' precipitation, temperature and Hargreaves PET come from.
FORCING_SETS = {
    "daymet": "CAMELS Daymet basin means (prcp, tmax, tmin; tmean their mean)",
    "era5l": "ERA5-Land (Caravan): precipitation and daily mean temperature; tmax and tmin are "
             "that mean +- half the Daymet diurnal range (ERA5-Land daily data have no range), "
             "so Hargreaves PET sees ERA5-Land's temperature with Daymet's range; where "
             "ERA5-Land is missing (1980, a few basins) the Daymet values are used (warned)",
}


class DataError(ValueError):
    """Raised for missing, malformed or physically impossible input data."""


def check_forcing_names(names) -> None:
    """Raise :class:`DataError` for a name not in :data:`FORCING_VARIABLES`."""
    unknown = [n for n in names if n not in FORCING_VARIABLES]
    if unknown:
        raise DataError(f"unknown forcing variable(s) {unknown}; the CAMELS reader serves "
                        f"{sorted(FORCING_VARIABLES)}")


@dataclass
class BasinTimeseries:
    """Daily forcing and observations of B basins over T days (arrays ``[T, B]``, float64).

    Attributes
    ----------
    gauge_ids : list of str
    dates : ndarray [T] of datetime64[D]
    series : dict name -> ndarray [T, B]
        Forcing variables of :data:`FORCING_VARIABLES` (at least prcp, tmax, tmin, tmean, pet).
    qobs : observed streamflow [mm/day], NaN where missing
    lat : latitude [degrees north], [B]
    area_km2 : catchment area used for mm <-> m3/s (forcing-header area) [km2], [B]
    """

    gauge_ids: list[str]
    dates: np.ndarray
    series: dict[str, np.ndarray] = field(repr=False)
    qobs: np.ndarray = field(repr=False)
    lat: np.ndarray
    area_km2: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.series[name]
        except KeyError:
            check_forcing_names([name])
            raise DataError(f"forcing {name!r} was not loaded; pass it in forcings=") from None

    # the Daymet basics, for convenience
    prcp = property(lambda self: self.series["prcp"], doc="precipitation [mm/day]")
    tmax = property(lambda self: self.series["tmax"], doc="maximum air temperature [degC]")
    tmin = property(lambda self: self.series["tmin"], doc="minimum air temperature [degC]")
    tmean = property(lambda self: self.series["tmean"], doc="(tmax + tmin) / 2 [degC]")
    pet = property(lambda self: self.series["pet"], doc="Hargreaves PET [mm/day]")

    def forcing(self, names) -> np.ndarray:
        """Stacked forcing ``[T, B, F]`` of variables ``names`` in order."""
        return np.stack([self[n] for n in names], axis=-1)

    def slice_dates(self, start: str, end: str) -> "BasinTimeseries":
        """Sub-period from ``start`` to ``end`` inclusive (ISO dates)."""
        sl = slice(date_index(self.dates, start), date_index(self.dates, end) + 1)
        return BasinTimeseries(self.gauge_ids, self.dates[sl],
                               {k: v[sl] for k, v in self.series.items()}, self.qobs[sl],
                               self.lat, self.area_km2)


def date_index(dates: np.ndarray, day: str, what: str = "date") -> int:
    """Index of ISO date ``day`` in ``dates``; :class:`DataError` naming the data period if
    outside."""
    try:
        d = np.datetime64(str(day), "D")
    except ValueError:
        raise DataError(f"{what} {day!r} is not an ISO date YYYY-MM-DD") from None
    if d < dates[0] or d > dates[-1]:
        raise DataError(f"{what} {d} is outside the data period {dates[0]}..{dates[-1]}")
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
        without area mismatch, ``'no_area_mismatch'`` drops the 15 mismatched ones, ``'arid'``
        keeps the basins with CAMELS aridity (PET/P) > 1 and ``'humid'`` the others."""
        ids = sorted(self.basins)
        if subset is None or subset == "all":
            return ids
        flag = lambda i, k: self.basins[i].get(k, "False") == "True"  # noqa: E731
        if subset == "531_clean":
            return [i for i in ids if flag(i, "in_531_benchmark_list")
                    and not flag(i, "area_mismatch_gt10pct")]
        if subset == "no_area_mismatch":
            return [i for i in ids if not flag(i, "area_mismatch_gt10pct")]
        if subset in ("arid", "humid"):
            arid = {i for i in ids if float(self._attribute_rows[i]["aridity"]) > 1.0}
            return [i for i in ids if (i in arid) == (subset == "arid")]
        raise DataError(f"unknown basin subset {subset!r}; valid: {', '.join(SUBSETS)}")

    def resolve_basins(self, spec: str | list[str] | None) -> list[str]:
        """Gauge ids from a user's basin selection, checked against this directory.

        ``spec`` is None (all), a subset name (:data:`SUBSETS`), a list of ids, a comma-separated
        string of ids (``"01022500,01333000"``), a single id, or the path of a file of ids.
        """
        if spec is None or spec in SUBSETS:
            return self.basin_ids(spec)
        if isinstance(spec, (list, tuple)):
            ids = [str(s).strip() for s in spec]
        elif Path(spec).is_file():
            ids = read_basin_list(spec)
        else:
            ids = [s.strip() for s in str(spec).split(",") if s.strip()]
            unknown = [i for i in ids if i not in self.basins]
            if unknown and len(ids) == 1:
                raise DataError(f"--basins {spec!r} is neither a subset ({', '.join(SUBSETS)}), "
                                f"a file of gauge ids, nor a gauge id with data in {self.root}")
        if not ids:
            raise DataError(f"basin selection {spec!r} holds no gauge ids")
        self.check_basins(ids)
        return ids

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
             forcings=(), progress: bool = False, forcing_set: str = "daymet") -> BasinTimeseries:
        """Load forcing and streamflow of ``ids`` from ``start`` to ``end`` (inclusive).

        Always provides prcp, tmax, tmin, tmean and Hargreaves pet, from the ``forcing_set`` of
        :data:`FORCING_SETS`; ``forcings`` names further variables of :data:`FORCING_VARIABLES`
        to read. Raises :class:`DataError` for an unknown basin, date or forcing set, and for NaN
        or negative precipitation or NaN temperature inside [start, end] (naming basin and
        date). ``progress`` shows a bar over the basins.
        """
        if forcing_set not in FORCING_SETS:
            raise DataError(f"unknown forcing set {forcing_set!r}; valid: {sorted(FORCING_SETS)}")
        if forcing_set == "era5l":
            forcings = (*forcings, "era5l_prcp", "era5l_t2m")
        from tqdm import tqdm

        self.check_basins(ids)
        check_forcing_names(forcings)
        extra = [FORCING_VARIABLES[n].column for n in forcings
                 if FORCING_VARIABLES[n].column and FORCING_VARIABLES[n].column not in FILE_COLUMNS]
        cols = {c: [] for c in (*FILE_COLUMNS, *extra, Q_COLUMN)}
        dates = None
        for gid in tqdm(ids, desc=f"loading {len(ids)} basins", disable=not progress,
                        leave=False):
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
        i0 = 0 if start is None else date_index(dates, start, "start date")
        i1 = len(dates) if end is None else date_index(dates, end, "end date") + 1
        if i1 <= i0:
            raise DataError(f"end date {end} is before start date {start}")
        sl = slice(i0, i1)
        dates = dates[sl]
        series = {n: arr[v.column][sl] for n, v in FORCING_VARIABLES.items() if v.column in arr}
        if forcing_set == "era5l":
            _use_era5l(series, ids, dates)
        _check_forcing(ids, dates, series["prcp"], series["tmax"], series["tmin"])
        doy = (dates - dates.astype("datetime64[Y]")).astype(int) + 1
        series["tmean"] = 0.5 * (series["tmax"] + series["tmin"])
        series["pet"] = hargreaves(series["tmax"], series["tmin"], lat, doy)
        return BasinTimeseries(list(ids), dates, series, arr[Q_COLUMN][sl], lat, area)


def _use_era5l(series: dict[str, np.ndarray], ids: list[str], dates: np.ndarray) -> None:
    """Replace the Daymet prcp, tmax and tmin in ``series`` by ERA5-Land's (in place;
    :data:`FORCING_SETS`), Daymet where ERA5-Land is missing (one warning with the count)."""
    p, t = series["era5l_prcp"], series["era5l_t2m"]
    half = 0.5 * np.maximum(series["tmax"] - series["tmin"], 0.0)
    mean = 0.5 * (series["tmax"] + series["tmin"])
    gap = ~np.isfinite(p) | ~np.isfinite(t)
    if gap.any():
        basins = sorted({ids[b] for b in np.flatnonzero(gap.any(axis=0))})
        warnings.warn(f"forcing set era5l: ERA5-Land missing on {int(gap.sum())} basin-days "
                      f"({len(basins)} basin(s), e.g. {basins[:3]}, {dates[gap.any(axis=1)][0]}"
                      f"..{dates[gap.any(axis=1)][-1]}): Daymet used there", stacklevel=3)
    series["prcp"] = np.where(gap, series["prcp"], p)
    t = np.where(gap, mean, t)
    series["tmax"], series["tmin"] = t + half, t - half


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
