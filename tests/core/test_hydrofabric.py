"""Hydrofabric input (delta_core.ngen.hydrofabric) and ``--hydrofabric`` of the realization
writer: GeoPackage binary geometry, the EPSG:5070 inverse projection, per-divide areas and
centroid latitudes, topology, errors, and a replay of the written realization with the dHBV BMI.

The synthetic hydrofabric: 5 divides near the Narraguagus River, Maine (CAMELS 01022500), built
in EPSG:5070 around centres chosen in latitude/longitude and projected with this file's own
forward Albers; shapes whose planar area and centroid are known exactly (rectangle, two-part
MultiPolygon, polygon with a hole, clockwise triangle, Polygon Z):

    cat-11 ─┐
    cat-12 ─┴─> nex-13 ─> wb-13 (in cat-13) ─> nex-14 ─> wb-14 (in cat-14) ─> tnx-1000 (terminal)
                cat-15 ─────────────────────────┘
"""
from __future__ import annotations

import csv
import json
import math
import shutil
import sqlite3
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from delta_core.ngen import hydrofabric as H
from delta_core.ngen import replay as R
from delta_core.ngen.crosswalk import RUNOFF_FLUX
from conftest import REPO

# -- an independent forward Albers (Snyder 1987, eqs. 3-12, 14-1..14-4, 14-12..14-15) -------------
GRS80_A, GRS80_INV_F = 6378137.0, 298.257222101


def _q(phi: float, e: float) -> float:
    s = math.sin(phi)
    return (1 - e * e) * (s / (1 - e * e * s * s) - math.log((1 - e * s) / (1 + e * s)) / (2 * e))


def albers_forward(lon: float, lat: float, lat1=29.5, lat2=45.5, lat0=23.0, lon0=-96.0,
                   a=GRS80_A, inv_f=GRS80_INV_F) -> tuple[float, float]:
    """(x, y) [m] of (lon, lat) [deg] on the ellipsoid (a, 1/f): EPSG:5070 by default."""
    f = 1 / inv_f
    e = math.sqrt(2 * f - f * f)
    m = lambda p: math.cos(p) / math.sqrt(1 - (e * math.sin(p)) ** 2)  # noqa: E731
    p0, p1, p2, p = (math.radians(v) for v in (lat0, lat1, lat2, lat))
    n = (m(p1) ** 2 - m(p2) ** 2) / (_q(p2, e) - _q(p1, e))
    c = m(p1) ** 2 + n * _q(p1, e)
    rho0 = a * math.sqrt(c - n * _q(p0, e)) / n
    rho = a * math.sqrt(c - n * _q(p, e)) / n
    theta = n * math.radians(lon - lon0)
    return rho * math.sin(theta), rho0 - rho * math.cos(theta)


# -- GeoPackage writing ---------------------------------------------------------------------------
def wkb_rings(rings, order="<", z=False) -> bytes:
    out = struct.pack(order + "I", len(rings))
    for ring in rings:
        out += struct.pack(order + "I", len(ring))
        for x, y in ring:
            out += struct.pack(order + ("ddd" if z else "dd"), x, y, *((7.0,) if z else ()))
    return out


def wkb_polygon(rings, order="<", z=False) -> bytes:
    bo = b"\x01" if order == "<" else b"\x00"
    return bo + struct.pack(order + "I", 1003 if z else 3) + wkb_rings(rings, order, z)


def wkb_multipolygon(polys, order="<") -> bytes:
    bo = b"\x01" if order == "<" else b"\x00"
    return bo + struct.pack(order + "II", 6, len(polys)) + b"".join(
        wkb_polygon(p, order) for p in polys)


def wkb_point(x, y) -> bytes:
    return b"\x01" + struct.pack("<Idd", 1, x, y)


def gp(wkb: bytes, srs_id: int, xy=None) -> bytes:
    """GeoPackage binary: 'GP', version 0, flags (little-endian header, envelope [minx, maxx,
    miny, maxy] if ``xy`` is given), srs_id, envelope, WKB."""
    if xy is None:
        return b"GP\x00\x01" + struct.pack("<i", srs_id) + wkb
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    env = struct.pack("<4d", xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max())
    return b"GP\x00\x03" + struct.pack("<i", srs_id) + env + wkb


def rect(cx, cy, w, h, clockwise=False):
    r = [(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2),
         (cx - w / 2, cy + h / 2), (cx - w / 2, cy - h / 2)]
    return r[::-1] if clockwise else r


#: divide -> (centre lon, centre lat [deg], toid, flowpath, areasqkm or None, shape)
DIVIDES = {
    "cat-11": (-68.02, 44.72, "nex-13", "wb-11", 12.0, "rect"),
    "cat-12": (-67.94, 44.71, "nex-13", "wb-12", None, "multi"),
    "cat-13": (-67.98, 44.66, "nex-14", "wb-13", 32.0, "hole"),
    "cat-14": (-67.93, 44.61, "tnx-1000", "wb-14", None, "triangle"),
    "cat-15": (-67.88, 44.67, "nex-14", "wb-15", None, "rectz"),
}
#: exact planar (= GRS80 ellipsoid, Albers being equal-area) areas of the shapes [km2]
SHAPE_KM2 = {"rect": 12.0, "multi": 8.0, "hole": 32.0, "triangle": 18.0, "rectz": 10.0}
#: nexus -> (toid, the divide whose centre it sits below)
NEXUS = {"nex-13": ("wb-13", "cat-11"), "nex-14": ("wb-14", "cat-13"),
         "tnx-1000": (None, "cat-14")}


