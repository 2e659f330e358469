"""Read a NOAA-OWP NextGen hydrofabric (a GeoPackage, or GeoJSON files) into the catchments and
nexuses ngen runs: per divide its id, downstream nexus, area [km2] and centroid latitude and
longitude [degrees]; per nexus its downstream catchment and location.

**GeoPackage** (hydrofabric v2.1/v2.2, e.g. a subset written by ``hfsubset``): SQLite read with
the standard library; geometry blobs are GeoPackage binary (``GP`` header, optional envelope,
then ISO/OGC WKB: Polygon and MultiPolygon for divides, Point for nexuses). Layers:

* ``divides``: ``divide_id`` (``cat-N``; the legacy ``id`` if there is no ``divide_id``, as ngen
  does), ``toid`` (the downstream nexus ``nex-N``/``tnx-N``; v4's ``flowpath_toid`` also read),
  ``id`` (the flowpath ``wb-N`` inside the divide, v2.x) or ``flowpath_id`` (v4), ``areasqkm``
  if present, and the geometry column named in ``gpkg_geometry_columns``;
* ``nexus``: ``id`` (``nexus_id`` in v4), ``toid`` (``nexus_toid``): the flowpath ``wb-N``
  (or catchment) downstream, and a Point;
* ``flowpaths`` and ``network`` (optional): ``id``, ``toid``, ``divide_id``; used when a divide's
  own ``toid`` is not a nexus, and to map a nexus's downstream ``wb-N`` to its divide ``cat-N``.

The coordinate reference system of each layer comes from ``gpkg_geometry_columns.srs_id`` and
``gpkg_spatial_ref_sys`` (``organization`` EPSG and ``organization_coordsys_id``, else the last
EPSG authority in the WKT ``definition``).

**GeoJSON**: a FeatureCollection of divides (ngen's ``catchment_data.geojson`` form, or an export
of the ``divides`` layer: id = ``divide_id`` property, else the feature ``id``) and one of nexuses
(``nexus_data.geojson`` form). The CRS is the legacy ``crs`` member (``urn:ogc:def:crs:EPSG::5070``,
``EPSG:5070``, ``...CRS84``); without one, RFC 7946 longitude/latitude (EPSG:4326) is assumed
and coordinates outside [-180, 180] x [-90, 90] are refused as projected.

**Coordinate reference systems**: EPSG:5070 (NAD83 / Conus Albers: Albers Equal-Area Conic on
GRS80, lat_1 29.5, lat_2 45.5, lat_0 23, lon_0 -96, x_0 = y_0 = 0, metres) is inverse-projected
here (Snyder 1987, *Map Projections: A Working Manual*, USGS PP 1395, eqs. 3-12, 3-16, 14-1 to
14-21); EPSG:4326 (WGS 84) and EPSG:4269 (NAD83) longitude/latitude are taken unchanged (the two
datums differ by about a metre in CONUS). Any other CRS is an error naming its code.

**Area** [km2]: ``areasqkm`` where present (the hydrofabric's own value); otherwise the polygon's
area in the equal-area plane: for EPSG:5070 the planar (shoelace) area of the projected polygon,
which *is* its area on the GRS80 ellipsoid because the projection preserves area; for geographic
coordinates the area on the datum's ellipsoid (GRS80 for 4269, WGS 84 for 4326), computed as the
planar area in Lambert's cylindrical equal-area projection of that ellipsoid (``x = a lon``,
``y = a q(lat) / 2``). Either way the polygon's edges are straight lines in that plane (a
difference from geodesic edges of well under 0.1 % for divides of a few km). Holes are
subtracted; MultiPolygon parts added.

**Centroid**: the area centroid of the polygon (all parts, holes subtracted) in the same plane,
then inverse-projected to latitude/longitude [degrees]; the latitude is what the BMI configs get.

**Ids**: divides must be ``cat-``/``wb-``/``agg-`` ids (ngen runs only those) and nexuses
``nex-``/``tnx-``/``cnx-``/``inx-`` ids (ngen's nexus prefixes); a bare integer id ``N`` (older
data models) becomes ``cat-N`` or ``nex-N``. Every divide must drain to a nexus of the nexus layer.
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
import struct
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from delta_core.ngen.crosswalk import CATCHMENT_PREFIXES, is_catchment_id

#: Prefixes ngen treats as nexus ids (hy_features::identifiers: nexus, terminal, coastal, inland).
NEXUS_PREFIXES = ("nex-", "tnx-", "cnx-", "inx-")
#: Prefix of a hydrofabric flowpath (waterbody) id.
FLOWPATH_PREFIX = "wb-"
#: Relative disagreement between ``areasqkm`` and the polygon's own area that is warned about.
AREA_CHECK_TOLERANCE = 0.05


class HydrofabricError(ValueError):
    """A hydrofabric that cannot be read or would make ngen abort."""


class HydrofabricWarning(UserWarning):
    """Something in a hydrofabric or attribute table that was read but looks wrong."""


# -- ellipsoids and projections -------------------------------------------------------------------
@dataclass(frozen=True)
class Ellipsoid:
    """A reference ellipsoid.

    Attributes
    ----------
    name : str
    a : float
        Semi-major axis [m].
    inv_f : float
        Inverse flattening 1/f [-].
    """

    name: str
    a: float
    inv_f: float

    @property
    def e2(self) -> float:
        """First eccentricity squared, ``e^2 = 2f - f^2`` [-]."""
        f = 1.0 / self.inv_f
        return 2.0 * f - f * f

    @property
    def e(self) -> float:
        """First eccentricity [-]."""
        return math.sqrt(self.e2)


GRS80 = Ellipsoid("GRS 1980", 6378137.0, 298.257222101)
WGS84 = Ellipsoid("WGS 84", 6378137.0, 298.257223563)
CLARKE1866 = Ellipsoid("Clarke 1866", 6378206.4, 294.9786982)


def authalic_q(lat_rad, ell: Ellipsoid) -> np.ndarray:
    """Snyder's ``q`` (eq. 3-12) of latitude ``lat_rad`` [rad] on ``ell`` [-]:
    ``(1 - e^2) [sin/(1 - e^2 sin^2) - ln((1 - e sin)/(1 + e sin)) / (2e)]``."""
    e, e2 = ell.e, ell.e2
    s = np.sin(np.asarray(lat_rad, dtype=float))
    return (1.0 - e2) * (s / (1.0 - e2 * s * s)
                         - np.log((1.0 - e * s) / (1.0 + e * s)) / (2.0 * e))


def latitude_from_q(q, ell: Ellipsoid, tol: float = 1e-14, max_iter: int = 30) -> np.ndarray:
    """Latitude [rad] whose :func:`authalic_q` is ``q`` (Snyder eq. 3-16, iterated).

    Raises
    ------
    HydrofabricError
        If ``|q|`` exceeds its value at the pole (a point outside the projection's domain) or
        the iteration does not converge.
    """
    q = np.asarray(q, dtype=float)
    e, e2 = ell.e, ell.e2
    q_pole = float(authalic_q(math.pi / 2, ell))
    if np.any(~np.isfinite(q)) or np.any(np.abs(q) > q_pole * (1 + 1e-12)):
        raise HydrofabricError("coordinates outside the projection's domain (no latitude has "
                               "this authalic q)")
    pole = np.abs(q) >= q_pole * (1 - 1e-15)
    phi = np.arcsin(np.clip(q / 2.0, -1.0, 1.0))
    for _ in range(max_iter):
        s, c = np.sin(phi), np.cos(phi)
        c = np.where(pole, 1.0, c)
        one = 1.0 - e2 * s * s
        step = one * one / (2.0 * c) * (q / (1.0 - e2) - s / one
                                         + np.log((1.0 - e * s) / (1.0 + e * s)) / (2.0 * e))
        step = np.where(pole, 0.0, step)
        phi = phi + step
        if np.all(np.abs(step) < tol):
            return np.where(pole, np.sign(q) * math.pi / 2, phi)
    raise HydrofabricError("latitude from authalic q did not converge")


@dataclass(frozen=True)
class AlbersEqualArea:
    """Albers Equal-Area Conic on an ellipsoid (Snyder 1987, section 14).

    Attributes
    ----------
    lat_1, lat_2 : float
        Standard parallels [degrees].
    lat_0, lon_0 : float
        Latitude and longitude of the origin [degrees].
    x_0, y_0 : float
        False easting and northing [m].
    ellipsoid : Ellipsoid
    """

    lat_1: float
    lat_2: float
    lat_0: float
    lon_0: float
    x_0: float = 0.0
    y_0: float = 0.0
    ellipsoid: Ellipsoid = GRS80

    @cached_property
    def constants(self) -> tuple[float, float, float]:
        """``(n, C, rho_0)`` of Snyder eqs. 14-14, 14-13 and 14-12a (rho_0 in m)."""
        ell = self.ellipsoid
        p1, p2, p0 = (math.radians(v) for v in (self.lat_1, self.lat_2, self.lat_0))
        m1, m2 = (math.cos(p) / math.sqrt(1.0 - ell.e2 * math.sin(p) ** 2) for p in (p1, p2))
        q0, q1, q2 = (float(authalic_q(p, ell)) for p in (p0, p1, p2))
        n = math.sin(p1) if abs(p1 - p2) < 1e-12 else (m1 * m1 - m2 * m2) / (q2 - q1)
        c = m1 * m1 + n * q1
        rho0 = ell.a * math.sqrt(c - n * q0) / n
        return n, c, rho0

    def forward(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """Project longitude/latitude [degrees] to ``(x, y)`` [m] (Snyder eqs. 14-1 to 14-4)."""
        n, c, rho0 = self.constants
        a = self.ellipsoid.a
        q = authalic_q(np.radians(lat), self.ellipsoid)
        rho = a * np.sqrt(c - n * q) / n
        dlon = (np.asarray(lon, dtype=float) - self.lon_0 + 180.0) % 360.0 - 180.0
        theta = n * np.radians(dlon)
        return self.x_0 + rho * np.sin(theta), self.y_0 + rho0 - rho * np.cos(theta)

    def inverse(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Longitude/latitude [degrees] of projected ``(x, y)`` [m] (Snyder eqs. 14-10, 14-11,
        14-19, 14-9 and 3-16)."""
        n, c, rho0 = self.constants
        a = self.ellipsoid.a
        dx = np.asarray(x, dtype=float) - self.x_0
        dy = rho0 - (np.asarray(y, dtype=float) - self.y_0)
        sign = 1.0 if n > 0 else -1.0
        rho = sign * np.hypot(dx, dy)
        theta = np.arctan2(sign * dx, sign * dy)
        q = (c - (rho * n / a) ** 2) / n
        lat = np.degrees(latitude_from_q(q, self.ellipsoid))
        lon = (self.lon_0 + np.degrees(theta / n) + 180.0) % 360.0 - 180.0
        return lon, lat


#: EPSG:5070, NAD83 / Conus Albers (GRS80; lat_1 29.5, lat_2 45.5, lat_0 23, lon_0 -96).
CONUS_ALBERS = AlbersEqualArea(29.5, 45.5, 23.0, -96.0, 0.0, 0.0, GRS80)


@dataclass(frozen=True)
class Crs:
    """A coordinate reference system this module can turn into latitude/longitude.

    Attributes
    ----------
    epsg : int
    name : str
    projection : AlbersEqualArea or None
        None for geographic longitude/latitude [degrees].
    ellipsoid : Ellipsoid
    """

    epsg: int
    name: str
    projection: AlbersEqualArea | None
    ellipsoid: Ellipsoid

    @property
    def geographic(self) -> bool:
        return self.projection is None


SUPPORTED_CRS = {
    5070: Crs(5070, "NAD83 / Conus Albers", CONUS_ALBERS, GRS80),
    4326: Crs(4326, "WGS 84 (longitude/latitude)", None, WGS84),
    4269: Crs(4269, "NAD83 (longitude/latitude)", None, GRS80),
}


def crs_from_epsg(code: int, where: str) -> Crs:
    """The :class:`Crs` of EPSG ``code``; :class:`HydrofabricError` naming it if unsupported."""
    try:
        return SUPPORTED_CRS[int(code)]
    except (KeyError, TypeError, ValueError):
        raise HydrofabricError(
            f"{where}: coordinate reference system EPSG:{code} is not supported; supported: "
            + ", ".join(f"EPSG:{k} ({c.name})" for k, c in SUPPORTED_CRS.items())
            + " (reproject the file, e.g. ogr2ogr -t_srs EPSG:5070)") from None


# -- planar polygon area and centroid -------------------------------------------------------------
def ring_area_moments(ring: np.ndarray) -> tuple[float, float, float]:
    """Signed area and first moments of a closed or open ring ``[k, 2]`` (shoelace).

    Returns
    -------
    area : float
        Signed area [unit^2] (positive counter-clockwise).
    mx, my : float
        ``integral x dA`` and ``integral y dA`` [unit^3], signed like ``area``.
    """
    x, y = ring[:, 0], ring[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    area = 0.5 * float(cross.sum())
    return area, float(((x + x1) * cross).sum()) / 6.0, float(((y + y1) * cross).sum()) / 6.0


def polygons_area_centroid(polygons: list[list[np.ndarray]]) -> tuple[float, float, float]:
    """Area and area centroid of polygons with holes in a plane.

    Parameters
    ----------
    polygons : list of list of ndarray [k, 2]
        Each polygon: its exterior ring, then its holes (any orientation).

    Returns
    -------
    area : float
        Exterior areas minus hole areas [unit^2].
    cx, cy : float
        Centroid [unit]; NaN if the area is 0.
    """
    rings = [r for poly in polygons for r in poly]
    if not rings:
        return 0.0, math.nan, math.nan
    ref = rings[0][0].copy()  # shift for precision with coordinates of millions of metres
    total = mx = my = 0.0
    for poly in polygons:
        for k, ring in enumerate(poly):
            a, px, py = ring_area_moments(ring - ref)
            w = (1.0 if k == 0 else -1.0) * (1.0 if a >= 0 else -1.0)
            total, mx, my = total + w * a, mx + w * px, my + w * py
    if total <= 0:
        return total, math.nan, math.nan
    return total, mx / total + ref[0], my / total + ref[1]


def _equal_area_plane(polygons, crs: Crs) -> tuple[list[list[np.ndarray]], float]:
    """Polygons in an equal-area plane [m] and the reference longitude [degrees] of that plane:
    the projected coordinates themselves, or for geographic ones Lambert's cylindrical equal-area
    ``x = a (lon - lon_ref)``, ``y = a q(lat) / 2`` on the datum's ellipsoid."""
    if not crs.geographic:
        return polygons, 0.0
    a = crs.ellipsoid.a
    lon_ref = float(polygons[0][0][0, 0])
    out = []
    for poly in polygons:
        rings = []
        for ring in poly:
            dlon = (ring[:, 0] - lon_ref + 180.0) % 360.0 - 180.0
            rings.append(np.column_stack([a * np.radians(dlon),
                                          a * authalic_q(np.radians(ring[:, 1]),
                                                         crs.ellipsoid) / 2.0]))
        out.append(rings)
    return out, lon_ref


def area_centroid(polygons, crs: Crs) -> tuple[float, float, float]:
    """Area on the ellipsoid and centroid of polygons given in ``crs``.

    Returns
    -------
    area_km2 : float
        Area [km2] in the equal-area plane (see the module docstring).
    lat, lon : float
        Centroid [degrees] (planar centroid in that plane, inverse-projected).
    """
    plane, lon_ref = _equal_area_plane(polygons, crs)
    area, cx, cy = polygons_area_centroid(plane)
    if not area > 0:
        return area / 1e6, math.nan, math.nan
    if crs.geographic:
        a = crs.ellipsoid.a
        lat = float(np.degrees(latitude_from_q(2.0 * cy / a, crs.ellipsoid)))
        lon = (lon_ref + math.degrees(cx / a) + 180.0) % 360.0 - 180.0
    else:
        lon, lat = (float(v) for v in crs.projection.inverse(cx, cy))
    return area / 1e6, lat, lon


def to_lonlat(coords: np.ndarray, crs: Crs) -> np.ndarray:
    """``[k, 2]`` coordinates of ``crs`` as longitude/latitude [degrees]."""
    if crs.geographic:
        return np.asarray(coords, dtype=float)[:, :2]
    lon, lat = crs.projection.inverse(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


# -- checks ---------------------------------------------------------------------------------------
def check_latitude(value, what: str) -> float:
    """``value`` as a latitude [degrees]; :class:`HydrofabricError` if not in [-90, 90].

    A value far outside (|value| > 1000) is almost surely a projected coordinate in metres, and
    the message says so.
    """
    try:
        lat = float(value)
    except (TypeError, ValueError):
        raise HydrofabricError(f"{what}: latitude {value!r} is not a number") from None
    if math.isfinite(lat) and -90.0 <= lat <= 90.0:
        return lat
    hint = ("; this looks like a projected coordinate (metres, e.g. EPSG:5070 northing), not "
            "a latitude in degrees; reproject to longitude/latitude (the --hydrofabric option "
            "does this for EPSG:5070)" if math.isfinite(lat) and abs(lat) > 1000 else "")
    raise HydrofabricError(f"{what}: latitude {lat!r} is outside [-90, 90] degrees{hint} "
                           f"(ngen would abort at the BMI's initialize)")


def check_area(value, what: str) -> float:
    """``value`` as an area [km2]; :class:`HydrofabricError` unless finite and > 0."""
    try:
        area = float(value)
    except (TypeError, ValueError):
        raise HydrofabricError(f"{what}: area {value!r} is not a number") from None
    if not (math.isfinite(area) and area > 0):
        raise HydrofabricError(f"{what}: area {area!r} km2 is not > 0")
    return area


def _bare_integer(value) -> str | None:
    """``"123"`` for ``123``, ``123.0`` or ``"123"``; None for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else None
    s = str(value).strip()
    return s if s.isdigit() else None


def divide_id(value, where: str) -> str:
    """A divide id as ngen expects (``cat-``/``wb-``/``agg-``; bare ``N`` -> ``cat-N``)."""
    n = _bare_integer(value)
    if n is not None:
        return f"cat-{n}"
    cid = str(value).strip()
    if not is_catchment_id(cid):
        raise HydrofabricError(
            f"{where}: divide id {cid!r} does not start with {', '.join(CATCHMENT_PREFIXES)}; "
            f"ngen skips such a feature and aborts with request_from_empty_nexus")
    return cid


def is_nexus_id(value) -> bool:
    """Whether ngen treats ``value`` as a nexus id."""
    return value is not None and str(value).startswith(NEXUS_PREFIXES)


def nexus_id(value, where: str) -> str:
    """A nexus id as ngen expects (``nex-``/``tnx-``/``cnx-``/``inx-``; bare ``N`` -> ``nex-N``)."""
    n = _bare_integer(value)
    if n is not None:
        return f"nex-{n}"
    nid = str(value).strip()
    if not is_nexus_id(nid):
        raise HydrofabricError(f"{where}: nexus id {nid!r} does not start with "
                               f"{', '.join(NEXUS_PREFIXES)}")
    return nid


def _blank(value) -> bool:
    return value is None or str(value).strip() in ("", "null", "NULL", "None", "NA", "nan")


# -- GeoPackage binary geometry -------------------------------------------------------------------
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_WKB_TYPES = {1: "Point", 2: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
              6: "MultiPolygon", 7: "GeometryCollection"}


def parse_gpkg_geometry(blob: bytes) -> tuple[str, object] | None:
    """Decode a GeoPackage geometry blob (``GP`` header, envelope, WKB).

    Returns
    -------
    (type, coordinates) or None
        ``("Point", ndarray [2])``, ``("Polygon", [ring, ...])`` or ``("MultiPolygon",
        [[ring, ...], ...])`` with rings ``ndarray [k, 2]`` (x, y; Z/M dropped); None for an
        empty geometry (header flag) or a NULL blob.

    Raises
    ------
    HydrofabricError
        Not a GeoPackage blob, an extended blob, or a geometry type other than those.
    """
    if blob is None:
        return None
    buf = bytes(blob)
    if len(buf) < 8 or buf[:2] != b"GP":
        raise HydrofabricError("geometry is not GeoPackage binary (no 'GP' magic)")
    flags = buf[3]
    if flags & 0b100000:
        raise HydrofabricError("extended GeoPackage geometry blobs are not supported")
    envelope = (flags >> 1) & 0b111
    if envelope not in _ENVELOPE_BYTES:
        raise HydrofabricError(f"invalid GeoPackage envelope indicator {envelope}")
    if flags & 0b10000:
        return None
    start = 8 + _ENVELOPE_BYTES[envelope]
    kind, coords, _ = _read_wkb(buf, start)
    if kind not in ("Point", "Polygon", "MultiPolygon"):
        raise HydrofabricError(f"geometry type {kind} is not supported here (Point, Polygon, "
                               f"MultiPolygon)")
    return kind, coords


def _read_wkb(buf: bytes, pos: int) -> tuple[str, object, int]:
    """One WKB geometry at ``pos``: ``(type, coordinates, next position)``; ISO (1003, 2003,
    3003 ...) and EWKB (Z/M/SRID flag bits) dimension codes are both understood."""
    order = "<" if buf[pos] == 1 else ">"
    (code,) = struct.unpack_from(order + "I", buf, pos + 1)
    pos += 5
    has_z, has_m = bool(code & 0x80000000), bool(code & 0x40000000)
    if code & 0x20000000:  # EWKB SRID
        pos += 4
    code &= 0x0FFFFFFF
    has_z |= code // 1000 in (1, 3)
    has_m |= code // 1000 in (2, 3)
    kind = _WKB_TYPES.get(code % 1000)
    if kind is None:
        raise HydrofabricError(f"unknown WKB geometry type code {code}")
    dim = 2 + has_z + has_m
    if kind == "Point":
        xy = np.frombuffer(buf, dtype=order + "f8", count=dim, offset=pos)[:2].copy()
        return kind, xy, pos + 8 * dim
    if kind == "Polygon":
        rings, pos = _read_rings(buf, pos, order, dim)
        return kind, rings, pos
    if kind == "MultiPolygon":
        (n,) = struct.unpack_from(order + "I", buf, pos)
        pos += 4
        polys = []
        for _ in range(n):
            sub, rings, pos = _read_wkb(buf, pos)
            if sub != "Polygon":
                raise HydrofabricError(f"MultiPolygon holds a {sub}")
            polys.append(rings)
        return kind, polys, pos
    raise HydrofabricError(f"geometry type {kind} is not supported here (Point, Polygon, "
                           f"MultiPolygon)")


def _read_rings(buf: bytes, pos: int, order: str, dim: int) -> tuple[list[np.ndarray], int]:
    (n_rings,) = struct.unpack_from(order + "I", buf, pos)
    pos += 4
    rings = []
    for _ in range(n_rings):
        (n_pts,) = struct.unpack_from(order + "I", buf, pos)
        pos += 4
        pts = np.frombuffer(buf, dtype=order + "f8", count=n_pts * dim, offset=pos)
        rings.append(pts.reshape(n_pts, dim)[:, :2].astype(float))
        pos += 8 * dim * n_pts
    return rings, pos


def geojson_centroid_latitude(geometry: dict | None) -> float | None:
    """Centroid latitude [degrees] of a GeoJSON Polygon/MultiPolygon in longitude/latitude
    (area centroid on the ellipsoid, as for divides: each vertex is not weighted, so a ring's
    closing vertex, which repeats the first, does not count twice); None without a polygon."""
    geom = _geojson_geometry(geometry)
    if geom is None or geom[0] not in ("Polygon", "MultiPolygon"):
        return None
    _, lat, _ = area_centroid(as_polygons(*geom), SUPPORTED_CRS[4326])
    return lat


def as_polygons(kind: str, coords) -> list[list[np.ndarray]]:
    """Polygon or MultiPolygon coordinates as a list of polygons (lists of rings)."""
    if kind == "Polygon":
        return [list(coords)]
    if kind == "MultiPolygon":
        return [list(p) for p in coords]
    raise HydrofabricError(f"a divide's geometry must be a Polygon or MultiPolygon, not {kind}")


# -- the hydrofabric ------------------------------------------------------------------------------
@dataclass
class Divide:
    """One catchment (divide) of a hydrofabric.

    Attributes
    ----------
    id : str
        ``cat-N`` (ngen's catchment id).
    toid : str
        Downstream nexus id.
    area_km2 : float
        Area used [km2] (``areasqkm``, else the polygon's area).
    area_source : str
        Where ``area_km2`` came from.
    polygon_area_km2 : float
        Area of the polygon on the ellipsoid [km2].
    latitude, longitude : float
        Centroid [degrees].
    polygons : list
        Geometry as longitude/latitude [degrees] polygons (lists of ``[k, 2]`` rings).
    flowpath : str or None
        The flowpath (``wb-N``) inside the divide, if known.
    """

    id: str
    toid: str
    area_km2: float
    area_source: str
    polygon_area_km2: float
    latitude: float
    longitude: float
    polygons: list = field(repr=False, default_factory=list)
    flowpath: str | None = None


@dataclass
class Nexus:
    """One nexus: id, downstream catchment id (``""`` if none in the hydrofabric), location."""

    id: str
    toid: str
    longitude: float
    latitude: float


@dataclass
class Hydrofabric:
    """Divides and the nexuses they drain to, in longitude/latitude.

    Attributes
    ----------
    divides : dict of str to Divide
    nexus : dict of str to Nexus
        Only the nexuses some divide drains to.
    crs : Crs
        CRS of the divides in the source.
    source : Path
    """

    divides: dict[str, Divide]
    nexus: dict[str, Nexus]
    crs: Crs
    source: Path

    def write_geojson(self, out: Path) -> tuple[Path, Path]:
        """Write ``out/catchment_data.geojson`` and ``out/nexus_data.geojson`` in ngen's form
        (CRS84 longitude/latitude; catchment properties ``areasqkm`` [km2], ``toid`` and the
        centroid ``latitude``/``longitude`` [degrees]; nexus property ``toid``: the downstream
        catchment or ``""``). Returns both paths."""
        cats = [{"type": "Feature", "id": d.id,
                 "properties": {"areasqkm": d.area_km2, "toid": d.toid,
                                "latitude": round(d.latitude, 9),
                                "longitude": round(d.longitude, 9)},
                 "geometry": {"type": "MultiPolygon",
                              "coordinates": [[np.round(r, 9).tolist() for r in poly]
                                              for poly in d.polygons]}}
                for d in self.divides.values()]
        nexus = [{"type": "Feature", "id": n.id, "properties": {"toid": n.toid},
                  "geometry": {"type": "Point",
                               "coordinates": [round(n.longitude, 9), round(n.latitude, 9)]}}
                 for n in self.nexus.values()]
        out.mkdir(parents=True, exist_ok=True)
        return (write_feature_collection(out / "catchment_data.geojson", "catchment_data", cats),
                write_feature_collection(out / "nexus_data.geojson", "nexus_data", nexus))


def write_feature_collection(path: Path, name: str, features: list[dict]) -> Path:
    """A GeoJSON FeatureCollection in CRS84, one feature per line (ngen's example layout)."""
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    body = ",\n".join(json.dumps(f) for f in features)
    path.write_text(f'{{\n"type": "FeatureCollection",\n"name": "{name}",\n'
                    f'"crs": {json.dumps(crs)},\n"features": [\n{body}\n]\n}}\n')
    return path


def read_hydrofabric(path: str | Path, nexus_path: str | Path | None = None) -> Hydrofabric:
    """Read a hydrofabric GeoPackage (``.gpkg``) or GeoJSON (``.geojson``/``.json``) file.

    Parameters
    ----------
    path : path
        GeoPackage with ``divides`` and ``nexus`` layers, or a GeoJSON FeatureCollection of
        divides.
    nexus_path : path, optional
        GeoJSON only: the nexus FeatureCollection (default: ``nexus_data.geojson`` or
        ``nexus.geojson`` beside ``path``, or the nexus features of ``path`` itself).

    Returns
    -------
    Hydrofabric

    Raises
    ------
    HydrofabricError
        Missing layers or columns, unsupported CRS, bad ids, divides without a nexus,
        implausible latitudes or areas.
    """
    path = Path(path)
    if not path.is_file():
        raise HydrofabricError(f"hydrofabric {path} is not a file")
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"SQLite format 3"):
        if nexus_path is not None:
            raise HydrofabricError("a separate nexus file is only for GeoJSON hydrofabrics; "
                                   f"{path} is a GeoPackage (its nexus layer is used)")
        tables = _read_gpkg(path)
    elif path.suffix.lower() in (".geojson", ".json") or head.lstrip()[:1] == b"{":
        tables = _read_geojson(path, nexus_path)
    else:
        raise HydrofabricError(f"{path} is neither a GeoPackage (SQLite) nor a GeoJSON file")
    return _assemble(tables, path)


@dataclass
class _Tables:
    """Rows read from a source, before topology and geometry are resolved."""

    divides: list[dict]  # id, toid, flowpath, areasqkm, geometry (kind, coords) or None
    divide_crs: Crs
    nexus: list[dict]  # id, toid, geometry
    nexus_crs: Crs
    links: list[dict] = field(default_factory=list)  # flowpaths/network: id, toid, divide_id
    where: dict = field(default_factory=dict)  # layer -> description for messages


# -- GeoPackage reading ---------------------------------------------------------------------------
def _read_gpkg(path: Path) -> _Tables:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        if "gpkg_contents" not in tables or "gpkg_geometry_columns" not in tables:
            raise HydrofabricError(f"{path} is an SQLite file but not a GeoPackage "
                                   f"(no gpkg_contents / gpkg_geometry_columns table)")
        layers = sorted(r[0] for r in con.execute("SELECT table_name FROM gpkg_contents"))
        for layer in ("divides", "nexus"):
            if layer not in tables:
                raise HydrofabricError(f"{path} has no '{layer}' layer (layers: "
                                       f"{', '.join(layers) or 'none'}); a NextGen hydrofabric "
                                       f"GeoPackage has 'divides' and 'nexus'")
        div_rows, div_crs = _gpkg_layer(con, path, "divides", ("divide_id", "id"),
                                        ("toid", "flowpath_toid"), ("id", "flowpath_id"))
        nex_rows, nex_crs = _gpkg_layer(con, path, "nexus", ("id", "nexus_id"),
                                        ("toid", "nexus_toid"), ())
        links = []
        for layer in ("flowpaths", "network"):
            if layer in tables:
                links += _gpkg_links(con, layer)
    finally:
        con.close()
    return _Tables(div_rows, div_crs, nex_rows, nex_crs, links,
                   {"divides": f"{path} layer divides", "nexus": f"{path} layer nexus"})


def _columns(con: sqlite3.Connection, layer: str) -> list[str]:
    return [r[1] for r in con.execute(f'PRAGMA table_info("{layer}")')]


def _first(columns, names) -> str | None:
    return next((c for c in names if c in columns), None)


def _gpkg_layer(con, path: Path, layer: str, id_names, toid_names, flowpath_names
                ) -> tuple[list[dict], Crs]:
    """Rows ``{id, toid, flowpath, areasqkm, geometry}`` of a feature layer and its CRS."""
    cols = _columns(con, layer)
    idc = _first(cols, id_names)
    if idc is None:
        raise HydrofabricError(f"{path} layer {layer} has no id column (looked for "
                               f"{list(id_names)}; columns: {cols})")
    toc = _first(cols, toid_names)
    fpc = _first([c for c in cols if c != idc], flowpath_names)
    meta = con.execute("SELECT column_name, srs_id FROM gpkg_geometry_columns "
                       "WHERE table_name = ?", (layer,)).fetchone()
    if meta is None:
        raise HydrofabricError(f"{path} layer {layer} has no entry in gpkg_geometry_columns")
    geom_col, srs_id = meta
    crs = _gpkg_crs(con, path, layer, srs_id)
    area_c = "areasqkm" if "areasqkm" in cols else None
    sel = [idc, toc, fpc, area_c, geom_col]
    sql = ", ".join(f'"{c}"' if c else "NULL" for c in sel)
    rows = []
    for i, (rid, toid, fp, area, blob) in enumerate(con.execute(f'SELECT {sql} FROM "{layer}"')):
        try:
            geom = parse_gpkg_geometry(blob)
        except HydrofabricError as exc:
            raise HydrofabricError(f"{path} layer {layer}, feature {rid!r}: {exc}") from None
        rows.append({"id": rid, "toid": toid, "flowpath": fp, "areasqkm": area,
                     "geometry": geom})
    return rows, crs


def _gpkg_crs(con, path: Path, layer: str, srs_id) -> Crs:
    row = con.execute("SELECT organization, organization_coordsys_id, definition FROM "
                      "gpkg_spatial_ref_sys WHERE srs_id = ?", (srs_id,)).fetchone()
    where = f"{path} layer {layer} (srs_id {srs_id})"
    if row is None:
        raise HydrofabricError(f"{where}: srs_id {srs_id} is not in gpkg_spatial_ref_sys")
    org, code, definition = row
    if str(org).strip().upper() == "EPSG":
        return crs_from_epsg(code, where)
    found = re.findall(r'(?:AUTHORITY|ID)\[\s*"EPSG"\s*,\s*"?(\d+)"?\s*\]', str(definition))
    if found:
        return crs_from_epsg(int(found[-1]), where)
    raise HydrofabricError(f"{where}: the coordinate reference system ({org}:{code}) has no "
                           f"EPSG code; supported: "
                           + ", ".join(f"EPSG:{k}" for k in SUPPORTED_CRS))


def _gpkg_links(con, layer: str) -> list[dict]:
    cols = _columns(con, layer)
    idc, toc = _first(cols, ("id", "flowpath_id")), _first(cols, ("toid", "flowpath_toid"))
    if idc is None or toc is None:
        return []
    dvc = "divide_id" if "divide_id" in cols else None
    sql = f'"{idc}", "{toc}", ' + (f'"{dvc}"' if dvc else "NULL")
    return [{"id": a, "toid": b, "divide_id": c}
            for a, b, c in con.execute(f'SELECT {sql} FROM "{layer}"')]


# -- GeoJSON reading ------------------------------------------------------------------------------
def _geojson_crs(doc: dict, path: Path) -> Crs | None:
    """The CRS named by a legacy ``crs`` member; None if there is none (RFC 7946)."""
    crs = doc.get("crs")
    if not crs:
        return None
    name = str((crs.get("properties") or {}).get("name", ""))
    if re.search(r"CRS84$", name, re.IGNORECASE):
        return SUPPORTED_CRS[4326]
    m = re.search(r"EPSG:{1,2}(?:[\d.]*:)?(\d+)$", name, re.IGNORECASE)
    if m is None:
        raise HydrofabricError(f"{path}: cannot read an EPSG code from crs name {name!r}; "
                               f"supported: " + ", ".join(f"EPSG:{k}" for k in SUPPORTED_CRS))
    return crs_from_epsg(int(m.group(1)), str(path))


def _load_geojson(path: Path) -> tuple[list[dict], Crs]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HydrofabricError(f"cannot read GeoJSON {path}: {exc}") from None
    if doc.get("type") != "FeatureCollection":
        raise HydrofabricError(f"{path} is not a GeoJSON FeatureCollection")
    crs = _geojson_crs(doc, path)
    feats = doc.get("features") or []
    if crs is None:
        _check_geographic_range(feats, path)
        crs = SUPPORTED_CRS[4326]
    return feats, crs


def _check_geographic_range(features: list[dict], path: Path) -> None:
    """Refuse projected coordinates in a GeoJSON without ``crs`` (taken as longitude/latitude)."""
    for f in features:
        coords = np.array(_flatten_coords((f.get("geometry") or {}).get("coordinates", [])),
                          dtype=float).reshape(-1, 2)
        if coords.size and (np.abs(coords[:, 0]).max() > 180 or np.abs(coords[:, 1]).max() > 90):
            y = float(coords[np.argmax(np.abs(coords[:, 1])), 1])
            raise HydrofabricError(
                f"{path}: feature {f.get('id')!r} has coordinates outside longitude/latitude "
                f"range (e.g. y = {y!r}, not a latitude in [-90, 90]): they look projected "
                f"(metres), but the file has no 'crs' member, so RFC 7946 longitude/latitude "
                f"was assumed; add \"crs\": {{\"type\": \"name\", \"properties\": {{\"name\": "
                f"\"urn:ogc:def:crs:EPSG::5070\"}}}} or reproject to EPSG:4326")


def _flatten_coords(c) -> list:
    if len(c) and isinstance(c[0], (int, float)):
        return [c[:2]]
    return [p for x in c for p in _flatten_coords(x)]


def _geojson_geometry(geom: dict | None):
    if not geom:
        return None
    kind, c = geom.get("type"), geom.get("coordinates")
    if kind == "Point":
        return kind, np.asarray(c, dtype=float)[:2]
    if kind == "Polygon":
        return kind, [np.asarray(r, dtype=float)[:, :2] for r in c]
    if kind == "MultiPolygon":
        return kind, [[np.asarray(r, dtype=float)[:, :2] for r in p] for p in c]
    raise HydrofabricError(f"geometry type {kind} is not supported here (Point, Polygon, "
                           f"MultiPolygon)")


def _geojson_row(f: dict, id_keys, toid_keys) -> dict:
    props = f.get("properties") or {}
    rid = next((props[k] for k in id_keys if not _blank(props.get(k))), None)
    if rid is None:
        rid = f.get("id")
    fp = props.get("id") if str(props.get("id", "")).startswith(FLOWPATH_PREFIX) else None
    fp = fp or props.get("flowpath_id")
    return {"id": rid, "toid": next((props[k] for k in toid_keys if k in props), None),
            "flowpath": fp, "areasqkm": props.get("areasqkm"),
            "geometry": _geojson_geometry(f.get("geometry"))}


def _read_geojson(path: Path, nexus_path) -> _Tables:
    feats, crs = _load_geojson(path)
    ident = lambda f: (f.get("properties") or {}).get("divide_id") or f.get("id") \
        or (f.get("properties") or {}).get("id")  # noqa: E731
    divs = [f for f in feats if not is_nexus_id(ident(f))]
    nexs = [f for f in feats if is_nexus_id(ident(f))]
    nex_crs, where_nex = crs, f"{path} (its nexus features)"
    if nexus_path is None and not nexs:
        nexus_path = next((p for p in (path.parent / "nexus_data.geojson",
                                       path.parent / "nexus.geojson") if p.is_file()), None)
        if nexus_path is None:
            raise HydrofabricError(
                f"{path} holds no nexus features and there is no nexus_data.geojson or "
                f"nexus.geojson beside it: the nexus layer is missing (pass the nexus file "
                f"with --hydrofabric-nexus)")
    if nexus_path is not None:
        nexs, nex_crs = _load_geojson(Path(nexus_path))
        where_nex = str(nexus_path)
    if not divs:
        raise HydrofabricError(f"{path} holds no divide (catchment) features")
    return _Tables([_geojson_row(f, ("divide_id",), ("toid", "flowpath_toid")) for f in divs],
                   crs,
                   [_geojson_row(f, ("id", "nexus_id"), ("toid", "nexus_toid")) for f in nexs],
                   nex_crs, [], {"divides": str(path), "nexus": where_nex})


# -- topology and geometry ------------------------------------------------------------------------
def _assemble(t: _Tables, path: Path) -> Hydrofabric:
    where = t.where.get("divides", str(path))
    nexus_rows = {}
    for r in t.nexus:
        if _blank(r["id"]):
            raise HydrofabricError(f"{t.where.get('nexus')}: a nexus has no id")
        nexus_rows[nexus_id(r["id"], t.where.get("nexus"))] = r
    fp_to_divide = _flowpath_divides(t)
    downstream = _link_nexus(t.links)
    divides = {}
    for r in t.divides:
        if _blank(r["id"]):
            raise HydrofabricError(f"{where}: a divide has no id")
        cid = divide_id(r["id"], where)
        if cid in divides:
            raise HydrofabricError(f"{where}: divide id {cid} occurs more than once")
        toid = _downstream_nexus(cid, r, downstream, where)
        if toid not in nexus_rows:
            raise HydrofabricError(f"{where}: divide {cid} drains to {toid}, which is not in "
                                   f"the nexus layer ({t.where.get('nexus')})")
        divides[cid] = _divide(cid, toid, r, t.divide_crs, where)
    nexus = {}
    for d in divides.values():
        if d.toid not in nexus:
            nexus[d.toid] = _nexus(d.toid, nexus_rows[d.toid], t.nexus_crs, fp_to_divide,
                                   divides, t.where.get("nexus"))
    return Hydrofabric(divides, nexus, t.divide_crs, path)


def _flowpath_divides(t: _Tables) -> dict[str, str]:
    """Flowpath id (``wb-N``) -> divide id, from the divides' flowpath column and the
    flowpaths/network layers."""
    out = {}
    for link in t.links:
        if str(link.get("id") or "").startswith(FLOWPATH_PREFIX) and not _blank(
                link.get("divide_id")):
            out[str(link["id"])] = _as_cat(link["divide_id"])
    for r in t.divides:
        if not _blank(r.get("flowpath")) and not _blank(r["id"]):
            out[str(r["flowpath"])] = _as_cat(r["id"])
    return out


def _as_cat(value) -> str:
    """``cat-N`` for a bare integer ``N``, else the id as a string (checked elsewhere)."""
    n = _bare_integer(value)
    return f"cat-{n}" if n is not None else str(value).strip()


def _link_nexus(links: list[dict]) -> dict[str, str]:
    """Flowpath id and divide id (``cat-N``) -> the nexus their flowpaths/network row drains
    to."""
    out = {}
    for link in links:
        if is_nexus_id(link.get("toid")):
            nex = str(link["toid"]).strip()
            out.setdefault(str(link.get("id")), nex)
            if not _blank(link.get("divide_id")):
                out.setdefault(_as_cat(link["divide_id"]), nex)
    return out


def _downstream_nexus(cid: str, row: dict, downstream: dict[str, str], where: str) -> str:
    """The nexus a divide drains to: its own ``toid`` if that is a nexus id, else the ``toid``
    of its flowpath (flowpaths/network layers: ``downstream`` of :func:`_link_nexus`)."""
    toid = row.get("toid")
    if not _blank(toid) and _bare_integer(toid) is not None:
        return f"nex-{_bare_integer(toid)}"
    if is_nexus_id(toid):
        return str(toid).strip()
    keys = [str(row["flowpath"])] if not _blank(row.get("flowpath")) else []
    if str(toid or "").startswith(FLOWPATH_PREFIX):
        keys.append(str(toid).strip())
    for key in keys + [cid]:
        if key in downstream:
            return downstream[key]
    raise HydrofabricError(f"{where}: divide {cid} has no downstream nexus (toid "
                           f"{toid!r}, and no flowpaths/network row of it drains to a nexus); "
                           f"ngen needs every catchment to drain to a nexus")


def _divide(cid: str, toid: str, row: dict, crs: Crs, where: str) -> Divide:
    geom = row.get("geometry")
    if geom is None:
        raise HydrofabricError(f"{where}: divide {cid} has no geometry, so its centroid "
                               f"latitude cannot be computed")
    polygons = as_polygons(*geom)
    if crs.geographic:
        _check_degrees(polygons, cid, crs, where)
    poly_km2, lat, lon = area_centroid(polygons, crs)
    if not poly_km2 > 0:
        raise HydrofabricError(f"{where}: divide {cid} has a polygon of zero area")
    lat = check_latitude(lat, f"{where}: divide {cid} centroid")
    if _blank(row.get("areasqkm")):
        area, source = poly_km2, (f"polygon area on the {crs.ellipsoid.name} ellipsoid "
                                  f"(EPSG:{crs.epsg} equal-area plane)")
    else:
        area, source = check_area(row["areasqkm"], f"{where}: divide {cid}"), "areasqkm"
        if abs(area - poly_km2) > AREA_CHECK_TOLERANCE * poly_km2:
            warnings.warn(f"{where}: divide {cid} areasqkm {area:g} km2 differs from its "
                          f"polygon's area {poly_km2:.6g} km2 by more than "
                          f"{AREA_CHECK_TOLERANCE:.0%}; areasqkm is used",
                          HydrofabricWarning, stacklevel=3)
    lonlat = [[to_lonlat(r, crs) for r in poly] for poly in polygons]
    fp = None if _blank(row.get("flowpath")) else str(row["flowpath"])
    return Divide(cid, toid, float(area), source, float(poly_km2), float(lat), float(lon),
                  lonlat, fp)


def _check_degrees(polygons, cid: str, crs: Crs, where: str) -> None:
    """Refuse projected metres in a layer that declares geographic degrees."""
    xy = np.concatenate([r for poly in polygons for r in poly])
    if np.abs(xy[:, 1]).max() > 90 or np.abs(xy[:, 0]).max() > 180:
        y = float(xy[np.argmax(np.abs(xy[:, 1])), 1])
        check_latitude(y, f"{where}: divide {cid} (the layer declares EPSG:{crs.epsg}, "
                          f"longitude/latitude in degrees), a vertex's y")


def _nexus(nid: str, row: dict, crs: Crs, fp_to_divide: dict, divides: dict, where: str
           ) -> Nexus:
    """A :class:`Nexus` with its downstream catchment among ``divides`` (``""`` if none)."""
    geom = row.get("geometry")
    if geom is None or geom[0] != "Point":
        raise HydrofabricError(f"{where}: nexus {nid} has no Point geometry")
    xy = np.asarray(geom[1], dtype=float).reshape(1, 2)
    if crs.geographic:
        check_latitude(xy[0, 1], f"{where}: nexus {nid} (declared EPSG:{crs.epsg})")
    lon, lat = to_lonlat(xy, crs)[0]
    toid = "" if _blank(row.get("toid")) else str(row["toid"]).strip()
    down = fp_to_divide.get(toid, toid)
    if down not in divides and toid.startswith(FLOWPATH_PREFIX):
        down = "cat-" + toid[len(FLOWPATH_PREFIX):]  # hydrofabric convention: wb-N lies in cat-N
    return Nexus(nid, down if down in divides else "", float(lon), float(lat))
