"""Degree-day snow routine (HBV formulation), shared by the δ models that need snow.

dHBV runs it inside its daily HBV step; dCFE and dLGAR run it daily ahead of their process
models (which have no snow) and feed them its liquid output (:func:`liquid_water`). Daily step, water amounts in mm, temperature in degC. Works on any
broadcastable shapes (e.g. [B, C] components or [B] basins).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

#: Physical ranges of the snow parameters ``name: (low, high, units)`` (Feng et al. 2022).
PARAMETER_RANGES: dict[str, tuple[float, float, str]] = {
    "TT": (-2.5, 2.5, "degC"),
    "CFMAX": (0.5, 10.0, "mm degC-1 d-1"),
    "CFR": (0.0, 0.1, "1"),
    "CWH": (0.0, 0.2, "1"),
}


class SnowStep(NamedTuple):
    """Result of one day: fluxes [mm/day] and the new stores [mm]."""

    rain: torch.Tensor       #: precipitation falling as rain
    snow: torch.Tensor       #: precipitation falling as snow
    melt: torch.Tensor       #: snowmelt
    refreeze: torch.Tensor   #: refreezing of liquid water in the pack
    outflow: torch.Tensor    #: liquid water released from the pack (beyond its holding capacity)
    snowpack: torch.Tensor   #: frozen store
    meltwater: torch.Tensor  #: liquid water held in the pack


def degree_day_step(snowpack: torch.Tensor, meltwater: torch.Tensor, p: torch.Tensor,
                    t: torch.Tensor, tt: torch.Tensor, cfmax: torch.Tensor, cfr: torch.Tensor,
                    cwh: torch.Tensor) -> SnowStep:
    """Advance the snowpack by one day.

    Precipitation is rain at or above the threshold temperature TT, snow below; melt is
    CFMAX (T - TT) above TT (limited by the pack), refreezing CFR CFMAX (TT - T) below it (limited
    by the liquid water); the pack holds liquid water up to CWH x its frozen store and releases
    the rest.

    Parameters
    ----------
    snowpack, meltwater : Tensor (or float, then every argument is a float)
        Frozen and liquid stores [mm].
    p, t : Tensor
        Precipitation [mm/day] and mean air temperature [degC].
    tt, cfmax, cfr, cwh : Tensor
        Threshold temperature [degC], degree-day factor [mm degC-1 d-1], refreezing factor and
        water holding capacity [-].
    """
    if isinstance(p, torch.Tensor):
        minimum, positive = torch.minimum, lambda x: torch.clamp(x, min=0.0)  # noqa: E731
        is_rain = (t >= tt).to(p.dtype)
    else:  # plain floats (a BMI's per-step call): the same operations on Python floats
        minimum, positive = min, lambda x: max(x, 0.0)  # noqa: E731
        is_rain = float(t >= tt)
    rain = p * is_rain
    snow = p - rain
    snowpack = snowpack + snow
    melt = minimum(positive(cfmax * (t - tt)), snowpack)
    meltwater = meltwater + melt
    snowpack = snowpack - melt
    refreeze = minimum(positive(cfr * cfmax * (tt - t)), meltwater)
    snowpack = snowpack + refreeze
    meltwater = meltwater - refreeze
    outflow = positive(meltwater - cwh * snowpack)
    meltwater = meltwater - outflow
    return SnowStep(rain, snow, melt, refreeze, outflow, snowpack, meltwater)


def liquid_water(p: torch.Tensor, t: torch.Tensor, params: dict) -> tuple[torch.Tensor,
                                                                          torch.Tensor,
                                                                          torch.Tensor]:
    """Run the routine day by day from no snow, for a model that feeds its liquid output to a
    snow-free process model (dCFE, dLGAR).

    Parameters
    ----------
    p, t : Tensor [D, B]
        Daily precipitation [mm/day] and mean air temperature [degC].
    params : dict
        ``TT``, ``CFMAX``, ``CFR``, ``CWH`` (see :func:`degree_day_step`): tensors [B] or floats.

    Returns
    -------
    liquid, melt, swe : Tensor [D, B]
        Water reaching the ground (rain + release) [mm/day], melt [mm/day] and SWE (pack +
        liquid water) at the end of each day [mm].
    """
    pack = torch.zeros_like(p[0])
    water = torch.zeros_like(p[0])
    c = {k: params[k] if isinstance(params[k], torch.Tensor) else
         torch.full_like(p[0], float(params[k])) for k in PARAMETER_RANGES}
    liquid, melt, swe = [], [], []
    for d in range(p.shape[0]):
        s = degree_day_step(pack, water, p[d], t[d], c["TT"], c["CFMAX"], c["CFR"], c["CWH"])
        pack, water = s.snowpack, s.meltwater
        liquid.append(s.rain + s.outflow)
        melt.append(s.melt)
        swe.append(pack + water)
    return torch.stack(liquid), torch.stack(melt), torch.stack(swe)


def degree_day_series(p: np.ndarray, t: np.ndarray, tt: float, cfmax: float, cfr: float,
                      cwh: float, snowpack: float = 0.0, meltwater: float = 0.0
                      ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """:func:`degree_day_step` on floats over consecutive steps of one catchment (a BMI's
    batched run or spin-up), in one call of the compiled loop where the package was built (bit
    for bit the same operations; :data:`delta_core.kernels.SPINUP_LOOPS`).

    Parameters
    ----------
    p, t : ndarray [n]
        Precipitation [mm per step] and air temperature [degC] of each step.
    tt, cfmax, cfr, cwh : float
        As :func:`degree_day_step`, ``cfmax`` per step (e.g. CFMAX / 24 for hours).
    snowpack, meltwater : float
        Stores before the first step [mm].

    Returns
    -------
    liquid, melt : ndarray [n]
        Rain + release from the pack [mm per step], melt [mm per step].
    snowpack, meltwater : float
        Stores after the last step [mm].
    """
    from delta_core.kernels import SPINUP_LOOPS

    p = np.ascontiguousarray(p, dtype=np.float64)
    t = np.ascontiguousarray(t, dtype=np.float64)
    if SPINUP_LOOPS is not None:
        liquid, melt, snowpack, meltwater = SPINUP_LOOPS.snow_series(
            p, t, tt, cfmax, cfr, cwh, float(snowpack), float(meltwater))
        return liquid, melt, snowpack, meltwater
    liquid, melt = np.empty(len(p)), np.empty(len(p))
    for i, (pi, ti) in enumerate(zip(p.tolist(), t.tolist())):
        s = degree_day_step(snowpack, meltwater, pi, ti, tt, cfmax, cfr, cwh)
        snowpack, meltwater = s.snowpack, s.meltwater
        liquid[i], melt[i] = s.rain + s.outflow, s.melt
    return liquid, melt, snowpack, meltwater
