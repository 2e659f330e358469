"""CF-style netCDF output of simulations (time x basin)."""
from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np

from delta_core import __version__


def write_simulation(path: str | Path, sim: dict, outputs: dict[str, tuple[str, str]],
                     attrs: dict | None = None) -> Path:
    """Write observed and simulated series to a CF-1.8 netCDF file.

    Parameters
    ----------
    path : path
        Output file.
    sim : dict
        As returned by :func:`delta_core.evaluation.simulate`.
    outputs : dict name -> (units, long name)
        Metadata of the model's output series; series without an entry get units "1".
    attrs : dict, optional
        Extra global attributes.
    """
    dates = sim["dates"]
    days = (dates - np.datetime64("1970-01-01", "D")).astype(np.int64)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.8"
        nc.title = "δ model simulation"
        nc.source = f"ngen-delta-models {__version__}"
        for k, v in (attrs or {}).items():
            setattr(nc, k, str(v))
        nc.createDimension("time", len(dates))
        nc.createDimension("basin", len(sim["gauge_ids"]))
        t = nc.createVariable("time", "i8", ("time",))
        t.units, t.calendar, t.standard_name = "days since 1970-01-01", "standard", "time"
        t[:] = days
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
            units, long = outputs.get(name, ("1", f"daily component mean of parameter {name}"))
            _series(nc, name, data, units, long)
    return Path(path)


def _series(nc, name: str, data: np.ndarray, units: str, long_name: str) -> None:
    v = nc.createVariable(name, "f4", ("time", "basin"), zlib=True, complevel=4,
                          fill_value=np.float32(np.nan))
    v.units, v.long_name, v.coordinates = units, long_name, "gauge_id"
    v[:] = np.asarray(data, dtype=np.float32)
