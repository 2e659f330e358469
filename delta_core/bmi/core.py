"""The model side of a NextGen BMI component: a :class:`LumpedCore` steps one catchment in numpy
at the model's native time step and knows nothing of BMI, ngen, configuration files or units
conversion (the CSDMS bmi-example-python pattern). :class:`delta_core.bmi.adapter.NgenBmi` wraps
a core into a BMI component.

What a core declares, as data:

* ``fields``: the forcing fields :meth:`LumpedCore.step` receives, in order, each an amount per
  model step or a state of the atmosphere (e.g. ``prcp`` [mm per step], ``tmean`` [degC]);
  ``optional_fields`` may be None (the core derives them, e.g. PET from temperature);
* ``flows``: routed flows [mm per model step]. Each step's value splits into a *carry-over* part
  known before the step's forcing (``flow_carry``, e.g. the unit-hydrograph tail of earlier
  steps) and a *new* part (``flow_new``). The adapter uses the split to release flow within a
  model step when the host steps faster than the model, without creating or losing water;
* ``rates``: other per-step amounts [mm per model step] (e.g. ET), held until the next step;
* ``levels``: values at the end of the step (stores [mm], dynamic parameters [1]).
"""
from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod

import numpy as np


class LumpedCore(ABC):
    """One catchment of a δ model, stepped in numpy. See the module docstring.

    After :meth:`step`, ``flow_new`` [len(flows)] holds the new part of the step's routed flows,
    ``flow_carry`` the carry-over part of the *next* step, ``rate_values`` [len(rates)] and
    ``level_values`` [len(levels)] this step's values. All are float64 arrays the core may
    rebind (the adapter copies what it keeps).
    """

    #: Native time step [s].
    step_seconds: int = 86400
    #: Forcing fields of :meth:`step`, in order.
    fields: tuple[str, ...] = ()
    #: Fields that may be None.
    optional_fields: frozenset[str] = frozenset()
    #: Rows of a spin-up file, if they differ from the model step (e.g. an hourly core spun up
    #: from daily rows): their step [s], fields and optional fields; None: as above.
    spinup_step_seconds: int | None = None
    spinup_fields: tuple[str, ...] | None = None
    spinup_optional_fields: frozenset[str] | None = None
    #: Output names by kind.
    flows: tuple[str, ...] = ()
    rates: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    #: Levels that are water stores [mm]: a cycled spin-up runs until each changes by less than
    #: its tolerance per cycle (empty: every level).
    stores: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.flow_new = np.zeros(len(self.flows))
        self.flow_carry = np.zeros(len(self.flows))
        self.rate_values = np.zeros(len(self.rates))
        self.level_values = np.zeros(len(self.levels))

    @abstractmethod
    def reset(self) -> None:
        """Cold start: initial stores, empty routing buffer, zero recurrent state; sets
        ``flow_carry`` (zero) and ``level_values`` (the initial stores)."""

    @abstractmethod
    def step(self, forcing: list, start: dt.datetime) -> None:
        """Advance one model step from ``start`` with ``forcing`` (values of :attr:`fields`)."""

    def run_steps(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Run many consecutive model steps (values of :attr:`fields` starting at ``starts``).
        Default: :meth:`step` in turn; a core may override it with a batched run that ends in
        the same state (to rounding)."""
        for f, t in zip(forcings, starts):
            self.step(f, t)

    def spinup(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Run the rows of a spin-up file (:attr:`spinup_fields` every
        :attr:`spinup_step_seconds`). Default, rows at the model's step: :meth:`run_steps`."""
        self.run_steps(forcings, starts)

    def store_values(self) -> np.ndarray:
        """The :attr:`stores` (every level if none are named) [mm], a copy."""
        if not self.stores:
            return self.level_values.copy()
        return np.array([self.level_values[self.levels.index(s)] for s in self.stores])

    @abstractmethod
    def get_state(self) -> dict[str, np.ndarray]:
        """Everything needed to continue bit for bit (arrays; copied by the caller)."""

    @abstractmethod
    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned."""