def divide_wkb(shape: str, cx: float, cy: float) -> tuple[bytes, list]:
    """WKB and vertices of a shape whose planar centroid is (cx, cy)."""
    if shape == "rect":
        r = rect(cx, cy, 4000, 3000)
        return wkb_polygon([r]), r
    if shape == "multi":
        a, b = rect(cx - 3000, cy, 2000, 2000), rect(cx + 3000, cy, 2000, 2000, clockwise=True)
        return wkb_multipolygon([[a], [b]], order=">"), a + b  # big-endian WKB
    if shape == "hole":
        outer, hole = rect(cx, cy, 6000, 6000), rect(cx, cy, 2000, 2000)
        return wkb_polygon([outer, hole]), outer
    if shape == "triangle":  # clockwise; centroid = vertex mean = (cx, cy)
        t = [(cx - 3000, cy - 2000), (cx, cy + 4000), (cx + 3000, cy - 2000),
             (cx - 3000, cy - 2000)]
        return wkb_polygon([t]), t
    r = rect(cx, cy, 5000, 2000)
    return wkb_polygon([r], z=True), r


SRS_ROWS = [
    ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", None),
    ("Undefined geographic SRS", 0, "NONE", 0, "undefined", None),
    ("WGS 84 geodetic", 4326, "EPSG", 4326, 'GEOGCS["WGS 84"]', None),
    ("NAD83 / Conus Albers", 5070, "EPSG", 5070, 'PROJCS["NAD83 / Conus Albers"]', None),
    ("WGS 84 / Pseudo-Mercator", 3857, "EPSG", 3857, 'PROJCS["WGS 84 / Pseudo-Mercator"]', None),
    ("custom Albers", 100001, "NONE", 100001,
     'PROJCS["x",GEOGCS["NAD83",AUTHORITY["EPSG","4269"]],AUTHORITY["EPSG","5070"]]', None),
]


def make_gpkg(path: Path, srs_id: int = 5070, divides=DIVIDES, nexus=NEXUS, layers=None,
              project=True, toid_override=None) -> Path:
    """A hydrofabric v2.2-style GeoPackage: divides, nexus, flowpaths, network."""
    layers = layers or ("divides", "nexus", "flowpaths", "network")
    con = sqlite3.connect(path)
    con.execute("PRAGMA application_id = 1196444487")  # 'GPKG'
    con.execute("PRAGMA user_version = 10200")
    con.execute("CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER "
                "PRIMARY KEY, organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT "
                "NULL, definition TEXT NOT NULL, description TEXT)")
    con.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)", SRS_ROWS)
    con.execute("CREATE TABLE gpkg_contents (table_name TEXT PRIMARY KEY, data_type TEXT NOT "
                "NULL, identifier TEXT, description TEXT DEFAULT '', last_change DATETIME, "
                "min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER)")
    con.execute("CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT "
                "NOT NULL, geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT "
                "NOT NULL, m TINYINT NOT NULL, PRIMARY KEY (table_name, column_name))")

    def register(layer, gtype, srs=srs_id, data_type="features"):
        con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                    "VALUES (?,?,?,?)", (layer, data_type, layer, srs if gtype else None))
        if gtype:
            con.execute("INSERT INTO gpkg_geometry_columns VALUES (?,?,?,?,0,0)",
                        (layer, "geom", gtype, srs))

    centres = {cid: albers_forward(lon, lat) if project else (lon, lat)
               for cid, (lon, lat, *_) in divides.items()}
    if "divides" in layers:
        con.execute("CREATE TABLE divides (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom POLYGON, "
                    "divide_id TEXT NOT NULL, id TEXT, toid TEXT, type TEXT, ds_id REAL, "
                    "areasqkm REAL, vpuid TEXT, lengthkm REAL, tot_drainage_areasqkm REAL, "
                    "has_flowline INTEGER)")
        for cid, (lon, lat, toid, fp, area, shape) in divides.items():
            wkb, pts = divide_wkb(shape, *centres[cid])
            toid = (toid_override or {}).get(cid, toid)
            con.execute("INSERT INTO divides (geom, divide_id, id, toid, type, areasqkm, vpuid) "
                        "VALUES (?,?,?,?,?,?,?)",
                        (gp(wkb, srs_id, pts), cid, fp, toid, "network", area, "01"))
        register("divides", "MULTIPOLYGON")
    if "nexus" in layers:
        con.execute("CREATE TABLE nexus (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom POINT, "
                    "id TEXT NOT NULL, toid TEXT, type TEXT, vpuid TEXT, poi_id REAL)")
        for nid, (toid, below) in nexus.items():
            x, y = centres[below]
            kind = "terminal" if nid.startswith("tnx-") else "nexus"
            con.execute("INSERT INTO nexus (geom, id, toid, type, vpuid) VALUES (?,?,?,?,?)",
                        (gp(wkb_point(x, y - 1500), srs_id), nid, toid, kind, "01"))
        register("nexus", "POINT")
    if "flowpaths" in layers:
        con.execute("CREATE TABLE flowpaths (fid INTEGER PRIMARY KEY, geom MULTILINESTRING, "
                    "id TEXT, toid TEXT, divide_id TEXT, lengthkm REAL, areasqkm REAL)")
        for cid, (_, _, toid, fp, area, _) in divides.items():
            con.execute("INSERT INTO flowpaths (id, toid, divide_id) VALUES (?,?,?)",
                        (fp, toid, cid))
        register("flowpaths", "MULTILINESTRING")
    if "network" in layers:
        con.execute("CREATE TABLE network (id TEXT, toid TEXT, divide_id TEXT, ds_id REAL, "
                    "type TEXT)")
        for cid, (_, _, toid, fp, _, _) in divides.items():
            con.execute("INSERT INTO network VALUES (?,?,?,NULL,'network')", (fp, toid, cid))
        register("network", None, data_type="attributes")
    con.commit()
    con.close()
    return path


