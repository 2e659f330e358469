"""dLGAR: LGAR (Layered Green-Ampt with Redistribution, La Follette et al. 2023) for NextGen.

Part 1, the exact float64 port of NOAA-OWP/LGAR-C: :mod:`bmi_lgar.soil` (soil table and van
Genuchten relations), :mod:`bmi_lgar.lgar_config` (LGAR-C config files), :mod:`bmi_lgar.forcing`,
:mod:`bmi_lgar.fronts` (wetting-front arrays), :mod:`bmi_lgar.dynamics` (front dynamics),
:mod:`bmi_lgar.physics` (the model and its forcing step), :mod:`bmi_lgar.runner` (runs a config
like LGAR-C's standalone driver). :class:`bmi_lgar.BmiLGAR` is the NextGen BMI
(:mod:`bmi_lgar.bmi`).
"""
from bmi_lgar.lgar_config import LgarConfig, LgarConfigError, read_lgar_config
from bmi_lgar.physics import Lgar, LgarState, StepFluxes
from bmi_lgar.runner import LgarRun, run_lgar

__all__ = ["BmiLGAR", "Lgar", "LgarConfig", "LgarConfigError", "LgarRun", "LgarState", "StepFluxes",
           "read_lgar_config", "run_lgar"]


def __getattr__(name: str):
    """``bmi_lgar.BmiLGAR`` (the realization's ``python_type``), imported on first use: the BMI
    pulls in torch, which the LGAR-C port above does not need."""
    if name == "BmiLGAR":
        from bmi_lgar.bmi import BmiLGAR

        return BmiLGAR
    raise AttributeError(f"module 'bmi_lgar' has no attribute {name!r}")
