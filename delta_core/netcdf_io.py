"""CF-style netCDF output of simulations (time x basin)."""
from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np

from delta_core import __version__


#: netCDF time units by model step [s].
TIME_UNITS = {86400: "days", 3600: "hours", 60: "minutes", 1: "seconds"}


def write_simulation(path: str | Path, sim: dict, outputs: dict[str, tuple[str, str]],
                     step_seconds: int = 86400, attrs: dict | None = None) -> Path:
    """Write observed and simulated series to a CF-1.8 netCDF file.

    Parameters
    ----------
    path : path
        Output file.
    sim : dict
        As returned by :func:`delta_core.evaluation.simulate`.
    outputs : dict name -> (units, long name)
        Metadata of the model's output series; series without an entry get units "1".
    step_seconds : int
        The series' time step [s]: time is written as whole steps since 1970-01-01 (days for
        daily, hours for hourly models).
    attrs : dict, optional
        Extra global attributes.
    """
    dates = np.asarray(sim["dates"]).astype("datetime64[s]")
    unit = TIME_UNITS.get(int(step_seconds), "seconds")
    div = int(step_seconds) if unit != "seconds" else 1
    seconds = (dates - np.datetime64("1970-01-01T00:00:00", "s")).astype(np.int64)
    if np.any(seconds % div):
        raise ValueError(f"times are not whole multiples of {unit} since 1970-01-01")
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.8"
        nc.title = "δ model simulation"
        nc.source = f"ngen-delta-models {__version__}"
        for k, v in (attrs or {}).items():
            setattr(nc, k, str(v))
        nc.createDimension("time", len(dates))
        nc.createDimension("basin", len(sim["gauge_ids"]))
        t = nc.createVariable("time", "i8", ("time",))
        t.units, t.calendar, t.standard_name = (f"{unit} since 1970-01-01 00:00:00", "standard",
                                                "time")
        t[:] = seconds // div
        g = nc.createVariable("gauge_id", str, ("basin",))
        g.long_name, g.cf_role = "USGS gauge id", "timeseries_id"
        for i, gid in enumerate(sim["gauge_ids"]):
            g[i] = gid
        for name, data, units, long in (("area", sim["area_km2"], "km2", "catchment area"),
                                        ("lat", sim["lat"], "degrees_north", "gauge latitude")):
            v = nc.createVariable(name, "f8", ("basin",))
            v.units, v.long_name = units, long
            v[:] = data
        _series(nc, "qobs", sim["qobs"], "mm d-1", "observed streamflow")
        for name, data in sim["outputs"].items():
            units, long = outputs.get(name, ("1", name))
            _series(nc, name, data, units, long)
    return Path(path)


def _series(nc, name: str, data: np.ndarray, units: str, long_name: str) -> None:
    v = nc.createVariable(name, "f4", ("time", "basin"), zlib=True, complevel=4,
                          fill_value=np.float32(np.nan))
    v.units, v.long_name, v.coordinates = units, long_name, "gauge_id"
    v[:] = np.asarray(data, dtype=np.float32)