@pytest.fixture()
def gpkg(tmp_path) -> Path:
    return make_gpkg(tmp_path / "hf.gpkg")


def gpkg_to_geojson(src: Path, dst: Path, crs_name="urn:ogc:def:crs:EPSG::5070") -> Path:
    """The divides and nexus layers as two GeoJSON files in the source CRS (like ogr2ogr)."""
    hf_divides, hf_nexus = [], []
    con = sqlite3.connect(src)
    for cid, fp, toid, area, blob in con.execute(
            "SELECT divide_id, id, toid, areasqkm, geom FROM divides"):
        kind, coords = H.parse_gpkg_geometry(blob)
        polys = H.as_polygons(kind, coords)
        hf_divides.append({"type": "Feature", "properties": {
            "divide_id": cid, "id": fp, "toid": toid, "areasqkm": area},
            "geometry": {"type": "MultiPolygon",
                         "coordinates": [[r.tolist() for r in p] for p in polys]}})
    for nid, toid, blob in con.execute("SELECT id, toid, geom FROM nexus"):
        _, xy = H.parse_gpkg_geometry(blob)
        hf_nexus.append({"type": "Feature", "properties": {"id": nid, "toid": toid},
                         "geometry": {"type": "Point", "coordinates": xy.tolist()}})
    con.close()
    dst.mkdir(parents=True, exist_ok=True)
    for name, feats in (("divides", hf_divides), ("nexus", hf_nexus)):
        doc = {"type": "FeatureCollection", "name": name, "features": feats}
        if crs_name:
            doc["crs"] = {"type": "name", "properties": {"name": crs_name}}
        (dst / f"{name}.geojson").write_text(json.dumps(doc))
    return dst / "divides.geojson"


# -- the projection -------------------------------------------------------------------------------
def test_inverse_albers_matches_forward_over_conus():
    """The module's inverse undoes this file's forward to far better than 1e-6 degrees over the
    EPSG:5070 area of use, and the module's forward equals this file's."""
    lons, lats = np.meshgrid(np.linspace(-125, -66, 25), np.linspace(24, 50, 14))
    for lon, lat in zip(lons.ravel(), lats.ravel()):
        x, y = albers_forward(lon, lat)
        ilon, ilat = H.CONUS_ALBERS.inverse(x, y)
        assert abs(ilon - lon) < 1e-9 and abs(ilat - lat) < 1e-9, (lon, lat)
        fx, fy = H.CONUS_ALBERS.forward(lon, lat)
        assert abs(fx - x) < 1e-6 and abs(fy - y) < 1e-6


