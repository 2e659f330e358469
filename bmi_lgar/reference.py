"""LGAR-C's reference runs (``shared/reference/lgar``) and the comparison of the port with them.

The reference folder (made with LGAR-C commit 0baab41, see its README files) holds configs,
forcing, soil tables, LGAR-C's ``data_variables.csv`` (``%6.15f``, metres per forcing step),
``data_layers.csv`` (``%lf``; depth and psi in mm) and the stdout mass-balance summaries.
:data:`CASES` lists the runs; :func:`compare_variables` and :func:`compare_layers` measure the
port's differences from LGAR-C at the precision LGAR-C writes.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bmi_lgar.runner import DATA_VARIABLES, LgarRun, format_front_line, read_data_layers

#: The shared reference folder next to the repository (``../shared/reference/lgar``).
REF = Path("..") / "shared" / "reference" / "lgar"  # from the repository root, as README's commands


@dataclass(frozen=True)
class Case:
    """One reference run: config, outputs of LGAR-C (data_layers may be absent) and stdout log."""

    config: str
    variables: str
    layers: str | None
    log: str | None
    parent_relative: bool = False  # paths in the config start with ../

    def path(self, name: str | None, root: Path | None = None) -> Path | None:
        """A file of this case under the reference folder ``root`` (default :data:`REF`)."""
        return None if name is None else (root or REF) / name


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


def reference_workdir(root: Path, ref: Path = REF) -> Path:
    """Make ``root`` a folder laid out as LGAR-C's runs were: ``forcing/`` and ``data/`` (soil
    tables) copied from the reference folder ``ref``, plus ``work/`` for configs whose paths start
    with ``../``. Returns ``root``."""
    (root / "forcing").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "work").mkdir(exist_ok=True)
    for folder in (ref / "forcing", ref / "fixed3600"):
        for f in folder.glob("forcing_data*"):
            shutil.copy(f, root / "forcing" / f.name)
    for f in (ref / "soil").glob("*.dat"):
        shutil.copy(f, root / "data" / f.name)
    return root


def base_dir(case: Case, root: Path) -> Path:
    """Folder against which the case's config paths resolve inside :func:`reference_workdir`."""
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
            "GIUH water (in array)": "giuh_queue", "Total discharge (Q)": "giuh_runoff",
            "Global balance": "global_balance"}




def read_variable_lines(path: Path, n: int) -> list[list[str]]:
    """The first ``n`` data rows of an LGAR-C data_variables.csv, split at commas."""
    return [line.split(",") for line in path.read_text().splitlines()[1:n + 1]]


def compare_variables(run: LgarRun, path: Path) -> dict[str, dict[str, float]]:
    """Per column: ``max_abs`` per-step |port - LGAR-C| [m], ``cum_rel`` relative difference of
    the sums (nan when LGAR-C's sum is below 1e-12 m), ``printed_mismatches`` steps whose
    ``%6.15f`` text differs, ``rows`` compared."""
    n = len(run.time)
    rows = read_variable_lines(path, n)
    if len(rows) != n or [r[0] for r in rows] != run.time:
        raise ValueError(f"{path}: time labels differ from the run's")
    out = {}
    for j, name in enumerate(DATA_VARIABLES, start=1):
        mine = run.variables[name]
        theirs = [r[j] for r in rows]
        ref = np.array([float(x) for x in theirs])
        total = ref.sum()
        out[name] = {
            "max_abs": float(np.abs(mine - ref).max()),
            "cum_rel": float(abs(mine.sum() - total) / abs(total)) if abs(total) > 1e-12
            else float("nan"),
            "printed_mismatches": sum("%6.15f" % a != b for a, b in zip(mine, theirs)),
            "rows": n}
    return out


def compare_layers(run: LgarRun, path: Path) -> dict[str, float]:
    """Fronts against data_layers.csv: steps with another number of fronts, steps whose printed
    line differs, and the largest |difference| of depth [mm], theta [-] and psi [mm]."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("[")]
    ref = read_data_layers(path)
    n = len(run.fronts)
    if len(ref) < n:
        raise ValueError(f"{path}: {len(ref)} steps, the run has {n}")
    count = printed = 0
    worst = {"depth_mm": 0.0, "theta": 0.0, "psi_mm": 0.0}
    for fronts, line, theirs in zip(run.fronts, lines, ref):
        printed += format_front_line(fronts) != line
        if len(fronts) != len(theirs):
            count += 1
            continue
        mine = fronts.copy()
        mine[:, 0] *= 10.
        mine[:, 4] *= 10.
        diff = np.abs(mine - theirs)
        for key, col in (("depth_mm", 0), ("theta", 1), ("psi_mm", 4)):
            worst[key] = max(worst[key], float(diff[:, col].max()))
    return {"front_count_mismatches": count, "printed_mismatches": printed, "steps": n, **worst}
