"""LGAR soil pieces: van Genuchten relations, Mualem K, capillary drive, the soil table reader."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bmi_lgar.soil import (SoilTableError, c_div, c_fmax, c_fmin, c_pow, capillary_drive,
                           k_from_se, make_soil, psi_from_se, read_soil_table, se_from_psi,
                           se_from_theta, theta_from_psi)
from lgar_helpers import SOIL_TABLE

SOILS = read_soil_table(SOIL_TABLE, 15495.0)


def test_table_reads_all_rows_with_names_with_spaces():
    assert len(SOILS) == 18
    assert SOILS[0].name == "Clay" and SOILS[12].name == "P-1"
    # rows 7 and 11 have a space in the name: LGAR-C gives them row 6 / row 10's parameters
    assert SOILS[6].name == "Sandy-clay loam"
    assert (SOILS[6].theta_r, SOILS[6].theta_e, SOILS[6].alpha, SOILS[6].n, SOILS[6].ks) == \
        (0.06, 0.38, 0.02, 1.33, 0.54)
    assert SOILS[10].name == "Silty-clay loam" and SOILS[10].n == 1.52
    assert SOILS[6].n != SOILS[5].n


def test_table_derived_parameters():
    s = SOILS[12]  # P-1
    assert s.m == pytest.approx(1 - 1 / 1.6858, rel=1e-15)
    p = 1 + 2 / s.m
    assert s.bc_lambda == pytest.approx(2 / (p - 3), rel=1e-14)
    assert s.theta_wp == pytest.approx(theta_from_psi(15495.0, s.alpha, s.m, s.n, s.theta_e,
                                                      s.theta_r), rel=1e-15)
    assert s.theta_r < s.theta_wp < s.theta_e


@pytest.mark.parametrize("k", range(18))
def test_theta_psi_round_trip(k):
    s = SOILS[k]
    for psi in (0.5, 3.0, 40.0, 340.9, 2000.0, 15495.0, 1.0e5):
        theta = theta_from_psi(psi, s.alpha, s.m, s.n, s.theta_e, s.theta_r)
        assert s.theta_r < theta < s.theta_e
        back = psi_from_se(se_from_theta(theta, s.theta_e, s.theta_r), s.alpha, s.m, s.n)
        assert back == pytest.approx(psi, rel=1e-7)


def test_van_genuchten_known_values():
    # alpha psi = 1, n = 2, m = 1/2: Se = 2^-1/2
    assert theta_from_psi(50.0, 0.02, 0.5, 2.0, 0.45, 0.05) == pytest.approx(
        0.05 + 0.4 / math.sqrt(2.0), rel=1e-15)
    assert se_from_psi(50.0, 0.02, 0.5, 2.0) == pytest.approx(1 / math.sqrt(2.0), rel=1e-15)
    assert se_from_psi(1e-11, 0.02, 0.5, 2.0) == 1.0          # saturated below 1e-10 cm
    assert theta_from_psi(0.0, 0.02, 0.5, 2.0, 0.45, 0.05) == 0.45
    assert psi_from_se(1.0, 0.02, 0.5, 2.0) == 0.0
    assert psi_from_se(0.0, 0.02, 0.5, 2.0) == 1.0e20          # capped as in LGAR-C


@pytest.mark.parametrize("k", range(18))
def test_conductivity(k):
    s = SOILS[k]
    assert k_from_se(1.0, s.ks, s.m) == s.ks                    # K(saturation) = Ks exactly
    assert k_from_se(0.0, s.ks, s.m) == 0.0
    ks = [k_from_se(se, s.ks, s.m) for se in np.linspace(0.05, 1.0, 20)]
    assert all(a < b for a, b in zip(ks, ks[1:]))               # increasing in Se
    # Mualem with m = 1/2, Se = 1/4: sqrt(1/4) (1 - (1 - 1/16)^(1/2))^2
    assert k_from_se(0.25, 1.0, 0.5) == pytest.approx(0.5 * (1 - math.sqrt(15 / 16)) ** 2,
                                                      rel=1e-14)


@pytest.mark.parametrize("k", [0, 4, 12, 13])
def test_capillary_drive_closed_form(k):
    s = SOILS[k]
    lam = s.bc_lambda
    h_c = s.bc_psib * (2 + 3 * lam) / (1 + 3 * lam)
    # from residual to saturation: G = H_c (Ogden and Saghafian 1997)
    assert capillary_drive(True, s.theta_r, s.theta_e, s) == pytest.approx(h_c, rel=1e-14)
    assert capillary_drive(True, 0.5 * (s.theta_r + s.theta_e), 0.5 * (s.theta_r + s.theta_e),
                           s) == 0.0
    mid = s.theta_r + 0.3 * (s.theta_e - s.theta_r)
    se = 0.3
    e = 3 + 1 / lam
    assert capillary_drive(True, mid, s.theta_e, s) == pytest.approx(
        h_c * (1 - se ** e) / (1 - se ** e), rel=1e-12)


@pytest.mark.parametrize("k", [0, 2, 12, 13, 14])
def test_capillary_drive_integral_against_quadrature(k):
    """LGAR-C's adaptive trapezoids against a fine quadrature of (1/Ks) int K dh, Se 0.2 -> 0.9.

    LGAR-C's rule is coarse (the step is changed before it is used and the last trapezoid runs
    past the upper limit): about +10 % on narrow ranges, and between 0.003x and 2.2x the integral
    from Se = 0.05 to 0.99 for the soils of the table, and not even monotone in the lower limit
    (P-1: G(Se 0.1 -> 0.9) < G(0.2 -> 0.9)). The port keeps the rule (exactness); this
    checks it on moderate ranges where it is within 10 %."""
    s = SOILS[k]
    theta1 = s.theta_r + 0.2 * (s.theta_e - s.theta_r)
    theta2 = s.theta_r + 0.9 * (s.theta_e - s.theta_r)
    h1 = psi_from_se(0.2, s.alpha, s.m, s.n)
    h2 = psi_from_se(0.9, s.alpha, s.m, s.n)
    h = np.geomspace(h2, h1, 200001)
    kr = np.array([k_from_se(se_from_psi(x, s.alpha, s.m, s.n), 1.0, s.m) for x in h])
    exact = float(np.sum((kr[1:] + kr[:-1]) / 2 * np.diff(h)))
    g = capillary_drive(False, theta1, theta2, s)
    assert g == pytest.approx(exact, rel=0.10)
    assert capillary_drive(False, theta2, theta2, s) == 0.0


def test_c_semantics():
    assert c_pow(0.0, -1.5) == math.inf
    assert math.isnan(c_pow(-0.5, 0.3))
    assert c_div(1.0, 0.0) == math.inf and c_div(-1.0, 0.0) == -math.inf
    assert math.isnan(c_div(0.0, 0.0))
    assert c_fmax(math.nan, 1.0) == 1.0 and c_fmin(2.0, math.nan) == 2.0


def test_bad_tables(tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_text('"Texture" theta_r theta_e alpha n Ks\n"Clay" 0.1 0.46 0.01 1.25\n')
    with pytest.raises(SoilTableError, match="5 numbers"):
        read_soil_table(bad, 15495.0)
    bad.write_text('header\n"Clay" 0.1 0.46 0.01 0.9 0.6\n')
    with pytest.raises(SoilTableError, match="n must be greater than 1"):
        read_soil_table(bad, 15495.0)
    bad.write_text('header\n"Clay" 0.5 0.46 0.01 1.2 0.6\n')
    with pytest.raises(SoilTableError, match="theta_r < theta_e"):
        read_soil_table(bad, 15495.0)
    with pytest.raises(SoilTableError, match="does not exist"):
        read_soil_table(tmp_path / "none.dat", 15495.0)
    with pytest.raises(SoilTableError, match="n must be"):
        make_soil("x", 0.1, 0.4, 0.01, 1.0, 1.0, 15495.0)
