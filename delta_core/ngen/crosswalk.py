"""One crosswalk between the NextGen world and the models: CSDMS standard names of the BMI
variables the δ models exchange, ngen's forcing columns with their default units, and the explicit
udunits conversions the replay driver applies (ngen only warns on an unknown conversion and passes
the raw value; here it is an error).
"""
from __future__ import annotations


class ReplayError(ValueError):
    """Raised for an unsupported or inconsistent realization, forcing or unit."""


# -- CSDMS standard names of BMI variables --------------------------------------------------------
PRECIP = "atmosphere_water__liquid_equivalent_precipitation_rate"
TEMP = "land_surface_air__temperature"
TMAX = "land_surface_air__max_of_temperature"
TMIN = "land_surface_air__min_of_temperature"
PET = "land_surface_water__potential_evaporation_volume_flux"

RUNOFF_DEPTH = "land_surface_water__runoff_depth"
RUNOFF_FLUX = "land_surface_water__runoff_volume_flux"
ET = "land_surface__evapotranspiration_volume_flux"
SWE = "snowpack__liquid-equivalent_depth"
MELT = "snowpack__melt_volume_flux"
SOIL = "soil_water__depth"
SURFACE_FLOW = "land_surface_water__surface_runoff_volume_flux"
INTERFLOW = "soil_water__interflow_volume_flux"
BASEFLOW = "groundwater__baseflow_volume_flux"

#: Plausible air temperature range [degC]; values outside are almost surely in K or garbage.
T_PLAUSIBLE = (-90.0, 70.0)

#: ``python_type`` of the package's BMI components in a realization.
BMI_TYPES = ("bmi_dhbv.BmiDHBV", "bmi_dcfe.BmiDCFE", "bmi_lgar.BmiLGAR")

#: Prefixes of the feature ids ngen treats as catchments (any other id is skipped, and the run
#: aborts with request_from_empty_nexus); nexus ids start with ``nex-``.
CATCHMENT_PREFIXES = ("cat-", "wb-", "agg-")


def catchment_id(gauge_id: str) -> str:
    """The ngen catchment id of a CAMELS gauge (``01022500`` -> ``cat-01022500``)."""
    return f"cat-{gauge_id}"


def is_catchment_id(cid: str) -> bool:
    """Whether ngen treats ``cid`` as a catchment id."""
    return str(cid).startswith(CATCHMENT_PREFIXES)


def check_catchment_id(cid: str, where: str) -> str:
    """``cid`` if ngen treats it as a catchment id; otherwise :class:`ReplayError` saying what
    ngen does with it and the fix (``where``: the file or option that holds it)."""
    if not is_catchment_id(cid):
        raise ReplayError(
            f"{where}: catchment id {cid!r} does not start with {', '.join(CATCHMENT_PREFIXES)}: "
            f"ngen skips such a feature ('unknown feature identifier type') and aborts with "
            f"request_from_empty_nexus; name it e.g. 'cat-{cid}'")
    return cid

# -- ngen forcing -------------------------------------------------------------------------------------
#: CsvPerFeature columns: short name -> (CSDMS standard name, default units).
NGEN_FORCINGS: dict[str, tuple[str, str]] = {
    "precip_rate": ("atmosphere_water__liquid_equivalent_precipitation_rate", "mm s-1"),
    "APCP_surface": ("atmosphere_water__rainfall_volume_flux", "kg m-2"),
    "TMP_2maboveground": ("land_surface_air__temperature", "K"),
    "SPFH_2maboveground": ("atmosphere_air_water~vapor__relative_saturation", "kg kg-1"),
    "PRES_surface": ("land_surface_air__pressure", "Pa"),
    "DLWRF_surface": ("land_surface_radiation~incoming~longwave__energy_flux", "W m-2"),
    "DSWRF_surface": ("land_surface_radiation~incoming~shortwave__energy_flux", "W m-2"),
    "UGRD_10maboveground": ("land_surface_wind__x_component_of_velocity", "m s-1"),
    "VGRD_10maboveground": ("land_surface_wind__y_component_of_velocity", "m s-1"),
    "RAINRATE": ("atmosphere_water__liquid_equivalent_precipitation_rate", "mm s-1"),
    "T2D": ("land_surface_air__temperature", "K"),
    "Q2D": ("atmosphere_air_water~vapor__relative_saturation", "kg kg-1"),
    "U2D": ("land_surface_wind__x_component_of_velocity", "m s-1"),
    "V2D": ("land_surface_wind__y_component_of_velocity", "m s-1"),
    "PSFC": ("land_surface_air__pressure", "Pa"),
    "SWDOWN": ("land_surface_radiation~incoming~shortwave__energy_flux", "W m-2"),
    "LWDOWN": ("land_surface_radiation~incoming~longwave__energy_flux", "W m-2"),
}
#: Columns holding an amount per row (summed over an interval, not averaged).
SUM_COLUMNS = ("APCP_surface",)


