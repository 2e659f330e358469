"""NextGen BMI component of dCFE (one catchment per instance): the generic
:class:`~delta_core.bmi.adapter.NgenBmi` bound to dCFE's hourly core.

Hourly native: each hourly ``update`` steps CFE once with that hour's forcing (no daily
aggregation). With ``time_step_seconds: 86400`` one update runs 24 CFE hours with the day's
forcing spread evenly over them. See ``bmi_dcfe/BMI.md``.
"""
from __future__ import annotations

import warnings

from bmi_dcfe import kernel
from bmi_dcfe.core import CfeCore
from bmi_dcfe.model import PARAMETERS
from delta_core.bmi.adapter import RATE_UNITS, InputVar, NgenBmi, OutputVar
from delta_core.bmi.base import BmiError
from delta_core.bmi.hourly import FLAT_TEMPERATURE_KEYS
from delta_core.ngen.crosswalk import (BASEFLOW, ET, INTERFLOW, MELT, PET, PRECIP,
                                      RUNOFF_DEPTH, RUNOFF_FLUX, SOIL, SURFACE_FLOW, SWE,
                                      T_PLAUSIBLE, TEMP)

GROUNDWATER = "groundwater__depth"


def parameter_var_name(name: str) -> str:
    """Output variable name of dynamic CFE parameter ``name`` (e.g. ``cfe__refkdt``)."""
    return f"cfe__{name.lower()}"


class BmiDCFE(NgenBmi):
    """dCFE for the NextGen framework: one catchment, hourly (default) or daily host steps.

    Inputs: precipitation and air temperature every step; PET too with ``pet_source: input``,
    otherwise (``hargreaves``, default) PET is Hargreaves from the trailing 24 hours of
    temperature, spread over the day by the sine weights used in training.
    """

    _component_name = "dCFE: differentiable Conceptual Functional Equivalent (NextGen BMI)"
    MODEL = "dcfe"
    HOST_STEPS = (3600, 86400)
    EXTRA_KEYS = {
        "pet_source": "hargreaves (default: PET from the trailing 24 h of temperature) or input "
                      "(PET is an input variable that must be set every step)",
        **FLAT_TEMPERATURE_KEYS,
    }
    SPINUP_COLUMNS = {"prcp_mm_h": "prcp", "tmean_c": "tmean", "pet_mm_h": "pet"}

    def _make_core(self, model, norm, x_attr, cfg) -> CfeCore:
        pet_source = cfg.get("pet_source", "hargreaves")
        if pet_source not in ("hargreaves", "input"):
            raise BmiError(f"pet_source must be 'hargreaves' or 'input', got {pet_source!r}")
        self._pet_input = pet_source == "input"
        core = CfeCore(model, x_attr, self._lat,
                       self._choose_backend(cfg.get("backend"), model), norm=norm)
        core.set_flat_policy(self._flat_temperature(cfg))
        return core

    def _choose_backend(self, backend: str | None, model) -> str:
        """The configured engine; without the key, cpp where the kernel is built and implements
        the bundle's options (else torch, with a warning if the kernel is missing)."""
        why = kernel.unsupported(model.config.options())
        if backend is not None:
            if backend == "cpp" and why is not None:
                raise BmiError(f"backend: cpp: the CFE kernel does not implement {why} (this "
                               f"bundle's option); use backend: torch")
            if backend == "cpp" and not kernel.cpp_available():
                raise BmiError("backend: cpp needs the compiled CFE kernel bmi_dcfe._core, which "
                               "could not be imported (reinstall with a C++ compiler, or set "
                               "backend: torch)")
            return backend
        if why is not None:
            return "torch"
        if not kernel.cpp_available():
            warnings.warn("the compiled CFE kernel bmi_dcfe._core is not available: dCFE BMI "
                          "falls back to backend torch (slower)", stacklevel=4)
            return "torch"
        return "cpp"

    def _state_signature(self) -> dict:
        return {"pet_input": self._pet_input}

    def _inputs(self) -> list[InputVar]:
        rate = RATE_UNITS[int(self._time_step)]
        out = [InputVar(PRECIP, rate, "precipitation rate (liquid equivalent)",
                        (("prcp", "sum"),), min_value=0.0),
               InputVar(TEMP, "degC", "air temperature", (("tmean", "mean"),),
                        plausible=T_PLAUSIBLE)]
        if self._pet_input:
            out.append(InputVar(PET, rate, "potential evapotranspiration", (("pet", "sum"),),
                                min_value=0.0))
        return out

    def _outputs(self) -> list[OutputVar]:
        rate = RATE_UNITS[int(self._time_step)]
        per = "hour" if self._time_step == 3600 else "day"
        out = [
            OutputVar(RUNOFF_DEPTH, "m", f"runoff depth at the outlet over the time step (one "
                      f"{per}): CFE Q_OUT", "runoff_depth"),
            OutputVar(RUNOFF_FLUX, "m3 s-1", "runoff volume flux at the catchment outlet "
                      "(depth x area / step)", "runoff_flux"),
            OutputVar(ET, rate, "actual evapotranspiration", "et"),
            OutputVar(MELT, rate, "snowmelt", "melt"),
            OutputVar(SWE, "mm", "snow water equivalent (snowpack + liquid water)", "swe"),
            OutputVar(SOIL, "mm", "CFE soil reservoir storage", "soil_moisture"),
            OutputVar(GROUNDWATER, "mm", "CFE groundwater reservoir storage", "groundwater"),
            OutputVar(SURFACE_FLOW, rate, "direct runoff after GIUH routing", "surface_flow"),
            OutputVar(INTERFLOW, rate, "lateral flow after the Nash cascade", "interflow"),
            OutputVar(BASEFLOW, rate, "groundwater outflow", "baseflow"),
        ]
        if not self._pet_input:
            out.append(OutputVar(PET, rate, "Hargreaves potential evapotranspiration", "pet"))
        units = {p.name: p.units for p in PARAMETERS}
        for n in self.core.dynamic_names:
            out.append(OutputVar(parameter_var_name(n), units[n],
                                 f"daily-dynamic CFE parameter {n} (LSTM, today's value)", n))
        return out
