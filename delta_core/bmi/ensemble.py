"""An ensemble of one model's bundles in one BMI instance (``bundle: [a.pt, b.pt, ...]``).

:class:`EnsembleCore` steps one core per member (each with its own state; the networks' weights
are shared between instances as for single bundles) and presents their mean as one core: the
routed flows, the rates and the levels are the members' means, so the BMI's runoff is the mean
of the members' runoff. One more output, :data:`RUNOFF_SPREAD`, is the members' standard
deviation of the runoff over each model step: the band to plot around the mean.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np

from delta_core.bmi.core import LumpedCore
from delta_core.spec import Variable

#: The ensemble's spread output: the standard deviation of the members' runoff over a model step
#: [mm per step], exchanged per host step like the other amounts per step (0 before the first
#: step and after a spin-up).
RUNOFF_SPREAD = Variable(
    "runoff_spread", "mm d-1", "standard deviation of the ensemble members' runoff over the step",
    "land_surface_water__runoff_depth_ensemble_standard_deviation", "rate",
    csv_header="runoff_sd")

#: Attributes an ensemble takes from its first member (all members are cores of one class).
SHARED = ("step_seconds", "fields", "optional_fields", "spinup_step_seconds", "spinup_fields",
          "spinup_optional_fields", "flows", "stores")


class EnsembleCore(LumpedCore):
    """The mean of several cores of one model (module docstring).

    Parameters
    ----------
    members : list of LumpedCore
        At least two cores of the same class (one per bundle), each for the same catchment.
    """

    def __init__(self, members: list[LumpedCore]):
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        kinds = {type(m).__name__ for m in members}
        if len(kinds) > 1:
            raise ValueError(f"ensemble members must be cores of one model, got {sorted(kinds)}")
        first = members[0]
        for name in SHARED:
            setattr(self, name, getattr(first, name))
        self.rates = (*first.rates, RUNOFF_SPREAD.name)
        self.dynamic_names = tuple(n for n in first.dynamic_names
                                   if all(n in m.dynamic_names for m in members))
        fixed = [n for n in first.levels if n not in first.dynamic_names]
        self.levels = (*fixed, *self.dynamic_names)
        self.members = list(members)
        super().__init__()
        self._member_carry = [0.0] * len(members)
        self._aggregate(spread=None)

    # -- LumpedCore --------------------------------------------------------------------------
    def reset(self) -> None:
        for m in self.members:
            m.reset()
        self._aggregate(spread=None)

    def step(self, forcing: list, start: dt.datetime) -> None:
        for m in self.members:
            m.step(forcing, start)
        totals = [c + sum(m.flow_new.tolist()) for c, m in zip(self._member_carry, self.members)]
        mean = sum(totals) / len(totals)
        self._aggregate(spread=math.sqrt(sum((x - mean) ** 2 for x in totals) / len(totals)))

    def run_steps(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        for m in self.members:
            m.run_steps(forcings, starts)
        self._aggregate(spread=None)

    def spinup(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        for m in self.members:
            m.spinup(forcings, starts)
        self._aggregate(spread=None)

    def set_flat_policy(self, policy) -> None:
        for m in self.members:
            m.set_flat_policy(policy)

    def store_values(self) -> np.ndarray:
        """Every member's stores (a cycled spin-up settles when all of them have)."""
        return np.concatenate([m.store_values() for m in self.members])

    def get_state(self) -> dict[str, np.ndarray]:
        state = {f"member{i}/{k}": v for i, m in enumerate(self.members)
                 for k, v in m.get_state().items()}
        state.update(member_carry=self._member_carry, flow_new=self.flow_new,
                     flow_carry=self.flow_carry, rate_values=self.rate_values,
                     level_values=self.level_values)
        return {k: np.array(v, copy=True) for k, v in state.items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for i, m in enumerate(self.members):
            prefix = f"member{i}/"
            own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if not own:
                raise ValueError(f"state lacks ensemble member {i} (saved with fewer bundles?)")
            m.set_state(own)
        self._member_carry = [float(x) for x in state["member_carry"]]
        self.flow_new = np.array(state["flow_new"], dtype=float)
        self.flow_carry = np.array(state["flow_carry"], dtype=float)
        self.set_values(state["rate_values"], state["level_values"])

    def __getattr__(self, name: str):
        """Other attributes of a core (``backend``, ``n_components`` ...): the first member's."""
        if name == "members":  # not set yet: no delegation during construction
            raise AttributeError(name)
        return getattr(self.members[0], name)

    # -- helpers -----------------------------------------------------------------------------
    def _aggregate(self, spread: float | None) -> None:
        """The members' means into this core's flows, rates and levels; ``spread`` the
        members' runoff standard deviation of the step (None: 0, no step to measure). Python
        floats: a BMI step's few values cost less so than numpy calls."""
        members, n = self.members, len(self.members)
        new = [m.flow_new.tolist() for m in members]
        carry = [m.flow_carry.tolist() for m in members]
        self.flow_new = np.array([sum(col) / n for col in zip(*new)])
        self.flow_carry = np.array([sum(col) / n for col in zip(*carry)])
        rates = [sum(col) / n for col in zip(*(m.rate_values.tolist() for m in members))]
        self.rate_values[:-1] = rates
        self.rate_values[-1] = 0.0 if spread is None else spread
        self.level_values[:] = [sum(m.values[name][0] for m in members) / n
                                for name in self.levels]
        self._member_carry = [sum(c) for c in carry]