# -- units ---------------------------------------------------------------------------------------
_WATER_RATE = {"mm s-1": 1.0, "mm h-1": 1.0 / 3600.0, "mm d-1": 1.0 / 86400.0,
               "m s-1": 1e3, "kg m-2 s-1": 1.0}  # -> mm s-1
_LENGTH = {"m": 1.0, "mm": 1e-3, "cm": 1e-2, "kg m-2": 1e-3}  # -> m (kg m-2 of water = mm)
_TIME = {"s": 1.0, "sec": 1.0, "seconds": 1.0, "min": 60.0, "minutes": 60.0, "h": 3600.0,
         "hr": 3600.0, "hours": 3600.0, "d": 86400.0, "day": 86400.0, "days": 86400.0}
_ALIASES = {"mm/s": "mm s-1", "mm/h": "mm h-1", "mm/hr": "mm h-1", "mm h^-1": "mm h-1",
            "mm/d": "mm d-1", "mm/day": "mm d-1", "mm day-1": "mm d-1", "m/s": "m s-1",
            "kelvin": "K", "k": "K", "celsius": "degC", "deg_c": "degC", "°c": "degC",
            "c": "degC", "kg/m2": "kg m-2", "kg m^-2": "kg m-2", "w m-2": "W m-2",
            "w/m2": "W m-2", "m3/s": "m3 s-1", "m^3 s^-1": "m3 s-1"}


def normalize_units(u: str) -> str:
    u = " ".join(str(u).strip().split())
    return _ALIASES.get(u.lower(), u)


def _table() -> dict[tuple[str, str], object]:
    t: dict[tuple[str, str], object] = {("K", "degC"): lambda x: x - 273.15,
                                        ("degC", "K"): lambda x: x + 273.15}
    for a, fa in _WATER_RATE.items():
        for b, fb in _WATER_RATE.items():
            if a != b:
                t[(a, b)] = (lambda f: lambda x: x * f)(fa / fb)
    for a, fa in _LENGTH.items():
        for b, fb in _LENGTH.items():
            if a != b:
                t[(a, b)] = (lambda f: lambda x: x * f)(fa / fb)
    return t


#: Explicit unit conversions ``(from, to) -> function``; identity when the units are equal.
CONVERSIONS = _table()


def convert(value, from_units: str, to_units: str, what: str = "value"):
    """Convert ``value`` between udunits strings via :data:`CONVERSIONS`; error if unknown."""
    a, b = normalize_units(from_units), normalize_units(to_units)
    if a == b:
        return value
    try:
        return CONVERSIONS[(a, b)](value)
    except KeyError:
        raise ReplayError(f"no unit conversion from {from_units!r} to {to_units!r} for {what} "
                          f"(known: {sorted(set(k[0] for k in CONVERSIONS))}); ngen would only "
                          f"warn and pass the raw value") from None


def time_units_seconds(u: str) -> float:
    try:
        return _TIME[str(u).strip().lower()]
    except KeyError:
        raise ReplayError(f"unknown BMI time units {u!r}; known: {sorted(_TIME)}") from None

