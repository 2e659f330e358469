"""Model-agnostic BMI scaffolding for lumped (one node per catchment) δ models.

A model declares its variables as a table of :class:`VarSpec` rows and subclasses
:class:`LumpedBmi`, which implements the generic parts of :class:`bmipy.Bmi`:

* names, counts (``get_*_item_count`` always equals the number of names), units, types,
  ``itemsize``/``nbytes`` (type and itemsize always agree: ``"float64"`` with 8);
* one grid (id 0) of type ``"scalar"``, rank 0, size 1: every value is a 1-D float64 ndarray of
  size 1, which is what the NextGen engine (ngen) exchanges with a catchment formulation;
* ``get_value``/``get_value_ptr``/``get_value_at_indices``/``set_value``/
  ``set_value_at_indices`` over *live* numpy arrays (``get_value_ptr`` returns the array the model
  itself reads and writes; ``set_value`` copies into it and never replaces it);
* time (units ``"s"``, start 0, ``update_until`` in whole steps, end-time guard).

The subclass provides ``initialize`` and ``_advance`` (one time step); ``finalize`` releases the
model (subclass hook ``_release``). Unknown variable names, setting an output, wrongly sized
arrays and calls out of order (before ``initialize``, after ``finalize``) raise :class:`BmiError`
naming the problem; input values are checked against their spec (finite, lower bound, plausible
range) on ``set_value`` by :func:`value_problem`, the one check every input path shares.

Everything on the per-step path is a dict lookup plus a small numpy copy: ngen makes about 50 of
these calls per step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from bmipy import Bmi

#: Model-time units of every component built on this base.
TIME_UNITS = "s"

#: Grid id of the single lumped grid.
GRID_ID = 0

#: ``get_var_type`` strings and their item sizes (bytes).
ITEMSIZES = {"float64": 8, "float32": 4, "int": 8, "int64": 8, "int32": 4}


class BmiError(ValueError):
    """Raised for a misuse of the BMI: unknown variable, wrong size, bad value, bad time."""


@dataclass(frozen=True)
class VarSpec:
    """One row of a variable-metadata table.

    Attributes
    ----------
    name : str
        CSDMS standard name.
    units : str
        udunits string (what ``get_var_units`` returns and what ngen converts into).
    role : {"input", "output"}
    description : str
        Long name, for documentation and error messages.
    type : str
        ``get_var_type`` string (``"float64"``, ``"int"``...).
    grid : int
        Grid id.
    location : str
        ``"node"`` (``"none"`` for variables not on a grid).
    size : int
        Number of items.
    finite : bool
        Inputs only: reject NaN/inf on ``set_value``.
    min_value : float or None
        Inputs only: reject values below this on ``set_value``.
    plausible : (low, high) or None
        Inputs only: reject values outside this range on ``set_value`` (e.g. a temperature in K
        given as degC).
    """

    name: str
    units: str
    role: str
    description: str = ""
    type: str = "float64"
    grid: int = GRID_ID
    location: str = "node"
    size: int = 1
    finite: bool = True
    min_value: float | None = None
    plausible: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.role not in ("input", "output"):
            raise ValueError(f"variable {self.name}: role must be 'input' or 'output', "
                             f"got {self.role!r}")
        if self.type not in ITEMSIZES:
            raise ValueError(f"variable {self.name}: type must be one of {list(ITEMSIZES)}, "
                             f"got {self.type!r}")

    @property
    def itemsize(self) -> int:
        return ITEMSIZES[self.type]

    @property
    def nbytes(self) -> int:
        return self.itemsize * self.size

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int64 if self.type == "int" else self.type)


def value_problem(spec: VarSpec, x: float) -> str | None:
    """Why ``x`` is not a valid value of input ``spec``, or None if it is.

    The one check of input values: ``set_value``, ``set_value_at_indices``, ``update`` (values
    written through ``get_value_ptr``) and spin-up files all apply it.

    Parameters
    ----------
    spec : VarSpec
        The input's spec.
    x : float
        The value.

    Returns
    -------
    str or None
        ``"must be ..."`` (with the fix where one is known), or None.
    """
    if spec.finite and not math.isfinite(x):
        return "must be finite"
    if spec.min_value is not None and x < spec.min_value:
        return f"must be >= {spec.min_value:g}"
    if spec.plausible is not None and not spec.plausible[0] <= x <= spec.plausible[1]:
        lo, hi = spec.plausible
        fix = (" (a temperature in K? give degC: K - 273.15)"
               if spec.units == "degC" and 150.0 <= x <= 350.0 else " (check its units)")
        return f"must be in the plausible range {lo:g}..{hi:g} {spec.units}{fix}"
    return None


def bad_value(spec: VarSpec, x: float, where: str = "") -> BmiError:
    """The :class:`BmiError` for value ``x`` of ``spec`` refused by :func:`value_problem`
    (``where``: e.g. ``" at model time 3600 s"``)."""
    return BmiError(f"{spec.name} = {x} {spec.units}{where}: {value_problem(spec, x)} "
                    f"({spec.description or 'input'})")


class LumpedBmi(Bmi):
    """Generic BMI over a table of lumped variables; see the module docstring.

    Subclasses call :meth:`_declare_variables` in ``initialize`` (units may depend on the
    configuration, e.g. ``mm h-1`` vs ``mm d-1``), set ``_time_step``/``_end_time``, and
    implement :meth:`_advance`, which advances the model by exactly one time step.
    """

    _component_name = "lumped BMI model"

    def __init__(self) -> None:
        self._specs: dict[str, VarSpec] = {}
        self._meta: dict[str, dict] = {k: {} for k in ("type", "units", "itemsize", "nbytes")}
        self._values: dict[str, np.ndarray] = {}
        self._input_names: tuple[str, ...] = ()
        self._output_names: tuple[str, ...] = ()
        self._time = 0.0
        self._time_step = 1.0
        self._end_time = math.inf
        self._allow_exceed_end_time = False
        self._initialized = False
        self._finalized = False

    # -- variable table ----------------------------------------------------------------------
    def _declare_variables(self, specs: list[VarSpec]) -> None:
        """Install the variable table and allocate one live array per variable (zeros)."""
        names = [s.name for s in specs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"variables declared twice: {dup}")
        self._specs = {s.name: s for s in specs}
        # the answers of the per-step metadata calls (ngen makes ~50 a step), looked up directly
        self._meta = {k: {s.name: getattr(s, k) for s in specs}
                      for k in ("type", "units", "itemsize", "nbytes")}
        self._values = {s.name: np.zeros(s.size, dtype=s.dtype) for s in specs}
        self._input_names = tuple(s.name for s in specs if s.role == "input")
        self._output_names = tuple(s.name for s in specs if s.role == "output")

    def _spec(self, name: str) -> VarSpec:
        try:
            return self._specs[name]
        except KeyError:
            if not self._specs:
                raise BmiError(f"unknown variable {name!r}: the model is not initialized "
                               f"(call initialize first)") from None
            raise BmiError(f"unknown variable {name!r}; inputs: {list(self._input_names)}; "
                           f"outputs: {list(self._output_names)}") from None

    def _array(self, name: str) -> np.ndarray:
        if self._finalized:
            raise BmiError(f"value of {name!r} requested after finalize: the model is released "
                           f"(read values before finalize)")
        try:
            return self._values[name]
        except KeyError:
            self._spec(name)  # raises with the list of valid names
            raise

    def _check_input_values(self, spec: VarSpec, values: np.ndarray) -> None:
        for x in values.tolist():
            if value_problem(spec, x):
                raise bad_value(spec, x)

    # -- model information -------------------------------------------------------------------
    def get_component_name(self) -> str:
        return self._component_name

    def get_input_item_count(self) -> int:
        return len(self._input_names)

    def get_output_item_count(self) -> int:
        return len(self._output_names)

    def get_input_var_names(self) -> tuple[str, ...]:
        return self._input_names

    def get_output_var_names(self) -> tuple[str, ...]:
        return self._output_names

    # -- variable information ----------------------------------------------------------------
    def get_var_grid(self, name: str) -> int:
        return self._spec(name).grid

    def _meta_of(self, key: str, name: str):
        try:
            return self._meta[key][name]
        except KeyError:
            return getattr(self._spec(name), key)  # raises, naming the valid variables

    def get_var_type(self, name: str) -> str:
        try:
            return self._meta["type"][name]
        except KeyError:
            return self._meta_of("type", name)

    def get_var_units(self, name: str) -> str:
        try:
            return self._meta["units"][name]
        except KeyError:
            return self._meta_of("units", name)

    def get_var_itemsize(self, name: str) -> int:
        try:
            return self._meta["itemsize"][name]
        except KeyError:
            return self._meta_of("itemsize", name)

    def get_var_nbytes(self, name: str) -> int:
        try:
            return self._meta["nbytes"][name]
        except KeyError:
            return self._meta_of("nbytes", name)

    def get_var_location(self, name: str) -> str:
        return self._spec(name).location

    # -- time --------------------------------------------------------------------------------
    def get_current_time(self) -> float:
        return float(self._time)

    def get_start_time(self) -> float:
        return 0.0

    def get_end_time(self) -> float:
        return float(self._end_time)

    def get_time_units(self) -> str:
        return TIME_UNITS

    def get_time_step(self) -> float:
        return float(self._time_step)

    # -- control -----------------------------------------------------------------------------
    def _advance(self) -> None:  # pragma: no cover - abstract
        """Advance the model by one time step (subclass)."""
        raise NotImplementedError

    def _require_running(self, what: str) -> None:
        if not self._initialized:
            raise BmiError(f"{what} called after finalize" if self._finalized
                           else f"{what} called before initialize")

    def _release(self) -> None:
        """Free the model's resources (subclass hook of :meth:`finalize`)."""

    def finalize(self) -> None:
        """End the run; later updates are errors."""
        self._release()
        self._initialized = False
        self._finalized = True

    def update(self) -> None:
        """Advance one time step; error past the end time unless exceeding it is allowed."""
        self._require_running("update")
        new_time = self._time + self._time_step
        if new_time > self._end_time * (1 + 1e-12) and not self._allow_exceed_end_time:
            raise BmiError(f"cannot update to time {new_time} s: past the end time "
                           f"{self._end_time} s (set end_time/n_steps later, or "
                           f"allow_exceed_end_time: true)")
        self._advance()
        self._time = new_time

    def update_until(self, time: float) -> None:
        """Advance to model time ``time`` [s], a whole number of steps ahead of now."""
        self._require_running("update_until")
        time = float(time)
        if not math.isfinite(time):
            raise BmiError(f"update_until: time must be finite, got {time}")
        if time < self._time - 1e-9 * max(1.0, abs(self._time)):
            raise BmiError(f"update_until: time {time} s is in the past (current time "
                           f"{self._time} s)")
        n = (time - self._time) / self._time_step
        n_int = round(n)
        if abs(n - n_int) > 1e-9 * max(1.0, abs(n)):
            raise BmiError(f"update_until: time {time} s is not a whole number of time steps "
                           f"({self._time_step} s) after the current time {self._time} s")
        for _ in range(n_int):
            self.update()

    # -- getters and setters -----------------------------------------------------------------
    def get_value_ptr(self, name: str) -> np.ndarray:
        """The live 1-D array of ``name`` (the model reads inputs from / writes outputs into it)."""
        return self._array(name)

    def get_value(self, name: str, dest: np.ndarray) -> np.ndarray:
        src = self._array(name)
        if dest.size != src.size:
            raise BmiError(f"get_value({name!r}): destination has {dest.size} item(s), the "
                           f"variable has {src.size}")
        dest[:] = src
        return dest

    def get_value_at_indices(self, name: str, dest: np.ndarray, inds: np.ndarray) -> np.ndarray:
        src = self._values.get(name) if not self._finalized else None
        if src is None:
            src = self._array(name)  # raises, naming the problem
        if src.size == 1 and len(inds) == 1 and dest.size == 1 and inds[0] == 0:  # ngen's call
            dest[0] = src[0]
            return dest
        inds = np.asarray(inds, dtype=np.intp).reshape(-1)
        if inds.size and (inds.min() < 0 or inds.max() >= src.size):
            raise BmiError(f"get_value_at_indices({name!r}): indices {inds.tolist()} outside "
                           f"0..{src.size - 1}")
        if dest.size != inds.size:
            raise BmiError(f"get_value_at_indices({name!r}): destination has {dest.size} "
                           f"item(s) for {inds.size} index(es)")
        dest[:] = src[inds]
        return dest

    def _settable(self, name: str) -> VarSpec:
        if self._finalized:
            raise BmiError(f"set_value({name!r}) called after finalize")
        spec = self._specs.get(name) or self._spec(name)
        if spec.role != "input":
            raise BmiError(f"{name} is an output variable and cannot be set; inputs: "
                           f"{list(self._input_names)}")
        return spec

    def set_value(self, name: str, src: np.ndarray) -> None:
        spec = self._settable(name)
        arr = self._values[name]
        if arr.size == 1 and isinstance(src, np.ndarray) and src.size == 1:  # fast path (ngen)
            x = float(src.item())
            if value_problem(spec, x):
                raise bad_value(spec, x)
            arr[0] = x
            return
        values = np.asarray(src, dtype=arr.dtype).reshape(-1)
        if values.size != arr.size:
            raise BmiError(f"set_value({name!r}): got {values.size} item(s), the variable has "
                           f"{arr.size} (one per catchment)")
        self._check_input_values(spec, values)
        arr[:] = values

    def set_value_at_indices(self, name: str, inds: np.ndarray, src: np.ndarray) -> None:
        spec = self._settable(name)
        arr = self._values[name]
        inds = np.asarray(inds, dtype=np.intp).reshape(-1)
        values = np.asarray(src, dtype=arr.dtype).reshape(-1)
        if values.size != inds.size:
            raise BmiError(f"set_value_at_indices({name!r}): {values.size} value(s) for "
                           f"{inds.size} index(es)")
        if inds.size and (inds.min() < 0 or inds.max() >= arr.size):
            raise BmiError(f"set_value_at_indices({name!r}): indices {inds.tolist()} outside "
                           f"0..{arr.size - 1}")
        self._check_input_values(spec, values)
        arr[inds] = values

    # -- grid (one lumped node) --------------------------------------------------------------
    def _check_grid(self, grid: int) -> None:
        if grid != GRID_ID:
            raise BmiError(f"unknown grid {grid}; this model has only grid {GRID_ID} "
                           f"(a scalar: one value per catchment)")

    def get_grid_rank(self, grid: int) -> int:
        self._check_grid(grid)
        return 0

    def get_grid_size(self, grid: int) -> int:
        self._check_grid(grid)
        return 1

    def get_grid_type(self, grid: int) -> str:
        self._check_grid(grid)
        return "scalar"

    def get_grid_shape(self, grid: int, shape: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return shape  # rank 0: nothing to fill

    def get_grid_spacing(self, grid: int, spacing: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return spacing

    def get_grid_origin(self, grid: int, origin: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return origin

    def get_grid_x(self, grid: int, x: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return x

    def get_grid_y(self, grid: int, y: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return y

    def get_grid_z(self, grid: int, z: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return z

    def get_grid_node_count(self, grid: int) -> int:
        self._check_grid(grid)
        return 1

    def get_grid_edge_count(self, grid: int) -> int:
        self._check_grid(grid)
        return 0

    def get_grid_face_count(self, grid: int) -> int:
        self._check_grid(grid)
        return 0

    def get_grid_edge_nodes(self, grid: int, edge_nodes: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return edge_nodes

    def get_grid_face_edges(self, grid: int, face_edges: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return face_edges

    def get_grid_face_nodes(self, grid: int, face_nodes: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return face_nodes

    def get_grid_nodes_per_face(self, grid: int, nodes_per_face: np.ndarray) -> np.ndarray:
        self._check_grid(grid)
        return nodes_per_face

    # -- documentation helper ----------------------------------------------------------------
    def variable_table(self) -> list[dict]:
        """The variable table as dicts (name, role, units, type, itemsize, description)."""
        return [{"name": s.name, "role": s.role, "units": s.units, "type": s.type,
                 "itemsize": s.itemsize, "description": s.description}
                for s in self._specs.values()]
