"""dHBV for one catchment stepped one hour at a time: the core of the BMI's hourly mode.

HBV advances every hour with hourly forcing and the hourly rates of :mod:`bmi_dhbv.substeps`
(recession coefficients ``1 - (1 - K)^(1/24)``, PERC and CFMAX / 24, the gamma unit hydrograph
sampled hourly, 360 hours long); the networks keep their daily view: static parameters once,
dynamic ones (BETA, BETAET) from the LSTM once a day, at the first hour of each day (host clock),
stepped with the day before's forcing (precipitation and PET summed, temperature averaged), so a
day's parameters come from the LSTM after the previous day, as the hourly training did
(``dynamic_lag_days = 1``). No within-day jump that the forcing does not cause: rain at 14:00
raises the flow from that hour on.

PET: an input, or Hargreaves of the trailing 24 hours of temperature times the hour's weight of
the training disaggregation. PET, the daily LSTM and daily spin-up rows are the hourly path every
model's core shares (:class:`delta_core.bmi.hourly.HourlyAdapter`, :attr:`HourlyHBVCore.hourly`);
this core adds HBV at hourly rates and the routing.

The spin-up takes *daily* rows (as the daily core's spin-up file), spread over the hours as in
training (:func:`delta_core.subdaily.step_forcing` with the bundle's within-day pattern, seeded
draws for a stochastic one; temperature at the daily mean) and run in one call.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import torch

from bmi_dhbv import hbv, kernel, substeps
from bmi_dhbv.core import HBVCore
from delta_core.bmi.core import LumpedCore
from delta_core.bmi.hourly import FlatTemperature, HourlyAdapter, Hours
from delta_core.routing import gamma_unit_hydrograph_substeps


class HourlyHBVCore(HBVCore):
    """One catchment of a :class:`~bmi_dhbv.model.DHBV`, hourly (see the module docstring).

    Parameters as :class:`~bmi_dhbv.core.HBVCore`.
    """

    step_seconds = 3600
    #: Hour's precipitation [mm], temperature [degC], PET [mm] (None: Hargreaves).
    fields = ("prcp", "tmean", "pet")
    optional_fields = frozenset({"pet"})
    #: The spin-up file is daily, as for the daily core.
    spinup_step_seconds = 86400
    spinup_fields = HBVCore.fields
    spinup_optional_fields = HBVCore.optional_fields

    def __init__(self, model, norm, x_attr: np.ndarray, latitude: float, backend: str = "cpp"):
        self.hourly = None
        super().__init__(model, norm, x_attr, latitude, backend)
        #: PET, the daily LSTM and daily spin-up rows (the shared hourly path)
        self.hourly = HourlyAdapter("dHBV", latitude, model.options.within_day, self._lstm,
                                    model.dynamic_net, norm.forcing)
        daily = {n: torch.from_numpy(self._static[i]) for i, n in enumerate(hbv.PARAMETER_NAMES)}
        hourly = substeps.substep_parameters(daily, 24)
        self._static = np.stack([hourly[n].numpy() for n in hbv.PARAMETER_NAMES])
        with torch.no_grad():
            _, a, b = model.static_and_routing(torch.as_tensor(x_attr[None], dtype=torch.float64))
            uh = gamma_unit_hydrograph_substeps(a, b, 24, hbv.UH_LENGTH)[0].numpy()
        self.unit_hydrograph = uh.copy()
        self._uh0 = float(uh[0])
        self._uh_tail = uh[1:].copy()
        self.reset()

    # -- LumpedCore --------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        if self.hourly is None:
            return
        self.hourly.reset()
        if self._lstm is not None:
            self._set_dynamic(self.hourly.dynamic_raw)
            self._write_levels(dynamic=True)

    def step(self, forcing: list, start: dt.datetime) -> None:
        """One hour from ``start``: ``forcing`` = [P mm, T degC, PET mm (None: Hargreaves)]."""
        p, t, pet = forcing
        p, pet, _, new_day = self.hourly.hour(start, p, t, pet)
        if new_day:  # first hour of a day: the LSTM stepped with the day before
            self._set_dynamic(self.hourly.dynamic_raw)
        self._advance(p, t, pet)

    def set_flat_policy(self, policy: FlatTemperature) -> None:
        """Use ``policy`` (:class:`~delta_core.bmi.hourly.FlatTemperature`) for the daily
        spin-up rows and the trailing 24 hours alike."""
        super().set_flat_policy(policy)
        self.hourly.set_flat_policy(policy)

    def spinup(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Daily rows ``[P mm/d, T mean, T max, T min, PET mm/d]`` (None where derived), spread
        over their hours as in training, HBV in one call; the LSTM runs over the days. The
        state continues as after the last spin-up day: the next hour starts the day after."""
        hours = self.hourly.spinup(forcings, starts)
        res = self._run_hours(hours)
        q = np.stack([res.fluxes[k][:, 0].numpy() for k in ("q0", "q1", "q2")])  # [3, 24 n]
        n_hist = len(self._uh_tail)
        hist = q[:, ::-1][:, :n_hist]
        self._qhist[...] = 0.0
        self._qhist[:, :hist.shape[1]] = hist
        self.flow_new[:] = self._uh0 * q[:, -1]
        self.flow_carry = self._qhist @ self._uh_tail
        self.values["et"][0] = float(res.fluxes["et"][-1, 0])
        self.values["pet"][0] = hours.pet[-1]
        self._write_levels(dynamic=True)

    def run_steps(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Many hours at once (backend cpp, whole days from 00:00): their inputs in one call of
        the shared hourly path (:meth:`~delta_core.bmi.hourly.HourlyAdapter.hours`), HBV in one
        kernel call; ends in the state :meth:`step` in turn would reach (to rounding)."""
        hours = (self.hourly.hours(starts, np.array([f[0] for f in forcings], dtype=float),
                                   [f[1] for f in forcings], [f[2] for f in forcings])
                 if self._step_numpy is not None and len(forcings) >= 24 else None)
        if hours is None:
            return LumpedCore.run_steps(self, forcings, starts)  # hour by hour
        res = self._run_hours(hours)
        q = np.stack([res.fluxes[k][:, 0].numpy() for k in ("q0", "q1", "q2")])  # [3, H]
        n_hist = len(self._uh_tail)
        self._qhist[...] = np.concatenate([q[:, ::-1], self._qhist], axis=1)[:, :n_hist]
        self.flow_new[:] = self._uh0 * q[:, -1]
        self.flow_carry = self._qhist @ self._uh_tail
        self.rate_values[0], self.rate_values[1] = float(res.fluxes["et"][-1, 0]), hours.pet[-1]
        self._write_levels(dynamic=True)

    def _run_hours(self, hours: Hours):
        """HBV over :class:`~delta_core.bmi.hourly.Hours` in one kernel call from the current
        state, the dynamic parameters of each day (if any) held for its 24 hours; the state
        advanced, the kernel's result returned."""
        params = {name: torch.from_numpy(self._static[i][None].copy())
                  for i, name in enumerate(hbv.PARAMETER_NAMES)}
        if hours.dynamic is not None:
            params.update(self._dynamic_series(hours.dynamic, repeat=24))
            self._set_dynamic(self.hourly.dynamic_raw)
        f = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))[:, None]
        with torch.no_grad():
            res = kernel.run(f(hours.water), f(hours.temp), f(hours.pet), params,
                             torch.from_numpy(self.states[:, None]), self._model.recharge_net,
                             keep_storages=False, backend=self.backend)
        self.states[...] = res.final_states[:, 0].numpy()
        return res

    def get_state(self) -> dict[str, np.ndarray]:
        st = super().get_state()
        st.pop("h", None), st.pop("c", None)  # the LSTM's state is the hourly path's
        return {**st, **self.hourly.get_state()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        if "temps" not in state:
            raise ValueError("state lacks the hourly core's 'temps' (saved by the daily core?)")
        if "h" in state and "lstm_h" not in state:  # saved before the shared hourly path
            state = {**state, "lstm_h": state["h"], "lstm_c": state["c"]}
        self._set_hbv_state(state)
        self.hourly.set_state(state)
