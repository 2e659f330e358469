"""Soil hydraulic properties for LGAR: the soil table and the van Genuchten / Mualem relations.

Units follow LGAR-C: capillary head ``psi`` in cm (positive = suction), conductivity in cm/h,
van Genuchten ``alpha`` in 1/cm, water contents ``theta`` dimensionless (volume fraction). The
relations are written with the same operations in the same order as LGAR-C (NOAA-OWP/LGAR-C,
``src/soil_funcs.cxx``) so that float64 results agree bit for bit; ``math.pow`` is the C library's
``pow``. Where the C functions would return ``inf`` or ``nan`` (``pow(0, negative)``, ``sqrt`` of a
negative number, division by zero) these functions return the same instead of raising.

The soil table (``vG_default_params.dat`` format): one header line, then one soil per line:
texture name (optionally in double quotes, may contain spaces), theta_r, theta_e, alpha [1/cm],
n, Ks [cm/h]. LGAR-C reads the name with ``scanf("%s")``, so a name containing a space breaks the
line and that soil silently keeps the parameters of the row above; :func:`read_soil_table` reads
such names correctly (the last five fields of a line are the numbers).
"""
from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path

#: Maximum number of soil types LGAR-C holds (``MAX_NUM_SOIL_TYPES``).
MAX_NUM_SOIL_TYPES = 25
#: Heads below this (cm) count as saturated in :func:`se_from_psi` (LGAR-C's 1e-10).
SATURATED_HEAD_EPS_CM = 1.0e-10
#: Upper bound on head returned by :func:`psi_from_se` (cm), as in LGAR-C.
PSI_MAX_CM = 1.0e20


class SoilTableError(ValueError):
    """A soil table that cannot be read."""


@dataclass(frozen=True)
class SoilType:
    """Van Genuchten-Mualem parameters of one soil and the Brooks-Corey equivalents LGAR uses.

    Attributes
    ----------
    name : str
        Texture name as written in the table (quotes removed).
    theta_r, theta_e : float
        Residual and effective-saturation water contents [-].
    alpha : float
        Van Genuchten alpha [1/cm].
    n, m : float
        Van Genuchten n [-] and m = 1 - 1/n [-].
    ks : float
        Saturated hydraulic conductivity [cm/h].
    bc_lambda : float
        Brooks-Corey pore-size index [-] equivalent to (alpha, n) (Morel-Seytoux et al. 1996).
    bc_psib : float
        Brooks-Corey bubbling head [cm].
    h_min : float
        Minimum effective capillary drive [cm] (Morel-Seytoux and Khanji).
    theta_wp : float
        Water content at the wilting-point head of the config [-].
    """

    name: str
    theta_r: float
    theta_e: float
    alpha: float
    n: float
    m: float
    ks: float
    bc_lambda: float
    bc_psib: float
    h_min: float
    theta_wp: float


# ----------------------------------------------------------------------------------------------
# C-like elementary operations (no exceptions where C returns inf or nan)
# ----------------------------------------------------------------------------------------------
def c_pow(x: float, y: float) -> float:
    """``pow(x, y)`` with C semantics: inf for 0 to a negative power, nan for a negative base."""
    try:
        return math.pow(x, y)
    except ValueError:
        return math.inf if x == 0.0 else math.nan
    except OverflowError:
        return math.inf


def c_sqrt(x: float) -> float:
    """``sqrt(x)`` with C semantics (nan for negative x)."""
    return math.sqrt(x) if x >= 0.0 else math.nan


def c_div(a: float, b: float) -> float:
    """``a / b`` with IEEE semantics for ``b == 0`` (signed inf, or nan for 0/0)."""
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def c_fmax(a: float, b: float) -> float:
    """C ``fmax``: the larger of a and b, ignoring a nan argument."""
    return a if (a >= b or b != b) else b


def c_fmin(a: float, b: float) -> float:
    """C ``fmin``: the smaller of a and b, ignoring a nan argument."""
    return a if (a <= b or b != b) else b


# ----------------------------------------------------------------------------------------------
# Van Genuchten / Mualem relations
# ----------------------------------------------------------------------------------------------
def theta_from_psi(psi: float, alpha: float, m: float, n: float, theta_e: float,
                   theta_r: float) -> float:
    """Water content [-] at capillary head ``psi`` [cm] (van Genuchten 1980).

    ``theta = theta_r + (theta_e - theta_r) / (1 + (alpha psi)^n)^m``.
    """
    return 1.0 / (c_pow(1.0 + c_pow(alpha * psi, n), m)) * (theta_e - theta_r) + theta_r


def se_from_psi(psi: float, alpha: float, m: float, n: float) -> float:
    """Effective saturation [-] at head ``psi`` [cm]; 1 for ``|psi| < 1e-10`` cm."""
    if abs(psi) < SATURATED_HEAD_EPS_CM:
        return 1.0
    return 1.0 / (c_pow(1.0 + c_pow(alpha * psi, n), m))


