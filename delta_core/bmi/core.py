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

The names are those of the model's declared variables (:attr:`delta_core.spec.ModelSpec.variables`,
:func:`delta_core.spec.core_names`). A core writes each rate and level by name into
:attr:`LumpedCore.values` (``self.values["et"][0] = x``): live one-element views of
``rate_values`` and ``level_values``, which the adapter reads by name too.
"""
from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod

import numpy as np


class LumpedCore(ABC):
    """One catchment of a δ model, stepped in numpy. See the module docstring.

    After :meth:`step`, ``flow_new`` [len(flows)] holds the new part of the step's routed flows,
    ``flow_carry`` the carry-over part of the *next* step (float64 arrays the core may rebind;
    the adapter copies what it keeps), and :attr:`values` this step's rates and levels by name:
    one-element views of ``rate_values`` [len(rates)] and ``level_values`` [len(levels)], which
    the core writes in place and never rebinds.
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
    #: The bundle's dynamic parameters among the levels (their declared variables are
    #: ``when="dynamic"``).
    dynamic_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.flow_new = np.zeros(len(self.flows))
        self.flow_carry = np.zeros(len(self.flows))
        self.rate_values = np.zeros(len(self.rates))
        self.level_values = np.zeros(len(self.levels))
        #: Rates and levels by name: live one-element views of ``rate_values``/``level_values``.
        self.values: dict[str, np.ndarray] = {
            **{n: self.rate_values[i:i + 1] for i, n in enumerate(self.rates)},
            **{n: self.level_values[i:i + 1] for i, n in enumerate(self.levels)}}
        if len(self.values) != len(self.rates) + len(self.levels):
            raise ValueError(f"{type(self).__name__}: rate and level names must be distinct")

    def set_values(self, rate_values: np.ndarray, level_values: np.ndarray) -> None:
        """Restore the rates and levels of a saved state in place (the views stay live)."""
        if rate_values.shape != self.rate_values.shape or \
                level_values.shape != self.level_values.shape:
            raise ValueError(f"state holds {rate_values.shape} rates and {level_values.shape} "
                             f"levels; this core has {self.rate_values.shape} and "
                             f"{self.level_values.shape}")
        self.rate_values[...] = rate_values
        self.level_values[...] = level_values

    @abstractmethod
    def reset(self) -> None:
        """Cold start: initial stores, empty routing buffer, zero recurrent state; sets
        ``flow_carry`` (zero), the rates (zero) and the levels (the initial stores)."""

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
