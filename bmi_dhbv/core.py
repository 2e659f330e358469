"""dHBV for one catchment, stepped one day at a time in numpy (the core the BMI wraps).

Static HBV parameters and the 15-day gamma unit hydrograph come from the bundle's attribute MLP,
computed once; the daily-dynamic parameters (BETA, BETAET) from the LSTM, stepped one day at a
time in numpy (carrying ``h``, ``c``); every HBV component advances one day on the C++ kernel
(or the PyTorch reference); the component-mean q0, q1, q2 are routed with the unit hydrograph:
routed(d) = sum_k uh[k] Q(d - k), k = 0..14, with the last 14 days of unrouted flow kept.
The routed flow of day d is the carry-over ``B_d = sum_{k>=1} uh[k] Q(d - k)``, known before the
day, plus the new part ``uh[0] Q(d)`` (:class:`~delta_core.bmi.core.LumpedCore` contract).

Knows nothing of BMI: no configuration files, names or units beyond mm and mm/day.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import torch

from bmi_dhbv import hbv, kernel
from bmi_dhbv.model import VARIABLES
from delta_core.bmi.core import LumpedCore
from delta_core.bmi.hourly import DailyForcing, FlatTemperature
from delta_core.networks import LSTMStepper
from delta_core.spec import core_names


class HBVCore(LumpedCore):
    """One catchment of a trained :class:`~bmi_dhbv.model.DHBV` (float64).

    Parameters
    ----------
    model : DHBV
        Trained model (float64, eval mode).
    norm : Normalization
        The bundle's normalisation (forcing statistics for the LSTM input).
    x_attr : ndarray [A]
        Encoded attributes of the catchment.
    latitude : float
        Degrees north (Hargreaves PET).
    backend : {"cpp", "torch"}
        HBV engine for the daily step.
    """

    step_seconds = 86400
    #: Day's precipitation [mm], mean temperature [degC], max/min temperature [degC], PET [mm].
    fields = ("prcp", "tmean", "tmax", "tmin", "pet")
    optional_fields = frozenset({"tmean", "tmax", "tmin", "pet"})
    flows = core_names(VARIABLES, "flow")
    rates = core_names(VARIABLES, "rate")
    stores = ("swe", "soil_moisture", "upper_zone", "lower_zone")

    def __init__(self, model, norm, x_attr: np.ndarray, latitude: float, backend: str = "cpp"):
        self.dynamic_names = tuple(model.dynamic_names)
        self.levels = (*core_names(VARIABLES, "level"), *self.dynamic_names)
        super().__init__()
        if backend not in kernel.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {list(kernel.BACKENDS)}")
        self.backend = backend
        self._model = model
        self.flat_policy = FlatTemperature("dHBV")
        self._forcing_norm = norm.forcing
        self._daily = DailyForcing(latitude, "dHBV")
        with torch.no_grad():
            static, uh = model.static_parameters(torch.as_tensor(x_attr[None], dtype=torch.float64))
        self.n_components = c = model.options.n_components
        self._static = np.zeros((len(hbv.PARAMETER_NAMES), c))
        for name, v in static.items():
            self._static[hbv.PARAMETER_NAMES.index(name)] = v[0].numpy()
        self._dyn_rows = [hbv.PARAMETER_NAMES.index(n) for n in self.dynamic_names]
        ranges = model.options.parameter_ranges
        self._dyn_lo = np.repeat([ranges[n][0] for n in self.dynamic_names], c)
        self._dyn_span = np.repeat([ranges[n][1] - ranges[n][0] for n in self.dynamic_names], c)
        self.unit_hydrograph = uh[0].numpy().copy()
        self._uh0 = float(self.unit_hydrograph[0])
        self._uh_tail = self.unit_hydrograph[1:].copy()
        self._lstm = (LSTMStepper(model.dynamic_net, x_attr) if model.dynamic_net is not None
                      else None)
        self._step_numpy = kernel.step_numpy if backend == "cpp" else None
        self._fluxes = np.zeros(len(hbv.FLUX_NAMES))
        self.reset()

    # -- LumpedCore --------------------------------------------------------------------------
    def reset(self) -> None:
        self.states = np.full((len(hbv.STATE_NAMES), self.n_components), hbv.COLD_START_MM)
        self.params = self._static.copy()
        self._dynamic_changed()
        self._daily.reset()
        if self._lstm is not None:
            self._lstm.reset()
        self._qhist = np.zeros((3, len(self.unit_hydrograph) - 1))  # q0,q1,q2 at lags 1..14
        self.flow_new = np.zeros(len(self.flows))
        self.flow_carry = np.zeros(len(self.flows))
        self.rate_values[:] = 0.0
        self.level_values[:] = 0.0
        self._write_levels(dynamic=False)

    def step(self, forcing: list, start: dt.datetime) -> None:
        """One day: ``forcing`` = [P, T mean (None: (max+min)/2), T max, T min, PET (None:
        Hargreaves)] of the day starting at ``start``."""
        p, t, pet = self._daily.day(forcing, start)
        if self._lstm is not None:
            self._set_dynamic(self._lstm.step(self._forcing_norm.transform_day((p, t, pet))))
        self._advance(p, t, pet)

    def set_flat_policy(self, policy: FlatTemperature) -> None:
        """Use ``policy`` for days (hours) of constant temperature (:class:`FlatTemperature`)."""
        self.flat_policy = self._daily.policy = policy

    def _set_dynamic(self, raw: np.ndarray) -> None:
        """Dynamic parameters from the LSTM's raw head outputs ``[n_dynamic * C]``."""
        unit = 1.0 / (1.0 + np.exp(-raw))
        dyn = self._dyn_lo + unit * self._dyn_span
        self.params[self._dyn_rows] = dyn.reshape(len(self._dyn_rows), self.n_components)
        self._dynamic_changed()

    def _dynamic_series(self, raw: np.ndarray, repeat: int = 1) -> dict[str, torch.Tensor]:
        """Dynamic parameters ``{name: [n * repeat, 1, C]}`` from raw LSTM outputs
        ``[n, n_dynamic * C]``, each row held for ``repeat`` model steps (kernel layout)."""
        c = self.n_components
        dyn = self._dyn_lo + 1.0 / (1.0 + np.exp(-raw)) * self._dyn_span
        return {hbv.PARAMETER_NAMES[row]: torch.from_numpy(
                    np.repeat(dyn[:, j * c:(j + 1) * c], repeat, axis=0))[:, None]
                for j, row in enumerate(self._dyn_rows)}

    def _dynamic_changed(self) -> None:
        """Cache the component means of the dynamic parameters (levels) after they change."""
        self._dyn_means = np.add.reduce(self.params[self._dyn_rows], axis=1) / self.n_components

    def _advance(self, p: float, t: float, pet: float) -> None:
        """One model step of HBV and the routing with the current parameters."""
        if self._step_numpy is not None:
            fl = self._step_numpy(self.states, p, t, pet, self.params, self._fluxes)
        else:
            fl = self._torch_step(p, t, pet)
        q = fl[:3]
        uh0, new = self._uh0, self.flow_new
        new[0], new[1], new[2] = uh0 * float(q[0]), uh0 * float(q[1]), uh0 * float(q[2])
        hist = self._qhist
        hist[:, 1:] = hist[:, :-1].copy()
        hist[:, 0] = q
        self.flow_carry = hist @ self._uh_tail
        self.values["et"][0], self.values["pet"][0] = fl[3], pet
        self._write_levels(dynamic=True)

    def run_steps(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Many days at once: the LSTM over the whole sequence in torch (continuing the
        stepper's state), HBV in one kernel call; ends in the state :meth:`step` in turn would
        reach (to rounding)."""
        n_hist = len(self._uh_tail)
        if self._step_numpy is None or len(forcings) <= n_hist:
            return super().run_steps(forcings, starts)
        p, t, pet = self._daily.days(forcings, starts)
        params = {name: torch.from_numpy(self._static[i][None].copy())
                  for i, name in enumerate(hbv.PARAMETER_NAMES)}
        if self._lstm is not None:
            xf = self._forcing_norm.transform(np.stack([p, t, pet], -1))
            raw = self._lstm.run(self._model.dynamic_net, xf)
            params.update(self._dynamic_series(raw))
            self._set_dynamic(raw[-1])
        f = lambda a: torch.from_numpy(a)[:, None]  # noqa: E731
        with torch.no_grad():
            res = kernel.run(f(p), f(t), f(pet), params, torch.from_numpy(self.states[:, None]),
                             keep_storages=False, backend="cpp")
        self.states[...] = res.final_states[:, 0].numpy()
        q = np.stack([res.fluxes[k][:, 0].numpy() for k in ("q0", "q1", "q2")])  # [3, n]
        self._qhist[...] = q[:, ::-1][:, :n_hist]
        self.flow_new[:] = self._uh0 * q[:, -1]
        self.flow_carry = self._qhist @ self._uh_tail
        self.values["et"][0], self.values["pet"][0] = float(res.fluxes["et"][-1, 0]), pet[-1]
        self._write_levels(dynamic=True)

    def get_state(self) -> dict[str, np.ndarray]:
        st = {"states": self.states, "params": self.params, "qhist": self._qhist,
              "flow_carry": self.flow_carry, "rate_values": self.rate_values,
              "level_values": self.level_values}
        if self._lstm is not None:
            st.update(h=self._lstm.h, c=self._lstm.c)
        return {k: np.array(v, copy=True) for k, v in st.items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self._set_hbv_state(state)
        if self._lstm is not None:
            self._lstm.h = state["h"].copy()
            self._lstm.c = state["c"].copy()

    def _set_hbv_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore the stores, parameters, routing history and last outputs of a state."""
        for key, arr in (("states", self.states), ("params", self.params),
                         ("qhist", self._qhist)):
            if key not in state or state[key].shape != arr.shape:
                raise ValueError(f"state lacks {key!r} of shape {arr.shape} (another model "
                                 f"configuration?)")
            arr[...] = state[key]
        self.flow_carry = state["flow_carry"].copy()
        self.set_values(state["rate_values"], state["level_values"])
        self._dynamic_changed()

    # -- helpers -----------------------------------------------------------------------------
    def _write_levels(self, dynamic: bool) -> None:
        # add.reduce / C is numpy's mean without its per-call overhead (same rounding)
        c = self.n_components
        s = np.add.reduce(self.states, axis=1) / c
        v = self.values
        v["swe"][0] = s[0] + s[1]
        v["soil_moisture"][0] = s[2]
        v["upper_zone"][0] = s[3]
        v["lower_zone"][0] = s[4]
        if dynamic:
            for name, x in zip(self.dynamic_names, self._dyn_means):
                v[name][0] = x

    def _torch_step(self, p: float, t: float, pet: float) -> np.ndarray:
        st = tuple(torch.from_numpy(self.states[i:i + 1]) for i in range(self.states.shape[0]))
        par = {n: torch.from_numpy(self.params[i:i + 1])
               for i, n in enumerate(hbv.PARAMETER_NAMES)}
        f = lambda x: torch.tensor([[x]], dtype=torch.float64)  # noqa: E731
        with torch.no_grad():
            new, fluxes = hbv.step(st, f(p), f(t), f(pet), par, self._model.recharge_net)
        for i, s in enumerate(new):
            self.states[i] = s[0].numpy()
        for i, x in enumerate(fluxes):
            self._fluxes[i] = float(x.mean())
        return self._fluxes
