"""LGAR test helpers: the reference runs of ../shared/reference/lgar, their working folder, and
synthetic configurations built in code."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bmi_lgar.forcing import Forcing
from bmi_lgar.lgar_config import LgarConfig
from bmi_lgar.runner import LgarRun
from bmi_lgar.soil import read_soil_table

TESTS = Path(__file__).resolve().parent
REF = TESTS.parents[1] / "shared" / "reference" / "lgar"
SOIL_TABLE = TESTS / "data" / "lgar" / "vG_default_params.dat"


@dataclass(frozen=True)
class Case:
    """One reference run: config, outputs of LGAR-C (data_layers may be absent) and stdout log."""

    config: str
    variables: str
    layers: str | None
    log: str | None
    parent_relative: bool = False  # paths in the config start with ../

    def path(self, name: str | None) -> Path | None:
        return None if name is None else REF / name


CASES = {
    "synth1_300s": Case("configs/config_lasam_synth_1.txt", "outputs/synth1_data_variables.csv",
                        "outputs/synth1_data_layers.csv", None, parent_relative=True),
    "synth1_hourly_fixed3600": Case(
        "fixed3600/config_synth1_hourly_fixed3600.txt",
        "fixed3600/synth1_hourly_fixed3600_data_variables.csv",
        "fixed3600/synth1_hourly_fixed3600_data_layers.csv",
        "fixed3600/stdout_synth1_hourly_fixed3600.log"),
    "Phillipsburg_fixed3600_nocache": Case(
        "fixed3600/config_Phillipsburg_fixed3600_nocache.txt",
        "fixed3600/Phillipsburg_fixed3600_nocache_data_variables.csv",
        "fixed3600/Phillipsburg_fixed3600_nocache_data_layers.csv",
        "fixed3600/stdout_Phillipsburg_fixed3600_nocache.log"),
    "Phillipsburg_CR_fixed3600_nocache": Case(
        "fixed3600/config_Phillipsburg_CR_fixed3600_nocache.txt",
        "fixed3600/Phillipsburg_CR_fixed3600_nocache_data_variables.csv",
        "fixed3600/Phillipsburg_CR_fixed3600_nocache_data_layers.csv",
        "fixed3600/stdout_Phillipsburg_CR_fixed3600_nocache.log"),
    "Phillipsburg_2layer_fixed3600_nocache": Case(
        "fixed3600/config_Phillipsburg_2layer_fixed3600_nocache.txt",
        "fixed3600/Phillipsburg_2layer_fixed3600_nocache_data_variables.csv",
        "fixed3600/Phillipsburg_2layer_fixed3600_nocache_data_layers.csv",
        "fixed3600/stdout_Phillipsburg_2layer_fixed3600_nocache.log"),
    "Phillipsburg_shipped_adaptive_caching": Case(
        "configs/config_lasam_Phillipsburg.txt", "outputs/Phillipsburg_data_variables.csv", None,
        "outputs/stdout_Phillipsburg.log"),
    "Phillipsburg_fixed300_nocache": Case(
        "configs/config_Phillipsburg_fixed300_nocache.txt",
        "outputs/Phillipsburg_fixed300_nocache_data_variables.csv", None,
        "outputs/stdout_fixed300.log"),
}


def need_reference() -> None:
    """Skip when the shared reference folder is not there."""
    if not (REF / "README.md").is_file():
        pytest.skip(f"LGAR reference runs not found at {REF}")


def reference_workdir(root: Path) -> Path:
    """A folder laid out as LGAR-C's runs were: ``forcing/`` and ``data/`` (soil tables), plus
    ``work/`` for configs whose paths start with ``../``. Returns ``root``."""
    (root / "forcing").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "work").mkdir(exist_ok=True)
    for folder in (REF / "forcing", REF / "fixed3600"):
        for f in folder.glob("forcing_data*"):
            shutil.copy(f, root / "forcing" / f.name)
    for f in (REF / "soil").glob("*.dat"):
        shutil.copy(f, root / "data" / f.name)
    return root


def base_dir(case: Case, root: Path) -> Path:
    return root / "work" if case.parent_relative else root


def read_log_totals(path: Path) -> dict[str, str]:
    """LGAR-C's end-of-run summary lines ``name = value cm`` -> value as printed."""
    text = path.read_text()
    out = {}
    for line in text[text.index("Simulation Summary"):].splitlines():
        if "=" in line and " cm" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.split()[0]
    return out


#: LGAR-C's summary line -> key of :attr:`LgarRun.totals_cm`.
LOG_KEYS = {"Initial water in soil": "initial_soil_water", "Total precipitation": "precipitation",
            "Total infiltration (matrix)": "infiltration",
            "Total infiltration": "infiltration",
            "Final water in soil": "final_soil_water", "Surface ponded water": "ponded",
            "Surface runoff": "surface_runoff", "GIUH runoff": "giuh_runoff",
            "Total percolation": "percolation", "Total AET": "actual_evapotranspiration",
            "Total PET": "potential_evapotranspiration",
            "storage in reservoir": "reservoir_fast_storage",
            "storage in slow reservoir": "reservoir_slow_storage",
            "runoff from CRs": "conceptual_reservoir_to_stream_discharge",
            "GIUH water (in array)": "giuh_queue", "Total discharge (Q)": "giuh_runoff", "Global balance": "global_balance"}


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
