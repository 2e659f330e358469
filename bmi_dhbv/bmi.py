"""NextGen BMI component of dHBV (one catchment per instance): the generic
:class:`~delta_core.bmi.adapter.NgenBmi` bound to dHBV's core, names and options.

See ``bmi_dhbv/BMI.md`` for the configuration keys, the variables and the hourly scheme.
"""
from __future__ import annotations

from pathlib import Path

from bmi_dhbv.core import HBVCore
from bmi_dhbv.hourly_core import HourlyHBVCore
from delta_core.bmi.adapter import NgenBmi
from delta_core.bmi.base import BmiError
from delta_core.bmi.hourly import FLAT_TEMPERATURE_KEYS


#: The δn(γt,βt) bundle fine-tuned with hourly HBV steps and stochastic storms
#: (``configs/dhbv_hourly.yaml``), the default of hourly hosts.
HOURLY_BUNDLE = Path(__file__).resolve().parent / "weights" / "dhbv_hourly.pt"
#: Its predecessor, fine-tuned with each day's rain spread evenly over the hours
#: (``configs/dhbv_dynamic_hourly.yaml``; the start of ``dhbv_hourly.pt``).
UNIFORM_HOURLY_BUNDLE = HOURLY_BUNDLE.with_name("dhbv_dynamic_hourly.pt")


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
    KERNEL = "bmi_dhbv.kernel"
    HARGREAVES_FROM = "the day's max/min temperature; hourly steps: of the trailing 24 hours"
    EXTRA_KEYS = FLAT_TEMPERATURE_KEYS
    CONDITIONS = {"daily_hargreaves": "daily steps with `pet_source: hargreaves`"}
    SPINUP_COLUMNS = {"prcp_mm_day": "prcp", "tmax_c": "tmax", "tmin_c": "tmin",
                      "pet_mm_day": "pet"}

    def _make_core(self, model, norm, x_attr, cfg) -> HBVCore:
        backend = self._choose_backend(cfg, model)
        if self._time_step == 3600:
            core = HourlyHBVCore(model, norm, x_attr, self._lat, backend)
        elif model.physics_step_seconds != 86400:
            raise BmiError(f"bundle {self._bundle_path} was trained with HBV stepping every "
                           f"{model.physics_step_seconds} s: use it with "
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

    def _cpp_unsupported(self, model) -> str | None:
        if model.recharge_net is not None:
            return "this bundle uses NN recharge (nn_recharge), which the HBV kernel lacks"
        return None

    def _conditions(self) -> set[str]:
        """Also ``daily_hargreaves`` (the day's max and min temperature are inputs)."""
        daily = self._time_step == 86400 and not self._pet_input
        return super()._conditions() | ({"daily_hargreaves"} if daily else set())

    def _state_signature(self) -> dict:
        return {**super()._state_signature(), "n_components": self.core.n_components}

    # -- extras ------------------------------------------------------------------------------
    @property
    def unit_hydrograph(self):
        """The catchment's 15-day unit hydrograph (copy)."""
        return self.core.unit_hydrograph.copy()

    @property
    def backend(self) -> str:
        return self.core.backend
