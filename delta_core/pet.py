"""Potential evapotranspiration: Hargreaves (1994) with FAO-56 extraterrestrial radiation."""
from __future__ import annotations

import math

import numpy as np

SOLAR_CONSTANT = 0.0820  # MJ m-2 min-1


def extraterrestrial_radiation(lat_deg: np.ndarray | float, doy: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial radiation Ra [MJ m-2 day-1] (FAO-56 eq. 21).

    Parameters
    ----------
    lat_deg : float or array [B]
        Latitude [degrees north].
    doy : array [T]
        Day of year (1..366).

    Returns
    -------
    array [T, B]
    """
    phi = np.deg2rad(np.atleast_1d(np.asarray(lat_deg, dtype=np.float64)))[None, :]
    j = np.asarray(doy, dtype=np.float64)[:, None]
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    return (24.0 * 60.0 / np.pi * SOLAR_CONSTANT * dr
            * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws)))


def hargreaves_scalar(tmax: float, tmin: float, ra: float) -> float:
    """:func:`hargreaves_from_ra` for Python floats (the per-step BMI path, no numpy overhead)."""
    pet = 0.0023 * 0.408 * ra * (0.5 * (tmax + tmin) + 17.8) * math.sqrt(max(tmax - tmin, 0.0))
    return max(pet, 0.0)


def hargreaves_from_ra(tmax, tmin, ra):
    """Hargreaves PET [mm/day] from tmax, tmin [degC] and Ra [MJ m-2 day-1]; scalars or arrays.

    ``0.0023 * 0.408 * Ra * ((tmax + tmin)/2 + 17.8) * sqrt(max(tmax - tmin, 0))``, clipped at 0.
    """
    if np.ndim(tmax) == 0:  # scalar fast path (BMI time step)
        return hargreaves_scalar(tmax, tmin, ra)
    pet = 0.0023 * 0.408 * ra * (0.5 * (tmax + tmin) + 17.8) * np.sqrt(np.clip(tmax - tmin, 0.0, None))
    return np.clip(pet, 0.0, None)


def hargreaves(tmax: np.ndarray, tmin: np.ndarray, lat_deg: np.ndarray | float,
               doy: np.ndarray) -> np.ndarray:
    """Hargreaves PET [mm/day], clipped at 0.

    ``PET = 0.0023 * 0.408 * Ra * (T + 17.8) * sqrt(max(tmax - tmin, 0))`` with T the mean of
    tmax and tmin (Daymet has tmin > tmax on some days: the range is clipped at 0).

    Parameters
    ----------
    tmax, tmin : array [T, B]
        Daily maximum and minimum air temperature [degC].
    lat_deg : float or array [B]
        Latitude [degrees north].
    doy : array [T]
        Day of year.
    """
    tmax = np.asarray(tmax, dtype=np.float64)
    tmin = np.asarray(tmin, dtype=np.float64)
    if tmax.ndim == 1:
        tmax, tmin = tmax[:, None], tmin[:, None]
    return hargreaves_from_ra(tmax, tmin, extraterrestrial_radiation(lat_deg, doy))
