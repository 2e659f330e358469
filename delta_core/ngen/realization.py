"""Write NextGen realizations and per-catchment BMI configs for any δ model: the generic engine
of ``dhbv-realization`` (each model binds it with a :class:`ModelBinding`: its BMI class, the
forcing columns of its inputs, its output columns and its own options).

Catchment rows (id, latitude, area, attributes) come from one of:

* ``--table CSV``: one row per catchment with an id column (``--id-column``, default: the first
  of id, catchment_id, divide_id, gauge_id), latitude (lat, latitude, gauge_lat), area (area_km2,
  areasqkm, area_gages2) and every attribute the bundle needs; ``--catchments`` may supply
  missing areas/latitudes from a hydrofabric geojson;
* ``--camels ID ...``: basins of a CAMELS-format data directory (``--data``, default the
  shipped sample). Also writes ``<out>/catchment_data.geojson`` and ``<out>/nexus_data.geojson``
  (see below); ``--write-forcing`` writes forcing CSVs for start..end (hourly or daily, see
  below) and ``--spinup-start`` spin-up CSVs at the model's step up to the day before start;
* ``--catchments GEOJSON --stand-in GAUGE``: the geojson's catchments (areasqkm; latitude of the
  polygon's centroid) with the attributes of CAMELS basin GAUGE as a documented stand-in; the
  geojson, ``nexus_data.geojson`` beside it and the catchments' forcing files (``--forcing-path``
  beside it) are copied into ``--out``, which is then self-contained;
* ``--hydrofabric GPKG|GEOJSON`` with ``--table CSV`` or ``--stand-in GAUGE``: the divides of a
  NextGen hydrofabric (:mod:`delta_core.ngen.hydrofabric`: layers ``divides`` and ``nexus``,
  EPSG:5070 inverse-projected), each with its own area (``areasqkm``, else its polygon's area)
  and centroid latitude; attributes from the table (rows by catchment id, or one row for all;
  its area/latitude columns are NOT used, and a disagreement above 10 % is warned about) or from
  the stand-in basin. Also writes ``<out>/catchment_data.geojson`` and
  ``<out>/nexus_data.geojson`` (CRS84) from the hydrofabric.

``--stand-in`` reads only ``attributes.csv`` of the CAMELS directory: the basin needs no forcing
time series there. Every source's latitudes must lie in [-90, 90] degrees (a projected coordinate
is refused) and its areas be > 0.

**Spin-up** (hourly steps): by default each config cycles its catchment's own run forcing
(``spinup: {forcing: ../forcing/<file>}``, see the BMIs' ``spinup`` key), or each catchment's
file in ``--spinup-forcing DIR``; ``--spinup-forcing FILE`` runs a spin-up CSV once,
``--cold-start`` writes none. Every path written is checked (existing, readable, relative to the
config folder), and a run forcing that does not cover ``--start``..``--end`` is refused (ngen
aborts at the first missing step).

Writes ``<out>/config/<id>.yaml`` and ``<out>/realization.json`` (``python_type`` the model's BMI
class, main output ``land_surface_water__runoff_depth``). Hourly mode maps the BMI inputs to
ngen's AORC forcing columns (``precip_rate``, ``TMP_2maboveground``); daily mode to the columns of
the daily CSVs ``--write-forcing`` writes (``prcp [mm d-1]``, ``tmean``/``tmax``/``tmin``
``[degC]``). ``--map NAME=COLUMN`` overrides single entries.

**CAMELS forcing CSVs** (``--camels --write-forcing``), from the basin's daily Daymet series:

* ``--time-step 86400``: one row per day, ``time,prcp [mm d-1],tmean [degC],tmax [degC],
  tmin [degC]`` (for the replay driver; ngen's CsvPerFeature reader assumes hourly rows).
* ``--time-step 3600``: an hourly AORC-style CSV, ``time,precip_rate,TMP_2maboveground`` in
  ngen's default units (mm s-1, K), 24 rows per day (``YYYY-MM-DD HH:00:00``, hours 0..23). This
  is a **synthetic stand-in for real hourly forcing**, built so that the BMI in hourly mode sees
  exactly the daily forcing of the daily model:

  - precipitation is spread evenly over the day: ``precip_rate = P_day / 86400`` mm s-1 every
    hour (ngen converts to mm h-1; the BMI sums the 24 hours back to ``P_day``), or with
    ``--rain-block START_HOUR HOURS`` evenly over those hours (the hourly-native dCFE and dLGAR
    respond to rain intensity: their bundles were trained with rain in 6 h from 12:00);
  - temperature follows a cosine diurnal cycle,
    ``T(h) = tmean + a * cos(2 pi (h - 15) / 24) + 273.15`` K with ``a = max(tmax - tmin, 0)/2``:
    maximum ``tmean + a`` at hour 15, minimum ``tmean - a`` at hour 3, and the 24-sample mean of
    the cosine is 0. The BMI's hourly mode takes the day's temperature as the mean of the 24
    hourly values (= ``tmean``) and the Hargreaves max/min as their max/min (``tmean +- a``), and
    Hargreaves uses only ``(max + min)/2`` (= ``tmean``) and ``max - min`` (= ``tmax - tmin``).
    Since Daymet ``tmean = (tmax + tmin)/2``, the hourly max/min are exactly the Daymet
    ``tmax``/``tmin``, and the hourly run reproduces the daily model day by day (each day's 24
    hourly runoff depths sum to the daily value, to rounding). On the rare days with
    ``tmin > tmax`` in the data, ``a = 0`` (a flat day at ``tmean``); Hargreaves PET is then 0 in
    both modes (the daily model clips the range at 0 too).

  The true within-day timing of rain and temperature is unknown here; replace the file with real
  hourly forcing (e.g. AORC) for anything beyond checking the set-up.

**NOAA modules** (``--engine noaa``, :mod:`delta_core.ngen.noaa`): instead of BMI configs, a
static bundle's learned parameters as each catchment's config of the model's NOAA-OWP C/C++
module (C CFE, LGAR-C) and a realization running it through ngen's ``bmi_c``/``bmi_c++``
formulation after SLoTH; what the module cannot express (dynamic parameters, Hargreaves PET,
snow, spin-up) is refused in one line.

**CAMELS geojson** (``--camels``): ``catchment_data.geojson`` with one feature per basin, id
``cat-<gauge id>`` (ngen's ``{{id}}``; ngen treats only ids starting with ``cat-``, ``wb-`` or
``agg-`` as catchments), properties ``areasqkm`` (``area_forcing_header_km2``) and
``toid`` ``nex-<gauge id>``, and a **placeholder** geometry: a small square (``PLACEHOLDER_HALF_SIDE_DEG``
around the gauge); the basin outline is not in the data pack, and ngen needs only the ids, areas
and links. ``nexus_data.geojson`` holds the terminal nexus ``nex-<id>`` (a Point at the gauge,
``toid`` empty: nothing downstream).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import yaml

from delta_core.cli import backend_type
from delta_core.console import one_line_warnings
from delta_core.fileio import atomic_write_text
from delta_core.ngen import noaa
from delta_core.ngen.crosswalk import (PET, PRECIP, RUNOFF_DEPTH, SUM_COLUMNS, TEMP, TMAX,
                                      TMIN, catchment_id, check_catchment_id)
from delta_core.ngen.hydrofabric import (Hydrofabric, HydrofabricWarning, check_area,
                                        check_latitude, geojson_centroid_latitude,
                                        read_hydrofabric, write_feature_collection)

if TYPE_CHECKING:
    from delta_core.spec import Variable

#: BMI input -> forcing column: hourly (ngen's AORC columns) and daily (our daily CSVs).
HOURLY_MAP = {PRECIP: "precip_rate", TEMP: "TMP_2maboveground"}
DAILY_MAP = {PRECIP: "prcp", TEMP: "tmean", TMAX: "tmax", TMIN: "tmin"}


@dataclass(frozen=True)
class ModelBinding:
    """What the realization writer needs to know of one model.

    Attributes
    ----------
    model : str
        Registry name (default bundle and attribute list from its spec).
    prog : str
        Console-script name.
    model_type_name, python_type : str
        ngen's ``model_type_name`` and the BMI class ``package.module.Class``.
    inputs : callable(time_step, args) -> {BMI input: forcing column}
        The ``variables_names_map`` for a time step and the parsed options.
    spinup_columns : dict
        Spin-up CSV column -> data variable (``prcp``, ``tmax``...) for ``--spinup-start``.
    spinup_step : int
        Row step of the spin-up CSV [s]: the model's step (86400: daily data as is; 3600: hourly
        rows synthesised like the hourly forcing, ``prcp`` in mm per hour, ``tmean`` the hour's
        temperature).
    pet_source : str or None
        The ``pet_source`` written into every config without ``--pet-source`` (None: no key,
        the BMI's default). A BMI with a ``pet_source`` key
        (:attr:`~delta_core.bmi.adapter.NgenBmi.HARGREAVES_FROM`) gets ``--pet-source``.
    attributes : tuple of str, callable(args) -> tuple of str or None, or None
        The catchment attributes the configs carry, for a model whose parameters need not come
        from a weight bundle (None: the bundle's, see :func:`needed_attributes`; a callable
        decides from the parsed options).
    bundle_help : str
        Help of ``--bundle`` (what the configs run without it).
    backends : tuple of str
        The BMI's ``backend`` values (``--backend`` choices; the first is the default).
    bmi_class : type or None
        The BMI class (its ``default_bundle_for(time_step)`` names the bundle a config without
        ``bundle`` runs, in the writer's output line).
    default_bundle : str or None
        The ``bundle`` value written without ``--bundle`` (None: no key, the BMI's default).
    no_bundle : str or None
        What a config without a bundle runs, for a model that can (``--bundle none``); None:
        the model always runs a bundle.
    noaa : NoaaModule or None
        The NOAA C/C++ module of ``--engine noaa`` (:mod:`delta_core.ngen.noaa`); None: the
        model has none.
    """

    model: str
    prog: str
    model_type_name: str
    python_type: str
    inputs: Callable
    spinup_columns: dict
    spinup_step: int = 86400
    pet_source: str | None = None
    attributes: tuple[str, ...] | Callable | None = None
    bundle_help: str = "weight bundle written into the configs (default: shipped)"
    backends: tuple[str, ...] = ("cpp", "torch")
    bmi_class: type | None = None
    default_bundle: str | None = None
    no_bundle: str | None = None
    noaa: object | None = None


#: ``--bundle`` value of a config without a bundle (models with :attr:`ModelBinding.no_bundle`).
NO_BUNDLE = "none"

ID_COLUMNS = ("id", "catchment_id", "divide_id", "gauge_id")
LAT_COLUMNS = ("latitude", "lat", "gauge_lat")
AREA_COLUMNS = ("area_km2", "areasqkm", "area_gages2")


def needed_attributes(bundle: str | Path | list | None, model: str) -> list[str]:
    """Attributes the bundle needs (every member's, in order, for an ensemble's list; the 35
    CAMELS attributes if no bundle is available)."""
    from delta_core.bundle import load_bundle, shipped_or_given
    from delta_core.config import CAMELS_ATTRIBUTES
    from delta_core.registry import model_spec

    if isinstance(bundle, list):
        names = [n for b in bundle for n in needed_attributes(b, model)]
        return list(dict.fromkeys(names))
    path = shipped_or_given(bundle, Path("."), model) if bundle else \
        model_spec(model).default_bundle
    if path is None or bundle is None and not path.is_file():
        return list(CAMELS_ATTRIBUTES)
    return list(load_bundle(path)["normalization"]["attributes"]["names"])


def realization_outputs(model: str, bundle: str | list | None) -> list[Variable]:
    """The outputs a realization lists: the model's CSV outputs; for an ensemble (a list of
    bundles) those its BMI reports (with members of other models, the runoff and the non-flow
    outputs that every member's model declares alike) and the members' spread."""
    from delta_core.bmi.ensemble import ensemble_outputs, shared_names
    from delta_core.bundle import load_bundle, shipped_or_given

    outputs = csv_outputs(model)
    if not isinstance(bundle, list):
        return outputs
    models = sorted({load_bundle(shipped_or_given(b, Path("."), model))["model"]
                     for b in bundle})
    return ensemble_outputs(outputs, shared_names(models) if len(models) > 1 else None)


def geojson_catchments(path: str | Path) -> dict[str, dict]:
    """``{id: {"area_km2", "latitude", "toid"}}`` from a catchment geojson (latitude: the
    polygon's area centroid, :func:`~delta_core.ngen.hydrofabric.geojson_centroid_latitude`)."""
    d = json.loads(Path(path).read_text())
    out = {}
    for f in d["features"]:
        props = f.get("properties", {})
        cid = f.get("id") or props.get("id")
        out[cid] = {"area_km2": props.get("areasqkm"),
                    "latitude": geojson_centroid_latitude(f.get("geometry")),
                    "toid": props.get("toid")}
    return out


def copy_catchment_inputs(catchments: str | Path, ids: list[str], out: Path,
                          forcing_path: str, file_pattern: str) -> list[str]:
    """Make ``out`` self-contained for ``--catchments``: copy the catchment geojson to
    ``out/catchment_data.geojson``, ``nexus_data.geojson`` from beside it, and the forcing files
    of ``ids`` (``file_pattern``) from ``<its folder>/<forcing_path>`` to ``out/<forcing_path>``.

    Returns
    -------
    list of str
        The ids without a forcing file (ngen would abort on them: put their forcing there).
    """
    src = Path(catchments)
    pairs = [(src, out / "catchment_data.geojson"),
             (src.parent / "nexus_data.geojson", out / "nexus_data.geojson")]
    fsrc, fdst = src.parent / forcing_path, out / forcing_path
    lacking = []
    for cid in ids:
        pattern = re.compile(file_pattern.replace("{{id}}", re.escape(cid)))
        found = sorted(p for p in fsrc.iterdir() if pattern.fullmatch(p.name)) \
            if fsrc.is_dir() else []
        pairs += [(p, fdst / p.name) for p in found]
        if not found and not (fdst.is_dir() and any(pattern.fullmatch(p.name)
                                                    for p in fdst.iterdir())):
            lacking.append(cid)
    for a, b in pairs:
        if a.is_file() and (not b.exists() or not b.samefile(a)):
            b.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(a, b)
    return lacking


def _pick(row: dict, names, what: str, cid: str):
    for n in names:
        if row.get(n) not in (None, ""):
            return row[n]
    raise ValueError(f"catchment {cid}: no {what} (looked for columns {list(names)})")


def rows_from_table(path, id_column, need, geo) -> list[dict]:
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    if not table:
        raise ValueError(f"{path} has no rows")
    idc = id_column or next((c for c in ID_COLUMNS if c in table[0]), None)
    if idc is None:
        raise ValueError(f"{path}: no id column (looked for {list(ID_COLUMNS)}; use --id-column)")
    missing = [a for a in need if a not in table[0]]
    if missing:
        raise ValueError(f"{path} lacks attribute column(s) {missing} the bundle needs")
    rows = []
    for r in table:
        cid = r[idc].strip()
        g = (geo or {}).get(cid, {})
        lat = r.get(next((c for c in LAT_COLUMNS if r.get(c)), ""), None) or g.get("latitude")
        area = r.get(next((c for c in AREA_COLUMNS if r.get(c)), ""), None) or g.get("area_km2")
        if lat is None or area is None:
            raise ValueError(f"catchment {cid}: latitude/area missing from {path} and geojson")
        rows.append({"id": cid, "latitude": float(lat), "area_km2": float(area),
                     "attributes": {a: _value(r[a]) for a in need}})
    return rows


def rows_from_camels(ids, root, need) -> list[dict]:
    from delta_core.data.camels import CamelsDataset

    ds = CamelsDataset(root)
    ds.check_basins(ids)
    attrs = ds.attributes(ids, need)
    return [{"id": catchment_id(gid), "gauge_id": gid,
             "latitude": float(ds.basins[gid]["gauge_lat"]),
             "area_km2": float(ds.basins[gid]["area_forcing_header_km2"]),
             "attributes": {a: _value(attrs[a][i]) for a in need}}
            for i, gid in enumerate(ids)]


def stand_in_attributes(gauge: str, root, need) -> dict:
    """Attributes ``{name: value}`` of CAMELS basin ``gauge`` from ``<root>/attributes.csv``
    alone (default root: the shipped sample): a stand-in needs no forcing time series.

    Raises
    ------
    ValueError
        No ``attributes.csv``, no row for ``gauge``, or a needed attribute missing.
    """
    from delta_core.data.camels import SAMPLE_DIR

    path = (Path(root) if root is not None else SAMPLE_DIR) / "attributes.csv"
    if not path.is_file():
        raise ValueError(f"--stand-in {gauge}: {path} does not exist (the stand-in's attributes "
                         f"are read from the CAMELS directory's attributes.csv)")
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    row = next((r for r in table if str(r.get("gauge_id", "")).strip() == str(gauge).strip()),
               None)
    if row is None:
        raise ValueError(f"--stand-in {gauge}: no row for this basin in {path} (gauge ids are "
                         f"strings with leading zeros, e.g. '01022500')")
    missing = [a for a in need if a not in row]
    if missing:
        raise ValueError(f"--stand-in {gauge}: attribute(s) {missing} not in {path}")
    return {a: _value(str(row[a]).strip()) for a in need}


def hydrofabric_rows(hf: Hydrofabric, attributes: dict[str, dict]) -> list[dict]:
    """Rows of the divides of ``hf``: their own centroid latitude [degrees] and area [km2] and
    the attributes ``{divide id: {name: value}}``."""
    return [{"id": cid, "latitude": d.latitude, "area_km2": d.area_km2,
             "attributes": dict(attributes[cid])} for cid, d in hf.divides.items()]


def table_attributes(path, id_column, need, hf: Hydrofabric) -> tuple[dict[str, dict], bool]:
    """Attributes per divide of ``hf`` from a CSV: a row per divide (matched by ``cat-N``, the
    divide's flowpath ``wb-N`` or the bare ``N``) or a single row for all divides.

    The table's area and latitude columns are not used: where they disagree with the
    hydrofabric's per-divide values by more than 10 %, a :class:`HydrofabricWarning` says so.

    Returns
    -------
    attributes : dict
        ``{divide id: {name: value}}``.
    one_for_all : bool
        Whether a single row was applied to every divide.
    """
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    if not table:
        raise ValueError(f"{path} has no rows")
    header = list(table[0])
    missing = [a for a in need if a not in header]
    if missing:
        raise ValueError(f"{path} lacks attribute column(s) {missing} the bundle needs")
    if id_column and id_column not in header:
        raise ValueError(f"{path}: --id-column {id_column!r} is not a column ({header})")
    idc = id_column or next((c for c in ID_COLUMNS if c in header), None)
    index = {str(r[idc]).strip(): r for r in table} if idc else {}
    matched = {}
    for cid, d in hf.divides.items():
        keys = (cid, d.flowpath, cid.split("-", 1)[1])
        row = next((index[k] for k in keys if k and k in index), None)
        if row is not None:
            matched[cid] = row
    one_for_all = len(table) == 1 and not matched
    if one_for_all:
        matched = {cid: table[0] for cid in hf.divides}
    else:
        _check_table_coverage(path, idc, len(table), index, matched, hf)
    _warn_table_geometry(path, header, matched, hf, need)
    return {cid: {a: _value(r[a]) for a in need} for cid, r in matched.items()}, one_for_all


def _check_table_coverage(path, idc, n_rows: int, index, matched, hf: Hydrofabric) -> None:
    """Refuse a multi-row table without an id column or without a row for some divide."""
    if idc is None:
        raise ValueError(f"{path} has {n_rows} rows but no id column "
                         f"(looked for {list(ID_COLUMNS)}; use --id-column) to match them to "
                         f"the hydrofabric's divides; a single row applies to all divides")
    lacking = [cid for cid in hf.divides if cid not in matched]
    if lacking:
        raise ValueError(f"{path}: no row for divide(s) {lacking[:10]}"
                         f"{' ...' if len(lacking) > 10 else ''} of {hf.source} (column "
                         f"{idc!r} holds e.g. {list(index)[:3]}; ids are matched as cat-N, "
                         f"wb-N or N)")


def _warn_table_geometry(path, header, matched: dict, hf: Hydrofabric, need) -> None:
    """Warn where the table's area/latitude columns disagree (> 10 %) with the hydrofabric."""
    for what, cols, unit in (("area", AREA_COLUMNS, "km2"), ("latitude", LAT_COLUMNS, "deg")):
        col = next((c for c in cols if c in header), None)
        if col is None:
            continue
        bad = []
        for cid, r in matched.items():
            try:
                t = float(r[col])
            except (TypeError, ValueError):
                continue
            h = hf.divides[cid].area_km2 if what == "area" else hf.divides[cid].latitude
            if abs(t - h) > 0.1 * abs(h):
                bad.append(f"{cid}: {t:g} vs {h:.6g} {unit}")
        if bad:
            still = (f"; {col!r} is still passed to the model as the attribute the bundle "
                     f"needs" if col in need else "")
            warnings.warn(
                f"{path}: column {col!r} disagrees by more than 10% with the hydrofabric's "
                f"per-divide {what} for {len(bad)} of {len(matched)} divide(s) "
                f"({'; '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}); the hydrofabric's "
                f"values are used as the catchments' {what} (a gauge's basin {what} is not a "
                f"divide's){still}", HydrofabricWarning, stacklevel=3)


def check_rows(rows: list[dict], source: str = "the catchments") -> None:
    """Refuse what ngen refuses: ids without a ``cat-``/``wb-``/``agg-`` prefix, latitudes
    outside [-90, 90] degrees and areas not > 0 (``source``: where the rows come from)."""
    for r in rows:
        check_catchment_id(r["id"], source)
        r["latitude"] = check_latitude(r["latitude"], f"catchment {r['id']}")
        r["area_km2"] = check_area(r["area_km2"], f"catchment {r['id']}")


def _value(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return str(s).strip()


#: Rain [mm per 30 days] that the wettest month of a forcing file (a shorter file: its whole
#: period, scaled to 30 days) must reach when its precipitation column is not all 0: less
#: suggests a unit error (ngen's example ``precip_rate`` read in its default mm s-1 instead of
#: its true m s-1 gives 0.22 mm for December 2015, 1000 times too little).
MIN_MONTHLY_RAIN_MM = 1.0
#: At most this many catchments' forcing files are read for that check (a unit error is the
#: same in every file of one source; reading thousands of files would slow the writer).
MAX_RAIN_CHECK_FILES = 20


def wettest_month_mm(path: Path, column: str) -> tuple[float, str, str, str] | None:
    """Rain of the wettest calendar month of a forcing CSV, per 30 days [mm] (a partial month
    scaled to 30 days), that month (``YYYY-MM``), the column and its unit; None if the column
    is all 0, or the file, the column or its unit is unusable (the replay and ngen report
    those)."""
    from delta_core.ngen.crosswalk import convert
    from delta_core.ngen.replay import CsvForcing

    try:
        forcing = CsvForcing(path)
        col = forcing.resolve(column)
        x, unit = np.nan_to_num(forcing.columns[col]), forcing.units[col]
        depth = (convert(x, unit, "mm") if col in SUM_COLUMNS
                 else convert(x, unit, "mm s-1") * forcing.row_seconds)
    except ValueError:  # ReplayError included
        return None
    if not np.any(x > 0):
        return None
    months = forcing.times.astype("datetime64[M]")
    per_30_days = {str(m): depth[months == m].sum() * 30.0 * 86400.0
                   / (np.count_nonzero(months == m) * forcing.row_seconds)
                   for m in np.unique(months)}
    wettest = max(per_30_days, key=per_30_days.get)
    return float(per_30_days[wettest]), wettest, col, unit


def check_forcing_rain(folder: Path, ids: list[str], file_pattern: str,
                       column: str | None) -> None:
    """Warn once when the forcing files of (up to :data:`MAX_RAIN_CHECK_FILES`) catchments in
    ``folder`` have less than :data:`MIN_MONTHLY_RAIN_MM` of rain in their wettest month,
    naming the first such file, its column, unit and total."""
    if column is None or not folder.is_dir():
        return
    names = sorted(folder.iterdir())
    files = [p for cid in ids[:MAX_RAIN_CHECK_FILES] for p in names
             if re.fullmatch(file_pattern.replace("{{id}}", re.escape(cid)), p.name)]
    low = []
    for path in files:
        got = wettest_month_mm(path, column)
        if got is not None and got[0] < MIN_MONTHLY_RAIN_MM:
            low.append((path, *got))
    if low:
        path, mm, month, col, unit = low[0]
        warnings.warn(f"{path}: column {col!r} read in {unit} gives {mm:.3g} mm of rain per 30 "
                      f"days in its wettest month {month} ({len(low)} of {len(files)} forcing "
                      f"file(s) checked below {MIN_MONTHLY_RAIN_MM:g} mm): a unit error? Write the "
                      f"column's true unit in its header, e.g. '{col} [m s-1]' for ngen's "
                      f"example forcing", stacklevel=3)


#: Defaults of the cycled spin-up the writers configure (``--spinup-years``,
#: ``--spinup-max-cycles``).
SPINUP_YEARS = 1
SPINUP_MAX_CYCLES = 10


def forcing_files(ids: list[str], folders: list[Path], file_pattern: str) -> dict[str, Path]:
    """``{id: file}`` of the catchments that have a forcing file matching ``file_pattern``
    (``{{id}}`` replaced) in the first of ``folders`` that holds one."""
    listings = [sorted(p for p in f.iterdir() if p.is_file()) if f.is_dir() else []
                for f in folders]
    out = {}
    for cid in ids:
        regex = re.compile(file_pattern.replace("{{id}}", re.escape(cid)))
        found = next((p for names in listings for p in names if regex.fullmatch(p.name)), None)
        if found is not None:
            out[cid] = found
    return out


def check_forcing_unique(ids: list[str], folders: list[Path], file_pattern: str) -> None:
    """ValueError if ``file_pattern`` matches several files of a catchment in one of ``folders``
    (``.*{{id}}.*.csv`` matches cat-10.csv for cat-1): ngen reads whichever file the directory
    lists first, so the catchment may run on another one's forcing."""
    listings = [sorted(p.name for p in f.iterdir() if p.is_file()) for f in folders if f.is_dir()]
    for cid in ids:
        regex = re.compile(file_pattern.replace("{{id}}", re.escape(cid)))
        for names in listings:
            found = [n for n in names if regex.fullmatch(n)]
            if len(found) > 1:
                raise ValueError(f"forcing file pattern {file_pattern!r} matches {len(found)} "
                                 f"files for {cid} ({', '.join(found[:3])}): ngen reads "
                                 f"whichever the directory lists first; give --file-pattern "
                                 f"'{{{{id}}}}.csv' or another that matches one file")


def forcing_span(path: Path) -> tuple[dt.datetime, dt.datetime, dt.timedelta]:
    """First and last time [interval-beginning] of a CsvPerFeature file's ``time`` column and
    its row step (one hour for a single row); ValueError naming the file if it has no time
    column or no rows."""
    with open(path, newline="") as f:
        header = next(csv.reader([f.readline()]), [])
        lines = [f.readline(), f.readline()]
        last = lines[1] if lines[1].strip() else lines[0]
        for line in f:
            if line.strip():
                last = line
    col = next((i for i, h in enumerate(header) if h.strip().lower() in ("time", "date")), None)
    if col is None or not lines[0].strip():
        raise ValueError(f"{path}: no 'time' column or no data rows; ngen's CsvPerFeature "
                         f"forcing needs a time column and hourly rows")
    try:
        t = [_parse_datetime(next(csv.reader([x]))[col], f"{path}: time")
             for x in (lines[0], lines[1] if lines[1].strip() else lines[0], last)]
    except IndexError:
        raise ValueError(f"{path}: a row lacks the time column") from None
    return t[0], t[2], (t[1] - t[0]) or dt.timedelta(hours=1)


def check_forcing_period(files: dict[str, Path], start: str, end: str) -> None:
    """Refuse (ValueError, one line naming the file, its period, the run's and the fix) a
    forcing file that does not cover ``start``..``end`` (its last row covers one row step):
    ngen aborts at the first missing step ("Forcing had bad index")."""
    t0, t1 = _parse_datetime(start, "--start"), _parse_datetime(end, "--end")
    for cid, path in files.items():
        first, last, step = forcing_span(path)
        if first > t0 or t1 >= last + step:
            raise ValueError(f"{path}: the forcing of {cid} covers {first} .. {last}, but the "
                             f"run needs {t0} .. {t1} (--start/--end), and ngen aborts at the "
                             f"first missing step: run within the forcing's period or extend "
                             f"the forcing")


def config_relative(path: Path, out: Path) -> str:
    """``path`` as written into ``out/config/<id>.yaml``: relative to the config folder (where
    the BMI resolves it) when it lies inside ``out``, else absolute."""
    path, out = Path(os.path.abspath(path)), Path(os.path.abspath(out))
    if path.is_relative_to(out):
        return os.path.relpath(path, out / "config")
    return str(path)


def _given_spinup(value: str, out: Path) -> Path:
    """The file or folder ``--spinup-forcing`` names: absolute, relative to the current
    directory, or (earlier writers' meaning) relative to ``out/config``."""
    p = Path(value).expanduser()
    tried = [p] if p.is_absolute() else [Path.cwd() / p, out / "config" / p]
    for c in tried:  # normalised: config/ may not exist yet
        if Path(os.path.normpath(c)).exists():
            return Path(os.path.normpath(c))
    raise ValueError(f"--spinup-forcing {value} does not exist (looked for "
                     f"{' and '.join(str(c) for c in tried)}): give an existing spin-up CSV or "
                     f"a directory of hourly forcing files, or --cold-start")


def check_spinup_files(files: dict[str, Path], years: int, need_pet: bool) -> None:
    """Refuse a cycled spin-up file the BMI would refuse at initialize (ngen exit 134): unread-
    able, or (the first :data:`MAX_RAIN_CHECK_FILES`) not in the form
    :func:`delta_core.hourly_forcing.read_file` reads, or without PET where PET is an input.
    Warn once when files hold less than ``years`` years (the BMI then cycles all of them)."""
    from delta_core.hourly_forcing import HourlyForcingError, read_file

    short = []
    for i, (cid, path) in enumerate(files.items()):
        first, last, _ = forcing_span(path)
        if i < MAX_RAIN_CHECK_FILES:
            try:
                pet = read_file(path)[3]
            except HourlyForcingError as exc:
                raise ValueError(f"spin-up forcing of {cid}: {exc}; the BMI would refuse it at "
                                 f"initialize: fix it, give --spinup-forcing DIR or "
                                 f"--cold-start") from None
            if need_pet and pet is None:
                raise ValueError(f"spin-up forcing of {cid}: {path} has no 'PET [mm h-1]' "
                                 f"column, but the configs take PET as an input: add it, give "
                                 f"--spinup-forcing DIR or --cold-start")
        days = (last - first).total_seconds() / 86400.0 + 1.0 / 24.0
        if days < 365.0 * years:
            short.append((path, days))
    if short:
        path, days = short[0]
        warnings.warn(f"{path}: {days:.0f} days of forcing, fewer than --spinup-years {years} "
                      f"({len(short)} of {len(files)} spin-up file(s)): the BMI cycles all of "
                      f"it; give --spinup-forcing DIR with a longer record for a better start",
                      stacklevel=3)


def _warn_spinup_columns(names_map: dict) -> None:
    """Warn when the run reads precipitation or temperature from other columns than the cycled
    spin-up does (``precip_rate``, ``TMP_2maboveground``: :mod:`delta_core.hourly_forcing`)."""
    from delta_core.hourly_forcing import PRECIP_COLUMN, TEMP_COLUMN
    from delta_core.ngen.crosswalk import NGEN_FORCINGS

    for var, col in ((PRECIP, PRECIP_COLUMN), (TEMP, TEMP_COLUMN)):
        mapped = names_map.get(var, col)
        if mapped not in (col, NGEN_FORCINGS[col][0]):
            warnings.warn(f"the run reads {var} from column {mapped!r}, the cycled spin-up from "
                          f"{col!r} of the same files: give them the same values, or "
                          f"--spinup-forcing DIR / --cold-start", stacklevel=4)


def spinup_settings(args, ids: list[str], out: Path, run_files: dict[str, Path],
                    names_map: dict) -> tuple[dict | None, dict | None]:
    """The spin-up of every config: ``(spinup_forcing by id, spinup mapping by id)``.

    ``--spinup-forcing FILE``: that CSV (rows run once) for every catchment; ``--spinup-forcing
    DIR``: each catchment's hourly file there (``--file-pattern``), cycled; by default with
    hourly steps, each catchment's own run forcing, cycled (catchments without one start cold,
    warned). Every path is checked and written relative to the config folder."""
    if args.cold_start:
        if args.spinup_forcing or args.spinup_start:
            raise ValueError("--cold-start excludes --spinup-forcing and --spinup-start")
        return None, None
    if args.spinup_start:
        return None, None
    if args.spinup_forcing:
        given = _given_spinup(args.spinup_forcing, out)
        if given.is_file():
            return {cid: config_relative(given, out) for cid in ids}, None
        files = forcing_files(ids, [given], args.file_pattern)
        lacking = [cid for cid in ids if cid not in files]
        if lacking:
            raise ValueError(f"--spinup-forcing {args.spinup_forcing}: no file matching "
                             f"{args.file_pattern!r} for {lacking[:5]}"
                             f"{' ...' if len(lacking) > 5 else ''} in {given}: give one hourly "
                             f"forcing file per catchment there")
        targets = dict(files)
    else:
        if args.time_step != 3600:
            return None, None
        files = dict(run_files)
        targets = {cid: out / args.forcing_path / p.name for cid, p in files.items()}
        lacking = [cid for cid in ids if cid not in files]
        if lacking:
            warnings.warn(f"no run forcing for {lacking[:5]}{' ...' if len(lacking) > 5 else ''}"
                          f" in {out / args.forcing_path}: their configs start cold (no spin-up);"
                          f" put the forcing there and write the realization again, or give "
                          f"--spinup-forcing DIR", stacklevel=3)
    if args.time_step != 3600:
        raise ValueError("--spinup-forcing DIR cycles hourly forcing: use --time-step 3600, or "
                         "give a spin-up CSV at the model's step")
    check_spinup_files(files, args.spinup_years, PET in names_map)
    _warn_spinup_columns(names_map)
    return None, {cid: {"forcing": config_relative(targets[cid], out),
                        "years": args.spinup_years, "max_cycles": args.spinup_max_cycles}
                  for cid in files}


#: Half side [degrees] of the placeholder square written as a CAMELS basin's geometry.
PLACEHOLDER_HALF_SIDE_DEG = 0.01
#: Hour of the day of the synthetic diurnal temperature maximum (the minimum is 12 h earlier).
DIURNAL_PEAK_HOUR = 15


def hourly_from_daily(prcp, tmean, tmax, tmin,
                      rain_block: tuple[int, int] | None = None, rain=None,
                      gauge: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Synthetic hourly forcing ``[n_days, 24]`` from daily series (see the module docstring):
    ``precip_rate`` [mm s-1] = P/86400 every hour, or with ``rain_block = (start_hour, hours)``
    P spread evenly over those hours of the day (the δ models' training scheme, e.g. (12, 6)),
    or by a :class:`~delta_core.patterns.WithinDay` ``rain`` (stochastic storms drawn from its
    seed and ``gauge``, in data days that begin ``-rain.day_start_hour`` hours before midnight:
    the first day's early storms fall before the file, its last hours are dry);
    ``TMP_2maboveground`` [K] = ``tmean + a cos(2 pi (h - 15)/24) + 273.15`` with
    ``a = max(tmax - tmin, 0)/2``."""
    prcp, tmean, tmax, tmin = (np.asarray(x, dtype=float).reshape(-1, 1)
                               for x in (prcp, tmean, tmax, tmin))
    h = np.arange(24)
    cos = np.cos(2.0 * np.pi * (h - DIURNAL_PEAK_HOUR) / 24.0)
    cos[DIURNAL_PEAK_HOUR] = 1.0  # exact extremes (cos(0), cos(-pi))
    cos[(DIURNAL_PEAK_HOUR + 12) % 24] = -1.0
    amp = 0.5 * np.maximum(tmax - tmin, 0.0)
    if rain is not None:
        import torch

        from delta_core.patterns import spread_rain

        w = torch.from_numpy(rain.draw_for_basins(prcp.shape[0], [gauge]))
        hourly = spread_rain(torch.from_numpy(prcp), w, rain.day_start_hour).numpy()
        rate = hourly.reshape(prcp.shape[0], 24) / 3600.0
    elif rain_block is None:
        rate = np.broadcast_to(prcp / 86400.0, (prcp.shape[0], 24)).copy()
    else:
        from delta_core.patterns import WithinDay

        w = WithinDay("block", *rain_block).rain_weights().numpy()
        rate = prcp * w / 3600.0
    return rate, tmean + amp * cos + 273.15


def _stochastic_rain(args):
    """The stochastic within-day pattern of ``--rain-stochastic SEED`` (None without it)."""
    if args.rain_stochastic is None:
        if args.rain_day_start_hour:
            raise ValueError("--rain-day-start-hour goes with --rain-stochastic")
        return None
    if args.rain_block:
        raise ValueError("--rain-block and --rain-stochastic exclude each other")
    from delta_core.patterns import WithinDay

    return WithinDay("stochastic", seed=args.rain_stochastic,
                     day_start_hour=args.rain_day_start_hour)


def write_camels_csvs(gauge: str, root, start: str, end: str, forcing_path: Path | None,
                      spinup_start: str | None, spinup_path: Path | None,
                      time_step: int = 86400, spinup_columns: dict | None = None,
                      spinup_step: int = 86400,
                      rain_block: tuple[int, int] | None = None, rain=None) -> None:
    """Forcing CSV for the days start..end and a daily spin-up CSV (``date`` and
    ``spinup_columns``: column -> data variable) from ``spinup_start`` to the day before start. The forcing CSV is daily
    (``time,prcp [mm d-1],tmean,tmax,tmin [degC]``) for ``time_step`` 86400 and the synthetic
    hourly AORC-style ``time,precip_rate,TMP_2maboveground`` (mm s-1, K; :func:`hourly_from_daily`)
    for 3600 (``rain_block``: see :func:`hourly_from_daily`; also for hourly spin-up rows)."""
    from delta_core.data.camels import CamelsDataset

    ds = CamelsDataset(root)
    if forcing_path is not None:
        ts = ds.load([gauge], start=start, end=end)
        forcing_path.parent.mkdir(parents=True, exist_ok=True)
        with open(forcing_path, "w", newline="") as f:
            w = csv.writer(f)
            if time_step == 3600:
                rate, temp = hourly_from_daily(ts.prcp[:, 0], ts.tmean[:, 0], ts.tmax[:, 0],
                                               ts.tmin[:, 0], rain_block, rain, gauge)
                w.writerow(["time", "precip_rate", "TMP_2maboveground"])
                for i, d in enumerate(ts.dates):
                    for h in range(24):
                        w.writerow([f"{d} {h:02d}:00:00", repr(float(rate[i, h])),
                                    repr(float(temp[i, h]))])
            else:
                w.writerow(["time", "prcp [mm d-1]", "tmean [degC]", "tmax [degC]",
                            "tmin [degC]"])
                for i, d in enumerate(ts.dates):
                    w.writerow([f"{d} 00:00:00", repr(float(ts.prcp[i, 0])),
                                repr(float(ts.tmean[i, 0])), repr(float(ts.tmax[i, 0])),
                                repr(float(ts.tmin[i, 0]))])
    if spinup_start is not None and spinup_path is not None:
        last = str(np.datetime64(start[:10]) - np.timedelta64(1, "D"))
        ts = ds.load([gauge], start=spinup_start, end=last)
        spinup_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spinup_path, "w", newline="") as f:
            w = csv.writer(f)
            cols = spinup_columns or {}
            if spinup_step == 86400:
                w.writerow(["date", *cols])
                for i, d in enumerate(ts.dates):
                    w.writerow([str(d), *(repr(float(ts[v][i, 0])) for v in cols.values())])
                return
            rate, temp = hourly_from_daily(ts.prcp[:, 0], ts.tmean[:, 0], ts.tmax[:, 0],
                                           ts.tmin[:, 0], rain_block, rain, gauge)
            hourly = {"prcp": rate * 3600.0, "tmean": temp - 273.15}
            unknown = [v for v in cols.values() if v not in hourly]
            if unknown:
                raise ValueError(f"hourly spin-up rows can be synthesised for {sorted(hourly)}, "
                                 f"not {unknown}")
            w.writerow(["time", *cols])
            for i, d in enumerate(ts.dates):
                for h in range(24):
                    w.writerow([f"{d} {h:02d}:00:00",
                                *(repr(float(hourly[v][i, h])) for v in cols.values())])


def write_camels_geojson(out: Path, ids, root) -> tuple[Path, Path]:
    """``out/catchment_data.geojson`` and ``out/nexus_data.geojson`` for CAMELS basins (see the
    module docstring: placeholder square geometry, terminal nexus ``nex-<id>`` at the gauge)."""
    from delta_core.data.camels import CamelsDataset

    ds = CamelsDataset(root)
    ds.check_basins(ids)
    cats, nexus = [], []
    r = PLACEHOLDER_HALF_SIDE_DEG
    for gid in ids:
        b = ds.basins[gid]
        lon, lat = float(b["gauge_lon"]), float(b["gauge_lat"])
        ring = [[round(x, 8), round(y, 8)] for x, y in
                ((lon - r, lat - r), (lon + r, lat - r), (lon + r, lat + r), (lon - r, lat + r),
                 (lon - r, lat - r))]
        cats.append({"type": "Feature", "id": catchment_id(gid),
                     "properties": {"areasqkm": float(b["area_forcing_header_km2"]),
                                    "toid": f"nex-{gid}"},
                     "geometry": {"type": "MultiPolygon", "coordinates": [[ring]]}})
        nexus.append({"type": "Feature", "id": f"nex-{gid}", "properties": {"toid": ""},
                      "geometry": {"type": "Point", "coordinates": [lon, lat]}})
    out.mkdir(parents=True, exist_ok=True)
    return (write_feature_collection(out / "catchment_data.geojson", "catchment_data", cats),
            write_feature_collection(out / "nexus_data.geojson", "nexus_data", nexus))


def csv_outputs(model: str) -> list[Variable]:
    """The BMI outputs of ``model`` written to the per-catchment CSVs (declared with a
    :attr:`~delta_core.spec.Variable.csv_header`), in declared order."""
    from delta_core.registry import model_spec

    return [v for v in model_spec(model).variables if v.csv_header is not None]


def write_realization(out: Path, rows: list[dict], binding: ModelBinding, *, start: str,
                      end: str, time_step: int, output_interval: int | None = None,
                      bundle: str | None = None, backend: str | None = None,
                      extras: dict | None = None, forcing_path: str = "./forcing/",
                      file_pattern: str = ".*{{id}}.*.csv", names_map: dict | None = None,
                      spinup: dict | None = None, note: str | None = None,
                      cycled: dict | None = None) -> Path:
    """Write ``out/config/<id>.yaml`` per row and ``out/realization.json``; return the latter.

    ``spinup`` maps catchment ids to spin-up CSVs (relative to ``out/config``): a missing one is
    refused before anything is written (the BMI's initialize, and with it ngen, would abort).
    ``cycled`` maps catchment ids to the BMI's ``spinup`` mapping (cycled hourly forcing, its
    ``forcing`` relative to ``out/config``, checked by :func:`spinup_settings`).
    """
    for cid, sp in (spinup or {}).items():
        if not Path(os.path.normpath(out / "config" / sp)).is_file():  # config/ may not exist yet
            raise ValueError(f"spin-up file {sp} of {cid} does not exist (looked for "
                             f"{out / 'config' / sp}: a config's spinup_forcing is relative to "
                             f"the config folder); write it first or fix the path")
    for r in rows:
        cfg = {"attributes": r["attributes"], "latitude": r["latitude"],
               "area_km2": r["area_km2"], "time_step_seconds": int(time_step),
               "start_time": start}
        if bundle:
            cfg["bundle"] = [str(b) for b in bundle] if isinstance(bundle, list) else str(bundle)
        if backend:
            cfg["backend"] = backend
        cfg.update(extras or {})
        if spinup and r["id"] in spinup:
            cfg["spinup_forcing"] = spinup[r["id"]]
        if cycled and r["id"] in cycled:
            cfg["spinup"] = dict(cycled[r["id"]])
        text = yaml.safe_dump(cfg, sort_keys=False)
        if note:
            text = "".join(f"# {line}\n" for line in note.splitlines()) + text
        atomic_write_text(out / "config" / f"{r['id']}.yaml", text)
    base = {**names_map} if names_map else {}
    outputs = realization_outputs(binding.model, bundle)
    realization = {
        "global": {
            "formulations": [{"name": "bmi_python", "params": {
                "model_type_name": binding.model_type_name,
                "python_type": binding.python_type,
                "init_config": "./config/{{id}}.yaml",
                "main_output_variable": RUNOFF_DEPTH,
                "uses_forcing_file": False,
                "allow_exceed_end_time": True,
                "variables_names_map": base,
                "output_variables": [v.standard_name for v in outputs],
                "output_header_fields": [v.csv_header for v in outputs]}}],
            "forcing": {"file_pattern": file_pattern, "path": forcing_path,
                        "provider": "CsvPerFeature"}},
        "time": {"start_time": start, "end_time": end,
                 "output_interval": int(output_interval or time_step)},
        "output": {"root": "./output/"},
    }
    return atomic_write_text(out / "realization.json", json.dumps(realization, indent=2) + "\n")


def main(argv: list[str] | None, binding: ModelBinding) -> int:
    """The ``<model>-realization`` command (errors: one line, exit code 2)."""
    from delta_core.bundle import BundleError
    from delta_core.data.camels import DataError

    one_line_warnings()
    try:
        return _main(argv, binding)
    except (BundleError, DataError, ValueError, OSError) as exc:
        import sys

        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parse_args(argv, binding: ModelBinding) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog=binding.prog,
        description=f"Write per-catchment {binding.model_type_name} BMI configs "
                    f"(config/<id>.yaml) and a NextGen realization.json (bmi_python, "
                    f"python_type {binding.python_type}).")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--table", help="CSV: one row per catchment (id, lat, area, attributes)")
    src.add_argument("--camels", nargs="+", metavar="GAUGE_ID",
                     help="basins of a CAMELS-format data directory")
    src.add_argument("--stand-in", metavar="GAUGE_ID",
                     help="with --catchments or --hydrofabric: use this CAMELS basin's "
                          "attributes (attributes.csv only; no forcing needed) for every "
                          "catchment (documented stand-in when attributes are unknown)")
    ap.add_argument("--catchments", help="hydrofabric catchment geojson (areasqkm, geometry)")
    ap.add_argument("--hydrofabric", metavar="PATH",
                    help="NextGen hydrofabric GeoPackage (layers divides, nexus; flowpaths/"
                         "network if present) or divides GeoJSON: each divide's own area "
                         "(areasqkm, else its polygon's) and centroid latitude (EPSG:5070 "
                         "inverse-projected; 4326/4269 as is); attributes from --table or "
                         "--stand-in; writes catchment_data.geojson and nexus_data.geojson")
    ap.add_argument("--hydrofabric-nexus", metavar="GEOJSON",
                    help="--hydrofabric GeoJSON: its nexus file (default: nexus_data.geojson "
                         "or nexus.geojson beside it)")
    ap.add_argument("--id-column", help="id column of --table")
    ap.add_argument("--data", "--camels-root", dest="camels_root",
                    help="CAMELS-format data directory, as --data of eval (default: the sample)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--start", required=True, help="simulation start, e.g. '2015-12-01 00:00:00'")
    ap.add_argument("--end", required=True, help="simulation end (start of the last interval)")
    ap.add_argument("--time-step", type=int, choices=(3600, 86400), default=3600,
                    help="BMI time step [s] (default 3600)")
    ap.add_argument("--output-interval", type=int, help="ngen output interval [s] "
                    "(default: the time step)")
    ap.add_argument("--bundle", help=f"{binding.bundle_help}; several, comma-separated, run as "
                                     f"an ensemble in one BMI instance (docs/nextgen.md)")
    ap.add_argument("--backend", choices=binding.backends, type=backend_type(binding.backends),
                    help=f"physics engine written into the configs (default "
                         f"{binding.backends[0]}; torch and python both name the PyTorch "
                         "reference)")
    ap.add_argument("--forcing-path", default="./forcing/",
                    help="realization forcing.path (default: ./forcing/)")
    ap.add_argument("--file-pattern", default=".*{{id}}.*.csv",
                    help="realization forcing.file_pattern (default: .*{{id}}.*.csv)")
    ap.add_argument("--map", action="append", default=[], metavar="BMI_NAME=COLUMN",
                    help="override a variables_names_map entry (repeatable)")
    ap.add_argument("--write-forcing", action="store_true",
                    help="--camels: write forcing CSVs <out>/forcing/<id>.csv (hourly AORC-style "
                         "for --time-step 3600, daily for 86400)")
    ap.add_argument("--rain-block", type=int, nargs=2, metavar=("START_HOUR", "HOURS"),
                    help="--camels, hourly: spread each day's rain over HOURS hours from "
                         "START_HOUR:00 (e.g. 12 6, the scheme the dCFE and dLGAR bundles were "
                         "trained with) instead of evenly over the 24 hours")
    ap.add_argument("--rain-stochastic", type=int, metavar="SEED",
                    help="--camels, hourly: spread each day's rain over stochastic storms "
                         "(delta_core.patterns, seeded by SEED and the gauge id) instead")
    ap.add_argument("--rain-day-start-hour", type=int, default=0, metavar="H",
                    help="with --rain-stochastic: each data day's storms fall in the 24 hours "
                         "from H:00 (-23..0) of the calendar day; -8 places CAMELS' Daymet days "
                         "as the shipped hourly bundles were trained (default: 0)")
    ap.add_argument("--spinup-start", help="--camels: write spin-up CSVs <out>/spinup/<id>.csv "
                    "from this date to the day before --start and use them")
    ap.add_argument("--spinup-forcing", metavar="PATH",
                    help="an existing spin-up CSV (date,"
                         f"{','.join(binding.spinup_columns)}; rows run once) written into every "
                         "config, or a directory of hourly forcing files in the run forcing's "
                         "CsvPerFeature format (--file-pattern) whose first --spinup-years are "
                         "cycled (a relative path is relative to the current directory; "
                         "default, hourly: cycle the catchment's own run forcing)")
    ap.add_argument("--spinup-years", type=int, default=SPINUP_YEARS, metavar="N",
                    help=f"cycled spin-up: leading years of the forcing cycled (default "
                         f"{SPINUP_YEARS})")
    ap.add_argument("--spinup-max-cycles", type=int, default=SPINUP_MAX_CYCLES, metavar="N",
                    help=f"cycled spin-up: at most N cycles (default {SPINUP_MAX_CYCLES}); the "
                         f"BMI stops once every store changes by < 0.1 %% per cycle")
    ap.add_argument("--cold-start", action="store_true",
                    help="no spin-up: the configs start from the models' cold states")
    hargreaves = getattr(binding.bmi_class, "HARGREAVES_FROM", None)
    if hargreaves is not None:
        ap.add_argument("--pet-source", choices=("hargreaves", "input"),
                        help=f"PET from Hargreaves ({hargreaves}; default) or an input column "
                             f"'pet' (write its unit in the header, e.g. 'pet [mm h-1]', or "
                             f"daily 'pet [mm d-1]')")
    noaa.add_arguments(ap)
    args = ap.parse_args(argv)
    start, end = (_parse_datetime(args.start, "--start"), _parse_datetime(args.end, "--end"))
    if end < start:
        raise ValueError(f"--end {args.end} is before --start {args.start}")
    return args


def _pet_source_key(args: argparse.Namespace, binding: ModelBinding) -> dict[str, str]:
    """The ``pet_source`` key of the configs: ``--pet-source``, else the binding's, else none."""
    source = getattr(args, "pet_source", None) or binding.pet_source
    return {"pet_source": source} if source else {}


def _parse_datetime(s: str, what: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(s.strip())
    except ValueError:
        raise ValueError(f"{what} {s!r} is not an ISO date/time like '2015-12-01 00:00:00'") \
            from None


def _classic_source(args, need) -> tuple[list[dict], str | None]:
    """Rows of ``--table``, ``--camels`` or ``--catchments --stand-in`` and the config note."""
    geo = geojson_catchments(args.catchments) if args.catchments else None
    if args.table:
        return rows_from_table(args.table, args.id_column, need, geo), None
    if args.camels:
        return rows_from_camels(args.camels, args.camels_root, need), None
    if geo is None:
        raise ValueError("--stand-in needs --catchments or --hydrofabric")
    attrs = stand_in_attributes(args.stand_in, args.camels_root, need)
    rows = [{"id": cid, "latitude": g["latitude"], "area_km2": float(g["area_km2"]),
             "attributes": dict(attrs)} for cid, g in sorted(geo.items())]
    note = (f"Catchment attributes are a STAND-IN: those of CAMELS basin {args.stand_in}; "
            f"the catchment's own\nattributes were not available. Latitude: centroid of the "
            f"polygon; area: areasqkm.")
    return rows, note


def _hydrofabric_source(args, need, out: Path) -> tuple[Hydrofabric, list[dict], str]:
    """The hydrofabric, its rows (attributes from ``--table`` or ``--stand-in``) and the note."""
    if args.camels or args.catchments:
        raise ValueError("--hydrofabric gives the catchments: use it with --table or "
                         "--stand-in for their attributes, not with --camels or --catchments")
    if args.write_forcing or args.spinup_start:
        raise ValueError("--write-forcing and --spinup-start work with --camels only (there is "
                         "no forcing of hydrofabric divides here); use --spinup-forcing")
    inputs = {Path(p).resolve() for p in (args.hydrofabric, args.hydrofabric_nexus) if p}
    for name in ("catchment_data.geojson", "nexus_data.geojson"):
        if (out / name).resolve() in inputs:
            raise ValueError(f"--out {out} would overwrite the input {out / name}; write the "
                             f"realization into another folder")
    hf = read_hydrofabric(args.hydrofabric, args.hydrofabric_nexus)
    src = f"hydrofabric {Path(args.hydrofabric).name} (EPSG:{hf.crs.epsg})"
    geometry = (f"Catchment from {src}: latitude = centroid of the divide polygon\n(planar "
                f"centroid in the equal-area plane, inverse-projected to degrees); area_km2 = "
                f"the divide's\nareasqkm, else its polygon's area on the ellipsoid [km2].")
    if args.table:
        attrs, one = table_attributes(args.table, args.id_column, need, hf)
        how = "its single row, for every divide" if one else "the divide's row"
        note = f"{geometry}\nAttributes: {Path(args.table).name}, {how}."
    else:
        proxy = stand_in_attributes(args.stand_in, args.camels_root, need)
        attrs = {cid: proxy for cid in hf.divides}
        note = (f"{geometry}\nCatchment attributes are a STAND-IN: those of CAMELS basin "
                f"{args.stand_in}; the catchment's own\nattributes were not available.")
    return hf, hydrofabric_rows(hf, attrs), note


def config_bundle(value: str | None, binding: ModelBinding) -> str | list | None:
    """The ``bundle`` written into the configs: ``--bundle`` (a comma-separated list: an
    ensemble) or the binding's default; None for no key (``--bundle none`` of a model that runs
    without a bundle)."""
    value = value or binding.default_bundle
    if value and "," in value:
        return [v.strip() for v in value.split(",") if v.strip()]
    if value != NO_BUNDLE:
        return value
    if binding.no_bundle is None:
        raise ValueError(f"--bundle none: {binding.model_type_name} needs a weight bundle; leave "
                         f"--bundle out for the shipped one or give a bundle.pt")
    return None


def bundle_line(bundle: str | None, binding: ModelBinding, time_step: int) -> str:
    """One line naming what the written configs run (the shipped file a default resolves to)."""
    name = binding.model_type_name
    if isinstance(bundle, list):
        return f"configs run an ensemble in {name}: {', '.join(bundle)} (--bundle)"
    if bundle is None and binding.no_bundle is not None:
        return f"configs run {name} without a bundle: {binding.no_bundle} (--bundle {NO_BUNDLE})"
    if bundle not in (None, "shipped"):
        return f"configs run {name} bundle {bundle} (--bundle)"
    shipped = binding.bmi_class.default_bundle_for(time_step) if binding.bmi_class else None
    key = "no bundle key, the BMI's default" if bundle is None else "bundle: shipped"
    return (f"configs run {name} bundle {shipped.name if shipped else 'shipped'}, the shipped "
            f"default for {time_step} s steps ({key}; --bundle PATH to change)")


def _main(argv, binding: ModelBinding) -> int:
    args = _parse_args(argv, binding)
    native = args.engine == "noaa"
    if native:
        noaa.check_options(args, binding.noaa, binding.model_type_name)
    args.bundle = config_bundle(args.bundle, binding)
    attrs = binding.attributes(args) if callable(binding.attributes) else binding.attributes
    need = list(attrs) if attrs is not None else needed_attributes(args.bundle, binding.model)
    out = Path(args.out)
    hf = None
    if args.hydrofabric:
        hf, rows, note = _hydrofabric_source(args, need, out)
    elif args.hydrofabric_nexus:
        raise ValueError("--hydrofabric-nexus needs --hydrofabric")
    else:
        rows, note = _classic_source(args, need)
    check_rows(rows, args.table or args.catchments or args.hydrofabric or "--camels")
    bad = [kv for kv in args.map if "=" not in kv]
    if bad:
        raise ValueError(f"--map expects BMI_NAME=COLUMN, got {bad}")
    names_map = {**binding.inputs(args.time_step, args),
                 **dict(kv.split("=", 1) for kv in args.map)}
    ids = [r["id"] for r in rows]
    native_configs = binding.noaa.configs(rows, args) if native else None
    spinup = None
    if args.camels and (args.write_forcing or args.spinup_start):
        spinup = {}
        for r in rows:
            sp = out / "spinup" / f"{r['id']}.csv" if args.spinup_start else None
            write_camels_csvs(r["gauge_id"], args.camels_root, args.start[:10], args.end[:10],
                              out / "forcing" / f"{r['id']}.csv" if args.write_forcing else None,
                              args.spinup_start, sp, time_step=args.time_step,
                              spinup_columns=binding.spinup_columns,
                              spinup_step=binding.spinup_step,
                              rain_block=tuple(args.rain_block) if args.rain_block else None,
                              rain=_stochastic_rain(args))
            if sp is not None:
                spinup[r["id"]] = f"../spinup/{r['id']}.csv"
    folders = [out / args.forcing_path] + (
        [Path(args.catchments).parent / args.forcing_path] if args.catchments else [])
    check_forcing_unique(ids, folders, args.file_pattern)
    run_files = forcing_files(ids, folders, args.file_pattern)
    check_forcing_period(run_files, args.start, args.end)
    if native:
        noaa.check_pet_column(run_files, args.noaa_pet_column)
    given, cycled = (None, None) if native else spinup_settings(args, ids, out, run_files,
                                                                names_map)
    spinup = given or spinup
    if args.camels:
        write_camels_geojson(out, args.camels, args.camels_root)
    if hf is not None:
        cat_path, nex_path = hf.write_geojson(out)
        print(f"wrote {cat_path} ({len(hf.divides)} divides) and {nex_path} "
              f"({len(hf.nexus)} nexus) from {hf.source} (EPSG:{hf.crs.epsg})")
    if native:
        path = noaa.write(out, native_configs, binding.noaa, args, names_map[PRECIP])
        print(f"wrote the {binding.noaa.label} configs of {len(rows)} catchment(s) in "
              f"{out / 'config'} and {path} (bmi_multi of SLoTH and the {binding.noaa.label})")
    else:
        path = write_realization(out, rows, binding, start=args.start, end=args.end,
                                 time_step=args.time_step, output_interval=args.output_interval,
                                 bundle=args.bundle, backend=args.backend,
                                 extras=_pet_source_key(args, binding),
                                 forcing_path=args.forcing_path, file_pattern=args.file_pattern,
                                 names_map=names_map, spinup=spinup, note=note, cycled=cycled)
        print(f"wrote {len(rows)} config(s) in {out / 'config'} and {path}")
        print(bundle_line(args.bundle, binding, args.time_step))
    if args.catchments:
        lacking = copy_catchment_inputs(args.catchments, [r["id"] for r in rows], out,
                                        args.forcing_path, args.file_pattern)
        print(f"copied {args.catchments} (and nexus_data.geojson, forcing beside it) into {out}")
        if lacking:
            warnings.warn(f"no forcing file for {lacking[:5]}{' ...' * (len(lacking) > 5)} "
                          f"matching {args.file_pattern!r} beside {args.catchments}: put them "
                          f"in {out / args.forcing_path} (ngen aborts without them)",
                          stacklevel=2)
    check_forcing_rain(out / args.forcing_path, [r["id"] for r in rows], args.file_pattern,
                       names_map.get(PRECIP))
    return 0
