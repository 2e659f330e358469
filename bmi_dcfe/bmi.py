"""NextGen BMI component of dCFE (one catchment per instance): the generic
:class:`~delta_core.bmi.adapter.NgenBmi` bound to dCFE's hourly core.

Hourly native: each hourly ``update`` steps CFE once with that hour's forcing (no daily
aggregation). With ``time_step_seconds: 86400`` one update runs 24 CFE hours with the day's
forcing spread evenly over them. See ``bmi_dcfe/BMI.md``.
"""
from __future__ import annotations

from bmi_dcfe import kernel
from bmi_dcfe.core import CfeCore
from delta_core.bmi.adapter import NgenBmi
from delta_core.bmi.hourly import FLAT_TEMPERATURE_KEYS


class BmiDCFE(NgenBmi):
    """dCFE for the NextGen framework: one catchment, hourly (default) or daily host steps.

    Inputs: precipitation and air temperature every step; PET too with ``pet_source: input``,
    otherwise (``hargreaves``, default) PET is Hargreaves from the trailing 24 hours of
    temperature, spread over the day by the sine weights used in training. The variables are
    :data:`bmi_dcfe.model.VARIABLES`.
    """

    _component_name = "dCFE: differentiable Conceptual Functional Equivalent (NextGen BMI)"
    MODEL = "dcfe"
    HOST_STEPS = (3600, 86400)
    KERNEL = "bmi_dcfe.kernel"
    HARGREAVES_FROM = "the trailing 24 h of temperature"
    EXTRA_KEYS = FLAT_TEMPERATURE_KEYS
    SPINUP_COLUMNS = {"prcp_mm_h": "prcp", "tmean_c": "tmean", "pet_mm_h": "pet"}
    DAILY_SPINUP_COLUMNS = {"prcp_mm_day": "prcp", "tmean_c": "tmean", "tmax_c": "tmax",
                            "tmin_c": "tmin", "pet_mm_day": "pet"}

    def _make_core(self, model, norm, x_attr, cfg) -> CfeCore:
        core = CfeCore(model, x_attr, self._lat, self._choose_backend(cfg, model), norm=norm)
        core.set_flat_policy(self._flat_temperature(cfg))
        return core

    def _cpp_unsupported(self, model) -> str | None:
        why = kernel.unsupported(model.config.options())
        return None if why is None else f"the CFE kernel does not implement {why} (this " \
                                        f"bundle's option)"
