"""Reader of LGAR-C configuration files (``key=value[unit]`` per line).

The keys, units, defaults and unit conversions follow LGAR-C's ``InitFromConfigFile``
(NOAA-OWP/LGAR-C ``src/lgar.cxx``). The reader refuses what LGAR-C aborts on (missing required keys,
reservoir parameters given only in part, ``free_drainage_to_CR`` without free drainage, bad
booleans) and, unlike LGAR-C, also refuses configurations that LGAR-C runs silently wrong:

* a substep longer than the forcing step (LGAR-C then takes ``int(forcing/step + 1e-8) = 0``
  substeps per forcing step and does nothing at all: no infiltration, no runoff, no error);
* a forcing step that does not divide one hour (LGAR-C splits each hourly GIUH ordinate ``g``
  into ``int(1 h / step)`` copies of ``g / int(1 h / step)``: the ordinates still sum to 1, but
  with 420 s steps each hour of the GIUH is squeezed into 8 x 420 s = 56 min, a distorted time
  base; above one hour there are none and no runoff reaches the outlet);
* a soil type number outside the soil table (LGAR-C then returns rain as runoff);
* layer thicknesses and layer soil types of different counts, non-positive thicknesses, more than
  LGAR-C's 4 layers;
* options this port does not implement (soil freeze-thaw coupling, calibration updates, log mode).

Keys LGAR-C ignores are reported as warnings (usually typos).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from bmi_lgar.soil import MAX_NUM_SOIL_TYPES, SoilType, read_soil_table

#: Maximum number of soil layers (LGAR-C's ``MAX_NUM_SOIL_LAYERS``).
MAX_NUM_SOIL_LAYERS = 4


class LgarConfigError(ValueError):
    """An LGAR config file that LGAR-C would refuse, or that would make it silently do nothing."""


@dataclass
class LgarConfig:
    """Everything an LGAR run needs, in LGAR-C's internal units (cm, hours).

    Attributes
    ----------
    layer_thickness_cm : list of float
        Thickness of each soil layer [cm], surface first.
    layer_soil_type : list of int
        Soil type of each layer, 1-based row of the soil table.
    soils : list of SoilType
        The soil table rows (type ``k`` is ``soils[k-1]``).
    initial_psi_cm : float
        Initial capillary head, uniform over the column [cm].
    timestep_h : float
        Model substep [h] (the minimum substep when ``adaptive_timestep``).
    forcing_resolution_h : float
        Forcing step [h].
    endtime_s : float
        Simulation length [s].
    wilting_point_psi_cm, field_capacity_psi_cm : float
        Heads [cm] of the AET curve.
    ponded_depth_max_cm : float
        Water [cm] held on the surface before runoff starts (default 0).
    use_closed_form_g : bool
        Brooks-Corey closed form of the capillary drive instead of the numerical integral.
    giuh_ordinates : list of float
        GIUH ordinates per hour as given; :attr:`giuh_per_step` holds them per forcing step.
    adaptive_timestep, allow_flux_caching, pet_affects_precip : bool
        LGAR-C's options of the same names.
    free_drainage_enabled, free_drainage_to_cr : bool
        Free-drainage lower boundary, and whether it feeds the conceptual reservoirs.
    a, b, frac_to_cr, a_slow, b_slow, frac_slow, spf_factor : float
        Conceptual-reservoir parameters (all 0 = no reservoir; spf_factor default 0.98).
    mbal_tol : float
        Local mass-balance error [cm] above which LGAR-C aborts (default 10).
    forcing_file, soil_params_file : Path or None
        Paths as written, resolved against ``base_dir``.
    verbosity : str
        LGAR-C's verbosity (ignored here).
    """

    layer_thickness_cm: list[float]
    layer_soil_type: list[int]
    soils: list[SoilType]
    initial_psi_cm: float
    timestep_h: float
    forcing_resolution_h: float
    endtime_s: float
    wilting_point_psi_cm: float
    field_capacity_psi_cm: float
    giuh_ordinates: list[float]
    ponded_depth_max_cm: float = 0.0
    use_closed_form_g: bool = False
    adaptive_timestep: bool = False
    allow_flux_caching: bool = False
    pet_affects_precip: bool = False
    free_drainage_enabled: bool = False
    free_drainage_to_cr: bool = False
    a: float = 0.0
    b: float = 0.0
    frac_to_cr: float = 0.0
    a_slow: float = 0.0
    b_slow: float = 0.0
    frac_slow: float = 0.0
    spf_factor: float = 0.98
    mbal_tol: float = 10.0
    forcing_file: Path | None = None
    soil_params_file: Path | None = None
    verbosity: str = "none"

    @property
    def num_layers(self) -> int:
        """Number of soil layers."""
        return len(self.layer_thickness_cm)

    @property
    def cum_layer_thickness_cm(self) -> list[float]:
        """Depth [cm] of each layer bottom, with 0 first (LGAR-C's 1-based cumulative array)."""
        cum = [0.0]
        for thickness in self.layer_thickness_cm:
            cum.append(cum[-1] + thickness)
        return cum

    @property
    def layer_soils(self) -> list[SoilType]:
        """The soil of each layer, surface first."""
        return [self.soils[k - 1] for k in self.layer_soil_type]

    @property
    def substeps_per_forcing_step(self) -> int:
        """LGAR-C's ``int(forcing_resolution / timestep + 1e-8)`` for a fixed substep."""
        return int(self.forcing_resolution_h / self.timestep_h + 1.0e-08)

    @property
    def num_forcing_steps(self) -> int:
        """Number of forcing steps the standalone LGAR-C driver runs (``int(endtime / step)``)."""
        return int(self.endtime_s / (self.forcing_resolution_h * 3600.))

    @property
    def giuh_per_step(self) -> list[float]:
        """GIUH ordinates per forcing step: each hourly ordinate split evenly over the steps of
        an hour (LGAR-C: ``factor = int(1 / forcing_resolution_h)``)."""
        factor = int(1.0 / self.forcing_resolution_h)
        return [g / float(factor) for g in self.giuh_ordinates for _ in range(factor)]

    @property
    def has_reservoir(self) -> bool:
        """True when the conceptual reservoir parameters are given (LGAR-C tests frac_to_CR)."""
        return self.frac_to_cr != 0.0


#: LGAR-C divides a time in these units by this to get hours.
_TIME_DIVISOR_TO_H = {"[s]": 3600.0, "[sec]": 3600.0, "": 3600.0, "[min]": 60.0,
                      "[minute]": 60.0, "[h]": 1.0, "[hr]": 1.0}
_ENDTIME_TO_S = {"[s]": 1.0, "[sec]": 1.0, "": 1.0, "[min]": 60.0, "[minute]": 60.0,
                 "[h]": 3600.0, "[hr]": 3600.0, "[d]": 86400.0, "[day]": 86400.0}
_FLOATS = {"initial_psi": "initial_psi_cm", "wilting_point_psi": "wilting_point_psi_cm",
           "field_capacity_psi": "field_capacity_psi_cm", "a": "a", "b": "b",
           "frac_to_CR": "frac_to_cr", "frac_to_GW": "frac_to_cr", "a_slow": "a_slow",
           "b_slow": "b_slow", "frac_slow": "frac_slow", "spf_factor": "spf_factor",
           "mbal_tol": "mbal_tol", "ponded_depth_max": "ponded_depth_max_cm"}
_BOOLS = {"use_closed_form_G": "use_closed_form_g",
          "free_drainage_enabled": "free_drainage_enabled",
          "free_drainage_to_CR": "free_drainage_to_cr", "PET_affects_precip": "pet_affects_precip",
          "allow_flux_caching": "allow_flux_caching", "adaptive_timestep": "adaptive_timestep"}
#: Booleans LGAR-C also accepts as 0/1.
_BOOLS_01 = {"adaptive_timestep", "log_mode"}
_UNSUPPORTED_TRUE = {"sft_coupled": "soil freeze-thaw coupling",
                     "calib_params": "calibratable-parameter updates",
                     "log_mode": "log-10 parameters (log_mode)"}
_OTHER_KEYS = {"verbosity", "forcing_file", "soil_params_file", "layer_thickness",
               "layer_soil_type", "giuh_ordinates", "timestep", "endtime", "forcing_resolution",
               "max_valid_soil_types", "soil_z"}
_REQUIRED = ("layer_soil_type", "soil_params_file", "layer_thickness", "initial_psi", "timestep",
             "endtime", "wilting_point_psi", "field_capacity_psi", "forcing_resolution",
             "giuh_ordinates")


def _split_line(line: str) -> tuple[str, str, str]:
    """``key=value[unit]`` -> (key, value, unit) as LGAR-C splits it."""
    key, _, rest = line.partition("=")
    if "[" in rest:
        value, _, unit = rest.partition("[")
        unit = "[" + unit.split("]")[0] + "]"
    else:
        value, unit = rest, ""
    return key.strip(), value.strip(), unit


def _float(key: str, value: str, path: Path) -> float:
    try:
        return float(value)
    except ValueError:
        raise LgarConfigError(f"{path}: {key}={value!r} is not a number") from None


def _floats(key: str, value: str, path: Path) -> list[float]:
    return [_float(key, v, path) for v in value.split(",")]


def _bool(key: str, value: str, path: Path) -> bool:
    allowed = {"true": True, "false": False}
    if key in _BOOLS_01:
        allowed.update({"1": True, "0": False})
    if value not in allowed:
        raise LgarConfigError(f"{path}: {key}={value!r}; expected one of {sorted(allowed)}")
    return allowed[value]


def _time(key: str, value: str, unit: str, table: dict[str, float], path: Path) -> float:
    if unit not in table:
        raise LgarConfigError(f"{path}: unknown unit {unit} for {key}; known: "
                              f"{sorted(u for u in table if u)}")
    result = _float(key, value, path)
    if not result > 0:
        raise LgarConfigError(f"{path}: {key} must be positive, got {value}")
    return result


def parse_lgar_config(path: str | Path) -> dict[str, tuple[str, str]]:
    """Read the raw ``key -> (value, unit)`` pairs of an LGAR config (later lines win)."""
    path = Path(path)
    if not path.is_file():
        raise LgarConfigError(f"LGAR config {path} does not exist")
    raw: dict[str, tuple[str, str]] = {}
    for line in path.read_text().splitlines():
        if "=" not in line or line.lstrip().startswith("#"):
            continue
        key, value, unit = _split_line(line)
        raw[key] = (value, unit)
    return raw


def _timing(raw: dict[str, tuple[str, str]], path: Path) -> dict[str, float]:
    """Substep, forcing step [h] and end time [s]; refuse LGAR-C's silent zero-substep case."""
    value, unit = raw["timestep"]
    timestep_h = _time("timestep", value, unit, _TIME_DIVISOR_TO_H, path) / _TIME_DIVISOR_TO_H[unit]
    value, unit = raw["forcing_resolution"]
    forcing_h = (_time("forcing_resolution", value, unit, _TIME_DIVISOR_TO_H, path)
                 / _TIME_DIVISOR_TO_H[unit])
    value, unit = raw["endtime"]
    endtime_s = _time("endtime", value, unit, _ENDTIME_TO_S, path)
    if unit not in ("[s]", "[sec]", ""):
        endtime_s = endtime_s * _ENDTIME_TO_S[unit]
    if int(forcing_h / timestep_h + 1.0e-08) < 1:
        raise LgarConfigError(
            f"{path}: timestep ({timestep_h * 3600:g} s) is longer than forcing_resolution "
            f"({forcing_h * 3600:g} s): LGAR-C would take int({forcing_h * 3600:g}/"
            f"{timestep_h * 3600:g}) = 0 substeps per forcing step and silently do nothing. "
            f"Use a timestep <= forcing_resolution (and forcing at that resolution).")
    factor = int(1.0 / forcing_h)
    if factor < 1 or abs(factor * forcing_h - 1.0) > 1e-9:
        step = forcing_h * 3600
        why = (f"{factor} steps of {step:g} s = {factor * step / 60:g} min instead of 60: the "
               f"ordinates still sum to 1 but the GIUH's time base is squeezed (runoff reaches "
               f"the outlet too early)" if factor else
               "0 steps: there are no ordinates and no runoff reaches the outlet")
        raise LgarConfigError(
            f"{path}: forcing_resolution ({step:g} s) must divide one hour: LGAR-C spreads "
            f"each hourly GIUH ordinate over int(1 h / forcing_resolution) = {why}")
    if endtime_s < forcing_h * 3600.:
        raise LgarConfigError(f"{path}: endtime ({endtime_s:g} s) is shorter than one forcing "
                              f"step ({forcing_h * 3600:g} s)")
    return {"timestep_h": timestep_h, "forcing_resolution_h": forcing_h, "endtime_s": endtime_s}


def _layers(raw: dict[str, tuple[str, str]], soils: list[SoilType],
            path: Path) -> tuple[list[float], list[int]]:
    """Layer thicknesses and soil types, checked against each other and the soil table."""
    thickness = _floats("layer_thickness", raw["layer_thickness"][0], path)
    types_f = _floats("layer_soil_type", raw["layer_soil_type"][0], path)
    if len(thickness) != len(types_f):
        raise LgarConfigError(f"{path}: layer_thickness gives {len(thickness)} layers but "
                              f"layer_soil_type gives {len(types_f)} soil types")
    if len(thickness) > MAX_NUM_SOIL_LAYERS:
        raise LgarConfigError(f"{path}: {len(thickness)} layers; LGAR holds at most "
                              f"{MAX_NUM_SOIL_LAYERS}")
    if any(not t > 0 for t in thickness):
        raise LgarConfigError(f"{path}: layer thicknesses must be positive, got {thickness}")
    valid = ", ".join(f"{k}={s.name}" for k, s in enumerate(soils, start=1))
    types: list[int] = []
    for t in types_f:
        if t != int(t) or not 1 <= int(t) <= len(soils):
            raise LgarConfigError(f"{path}: soil type {t:g} is not in the soil table; valid "
                                  f"types: {valid}")
        types.append(int(t))
    return thickness, types


def _reservoir(values: dict[str, float], set_keys: set[str], path: Path) -> None:
    """Either all or none of (a, b, frac_to_CR), and of (a_slow, b_slow, frac_slow)."""
    for group in (("a", "b", "frac_to_cr"), ("a_slow", "b_slow", "frac_slow")):
        given = [k in set_keys for k in group]
        if any(given) and not all(given):
            raise LgarConfigError(f"{path}: {', '.join(group)} must be given all together or "
                                  f"not at all (given: "
                                  f"{[k for k, g in zip(group, given) if g]})")
    if not 0.0 <= values.get("frac_to_cr", 0.0) <= 1.0:
        raise LgarConfigError(f"{path}: frac_to_CR must be within [0, 1]")
    if not 0.0 <= values.get("frac_slow", 0.0) <= 1.0:
        raise LgarConfigError(f"{path}: frac_slow must be within [0, 1]")


def read_lgar_config(path: str | Path, base_dir: str | Path | None = None) -> LgarConfig:
    """Read an LGAR-C config file and its soil table.

    Parameters
    ----------
    path : str or Path
        The config file.
    base_dir : str or Path, optional
        Folder against which the relative ``forcing_file`` and ``soil_params_file`` are
        resolved (LGAR-C: the working directory); default: the config's folder.

    Returns
    -------
    LgarConfig
    """
    path = Path(path)
    raw = parse_lgar_config(path)
    base = Path(base_dir) if base_dir is not None else path.parent
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise LgarConfigError(f"{path} does not set {', '.join(missing)}")
    for key, what in _UNSUPPORTED_TRUE.items():
        if key in raw and raw[key][0] in ("true", "1"):
            raise LgarConfigError(f"{path}: {key}={raw[key][0]}: {what} is not supported by "
                                  f"this port")
    unknown = sorted(set(raw) - set(_FLOATS) - set(_BOOLS) - _OTHER_KEYS - set(_UNSUPPORTED_TRUE))
    if unknown:
        warnings.warn(f"{path}: keys ignored by LGAR-C: {', '.join(unknown)}", stacklevel=2)
    values: dict[str, float] = {}
    for key, attr in _FLOATS.items():
        if key in raw:
            values[attr] = _float(key, raw[key][0], path)
    set_keys = set(values)
    _reservoir(values, set_keys, path)
    if "ponded_depth_max_cm" in values:
        values["ponded_depth_max_cm"] = max(values["ponded_depth_max_cm"], 0.0)
    flags = {attr: _bool(key, raw[key][0], path) for key, attr in _BOOLS.items() if key in raw}
    if flags.get("free_drainage_to_cr") and not flags.get("free_drainage_enabled"):
        raise LgarConfigError(f"{path}: free_drainage_to_CR=true needs free_drainage_enabled=true")
    max_types = MAX_NUM_SOIL_TYPES
    if "max_valid_soil_types" in raw:
        max_types = min(int(_float("max_valid_soil_types", raw["max_valid_soil_types"][0], path)),
                        MAX_NUM_SOIL_TYPES)
    soil_file = base / raw["soil_params_file"][0]
    soils = read_soil_table(soil_file, values["wilting_point_psi_cm"], max_types)
    thickness, types = _layers(raw, soils, path)
    giuh = _floats("giuh_ordinates", raw["giuh_ordinates"][0], path)
    forcing = base / raw["forcing_file"][0] if "forcing_file" in raw else None
    config = LgarConfig(layer_thickness_cm=thickness, layer_soil_type=types, soils=soils,
                        giuh_ordinates=giuh, forcing_file=forcing, soil_params_file=soil_file,
                        verbosity=raw.get("verbosity", ("none", ""))[0],
                        **_timing(raw, path), **values, **flags)
    if config.allow_flux_caching and config.forcing_resolution_h != 1.0:
        warnings.warn(f"{path}: allow_flux_caching with a {config.forcing_resolution_h * 3600:g} s "
                      f"forcing step: LGAR-C adds the PET saved while caching (cm per step) to a "
                      f"rate (cm/h), so AET catches up correctly only with hourly forcing",
                      stacklevel=2)
    if config.allow_flux_caching and config.free_drainage_enabled:
        warnings.warn(f"{path}: allow_flux_caching with free drainage: LGAR-C repeats the last "
                      f"recharge while caching, which does not conserve water per step (LGAR-C's "
                      f"own caveat; errors of ~1e-5 of the storage seen)", stacklevel=2)
    if not all(math.isfinite(g) and g >= 0 for g in giuh):
        raise LgarConfigError(f"{path}: giuh_ordinates must be finite and non-negative")
    return config