def psi_from_se(se: float, alpha: float, m: float, n: float) -> float:
    """Capillary head [cm] at effective saturation ``se`` [-], capped at 1e20 cm."""
    result = 1.0 / alpha * c_pow(c_pow(se, -1.0 / m) - 1.0, 1.0 / n)
    if result > PSI_MAX_CM:
        result = PSI_MAX_CM
    return result


def se_from_theta(theta: float, theta_e: float, theta_r: float) -> float:
    """Effective saturation [-] of water content ``theta`` [-]."""
    return (theta - theta_r) / (theta_e - theta_r)


def k_from_se(se: float, ks: float, m: float) -> float:
    """Mualem-van Genuchten conductivity [units of ``ks``, cm/h] at effective saturation ``se``.

    ``K = Ks sqrt(Se) (1 - (1 - Se^(1/m))^m)^2``; ``K(1) = Ks``.
    """
    return ks * c_sqrt(se) * c_pow(1.0 - c_pow(1.0 - c_pow(se, 1.0 / m), m), 2.0)


def theta_of(soil: SoilType, psi: float) -> float:
    """:func:`theta_from_psi` with the parameters of ``soil``."""
    return theta_from_psi(psi, soil.alpha, soil.m, soil.n, soil.theta_e, soil.theta_r)


def psi_of(soil: SoilType, theta: float) -> float:
    """Head [cm] of water content ``theta`` in ``soil`` (through Se)."""
    return psi_from_se(se_from_theta(theta, soil.theta_e, soil.theta_r), soil.alpha, soil.m, soil.n)


def k_of(soil: SoilType, theta: float) -> float:
    """Conductivity [cm/h] of water content ``theta`` in ``soil``."""
    return k_from_se(se_from_theta(theta, soil.theta_e, soil.theta_r), soil.ks, soil.m)


# ----------------------------------------------------------------------------------------------
# Capillary drive
# ----------------------------------------------------------------------------------------------
def capillary_drive(closed_form: bool, theta1: float, theta2: float, soil: SoilType,
                    nint: int = 120) -> float:
    """Effective capillary drive G [cm] of a front from ``theta1`` (below) to ``theta2`` (above).

    Parameters
    ----------
    closed_form : bool
        True: the Brooks-Corey closed form of Ogden and Saghafian (1997),
        ``G = H_c (Se_2^(3+1/l) - Se_1^(3+1/l)) / (1 - Se_1^(3+1/l))`` with
        ``H_c = psib (2+3l)/(1+3l)`` (nan or inf results give ``H_c``). Note that in this branch
        LGAR-C names the scaled contents the other way round; the formula is the same.
        False: the integral ``(1/Ks) int K(h) dh`` from ``h(theta2)`` to ``h(theta1)`` by LGAR-C's
        adaptive trapezoidal rule (first step ``(h1-h2)/nint/100``, halved where K changes by more
        than 2 %, else multiplied by 10). That rule is coarse: the new step is used for the
        trapezoid just evaluated and the last one runs past the upper limit, so the result is about
        10 % high on narrow ranges, 0.003x to 2.2x the integral from Se 0.05 to 0.99 for the soils
        of vG_default_params.dat, and not monotone in ``theta1``; it is kept for exactness.
    theta1, theta2 : float
        Water contents [-] below (drier) and behind (wetter) the front.
    soil : SoilType
        Soil of the layer holding the front.
    nint : int
        Number of trapezoids setting the first step of the integral (LGAR-C: 120).

    Returns
    -------
    float
        G [cm], non-negative.
    """
    if closed_form:
        return _capillary_drive_closed_form(theta1, theta2, soil)
    return _capillary_drive_integral(theta1, theta2, soil, nint)


def _capillary_drive_closed_form(theta1: float, theta2: float, soil: SoilType) -> float:
    """Brooks-Corey closed form of G [cm] (see :func:`capillary_drive`)."""
    se_f = se_from_theta(theta1, soil.theta_e, soil.theta_r)
    se_i = se_from_theta(theta2, soil.theta_e, soil.theta_r)
    lam = soil.bc_lambda
    h_c = soil.bc_psib * ((2 + 3 * lam) / (1 + 3 * lam))
    expo = 3 + 1 / lam
    geff = c_div(h_c * (c_pow(se_i, expo) - c_pow(se_f, expo)), (1 - c_pow(se_f, expo)))
    if math.isinf(geff) or math.isnan(geff):
        geff = h_c
    return geff


