"""dCFE for one catchment, stepped one hour at a time (the core the BMI wraps).

The CFE parameters come from the bundle's attribute MLP once. Each hour: the degree-day snow
routine at hourly rates (the daily factors / 24; phase by the hour's temperature) turns
precipitation into liquid water; CFE (:mod:`bmi_dcfe.physics`) steps one hour with it and the
hour's PET. PET is an input, or Hargreaves from the trailing 24 hours of temperature (their
maximum, minimum and the day-of-year radiation) spread over the day by the sine weights that
training used (:class:`delta_core.disaggregation.HourlyScheme`).

Knows nothing of BMI: amounts in mm per hour, stores in mm, temperature in degC.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import torch

from bmi_dcfe import physics
from delta_core import snow as snow_routine
from delta_core.bmi.core import LumpedCore
from delta_core.pet import extraterrestrial_radiation, hargreaves_from_ra


class CfeCore(LumpedCore):
    """One catchment of a trained :class:`~bmi_dcfe.model.DCFE` (float64, hourly).

    Parameters
    ----------
    model : DCFE
        Trained model (float64, eval mode).
    x_attr : ndarray [A]
        Encoded attributes of the catchment.
    latitude : float
        Degrees north (Hargreaves PET).
    """

    step_seconds = 3600
    #: Hour's precipitation [mm], temperature [degC], PET [mm] (None: Hargreaves).
    fields = ("prcp", "tmean", "pet")
    optional_fields = frozenset({"pet"})
    flows = ("surface_flow", "interflow", "baseflow")
    rates = ("et", "pet", "melt")
    levels = ("swe", "soil_moisture", "groundwater")

    def __init__(self, model, x_attr: np.ndarray, latitude: float):
        super().__init__()
        self._model = model
        self._options = model.config.options()
        self._pet_weights = model.config.scheme().pet_weights().numpy()
        self._ra = extraterrestrial_radiation(latitude, np.arange(1, 367))[:, 0].tolist()
        with torch.no_grad():
            learned = model.parameters_physical(torch.as_tensor(x_attr[None], dtype=torch.float64))
            self.params = model.cfe_parameters(learned)
        self.snow = {k: float(learned[k][0]) for k in snow_routine.PARAMETER_RANGES}
        self.constants = physics.soil_constants(self.params)
        self.reset()

    # -- LumpedCore --------------------------------------------------------------------------
    def reset(self) -> None:
        self.cfe = self._model.initial_state(self.params)
        self.snowpack = 0.0
        self.meltwater = 0.0
        self._temps = np.full(24, np.nan)  # trailing hourly temperatures (Hargreaves PET)
        self.flow_new = np.zeros(3)
        self.flow_carry = np.zeros(3)
        self.rate_values = np.zeros(3)
        self.level_values = np.zeros(3)
        self._write_levels()

    def step(self, forcing: list, start: dt.datetime) -> None:
        """One hour from ``start``: ``forcing`` = [P mm, T degC, PET mm (None: Hargreaves)]."""
        p, t, pet = forcing
        self._temps[:-1] = self._temps[1:]
        self._temps[-1] = t
        if pet is None:
            pet = self.hargreaves_hourly(start)
        liquid, melt = self._snow_hour(p, t)
        f = lambda x: torch.tensor([x], dtype=torch.float64)  # noqa: E731
        with torch.no_grad():
            self.cfe, out = physics.step(self.cfe, self.params, self.constants, f(liquid / 1000.0),
                                         f(pet / (1000.0 * physics.STEP_SECONDS)), self._options)
        q = [float(out[k]) * 1000.0 for k in ("DIRECT_RUNOFF", "NASH_LATERAL_RUNOFF",
                                              "DEEP_GW_TO_CHANNEL_FLUX")]
        if self._options.mass_conserving:
            q[2] += float(out["GW_OVERFLOW"]) * 1000.0
        self.flow_new[:] = q
        self.rate_values[:] = (float(out["ACTUAL_ET"]) * 1000.0, pet, melt)
        self._write_levels()

    def hargreaves_hourly(self, start: dt.datetime) -> float:
        """PET of the hour starting at ``start`` [mm]: Hargreaves from the trailing 24 hours'
        max/min temperature (fewer at the start of a run) times the hour's sine weight."""
        window = self._temps[~np.isnan(self._temps)]
        daily = hargreaves_from_ra(float(window.max()), float(window.min()),
                                   self._ra[start.timetuple().tm_yday - 1])
        return daily * float(self._pet_weights[start.hour])

    def get_state(self) -> dict[str, np.ndarray]:
        st = {f"cfe_{f.name}": getattr(self.cfe, f.name).numpy()
              for f in dataclasses.fields(physics.CfeState)}
        st.update(snow=np.array([self.snowpack, self.meltwater]), temps=self._temps,
                  rate_values=self.rate_values, level_values=self.level_values,
                  flow_new=self.flow_new)
        return {k: np.array(v, copy=True) for k, v in st.items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        fields = {}
        for f in dataclasses.fields(physics.CfeState):
            ref = getattr(self.cfe, f.name)
            arr = state.get(f"cfe_{f.name}")
            if arr is None or arr.shape != tuple(ref.shape):
                raise ValueError(f"state lacks cfe_{f.name} of shape {tuple(ref.shape)} (another "
                                 f"model configuration?)")
            fields[f.name] = torch.from_numpy(np.array(arr, dtype=np.float64))
        self.cfe = physics.CfeState(**fields)
        self.snowpack, self.meltwater = (float(x) for x in state["snow"])
        self._temps = state["temps"].copy()
        self.rate_values = state["rate_values"].copy()
        self.level_values = state["level_values"].copy()
        self.flow_new = state["flow_new"].copy()

    # -- helpers -----------------------------------------------------------------------------
    def _snow_hour(self, p: float, t: float) -> tuple[float, float]:
        """Hourly degree-day step; returns (liquid water to the ground, melt) [mm]."""
        s = self.snow
        f = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
        r = snow_routine.degree_day_step(f(self.snowpack), f(self.meltwater), f(p), f(t),
                                         f(s["TT"]), f(s["CFMAX"] / 24.0), f(s["CFR"]), f(s["CWH"]))
        self.snowpack, self.meltwater = float(r.snowpack), float(r.meltwater)
        return float(r.rain + r.outflow), float(r.melt)

    def _write_levels(self) -> None:
        self.level_values[:] = (self.snowpack + self.meltwater, float(self.cfe.soil) * 1000.0,
                                float(self.cfe.gw) * 1000.0)
