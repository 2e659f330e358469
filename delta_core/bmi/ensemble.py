"""An ensemble of bundles in one BMI instance (``bundle: [a.pt, b.pt, ...]``).

:class:`EnsembleCore` steps one core per member (each with its own state; the networks' weights
are shared between instances as for single bundles) and presents their mean as one core: the
routed flows, the rates and the levels are the members' means, so the BMI's runoff is the mean
of the members' runoff. One more output, :data:`RUNOFF_SPREAD`, is the members' standard
deviation of the runoff over each model step: the band to plot around the mean.

Members may be cores of different models (dHBV and dCFE, hourly) when they step alike: the same
model step and forcing fields (and spin-up rows). Their flows are not the same components, so
such an ensemble has one flow, the members' mean total runoff, and the rates and levels that
every member has with one meaning (the names the caller passes as ``shared``).
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

#: How every member must step: model step, forcing fields and spin-up rows.
STEPPING = ("step_seconds", "fields", "optional_fields", "spinup_step_seconds", "spinup_fields",
            "spinup_optional_fields")
#: The one flow of an ensemble of different models: the members' mean total runoff.
TOTAL_FLOW = "total_runoff"


class EnsembleCore(LumpedCore):
    """The mean of several cores (module docstring).

    Parameters
    ----------
    members : list of LumpedCore
        At least two cores (one per bundle), each for the same catchment, stepping alike
        (:data:`STEPPING`).
    shared : set of str, optional
        Names of rates and levels that mean the same in every member (the same declared units);
        None: every name the members have in common (cores of one model).
    """

    def __init__(self, members: list[LumpedCore], shared: set[str] | None = None):
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        first = members[0]
        for name in STEPPING:
            values = {repr(getattr(m, name)) for m in members}
            if len(values) > 1:
                raise ValueError(f"ensemble members must step alike: their {name} differ "
                                 f"({', '.join(sorted(values))})")
            setattr(self, name, getattr(first, name))
        self.mixed = len({type(m) for m in members}) > 1
        #: The names the caller passed as ``shared`` (None: cores of one model).
        self.shared = shared
        self.flows = (TOTAL_FLOW,) if self.mixed else first.flows
        common = lambda names: tuple(n for n in names if all(  # noqa: E731
            n in m.values for m in members) and (shared is None or n in shared))
        self.rates = (*common(first.rates), RUNOFF_SPREAD.name)
        self.dynamic_names = common(first.dynamic_names)
        self.levels = (*common(n for n in first.levels if n not in first.dynamic_names),
                       *self.dynamic_names)
        #: Names of :meth:`store_values` (every member's stores, in turn).
        self.stores = tuple(f"{n} (member {i + 1})" for i, m in enumerate(members)
                            for n in (m.stores or m.levels))
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
        if self.mixed:  # one flow: the total
            new, carry = [[sum(x)] for x in new], [[sum(x)] for x in carry]
        self.flow_new = np.array([sum(col) / n for col in zip(*new)])
        self.flow_carry = np.array([sum(col) / n for col in zip(*carry)])
        self.rate_values[:-1] = [sum(m.values[name][0] for m in members) / n
                                 for name in self.rates[:-1]]
        self.rate_values[-1] = 0.0 if spread is None else spread
        self.level_values[:] = [sum(m.values[name][0] for m in members) / n
                                for name in self.levels]
        self._member_carry = [sum(c) for c in carry]


def shared_names(models: list[str]) -> set[str]:
    """Names of the variables that every model in ``models`` declares with the same units and
    standard name (what an ensemble of different models may average)."""
    from delta_core.registry import model_spec

    meaning = [{v.name: (v.units, v.standard_name) for v in model_spec(m).variables}
               for m in models]
    return {n for n, x in meaning[0].items() if all(d.get(n) == x for d in meaning[1:])}


def ensemble_outputs(variables: list[Variable], shared: set[str] | None) -> list[Variable]:
    """Of a configuration's BMI variables, those an ensemble has, then :data:`RUNOFF_SPREAD`:
    all of them for one model's bundles (``shared`` None); for members of different models the
    inputs, the runoff and the non-flow variables named in ``shared`` (:func:`shared_names`)."""
    if shared is not None:
        variables = [v for v in variables if v.kind in ("input", "runoff_depth", "runoff_flux")
                     or v.kind != "flow" and v.name in shared]
    return [*variables, RUNOFF_SPREAD]
