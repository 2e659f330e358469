"""Run LGAR from an LGAR-C config file and forcing file, as LGAR-C's standalone driver does.

:func:`run_lgar` returns the per-step outputs of ``data_variables.csv`` (metres per forcing step,
soil_storage in metres) and the wetting fronts of ``data_layers.csv`` after each step (here in cm,
the driver writes depth and psi in mm). :func:`read_data_variables` and :func:`read_data_layers`
read LGAR-C's output files for comparison.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bmi_lgar.forcing import Forcing, read_forcing
from bmi_lgar.lgar_config import LgarConfig, LgarConfigError, read_lgar_config
from bmi_lgar.physics import Lgar

#: Columns of LGAR-C's data_variables.csv (after ``Time``), in its order.
DATA_VARIABLES = ("precipitation", "potential_evapotranspiration", "actual_evapotranspiration",
                  "surface_runoff", "giuh_runoff", "soil_storage", "total_discharge",
                  "infiltration", "percolation", "conceptual_reservoir_to_stream_discharge",
                  "mass_balance")
#: cm to m as LGAR-C converts (``* 0.01``).
CM_TO_M = 0.01


@dataclass
class LgarRun:
    """Outputs of a run.

    Attributes
    ----------
    time : list of str
        Forcing time label of each step.
    variables : dict of str to numpy.ndarray
        The :data:`DATA_VARIABLES` plus ``mass_balance_closed`` (true local balance),
        ``ponded`` and ``reservoir_storage`` [m per step / m].
    fronts : list of numpy.ndarray
        Per step, an array (n_fronts, 5): depth [cm], theta [-], layer, front number, psi [cm].
    totals_cm : dict of str to float
        LGAR-C's end-of-run mass balance summary [cm] (see :func:`global_mass_balance`).
    """

    time: list[str]
    variables: dict[str, np.ndarray]
    fronts: list[np.ndarray]
    totals_cm: dict[str, float]


def run_lgar(config: LgarConfig | str | Path, forcing: Forcing | None = None,
             n_steps: int | None = None, base_dir: str | Path | None = None) -> LgarRun:
    """Run LGAR over the forcing, one forcing step per record.

    Parameters
    ----------
    config : LgarConfig or path
        The model configuration (a path is read with :func:`read_lgar_config`).
    forcing : Forcing, optional
        Default: the config's ``forcing_file``.
    n_steps : int, optional
        Number of forcing steps; default ``int(endtime / forcing_resolution)`` as LGAR-C's driver.
    base_dir : path, optional
        Folder for the config's relative paths (default: the config's folder).
    """
    if not isinstance(config, LgarConfig):
        config = read_lgar_config(config, base_dir)
    if forcing is None:
        if config.forcing_file is None:
            raise LgarConfigError("the config names no forcing_file and no forcing was given")
        forcing = read_forcing(config.forcing_file)
    n = config.num_forcing_steps if n_steps is None else n_steps
    if n > len(forcing):
        raise LgarConfigError(f"{n} forcing steps asked for but the forcing holds {len(forcing)}")
    model = Lgar(config)
    state = model.initial_state()
    names = DATA_VARIABLES + ("mass_balance_closed", "ponded", "reservoir_storage")
    out = {name: np.empty(n) for name in names}
    fronts: list[np.ndarray] = []
    totals = _Totals(model.mass(state.fronts))
    for i in range(n):
        flux = model.step(state, float(forcing.precip_mm_per_h[i]), float(forcing.pet_mm_per_h[i]))
        totals.add(flux)
        for name in names:
            out[name][i] = getattr(flux, name) * CM_TO_M
        fr = state.fronts
        fronts.append(np.column_stack([fr.depth, fr.theta, fr.layer,
                                       np.arange(1, fr.n + 1), fr.psi]))
    return LgarRun(forcing.time[:n], out, fronts, totals.summary(state))


class _Totals:
    """Running sums [cm] in LGAR-C's order (``lgar_mass_balance.vol*_cm``)."""

    def __init__(self, volstart_cm: float):
        self.volstart = volstart_cm
        self.sums = {k: 0.0 for k in ("precipitation", "infiltration", "surface_runoff",
                                      "giuh_runoff", "percolation", "actual_evapotranspiration",
                                      "potential_evapotranspiration",
                                      "conceptual_reservoir_to_stream_discharge")}
        self.volend = self.volon = self.volcr_end = 0.0

    def add(self, flux) -> None:
        for key in self.sums:
            self.sums[key] += getattr(flux, key)
        self.volend, self.volon = flux.soil_storage, flux.ponded
        self.volcr_end = flux.reservoir_storage

    def summary(self, state) -> dict[str, float]:
        out = {"initial_soil_water": self.volstart, **self.sums, "final_soil_water": self.volend,
               "ponded": self.volon, "reservoir_fast_storage": state.cr_fast_cm,
               "reservoir_slow_storage": state.cr_slow_cm,
               "giuh_queue": sum(state.giuh_queue)}
        out["global_balance"] = global_mass_balance(out, self.volcr_end)
        return out


def global_mass_balance(t: dict[str, float], volcr_end_cm: float) -> float:
    """LGAR-C's global balance error [cm]: start + rain - runoff - AET - ponded - percolation
    - end - reservoir outflow - reservoir storage."""
    return (t["initial_soil_water"] + t["precipitation"] - t["surface_runoff"]
            - t["actual_evapotranspiration"] - t["ponded"] - t["percolation"]
            - t["final_soil_water"] + 0.0 - t["conceptual_reservoir_to_stream_discharge"]
            - volcr_end_cm)


def read_data_variables(path: str | Path) -> dict[str, np.ndarray]:
    """Read an LGAR-C ``data_variables.csv`` (values in metres per forcing step)."""
    lines = Path(path).read_text().splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:] if line.strip()]
    return {name: np.array([float(r[j]) for r in rows]) for j, name in enumerate(header)
            if name != "Time"}


_FRONT = re.compile(r"\(([^)]*)\)")


def read_data_layers(path: str | Path) -> list[np.ndarray]:
    """Read an LGAR-C ``data_layers.csv``: per step an array (n_fronts, 5) of depth [mm], theta,
    layer, front number, psi [mm] (the driver writes cm x 10 under a cm header)."""
    steps: list[np.ndarray] = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("["):
            fronts = [[float(v) for v in f.split(",")] for f in _FRONT.findall(line)]
            steps.append(np.array(fronts).reshape(-1, 5))
    return steps


def format_front_line(fronts: np.ndarray) -> str:
    """One step of ``data_layers.csv`` as LGAR-C prints it (``%lf``, depth and psi x 10)."""
    parts = [f"({d * 10.:f},{t:f},{int(l)},{int(k)},{p * 10.:f})" for d, t, l, k, p in fronts]
    return "[" + "|".join(parts) + "]"