def _capillary_drive_integral(theta1: float, theta2: float, soil: SoilType, nint: int) -> float:
    """Adaptive trapezoidal integral of K(h)/Ks [cm] (see :func:`capillary_drive`)."""
    alpha, m, n, ks = soil.alpha, soil.m, soil.n, soil.ks
    se_i = se_from_theta(theta1, soil.theta_e, soil.theta_r)
    se_f = se_from_theta(theta2, soil.theta_e, soil.theta_r)
    h_i = psi_from_se(se_i, alpha, m, n)
    h_f = psi_from_se(se_f, alpha, m, n)
    dh = (h_i - h_f) / float(nint)
    dh = dh * 0.01
    geff = 0.0
    k1 = k_from_se(se_i, ks, m)
    h2 = h_f + dh
    while h2 < h_i:
        se2 = se_from_psi(h2, alpha, m, n)
        k2 = k_from_se(se2, ks, m)
        if c_div(k1 - k2, k2) > 0.02:
            dh = dh * 0.5
        else:
            dh = dh * 10.0
        geff += (k1 + k2) * dh / 2.0
        k1 = k2
        h2 += dh
    return abs(geff / ks)


# ----------------------------------------------------------------------------------------------
# Soil table
# ----------------------------------------------------------------------------------------------
def make_soil(name: str, theta_r: float, theta_e: float, alpha: float, n: float, ks: float,
              wilting_point_psi_cm: float) -> SoilType:
    """Build a :class:`SoilType` and its derived Brooks-Corey parameters (LGAR-C's formulas).

    Parameters
    ----------
    name : str
        Texture name.
    theta_r, theta_e : float
        Residual and saturated water contents [-], ``theta_r < theta_e``.
    alpha : float
        Van Genuchten alpha [1/cm], > 0.
    n : float
        Van Genuchten n [-], > 1.
    ks : float
        Saturated conductivity [cm/h], > 0.
    wilting_point_psi_cm : float
        Wilting-point head [cm] for ``theta_wp``.
    """
    if not (n > 1.0):
        raise SoilTableError(f"soil {name!r}: van Genuchten n must be greater than 1, got {n}")
    if not (0.0 <= theta_r < theta_e <= 1.0):
        raise SoilTableError(f"soil {name!r}: need 0 <= theta_r < theta_e <= 1, got "
                             f"theta_r={theta_r}, theta_e={theta_e}")
    if not (alpha > 0.0 and ks > 0.0):
        raise SoilTableError(f"soil {name!r}: alpha and Ks must be positive, got alpha={alpha}, "
                             f"Ks={ks}")
    m = 1 - 1 / n
    p = 1.0 + 2.0 / m
    bc_lambda = 2.0 / (p - 3.0)
    bc_psib = ((p + 3.0) * (147.8 + 8.1 * p + 0.092 * p * p)
               / (2.0 * alpha * p * (p - 1.0) * (55.6 + 7.4 * p + p * p)))
    h_min = bc_psib * (2.0 + 3.0 / bc_lambda) / (1.0 + 3.0 / bc_lambda)
    theta_wp = theta_from_psi(wilting_point_psi_cm, alpha, m, n, theta_e, theta_r)
    return SoilType(name, theta_r, theta_e, alpha, n, m, ks, bc_lambda, bc_psib, h_min, theta_wp)


def _parse_soil_line(line: str, lineno: int, path: Path) -> tuple[str, list[float]]:
    """Split one table line into the name and its five numbers."""
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError:
        tokens = line.split()
    if len(tokens) < 6:
        raise SoilTableError(f"{path}, line {lineno}: expected a name and 5 numbers "
                             f"(theta_r theta_e alpha n Ks), got {line.strip()!r}")
    name = " ".join(tokens[:-5]).strip('"')
    try:
        values = [float(t) for t in tokens[-5:]]
    except ValueError as err:
        raise SoilTableError(f"{path}, line {lineno}: {err} in {line.strip()!r}") from None
    return name, values


def read_soil_table(path: str | Path, wilting_point_psi_cm: float,
                    max_soil_types: int = MAX_NUM_SOIL_TYPES) -> list[SoilType]:
    """Read an LGAR soil table; soil type ``k`` of a config is element ``k - 1`` of the result.

    Parameters
    ----------
    path : str or Path
        Table file (header line, then name, theta_r, theta_e, alpha [1/cm], n, Ks [cm/h]).
    wilting_point_psi_cm : float
        Wilting-point head [cm] (for :attr:`SoilType.theta_wp`).
    max_soil_types : int
        Read at most this many rows (LGAR-C's ``max_valid_soil_types``, capped at 25).

    Returns
    -------
    list of SoilType
    """
    path = Path(path)
    if not path.is_file():
        raise SoilTableError(f"soil table {path} does not exist")
    lines = path.read_text().splitlines()
    soils: list[SoilType] = []
    limit = min(max_soil_types, MAX_NUM_SOIL_TYPES)
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, (theta_r, theta_e, alpha, n, ks) = _parse_soil_line(line, lineno, path)
        soils.append(make_soil(name, theta_r, theta_e, alpha, n, ks, wilting_point_psi_cm))
        if len(soils) == limit:
            break
    if not soils:
        raise SoilTableError(f"soil table {path} holds no soil")
    return soils