def test_known_points():
    """Independently published pairs:

    1. Snyder (1987), *Map Projections: A Working Manual*, numerical example for the ellipsoidal
       Albers (Clarke 1866, the USGS conterminous-US parameters 29.5/45.5, origin 23N 96W):
       35N 75W -> x = 1,885,472.7 m, y = 1,535,925.0 m (n = 0.6029035, C = 1.3491594,
       rho0 = 9,929,079.6 m).
    2. PROJ's own test data (test/gie/builtins.gie, ``+proj=aea +ellps=GRS80 +lat_1=0
       +lat_2=2``): (2E, 1N) -> (222571.608757106, 110653.326743030), (2E, 1S) ->
       (222706.306508391, -110484.267144400); inverse (200, 100) -> (0.001796631E,
       0.000904369N).
    3. EPSG:5070 itself: the origin (23N, 96W) is (0, 0) by definition; and PROJ 9.5.1
       (pyproj 3.7.2, EPSG:4269 -> EPSG:5070) gives 35N 75W -> (1885428.3905, 1535969.2858)
       and 40N 105W -> (-760465.7454, 1923013.9798), CAMELS gauge 01022500 (44.60797N,
       67.93524W) -> (2190628.9681, 2727911.3728).
    """
    clarke = H.AlbersEqualArea(29.5, 45.5, 23.0, -96.0, ellipsoid=H.CLARKE1866)
    n, c, rho0 = clarke.constants
    assert (round(n, 7), round(c, 7), round(rho0, 1)) == (0.6029035, 1.3491594, 9929079.6)
    x, y = clarke.forward(-75.0, 35.0)
    assert abs(x - 1885472.7) < 0.1 and abs(y - 1535925.0) < 0.1
    lon, lat = clarke.inverse(1885472.7, 1535925.0)
    assert abs(lon + 75.0) < 1e-5 and abs(lat - 35.0) < 1e-5

    gie = H.AlbersEqualArea(0.0, 2.0, 0.0, 0.0, ellipsoid=H.GRS80)
    for (lo, la), (ex, ey) in (((2, 1), (222571.608757106, 110653.326743030)),
                               ((2, -1), (222706.306508391, -110484.267144400))):
        fx, fy = gie.forward(lo, la)
        assert abs(fx - ex) < 1e-4 and abs(fy - ey) < 1e-4
        ilo, ila = gie.inverse(ex, ey)
        assert abs(ilo - lo) < 1e-9 and abs(ila - la) < 1e-9
    ilo, ila = gie.inverse(200.0, 100.0)
    assert abs(ilo - 0.001796631) < 1e-9 and abs(ila - 0.000904369) < 1e-9

    assert np.allclose(H.CONUS_ALBERS.inverse(0.0, 0.0), (-96.0, 23.0), atol=1e-12, rtol=0)
    for (lo, la), (ex, ey) in (((-75.0, 35.0), (1885428.3905428401, 1535969.2858012654)),
                               ((-105.0, 40.0), (-760465.7454249287, 1923013.9797508863)),
                               ((-67.93524, 44.60797), (2190628.9680606313, 2727911.372790952))):
        ilo, ila = H.CONUS_ALBERS.inverse(ex, ey)
        assert abs(ilo - lo) < 1e-4 and abs(ila - la) < 1e-4  # in fact < 1e-10
        assert abs(ilo - lo) < 1e-10 and abs(ila - la) < 1e-10
        assert np.allclose(albers_forward(lo, la), (ex, ey), atol=1e-5, rtol=0)


def test_geographic_area_on_the_ellipsoid():
    """Lon/lat areas: Lambert cylindrical equal-area on the ellipsoid (PROJ builtins.gie,
    ``+proj=cea +ellps=GRS80``: (150E, 50N) -> (16697923.6190, 4865983.5552)), and a 0.1 deg
    cell's area equals the integral of the ellipsoid's area element."""
    a = H.GRS80.a
    assert abs(a * math.radians(150) - 16697923.6190) < 1e-3
    assert abs(a * float(H.authalic_q(math.radians(50), H.GRS80)) / 2 - 4865983.5552) < 1e-3
    lon0, lat0, d = -68.0, 44.6, 0.1
    cell = [[np.array([(lon0, lat0), (lon0 + d, lat0), (lon0 + d, lat0 + d), (lon0, lat0 + d),
                       (lon0, lat0)])]]
    area, lat, lon = H.area_centroid(cell, H.SUPPORTED_CRS[4269])
    e2 = H.GRS80.e2
    phi = np.linspace(math.radians(lat0), math.radians(lat0 + d), 20001)
    dens = a * a * (1 - e2) * np.cos(phi) / (1 - e2 * np.sin(phi) ** 2) ** 2
    exact = float(np.sum((dens[1:] + dens[:-1]) / 2 * np.diff(phi))) * math.radians(d) / 1e6
    assert abs(area - exact) / exact < 1e-9
    assert abs(lon - (lon0 + d / 2)) < 1e-12 and abs(lat - (lat0 + d / 2)) < 1e-4


# -- GeoPackage geometry --------------------------------------------------------------------------
def test_gpkg_geometry_blobs():
    ring = [(0.0, 0.0), (2.0, 0.0), (2.0, 1.0), (0.0, 0.0)]
    kind, rings = H.parse_gpkg_geometry(gp(wkb_polygon([ring], order=">"), 5070, ring))
    assert kind == "Polygon" and np.array_equal(rings[0], np.array(ring))
    kind, polys = H.parse_gpkg_geometry(gp(wkb_multipolygon([[ring], [ring]]), 5070))
    assert kind == "MultiPolygon" and len(polys) == 2
    kind, rings = H.parse_gpkg_geometry(gp(wkb_polygon([ring], z=True), 5070))
    assert rings[0].shape == (4, 2)  # Z dropped
    assert H.parse_gpkg_geometry(b"GP\x00\x11" + struct.pack("<i", 5070)) is None  # empty
    assert H.parse_gpkg_geometry(None) is None
    with pytest.raises(H.HydrofabricError, match="not GeoPackage binary"):
        H.parse_gpkg_geometry(wkb_polygon([ring]))
    line = b"\x01" + struct.pack("<II", 2, 2) + struct.pack("<4d", 0, 0, 1, 1)
    with pytest.raises(H.HydrofabricError, match="LineString is not supported"):
        H.parse_gpkg_geometry(gp(line, 5070))
    area, cx, cy = H.polygons_area_centroid([[np.array(ring[::-1])]])
    assert (area, cx, cy) == pytest.approx((1.0, 4 / 3, 1 / 3))


