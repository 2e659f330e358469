"""dCFE for one catchment, stepped one hour at a time (the core the BMI wraps).

The static CFE parameters come from the bundle's attribute MLP once. Dynamic parameters (a
bundle trained with ``physics.dynamic``) come from the LSTM once a day, as in training: at the
first hour of each day (host clock) the LSTM steps with the previous day's aggregated forcing
(precipitation and PET summed, temperature averaged; a partial first day scaled to 24 hours),
and its output holds for the day's 24 hours; the first day of a run uses the LSTM's output
before any forcing, as the first training day does. Each hour: the degree-day snow
routine at hourly rates (the daily factors / 24; phase by the hour's temperature) turns
precipitation into liquid water; CFE (:mod:`bmi_dcfe.physics`) steps one hour with it and the
hour's PET. PET is an input, or Hargreaves from the trailing 24 hours of temperature (their
maximum, minimum and the day-of-year radiation) spread over the day by the sine weights that
training used (:class:`delta_core.patterns.WithinDay`). PET, the daily LSTM, the snow routine
and daily spin-up rows are the hourly path every model's core shares
(:class:`delta_core.bmi.hourly.HourlyAdapter`, :attr:`CfeCore.hourly`); this core adds CFE.

Knows nothing of BMI: amounts in mm per hour, stores in mm, temperature in degC.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import torch

from bmi_dcfe import kernel, physics
from bmi_dcfe.model import VARIABLES
from delta_core import snow as snow_routine
from delta_core.bmi.core import LumpedCore
from delta_core.bmi.hourly import FlatTemperature, HourlyAdapter, Hours
from delta_core.networks import LSTMStepper
from delta_core.spec import core_names


class CfeCore(LumpedCore):
    """One catchment of a trained :class:`~bmi_dcfe.model.DCFE` (float64, hourly).

    Parameters
    ----------
    model : DCFE
        Trained model (float64, eval mode).
    x_attr : ndarray [A]
        Encoded attributes of the catchment.
    norm : Normalization
        The bundle's normalisation (daily forcing statistics of the LSTM input; only used by
        bundles with dynamic parameters).
    latitude : float
        Degrees north (Hargreaves PET).
    backend : {"cpp", "torch"}
        CFE engine of the hourly step: the compiled kernel's single-step call, or
        :func:`bmi_dcfe.physics.step` (every option); both give the same numbers.
    """

    step_seconds = 3600
    #: Hour's precipitation [mm], temperature [degC], PET [mm] (None: Hargreaves).
    fields = ("prcp", "tmean", "pet")
    optional_fields = frozenset({"pet"})
    #: Daily spin-up rows: P [mm d-1], T mean (None: (max + min) / 2), T max, T min [degC],
    #: PET [mm d-1] (None: Hargreaves), spread over the hours as in training (:meth:`spinup`).
    spinup_step_seconds = 86400
    spinup_fields = ("prcp", "tmean", "tmax", "tmin", "pet")
    spinup_optional_fields = frozenset({"tmean", "tmax", "tmin", "pet"})
    flows = core_names(VARIABLES, "flow")
    rates = core_names(VARIABLES, "rate")
    stores = ("swe", "soil_moisture", "groundwater")

    def __init__(self, model, x_attr: np.ndarray, latitude: float, backend: str = "torch",
                 norm=None):
        self.dynamic_names = tuple(model.dynamic_names)
        self.levels = (*core_names(VARIABLES, "level"), *self.dynamic_names)
        super().__init__()
        self.x_attr = np.asarray(x_attr, dtype=np.float64)
        if backend not in kernel.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {list(kernel.BACKENDS)}")
        self._model = model
        self._options = model.config.options()
        if backend == "cpp":
            why = kernel.unsupported(self._options)
            if why is not None:
                raise ValueError(f"the CFE kernel does not implement {why}: use backend torch")
            kernel._require_core()
        self.backend = backend
        with torch.no_grad():
            learned = model.parameters_physical(torch.as_tensor(x_attr[None], dtype=torch.float64))
            lstm, first = None, {}
            if self.dynamic_names:
                if norm is None:
                    raise ValueError("a dCFE bundle with dynamic parameters needs its "
                                     "normalisation (norm) for the LSTM input")
                lstm = LSTMStepper(model.dynamic_net, x_attr)
                first = self._dynamic_from_raw(lstm.initial_output())
            self.static_params = model.cfe_parameters({**learned, **first})
        self.snow = {k: float(learned[k][0]) for k in snow_routine.PARAMETER_RANGES}
        self._ordinates = self.static_params.giuh_ordinates[0].numpy().copy()
        #: PET, the daily LSTM, the snow routine and daily spin-up rows (shared hourly path)
        self.hourly = HourlyAdapter("dCFE", latitude, model.pattern, lstm, model.dynamic_net,
                                    None if norm is None else norm.forcing, snow=self.snow)
        self._set_parameters(first)
        self._kout = np.zeros(kernel.N_GRAD_OUTPUTS)
        self.reset()

    # -- LumpedCore --------------------------------------------------------------------------
    def reset(self) -> None:
        s0 = self._model.initial_state(self.params)
        #: soil, gw, last percolation, lateral Nash reservoirs [m] (the kernel's state layout)
        self.state = np.concatenate([[float(s0.soil[0]), float(s0.gw[0]), 0.0],
                                     s0.nash_lateral[0].numpy()])
        self.queue = np.zeros(len(self._ordinates))  # GIUH runoff queue [m]
        self.hourly.reset()
        self.flow_new = np.zeros(len(self.flows))
        self.flow_carry = np.zeros(len(self.flows))
        self.rate_values[:] = 0.0
        self.level_values[:] = 0.0
        if self.hourly.lstm is not None:
            self._follow_lstm()
        self._write_levels()

    def set_flat_policy(self, policy: FlatTemperature) -> None:
        """Use ``policy`` (:class:`~delta_core.bmi.hourly.FlatTemperature`) for hours whose
        trailing 24 h temperature is constant, and for days of daily spin-up rows."""
        self.hourly.set_flat_policy(policy)

    def step(self, forcing: list, start: dt.datetime) -> None:
        """One hour from ``start``: ``forcing`` = [P mm, T degC, PET mm (None: Hargreaves)]."""
        p, t, pet = forcing
        water, pet, melt, new_day = self.hourly.hour(start, p, t, pet)
        if new_day:  # its parameters from the LSTM after the day before
            self._follow_lstm()
        rain = water / 1000.0
        if self.backend == "cpp":
            out = self._kout
            kernel._core.step(self._kparams, self.state, rain, pet / (1000.0 * physics.STEP_SECONDS),
                              self._options.mass_conserving, out)
            excess, lateral, baseflow, overflow, aet = out[0], out[1], out[2], out[3], out[4]
        else:
            excess, lateral, baseflow, overflow, aet = self._torch_step(rain, pet)
        q = self.queue
        q += self._ordinates * excess
        direct = q[0]
        q[:-1] = q[1:]
        q[-1] = 0.0
        if self._options.mass_conserving:
            baseflow = baseflow + overflow
        new = self.flow_new
        new[0], new[1], new[2] = direct * 1000.0, lateral * 1000.0, baseflow * 1000.0
        v = self.values
        v["et"][0], v["pet"][0], v["melt"][0] = aet * 1000.0, pet, melt
        self._write_levels()

    def run_steps(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Many hours at once (``backend: cpp``; with dynamic parameters whole days from 00:00):
        their inputs in one call of the shared hourly path (:meth:`HourlyAdapter.hours`), CFE
        in one kernel call; ends in the state :meth:`step` in turn would reach (to rounding)."""
        hours = (self.hourly.hours(starts, np.array([f[0] for f in forcings], dtype=float),
                                   [f[1] for f in forcings], [f[2] for f in forcings])
                 if self.backend == "cpp" and len(forcings) >= 24 else None)
        if hours is None:
            return super().run_steps(forcings, starts)
        self._run_hours(hours)

    def _run_hours(self, hours: Hours) -> None:
        """CFE over :class:`~delta_core.bmi.hourly.Hours` in one kernel call (their daily
        dynamic parameters, if any); the last hour's outputs."""
        dynamic = None
        if hours.dynamic is not None:
            scaled = self._model.scale_dynamic(torch.from_numpy(hours.dynamic))
            dynamic = {k: v[:, None] for k, v in scaled.items()}
            self._follow_lstm()
        self._run_kernel(hours.water, hours.pet, dynamic)
        self.values["pet"][0], self.values["melt"][0] = hours.pet[-1], hours.melt[-1]
        self._write_levels()

    def spinup(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Daily rows (:attr:`spinup_fields`; ``backend: cpp``) spread over their hours as in
        training, with the snow routine and the LSTM over the days
        (:meth:`~delta_core.bmi.hourly.HourlyAdapter.spinup`), then CFE in one call. The state
        continues as after the last spin-up day: the next hour starts the day after."""
        if self.backend != "cpp":
            raise ValueError("a daily spin-up file needs backend: cpp (or give hourly rows)")
        self._run_hours(self.hourly.spinup(forcings, starts))

    def _run_kernel(self, liquid: np.ndarray, pet: np.ndarray, dynamic: dict | None) -> None:
        """CFE over hours of liquid water and PET [mm] in one kernel call from the current
        state (``dynamic``: daily parameters ``{name: [D, 1]}``, or None); sets the state, the
        last hour's flows and ET."""
        st = torch.from_numpy(self.state)
        state = physics.CfeState(soil=st[0:1].clone(), gw=st[1:2].clone(),
                                 giuh_queue=torch.from_numpy(self.queue.copy())[None],
                                 nash_lateral=st[3:].clone()[None],
                                 nash_surface=torch.zeros(1, 0, dtype=torch.float64),
                                 percolation=st[2:3].clone())
        with torch.no_grad():
            final, out = kernel.run(
                state, self.static_params, torch.from_numpy(liquid / 1000.0)[:, None],
                torch.from_numpy(pet / (1000.0 * physics.STEP_SECONDS))[:, None], self._options,
                outputs=("DIRECT_RUNOFF", "NASH_LATERAL_RUNOFF", "DEEP_GW_TO_CHANNEL_FLUX",
                         "GW_OVERFLOW", "ACTUAL_ET"), backend="cpp", dynamic=dynamic)
        self.state[:] = np.concatenate([final.soil.numpy(), final.gw.numpy(),
                                        final.percolation.numpy(), final.nash_lateral[0].numpy()])
        self.queue[:] = final.giuh_queue[0].numpy()
        last = {k: float(v[-1, 0]) for k, v in out.items()}
        baseflow = last["DEEP_GW_TO_CHANNEL_FLUX"]
        if self._options.mass_conserving:
            baseflow += last["GW_OVERFLOW"]
        self.flow_new[:] = (last["DIRECT_RUNOFF"] * 1000.0, last["NASH_LATERAL_RUNOFF"] * 1000.0,
                            baseflow * 1000.0)
        self.values["et"][0] = last["ACTUAL_ET"] * 1000.0

    def get_state(self) -> dict[str, np.ndarray]:
        st = {"cfe": self.state, "giuh_queue": self.queue, "rate_values": self.rate_values,
              "level_values": self.level_values, "flow_new": self.flow_new}
        return {**{k: np.array(v, copy=True) for k, v in st.items()}, **self.hourly.get_state()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for key, arr in (("cfe", self.state), ("giuh_queue", self.queue)):
            if key not in state or state[key].shape != arr.shape:
                raise ValueError(f"state lacks {key!r} of shape {arr.shape} (another model "
                                 f"configuration?)")
            arr[...] = state[key]
        self.hourly.set_state(state)
        self.set_values(state["rate_values"], state["level_values"])
        self.flow_new = state["flow_new"].copy()
        if self.hourly.lstm is not None:
            self._follow_lstm()

    # -- helpers -----------------------------------------------------------------------------
    def _torch_step(self, rain: float, pet: float) -> tuple[float, ...]:
        """One hour with :func:`bmi_dcfe.physics.step` on the numpy state (GIUH done outside)."""
        st = torch.from_numpy(self.state)
        state = physics.CfeState(soil=st[0:1], gw=st[1:2], giuh_queue=torch.zeros(1, 1,
                                 dtype=torch.float64), nash_lateral=st[3:].reshape(1, -1),
                                 nash_surface=torch.zeros(1, 0, dtype=torch.float64),
                                 percolation=st[2:3])
        params = dataclasses.replace(self.params, giuh_ordinates=torch.ones(1, 1,
                                                                            dtype=torch.float64))
        f = lambda x: torch.tensor([x], dtype=torch.float64)  # noqa: E731
        with torch.no_grad():
            new, out = physics.step(state, params, self.constants, f(rain),
                                    f(pet / (1000.0 * physics.STEP_SECONDS)), self._options)
        self.state[:] = np.concatenate([new.soil.numpy(), new.gw.numpy(),
                                        new.percolation.numpy(), new.nash_lateral[0].numpy()])
        return tuple(float(out[k]) for k in ("INFILTRATION_EXCESS", "NASH_LATERAL_RUNOFF",
                                             "DEEP_GW_TO_CHANNEL_FLUX", "GW_OVERFLOW",
                                             "ACTUAL_ET"))

    def _follow_lstm(self) -> None:
        """Parameters for the LSTM output now in force (:attr:`HourlyAdapter.dynamic_raw`)."""
        self._set_parameters(self._dynamic_from_raw(self.hourly.dynamic_raw))

    def _dynamic_from_raw(self, raw: np.ndarray) -> dict[str, torch.Tensor]:
        """LSTM head outputs -> ``{name: [1]}`` dynamic parameters (physical units)."""
        return self._model.scale_dynamic(torch.as_tensor(raw, dtype=torch.float64)[None])

    def _set_parameters(self, dynamic: dict[str, torch.Tensor]) -> None:
        """CFE parameters, soil constants and the kernel's parameter vector for the static
        parameters and the given dynamic values."""
        self.params = (dataclasses.replace(self.static_params, **dynamic) if dynamic
                       else self.static_params)
        self.constants = physics.soil_constants(self.params)
        self._kparams = np.array([float(v[0]) for v in kernel.kernel_parameters(self.params)])
        #: the dynamic parameters' values as floats (levels written every hour)
        self._dynamic_values = [float(getattr(self.params, n)[0]) for n in self.dynamic_names]

    def _write_levels(self) -> None:
        v = self.values
        v["swe"][0] = self.hourly.swe
        v["soil_moisture"][0] = self.state[0] * 1000.0
        v["groundwater"][0] = self.state[1] * 1000.0
        for name, x in zip(self.dynamic_names, self._dynamic_values):
            v[name][0] = x
