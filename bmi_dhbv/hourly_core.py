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
the training disaggregation (:class:`delta_core.bmi.hourly.TrailingHargreaves`).

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
from delta_core import subdaily
from delta_core.bmi.core import LumpedCore
from delta_core.bmi.hourly import FlatTemperature, HourlyInputs
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
        self._scheme = model.options.within_day
        self.dynamic_raw = np.zeros(0)
        self._inputs = None
        super().__init__(model, norm, x_attr, latitude, backend)
        self._inputs = HourlyInputs(latitude, self._scheme.pet_weights().tolist(), "dHBV",
                                    self._lstm, norm.forcing)
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
        if self._inputs is not None:
            self._inputs.reset()
        if self._lstm is not None:
            self.dynamic_raw = self._lstm.initial_output()
            self._set_dynamic(self.dynamic_raw)
            self._write_levels(dynamic=True)

    def step(self, forcing: list, start: dt.datetime) -> None:
        """One hour from ``start``: ``forcing`` = [P mm, T degC, PET mm (None: Hargreaves)]."""
        p, t, pet = forcing
        pet, raw = self._inputs.hour(start, p, t, pet)
        if raw is not None:  # first hour of a day: the LSTM stepped with the day before
            self.dynamic_raw = raw
            self._set_dynamic(raw)
        self._advance(p, t, pet)

    def set_flat_policy(self, policy: FlatTemperature) -> None:
        """Use ``policy`` (:class:`~delta_core.bmi.hourly.FlatTemperature`) for the daily
        spin-up rows and the trailing 24 hours alike."""
        super().set_flat_policy(policy)
        self._inputs.pet_model.policy = policy

    def spinup(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Daily rows ``[P mm/d, T mean, T max, T min, PET mm/d]`` (None where derived), spread
        over their hours as in training, HBV in one call; the LSTM runs over the days. The
        state continues as after the last spin-up day: the next hour starts the day after."""
        p, t, pet = self._daily.days(forcings, starts)
        n_days = len(p)
        params = {name: torch.from_numpy(self._static[i][None].copy())
                  for i, name in enumerate(hbv.PARAMETER_NAMES)}
        if self._lstm is not None:
            xf = self._forcing_norm.transform(np.stack([p, t, pet], -1))
            raw = self._lstm.run(self._model.dynamic_net, xf)
            lagged = np.concatenate([self.dynamic_raw[None], raw[:-1]])  # day i: after day i-1
            params.update(self._dynamic_series(lagged, repeat=24))
            self.dynamic_raw = raw[-1].copy()
            self._set_dynamic(self.dynamic_raw)
        daily = torch.from_numpy(np.stack([p, t, pet], -1)[:, None, :])
        weights = torch.from_numpy(self._scheme.spinup_weights(n_days)[:, None])
        steps = subdaily.step_forcing(daily, self._scheme, {"rain_weights": weights})
        pet_w = self._scheme.pet_weights().numpy()
        with torch.no_grad():
            res = kernel.run(steps.prcp, steps.temp, steps.pet, params,
                             torch.from_numpy(self.states[:, None]), self._model.recharge_net,
                             keep_storages=False, backend=self.backend)
        self.states[...] = res.final_states[:, 0].numpy()
        q = np.stack([res.fluxes[k][:, 0].numpy() for k in ("q0", "q1", "q2")])  # [3, 24 n]
        n_hist = len(self._uh_tail)
        hist = q[:, ::-1][:, :n_hist]
        self._qhist[...] = 0.0
        self._qhist[:, :hist.shape[1]] = hist
        self.flow_new[:] = self._uh0 * q[:, -1]
        self.flow_carry = self._qhist @ self._uh_tail
        self.values["et"][0] = float(res.fluxes["et"][-1, 0])
        self.values["pet"][0] = pet[-1] * pet_w[-1]
        self._inputs.days.reset()  # the LSTM has seen the last day already
        self._write_levels(dynamic=True)

    def run_steps(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Many hours at once (backend cpp, whole days from 00:00): PET and the daily LSTM over
        the days vectorised (:meth:`~delta_core.bmi.hourly.HourlyInputs.whole_days`), HBV in one
        kernel call; ends in the state :meth:`step` in turn would reach (to rounding)."""
        p = np.array([f[0] for f in forcings], dtype=float)
        t = np.array([f[1] for f in forcings], dtype=float)
        days = (self._inputs.whole_days(starts, p, t, [f[2] for f in forcings],
                                        self.dynamic_raw, self._model.dynamic_net)
                if self._step_numpy is not None and len(forcings) >= 24 else None)
        if days is None:
            return LumpedCore.run_steps(self, forcings, starts)  # hour by hour
        pet, raw = days
        params = {name: torch.from_numpy(self._static[i][None].copy())
                  for i, name in enumerate(hbv.PARAMETER_NAMES)}
        if self._lstm is not None:
            params.update(self._dynamic_series(raw, repeat=24))
            self.dynamic_raw = raw[-1].copy()
            self._set_dynamic(self.dynamic_raw)
        f = lambda a: torch.from_numpy(a)[:, None]  # noqa: E731
        with torch.no_grad():
            res = kernel.run(f(p), f(t), f(pet), params, torch.from_numpy(self.states[:, None]),
                             keep_storages=False, backend="cpp")
        self.states[...] = res.final_states[:, 0].numpy()
        q = np.stack([res.fluxes[k][:, 0].numpy() for k in ("q0", "q1", "q2")])  # [3, H]
        n_hist = len(self._uh_tail)
        self._qhist[...] = np.concatenate([q[:, ::-1], self._qhist], axis=1)[:, :n_hist]
        self.flow_new[:] = self._uh0 * q[:, -1]
        self.flow_carry = self._qhist @ self._uh_tail
        self.rate_values[0], self.rate_values[1] = float(res.fluxes["et"][-1, 0]), pet[-1]
        self._write_levels(dynamic=True)

    def get_state(self) -> dict[str, np.ndarray]:
        st = super().get_state()
        st.update(temps=self._inputs.pet_model.state, day=self._inputs.days.state.copy(),
                  dynamic_raw=np.array(self.dynamic_raw, copy=True))
        return st

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        if "temps" not in state:
            raise ValueError("state lacks the hourly core's 'temps' (saved by the daily core?)")
        super().set_state(state)
        self._inputs.pet_model.state = state["temps"]
        self._inputs.days.state = state["day"].copy()
        self.dynamic_raw = state["dynamic_raw"].copy()