# -- reading hydrofabrics -------------------------------------------------------------------------
def _check_divides(hf: H.Hydrofabric, tol_deg: float = 1e-6):
    assert sorted(hf.divides) == sorted(DIVIDES)
    for cid, (lon, lat, toid, fp, area, shape) in DIVIDES.items():
        d = hf.divides[cid]
        assert d.toid == toid and d.flowpath == fp
        assert abs(d.latitude - lat) < tol_deg and abs(d.longitude - lon) < tol_deg, cid
        assert d.polygon_area_km2 == pytest.approx(SHAPE_KM2[shape], rel=1e-9)
        if area is None:
            assert d.area_km2 == pytest.approx(SHAPE_KM2[shape], rel=1e-9)
            assert "ellipsoid" in d.area_source
        else:
            assert d.area_km2 == area and d.area_source == "areasqkm"


def test_read_gpkg(gpkg):
    hf = H.read_hydrofabric(gpkg)
    assert hf.crs.epsg == 5070
    _check_divides(hf, tol_deg=1e-9)
    assert {n: x.toid for n, x in hf.nexus.items()} == {
        "nex-13": "cat-13", "nex-14": "cat-14", "tnx-1000": ""}
    lon, lat = hf.nexus["nex-13"].longitude, hf.nexus["nex-13"].latitude
    assert abs(lon - DIVIDES["cat-11"][0]) < 0.01 and abs(lat - DIVIDES["cat-11"][1]) < 0.02


def test_read_geojson_same_as_gpkg(gpkg, tmp_path):
    div = gpkg_to_geojson(gpkg, tmp_path / "gj")
    ref = H.read_hydrofabric(gpkg)
    for kwargs in ({"nexus_path": tmp_path / "gj" / "nexus.geojson"}, {}):  # beside it
        hf = H.read_hydrofabric(div, **kwargs)
        assert hf.crs.epsg == 5070
        _check_divides(hf, tol_deg=1e-9)
        assert {n: x.toid for n, x in hf.nexus.items()} == {n: x.toid for n, x in
                                                           ref.nexus.items()}


def test_read_lonlat_geojson(gpkg, tmp_path):
    """A CRS84 GeoJSON (the realization's own output) reads back: same areas (areasqkm), and
    centroids within 1e-4 deg (the centroid is taken in another equal-area plane)."""
    hf = H.read_hydrofabric(gpkg)
    cat, nex = hf.write_geojson(tmp_path / "w")
    back = H.read_hydrofabric(cat, nex)
    assert back.crs.epsg == 4326
    for cid, d in hf.divides.items():
        b = back.divides[cid]
        assert b.area_km2 == d.area_km2 and b.toid == d.toid
        assert b.polygon_area_km2 == pytest.approx(d.polygon_area_km2, rel=1e-3)
        assert abs(b.latitude - d.latitude) < 1e-4 and abs(b.longitude - d.longitude) < 1e-4
    assert {n: x.toid for n, x in back.nexus.items()} == {n: x.toid for n, x in
                                                         hf.nexus.items()}


def test_toid_from_flowpaths_and_bare_ids(tmp_path):
    """A divide whose toid is not a nexus gets its flowpath's; bare integer ids become cat-/nex-
    ids; a custom srs_id whose WKT names EPSG:5070 is understood."""
    p = make_gpkg(tmp_path / "a.gpkg", toid_override={"cat-15": None, "cat-12": "wb-12"})
    hf = H.read_hydrofabric(p)
    assert hf.divides["cat-15"].toid == "nex-14" and hf.divides["cat-12"].toid == "nex-13"
    divides = {7: (-68.0, 44.7, 21, 99, None, "rect")}
    p = make_gpkg(tmp_path / "b.gpkg", srs_id=100001, divides=divides,
                  nexus={"21": (None, 7)}, layers=("divides", "nexus"))
    hf = H.read_hydrofabric(p)
    assert list(hf.divides) == ["cat-7"] and hf.divides["cat-7"].toid == "nex-21"
    assert abs(hf.divides["cat-7"].latitude - 44.7) < 1e-9


def test_areasqkm_disagreeing_with_polygon_is_warned(tmp_path):
    divides = {"cat-7": (-68.0, 44.7, "nex-8", "wb-7", 120.0, "rect")}
    p = make_gpkg(tmp_path / "a.gpkg", divides=divides, nexus={"nex-8": (None, "cat-7")})
    with pytest.warns(H.HydrofabricWarning, match="areasqkm 120 km2 differs from its polygon"):
        hf = H.read_hydrofabric(p)
    assert hf.divides["cat-7"].area_km2 == 120.0


