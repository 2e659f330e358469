"""The texture-table parameterisation of dLGAR: USDA triangle known answers (corners, class
centres and boundary lines of all 12 classes), partition of the triangle, layers from soil depth,
the shipped soil table."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from bmi_lgar.parameters import DEFAULT_SOIL_TABLE, LgarParameterError
from bmi_lgar.soil import read_soil_table
from bmi_lgar.texture import (RESERVOIRS, TABLE_NAMES, USDA_CLASSES, layer_thicknesses,
                              parameters_from_attributes, usda_texture_class)
from conftest import REPO
from lgar_helpers import SOIL_TABLE


#: (sand, silt, clay) [%] -> class: corners, a point inside each class, and points on the
#: boundary lines (each belongs to the class whose inequality includes it).
KNOWN = [
    ((100, 0, 0), "sand"), ((0, 100, 0), "silt"), ((0, 0, 100), "clay"),
    ((92, 5, 3), "sand"), ((82, 12, 6), "loamy sand"), ((65, 25, 10), "sandy loam"),
    ((40, 40, 20), "loam"), ((20, 65, 15), "silt loam"), ((5, 90, 5), "silt"),
    ((60, 15, 25), "sandy clay loam"), ((33, 34, 33), "clay loam"),
    ((10, 56, 34), "silty clay loam"), ((52, 6, 42), "sandy clay"), ((6, 47, 47), "silty clay"),
    ((20, 20, 60), "clay"),
    # boundaries
    ((86, 14, 0), "sand"), ((85, 15, 0), "loamy sand"),  # silt + 1.5 clay = 15
    ((70, 30, 0), "sandy loam"),  # silt + 2 clay = 30
    ((50, 50, 0), "silt loam"),  # silt = 50
    ((20, 80, 0), "silt"), ((8, 80, 12), "silt loam"),  # silt 80, clay 12
    ((30, 58, 12), "silt loam"),
    ((53, 40, 7), "sandy loam"), ((45, 48, 7), "loam"),  # clay 7
    ((52, 28, 20), "loam"), ((53, 27, 20), "sandy clay loam"),  # clay 20, sand 52
    ((45, 28, 27), "clay loam"), ((23, 50, 27), "clay loam"),  # clay 27
    ((20, 53, 27), "silty clay loam"), ((0, 73, 27), "silty clay loam"),  # sand 20
    ((45, 20, 35), "clay loam"), ((46, 19, 35), "sandy clay"),  # clay 35, sand 45
    ((20, 40, 40), "silty clay"), ((45, 15, 40), "clay"), ((0, 60, 40), "silty clay"),
    ((0, 40, 60), "silty clay"), ((21, 39, 40), "clay"),  # clay 40, silt 40
]


@pytest.mark.parametrize("fractions, expected", KNOWN)
def test_usda_triangle_known_answers(fractions, expected):
    assert usda_texture_class(*fractions) == expected


def test_every_class_has_a_known_answer():
    assert {c for _, c in KNOWN} == set(USDA_CLASSES) and len(USDA_CLASSES) == 12


def test_triangle_is_partitioned():
    """Every point of a 0.5 % grid falls in exactly one class (the classifier asserts it)."""
    seen = set()
    for i in range(201):
        for j in range(201 - i):
            clay, silt = i / 2, j / 2
            seen.add(usda_texture_class(100 - clay - silt, silt, clay))
    assert seen == set(USDA_CLASSES)


def test_fractions_are_rescaled_and_checked():
    assert usda_texture_class(20, 20, 10) == usda_texture_class(40, 40, 20) == "loam"
    for bad in ((float("nan"), 10, 10), (-1, 50, 51), (0, 0, 0)):
        with pytest.raises(LgarParameterError, match="fractions"):
            usda_texture_class(*bad)


def test_layers_from_soil_depth():
    assert layer_thicknesses(1.262) == pytest.approx((10.0, 30.0, 86.2))
    assert layer_thicknesses(0.3999) == (10.0, 30.0, 10.0)  # floored at 50 cm
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(LgarParameterError, match="soil_depth_statsgo"):
            layer_thicknesses(bad)


def test_parameters_from_attributes_take_the_table_row():
    p = parameters_from_attributes({"sand_frac": 41.93, "silt_frac": 32.38, "clay_frac": 23.69,
                                    "soil_depth_statsgo": 1.262})
    loam = next(s for s in read_soil_table(DEFAULT_SOIL_TABLE, 15495.0) if s.name == "Loam")
    assert [x.name for x in p.layers] == ["Loam"] * 3
    assert (p.layers[0].alpha, p.layers[0].n, p.layers[0].ks, p.layers[0].theta_e,
            p.layers[0].theta_r) == (loam.alpha, loam.n, loam.ks, loam.theta_e, loam.theta_r)
    assert p.soil_depth_cm == pytest.approx(126.2) and p.reservoirs == RESERVOIRS
    assert "USDA loam" in p.source
    with pytest.raises(LgarParameterError, match="lack 'clay_frac'"):
        parameters_from_attributes({"sand_frac": 40, "silt_frac": 40,
                                    "soil_depth_statsgo": 1.0})


def test_shipped_table_is_lgar_c_table_and_names_every_class():
    assert DEFAULT_SOIL_TABLE.read_bytes() == SOIL_TABLE.read_bytes()
    names = {s.name for s in read_soil_table(DEFAULT_SOIL_TABLE, 15495.0)}
    assert set(TABLE_NAMES.values()) <= names


@pytest.mark.camels
def test_every_camels_basin_gets_a_parameter_set(camels_pack):
    with open(camels_pack / "attributes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    classes = {parameters_from_attributes(r).layers[0].name for r in rows}
    assert len(rows) == 671 and len(classes) >= 5


@pytest.mark.camels
def test_texture_baseline_script_runs_a_basin(camels_pack):
    """scripts/lgar_texture_baseline.py on one arid basin over the 2006 monsoon (a month of
    warm-up): finite skill scores and the hours it ran."""
    import importlib.util

    from delta_core.data.camels import CamelsDataset
    from delta_core.patterns import WithinDay

    path = REPO / "scripts" / "lgar_texture_baseline.py"
    spec = importlib.util.spec_from_file_location("lgar_texture_baseline", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    r = script.run_basin(CamelsDataset(camels_pack), "09480000", "2006-06-20",
                         "2006-07-20", "2006-08-31", WithinDay("block"))
    assert r["texture"] == "Clay-loam" and r["hours"] == 24 * 73 and r["q_obs"] > 0.1
    assert all(np.isfinite([r["nse"], r["kge"], r["q_sim"]])) and r["q_sim"] >= 0
