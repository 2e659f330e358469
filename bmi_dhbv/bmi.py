"""NextGen BMI component of dHBV (one catchment per instance): the generic
:class:`~delta_core.bmi.adapter.NgenBmi` bound to dHBV's core, names and options.

See ``bmi_dhbv/BMI.md`` for the configuration keys, the variables and the hourly scheme.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from bmi_dhbv import kernel
from bmi_dhbv.core import HBVCore
from bmi_dhbv.hourly_core import HourlyHBVCore
from delta_core.bmi.adapter import RATE_UNITS, InputVar, NgenBmi, OutputVar
from delta_core.bmi.base import BmiError
from delta_core.bmi.hourly import FLAT_TEMPERATURE_KEYS
from delta_core.ngen.crosswalk import (BASEFLOW, ET, INTERFLOW, PET, PRECIP, RUNOFF_DEPTH,
                                      RUNOFF_FLUX, SOIL, SURFACE_FLOW, SWE, T_PLAUSIBLE, TEMP,
                                      TMAX, TMIN)

UPPER = "groundwater~upper_zone__depth"
LOWER = "groundwater~lower_zone__depth"


#: The δn(γt,βt) bundle fine-tuned with hourly HBV steps and stochastic storms
#: (``configs/dhbv_hourly.yaml``), the default of hourly hosts.
HOURLY_BUNDLE = Path(__file__).resolve().parent / "weights" / "dhbv_hourly.pt"
#: Its predecessor, fine-tuned with each day's rain spread evenly over the hours
#: (``configs/dhbv_dynamic_hourly.yaml``; the start of ``dhbv_hourly.pt``).
UNIFORM_HOURLY_BUNDLE = HOURLY_BUNDLE.with_name("dhbv_dynamic_hourly.pt")


def parameter_var_name(name: str) -> str:
    """Output variable name of dynamic HBV parameter ``name`` (e.g. ``hbv__beta``)."""
    return f"hbv__{name.lower()}"


class BmiDHBV(NgenBmi):
    """dHBV for the NextGen framework: one catchment, hourly (default) or daily steps.

    Daily mode (``time_step_seconds: 86400``): one update = one day; inputs precipitation
    [mm d-1], daily mean temperature [degC] and, with ``pet_source: hargreaves`` (default), the
    day's max and min temperature [degC]; with ``pet_source: input``, PET [mm d-1] instead.

    Hourly mode (``time_step_seconds: 3600``; ngen's CSV forcing is hourly): HBV steps every
    hour (:mod:`bmi_dhbv.hourly_core`) with the hour's precipitation [mm h-1], temperature
    [degC] and (``pet_source: input``) PET [mm h-1], else Hargreaves PET from the trailing 24
    hours of temperature; rates converted to the hour (:mod:`bmi_dhbv.substeps`), routing by
    the hourly gamma unit hydrograph, dynamic parameters from the LSTM at each day's first hour
    (with the day before). Without a ``bundle`` key it runs the bundle fine-tuned for hourly
    steps and storms (``weights/dhbv_hourly.pt``). Every output is the hour's own value.
    """

    _component_name = "dHBV: differentiable HBV with LSTM-dynamic parameters (NextGen BMI)"
    MODEL = "dhbv"
    HOST_STEPS = (3600, 86400)
    EXTRA_KEYS = {
        "pet_source": "hargreaves (default: PET from the day's max/min temperature) or input "
                      "(PET is an input variable that must be set every step)",
        **FLAT_TEMPERATURE_KEYS,
    }
    SPINUP_COLUMNS = {"prcp_mm_day": "prcp", "tmax_c": "tmax", "tmin_c": "tmin",
                      "pet_mm_day": "pet"}

    def _make_core(self, model, norm, x_attr, cfg) -> HBVCore:
        pet_source = cfg.get("pet_source", "hargreaves")
        if pet_source not in ("hargreaves", "input"):
            raise BmiError(f"pet_source must be 'hargreaves' or 'input', got {pet_source!r}")
        self._pet_input = pet_source == "input"
        backend = self._choose_backend(cfg.get("backend"), model)
        if self._time_step == 3600:
            core = HourlyHBVCore(model, norm, x_attr, self._lat, backend)
        elif model.options.steps_per_day != 1:
            raise BmiError(f"bundle {self._bundle_path} was trained with HBV stepping "
                           f"{model.options.steps_per_day} times a day: use it with "
                           f"time_step_seconds: 3600, or a daily bundle for daily steps")
        else:
            core = HBVCore(model, norm, x_attr, self._lat, backend)
        core.set_flat_policy(self._flat_temperature(cfg))
        return core

    @classmethod
    def default_bundle_for(cls, time_step: int) -> Path | None:
        """Hourly steps: :data:`HOURLY_BUNDLE` (fine-tuned for them); daily: the spec's."""
        if time_step == 3600 and HOURLY_BUNDLE.is_file():
            return HOURLY_BUNDLE
        return super().default_bundle_for(time_step)

    def _choose_backend(self, backend: str | None, model) -> str:
        """The configured engine; without the key, cpp if built (else torch, with a warning)."""
        explicit = backend is not None
        backend = backend or "cpp"
        if model.recharge_net is not None and backend == "cpp":
            if explicit:
                raise BmiError("this bundle uses NN recharge (nn_recharge), which only "
                               "backend: torch supports")
            backend = "torch"
        if backend == "cpp" and not kernel.cpp_available():
            if explicit:
                raise BmiError("backend: cpp needs the compiled HBV kernel bmi_dhbv._core, "
                               "which could not be imported (reinstall the package with a C++ "
                               "compiler, or set backend: torch)")
            warnings.warn("the compiled HBV kernel bmi_dhbv._core is not available: dHBV BMI "
                          "falls back to backend torch (slower)", stacklevel=4)
            backend = "torch"
        return backend

    def _state_signature(self) -> dict:
        return {"pet_input": self._pet_input, "n_components": self.core.n_components}

    def _inputs(self) -> list[InputVar]:
        rate = RATE_UNITS[int(self._time_step)]
        hourly = self._time_step == 3600
        temp = InputVar(TEMP, "degC", "air temperature" + (" (hourly)" if hourly else
                                                          " (daily mean)"),
                        (("tmean", "mean"),), plausible=T_PLAUSIBLE)
        out = [InputVar(PRECIP, rate, "precipitation rate (liquid equivalent)",
                        (("prcp", "sum"),), min_value=0.0), temp]
        if self._pet_input:
            out.append(InputVar(PET, rate, "potential evapotranspiration", (("pet", "sum"),),
                                min_value=0.0))
        elif not hourly:
            out += [InputVar(TMAX, "degC", "daily maximum air temperature", (("tmax", "max"),),
                             plausible=T_PLAUSIBLE),
                    InputVar(TMIN, "degC", "daily minimum air temperature", (("tmin", "min"),),
                             plausible=T_PLAUSIBLE)]
        return out

    def _outputs(self) -> list[OutputVar]:
        rate = RATE_UNITS[int(self._time_step)]
        per = "hour" if self._time_step == 3600 else "day"
        out = [
            OutputVar(RUNOFF_DEPTH, "m", f"routed runoff depth over the time step (one {per})",
                      "runoff_depth"),
            OutputVar(RUNOFF_FLUX, "m3 s-1", "routed runoff volume flux at the catchment outlet "
                      "(depth x area / step)", "runoff_flux"),
            OutputVar(ET, rate, "actual evapotranspiration", "et"),
            OutputVar(SWE, "mm", "snow water equivalent (snowpack + liquid water)", "swe"),
            OutputVar(SOIL, "mm", "soil moisture storage (HBV SM)", "soil_moisture"),
            OutputVar(UPPER, "mm", "upper groundwater zone storage (HBV SUZ)", "upper_zone"),
            OutputVar(LOWER, "mm", "lower groundwater zone storage (HBV SLZ)", "lower_zone"),
            OutputVar(SURFACE_FLOW, rate, "routed surface (fast) flow Q0", "surface_flow"),
            OutputVar(INTERFLOW, rate, "routed interflow Q1", "interflow"),
            OutputVar(BASEFLOW, rate, "routed baseflow Q2", "baseflow"),
        ]
        if not self._pet_input:
            out.append(OutputVar(PET, rate, "Hargreaves potential evapotranspiration", "pet"))
        for n in self.core.dynamic_names:
            out.append(OutputVar(parameter_var_name(n), "1",
                                 f"daily-dynamic HBV parameter {n} (component mean)", n))
        return out

    # -- extras ------------------------------------------------------------------------------
    @property
    def unit_hydrograph(self):
        """The catchment's 15-day unit hydrograph (copy)."""
        return self.core.unit_hydrograph.copy()

    @property
    def backend(self) -> str:
        return self.core.backend