@pytest.mark.parametrize("case, match", [
    ("crs", r"EPSG:3857 is not supported; supported: EPSG:5070"),
    ("projected_as_degrees", r"latitude .* outside \[-90, 90\].*looks like a projected"),
    ("no_nexus", r"divide cat-14 has no downstream nexus"),
    ("nexus_not_in_layer", r"divide cat-14 drains to nex-99, which is not in the nexus layer"),
    ("missing_layer", r"has no 'nexus' layer \(layers: divides, flowpaths, network\)"),
    ("bad_id", r"divide id 'div-1' does not start with cat-, wb-, agg-"),
    ("not_gpkg", r"not a GeoPackage"),
])
def test_bad_gpkg(tmp_path, case, match):
    p = tmp_path / "bad.gpkg"
    if case == "crs":
        make_gpkg(p, srs_id=3857)
    elif case == "projected_as_degrees":  # metres written under an EPSG:4326 declaration
        make_gpkg(p, srs_id=4326)
    elif case == "no_nexus":
        make_gpkg(p, toid_override={"cat-14": None}, layers=("divides", "nexus"))
    elif case == "nexus_not_in_layer":
        make_gpkg(p, toid_override={"cat-14": "nex-99"})
    elif case == "missing_layer":
        make_gpkg(p, layers=("divides", "flowpaths", "network"))
    elif case == "bad_id":
        make_gpkg(p, divides={"div-1": (-68.0, 44.7, "nex-8", "wb-1", None, "rect")},
                  nexus={"nex-8": (None, "div-1")})
    else:
        sqlite3.connect(p).execute("CREATE TABLE divides (id TEXT)").connection.commit()
    with pytest.raises(H.HydrofabricError, match=match):
        H.read_hydrofabric(p)


def test_bad_geojson(gpkg, tmp_path):
    div = gpkg_to_geojson(gpkg, tmp_path / "nocrs", crs_name=None)
    with pytest.raises(H.HydrofabricError, match=r"look projected .* no 'crs' member"):
        H.read_hydrofabric(div)
    div = gpkg_to_geojson(gpkg, tmp_path / "merc", crs_name="urn:ogc:def:crs:EPSG::3857")
    with pytest.raises(H.HydrofabricError, match="EPSG:3857 is not supported"):
        H.read_hydrofabric(div)
    div = gpkg_to_geojson(gpkg, tmp_path / "alone")
    (tmp_path / "alone" / "nexus.geojson").unlink()
    with pytest.raises(H.HydrofabricError, match="the nexus layer is missing"):
        H.read_hydrofabric(div)


def test_check_latitude_names_projected_values():
    assert H.check_latitude("44.5", "x") == 44.5
    with pytest.raises(H.HydrofabricError, match=r"2505285.2 is outside \[-90, 90\] degrees; "
                                                 r"this looks like a projected coordinate"):
        H.check_latitude(2505285.2, "catchment cat-1")
    with pytest.raises(H.HydrofabricError, match="area 0.0 km2 is not > 0"):
        H.check_area(0.0, "catchment cat-1")


# -- the realization writer -----------------------------------------------------------------------
START, END = "2015-12-01 00:00:00", "2015-12-02 23:00:00"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from dhbv_helpers import make_random_bundle

    return make_random_bundle(tmp_path_factory.mktemp("hfb") / "bundle.pt")


def _run(args, out: Path, bundle: Path) -> int:
    from bmi_dhbv import realization

    return realization.main([*args, "--out", str(out), "--start", START, "--end", END,
                             "--bundle", str(bundle)])


def _write_forcing(out: Path, ids) -> None:
    """Hourly AORC-style forcing (mm s-1, K) for START..END: rain on the first day."""
    (out / "forcing").mkdir(exist_ok=True)
    t0 = np.datetime64(START.replace(" ", "T"))
    for cid in ids:
        with open(out / "forcing" / f"{cid}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time", "precip_rate", "TMP_2maboveground"])
            for h in range(48):
                t = str(t0 + np.timedelta64(h, "h")).replace("T", " ")
                w.writerow([t, 5.0 / 3600 if 6 <= h < 18 else 0.0, 278.15 + 3 * math.sin(h)])


