"""LGAR test helpers: synthetic configurations built in code (LGAR-C's reference runs are
unpacked from tests/data/lgar_c_reference by the ``lgar_reference`` fixture, tests/conftest.py)."""
from __future__ import annotations

import numpy as np

from bmi_lgar.forcing import Forcing
from bmi_lgar.lgar_config import LgarConfig
from bmi_lgar.runner import LgarRun
from bmi_lgar.soil import read_soil_table

from conftest import DATA

SOIL_TABLE = DATA / "lgar" / "vG_default_params.dat"


# ----------------------------------------------------------------------------------------------
# Synthetic configurations
# ----------------------------------------------------------------------------------------------
def synthetic_config(soil_types: list[int], thickness: list[float], timestep_s: float = 3600.,
                     forcing_s: float = 3600., n_steps: int = 48, **options) -> LgarConfig:
    """An LGAR config on the committed soil table (``tests/data/lgar``), hourly forcing."""
    soils = read_soil_table(SOIL_TABLE, 15495.0)
    values = dict(layer_thickness_cm=thickness, layer_soil_type=soil_types, soils=soils,
                  initial_psi_cm=options.pop("initial_psi_cm", 2000.0),
                  timestep_h=timestep_s / 3600, forcing_resolution_h=forcing_s / 3600,
                  endtime_s=n_steps * forcing_s, wilting_point_psi_cm=15495.0,
                  field_capacity_psi_cm=340.9, giuh_ordinates=[0.06, 0.51, 0.28, 0.12, 0.03],
                  use_closed_form_g=True, ponded_depth_max_cm=1.0)
    values.update(options)
    return LgarConfig(**values)


def storm_forcing(n_steps: int, peak_mm_per_h: float = 60.0, pet_mm_per_h: float = 0.3,
                  seed: int = 0) -> Forcing:
    """Storms of a few hours (up to ``peak``) between dry spells with a daily PET cycle."""
    rng = np.random.default_rng(seed)
    precip = np.zeros(n_steps)
    i = 2
    while i < n_steps:
        length = int(rng.integers(1, 6))
        precip[i:i + length] = rng.uniform(0.2, 1.0, size=len(precip[i:i + length])) * peak_mm_per_h
        i += length + int(rng.integers(6, 30))
    hours = np.arange(n_steps)
    pet = pet_mm_per_h * np.clip(np.sin((hours % 24 - 6) / 12 * np.pi), 0.0, None) * 2.0
    return Forcing([f"t{k}" for k in range(n_steps)], precip, pet)


def step_balance(run: LgarRun) -> np.ndarray:
    """Closed water balance of each step [m]: storage change of soil, ponding and reservoirs
    minus (rain - AET - runoff - percolation - reservoir outflow)."""
    v = run.variables
    storage = v["soil_storage"] + v["ponded"] + v["reservoir_storage"]
    previous = np.concatenate([[run.totals_cm["initial_soil_water"] * 0.01], storage[:-1]])
    out = (v["precipitation"] - v["actual_evapotranspiration"] - v["surface_runoff"]
           - v["percolation"] - v["conceptual_reservoir_to_stream_discharge"])
    return (storage - previous) - out