def test_hydrofabric_stand_in_realization_replays(gpkg, tmp_path, bundle, capsys):
    """--hydrofabric with --stand-in: per-divide areas and centroid latitudes in the configs,
    ngen's geojson written, and the realization replays with the dHBV BMI; nexus flows are the
    sums of the divides draining into each nexus."""
    out = tmp_path / "r"
    assert _run(["--hydrofabric", str(gpkg), "--stand-in", "03439000"], out, bundle) == 0
    assert "EPSG:5070" in capsys.readouterr().out
    hf = H.read_hydrofabric(gpkg)
    for cid, d in hf.divides.items():
        text = (out / "config" / f"{cid}.yaml").read_text()
        cfg = yaml.safe_load(text)
        assert cfg["latitude"] == d.latitude and cfg["area_km2"] == d.area_km2
        assert abs(cfg["latitude"] - DIVIDES[cid][1]) < 1e-9
        assert len(cfg["attributes"]) == 35 and "STAND-IN" in text and "centroid" in text
    cats = json.loads((out / "catchment_data.geojson").read_text())
    nexus = json.loads((out / "nexus_data.geojson").read_text())
    assert cats["crs"]["properties"]["name"].endswith("CRS84")
    assert {f["id"]: f["properties"]["toid"] for f in cats["features"]} == {
        c: v[2] for c, v in DIVIDES.items()}
    assert {f["id"]: f["properties"]["toid"] for f in nexus["features"]} == {
        "nex-13": "cat-13", "nex-14": "cat-14", "tnx-1000": ""}
    _write_forcing(out, hf.divides)
    res = R.replay(out / "realization.json", out / "catchment_data.geojson")
    assert sorted(res["catchments"]) == sorted(DIVIDES)
    for cid, r in res["catchments"].items():
        assert r["area_km2"] == hf.divides[cid].area_km2
        assert np.all(np.isfinite(r["main_m"])) and r["main_m"].sum() > 0
        np.testing.assert_allclose(r["flow_m3s"], r["outputs"][RUNOFF_FLUX], rtol=1e-12)
    c = res["catchments"]
    np.testing.assert_allclose(res["nexus"]["nex-13"],
                               c["cat-11"]["flow_m3s"] + c["cat-12"]["flow_m3s"])
    np.testing.assert_allclose(res["nexus"]["nex-14"],
                               c["cat-13"]["flow_m3s"] + c["cat-15"]["flow_m3s"])


def _sample_attributes(gauge: str) -> dict:
    from delta_core.config import DataConfig
    from delta_core.data.camels import CamelsDataset

    need = DataConfig().attributes
    attrs = CamelsDataset().attributes([gauge], need)
    return {a: attrs[a][0] for a in need}


def test_one_row_table_does_not_override_divide_areas(gpkg, tmp_path, bundle):
    """The issue's case: a one-row CAMELS attribute table (area_gages2, gauge_lat of the gauge)
    for all divides: the divides keep their own areas and latitudes, with a warning."""
    attrs = _sample_attributes("01022500")
    table = tmp_path / "attrs.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["gauge_id", "gauge_lat", *attrs])  # attrs hold area_gages2 (573.6 km2)
        w.writerow(["01022500", 44.60797, *attrs.values()])
    out = tmp_path / "t"
    with pytest.warns(H.HydrofabricWarning) as rec:
        assert _run(["--hydrofabric", str(gpkg), "--table", str(table)], out, bundle) == 0
    msgs = " ".join(str(r.message) for r in rec)
    assert "'area_gages2' disagrees by more than 10%" in msgs and "5 of 5 divide(s)" in msgs
    assert "still passed to the model as the attribute" in msgs
    assert "'gauge_lat'" not in msgs  # the gauge's latitude is within 10 % of the divides'
    hf = H.read_hydrofabric(gpkg)
    for cid, d in hf.divides.items():
        cfg = yaml.safe_load((out / "config" / f"{cid}.yaml").read_text())
        assert cfg["area_km2"] == d.area_km2 != 573.6 and cfg["latitude"] == d.latitude
        assert cfg["attributes"]["p_mean"] == pytest.approx(float(attrs["p_mean"]))


def test_per_divide_table(gpkg, tmp_path, bundle):
    """Rows matched by cat-N, wb-N or bare N (area_gages2 = the divide's own area: no
    warning); a divide without a row is an error."""
    attrs = _sample_attributes("01022500")
    areas = {cid: SHAPE_KM2[v[5]] for cid, v in DIVIDES.items()}
    table = tmp_path / "attrs.csv"
    keys = {"cat-11": "cat-11", "cat-12": "12", "cat-13": "wb-13", "cat-14": "cat-14",
            "cat-15": "15"}
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", *attrs])
        for i, (cid, key) in enumerate(keys.items()):
            w.writerow([key, *(float(v) + i if a == "p_mean" else areas[cid]
                               if a == "area_gages2" else v for a, v in attrs.items())])
    out = tmp_path / "t"
    with warnings.catch_warnings():
        warnings.simplefilter("error", H.HydrofabricWarning)
        assert _run(["--hydrofabric", str(gpkg), "--table", str(table)], out, bundle) == 0
    for i, cid in enumerate(keys):
        cfg = yaml.safe_load((out / "config" / f"{cid}.yaml").read_text())
        assert cfg["attributes"]["p_mean"] == pytest.approx(float(attrs["p_mean"]) + i)
    rows = table.read_text().splitlines()
    table.write_text("\n".join(rows[:-1]) + "\n")
    from delta_core.ngen.realization import table_attributes

    with pytest.raises(ValueError, match=r"no row for divide\(s\) \['cat-15'\]"):
        table_attributes(table, None, list(attrs), H.read_hydrofabric(gpkg))
    rows = table.read_text().splitlines()
    table.write_text("\n".join([",".join(["name", *attrs])] + rows[1:]) + "\n")
    with pytest.raises(ValueError, match="has 4 rows but no id column"):
        table_attributes(table, None, list(attrs), H.read_hydrofabric(gpkg))


def test_stand_in_needs_no_forcing(tmp_path, bundle, gpkg):
    """--stand-in reads only attributes.csv: a CAMELS directory without the basin's time series
    (here: without any; CamelsDataset refuses it) serves, with --hydrofabric and --catchments,
    and gives the attributes the full sample gives."""
    from delta_core.data.camels import SAMPLE_DIR, CamelsDataset, DataError

    root = tmp_path / "camels"
    root.mkdir()
    shutil.copy(SAMPLE_DIR / "attributes.csv", root / "attributes.csv")
    with pytest.raises(DataError):
        CamelsDataset(root)
    assert _run(["--hydrofabric", str(gpkg), "--stand-in", "03439000"], tmp_path / "ref",
                bundle) == 0
    ref = yaml.safe_load((tmp_path / "ref" / "config" / "cat-11.yaml").read_text())["attributes"]
    assert len(ref) == 35 and ref["p_mean"] == float(_sample_attributes("03439000")["p_mean"])
    out = tmp_path / "s"
    assert _run(["--hydrofabric", str(gpkg), "--stand-in", "03439000", "--camels-root",
                 str(root)], out, bundle) == 0
    for cid in DIVIDES:
        assert yaml.safe_load((out / "config" / f"{cid}.yaml").read_text())["attributes"] == ref
    assert _run(["--catchments", str(out / "catchment_data.geojson"), "--stand-in", "03439000",
                 "--camels-root", str(root)], tmp_path / "c", bundle) == 0
    assert yaml.safe_load((tmp_path / "c" / "config" / "cat-11.yaml").read_text())[
        "attributes"] == ref


def test_cli_errors(gpkg, tmp_path, bundle, capsys):
    """One-line errors: projected latitude in --table, unknown CRS, bad combinations."""
    attrs = _sample_attributes("01022500")
    table = tmp_path / "attrs.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "lat", "area_km2", *attrs])
        w.writerow(["cat-1", 2505285.2, 10.5, *attrs.values()])
    assert _run(["--table", str(table)], tmp_path / "a", bundle) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: catchment cat-1: latitude 2505285.2 is outside [-90, 90]")
    assert "projected coordinate" in err and "Traceback" not in err
    assert _run(["--hydrofabric", str(make_gpkg(tmp_path / "m.gpkg", srs_id=3857)),
                 "--stand-in", "03439000"], tmp_path / "b", bundle) == 2
    assert "EPSG:3857 is not supported" in capsys.readouterr().err
    assert _run(["--hydrofabric", str(gpkg), "--camels", "01022500"], tmp_path / "c",
                bundle) == 2
    assert "use it with --table or --stand-in" in capsys.readouterr().err
    div = gpkg_to_geojson(gpkg, tmp_path / "gj")
    shutil.copy(div, tmp_path / "gj" / "catchment_data.geojson")
    assert _run(["--hydrofabric", str(tmp_path / "gj" / "catchment_data.geojson"),
                 "--stand-in", "03439000"], tmp_path / "gj", bundle) == 2
    assert "would overwrite the input" in capsys.readouterr().err


def test_geojson_centroid_latitude_of_a_square():
    """The closed ring repeats its first vertex: a vertex mean counted it twice (0.4 for the
    square 0..1 deg); the area centroid is the middle (to the ellipsoid's tiny asymmetry)."""

    ring = [[10.0, 0.0], [11.0, 0.0], [11.0, 1.0], [10.0, 1.0], [10.0, 0.0]]
    for geom in ({"type": "Polygon", "coordinates": [ring]},
                 {"type": "MultiPolygon", "coordinates": [[ring[::-1]]]}):
        assert H.geojson_centroid_latitude(geom) == pytest.approx(0.5, abs=1e-4)
    assert H.geojson_centroid_latitude({"type": "Point", "coordinates": [1.0, 2.0]}) is None


def test_catchments_realization_is_self_contained(tmp_path, bundle, capsys):
    """--catchments --out DIR copies the geojson, nexus_data.geojson and the catchments'
    forcing files into DIR: the realization replays from DIR alone; the configs' latitude is
    the polygon's centroid."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "realizations" / "ngen_example", src,
                    ignore=shutil.ignore_patterns("output", "config", "spinup"))
    out = tmp_path / "r"
    assert _run(["--catchments", str(src / "catchment_data.geojson"), "--stand-in",
                 "03439000"], out, bundle) == 0
    assert "copied" in capsys.readouterr().out
    for name in ("catchment_data.geojson", "nexus_data.geojson"):
        assert (out / name).read_bytes() == (src / name).read_bytes()
    assert sorted(p.name for p in (out / "forcing").iterdir()) == sorted(
        p.name for p in (src / "forcing").iterdir())
    geo = json.loads((src / "catchment_data.geojson").read_text())
    for f in geo["features"]:
        cfg = yaml.safe_load((out / "config" / f"{f['id']}.yaml").read_text())
        assert cfg["latitude"] == H.geojson_centroid_latitude(f["geometry"])
    shutil.rmtree(src)
    res = R.replay(out / "realization.json", out / "catchment_data.geojson", write=False)
    assert sorted(res["catchments"]) == sorted(f["id"] for f in geo["features"])
