"""A generic NextGen BMI component over a :class:`~delta_core.bmi.core.LumpedCore`.

:class:`NgenBmi` does everything ngen-facing that does not depend on the model: the per-catchment
YAML configuration (common keys, unknown keys rejected), model time, the catchment (latitude,
area), the weight bundle and the catchment attributes it needs, the BMI variable table, input
checks, aggregation between the host's step and the model's step, the derived runoff outputs,
state files and spin-up. A model binds it in a short subclass that names its registry entry,
builds its core (:meth:`NgenBmi._make_core`) and names the conditions of its configuration
(:meth:`NgenBmi._conditions`); the variables are the model's declarations
(:attr:`delta_core.spec.ModelSpec.variables`) that hold under them, wired to the core's arrays
by name. The common keys ``backend`` and ``pet_source`` are read here too.

**Host step vs model step.** With ``time_step_seconds`` = the core's step, one ``update`` is one
model step. With a shorter host step (``n`` = model step / host step host steps per model step,
e.g. hourly ngen forcing for a daily model), inputs are accumulated over the model step (each
input field by its rule: sum, mean, max or min) and the core steps at the ``n``-th host step;
routed flows release the carry-over part known at the start of the model step evenly (``1/n`` per
host step) and the new part at the ``n``-th, so the ``n`` host values of a model step sum exactly
to the model's value; rates are held at ``1/n`` of the last completed step's value and levels at
that step's value. With a longer host step (``k`` model steps per host step), the core steps
``k`` times with the host step's forcing (amounts split evenly, other fields held); flows and
rates are summed, levels are the last.

Units: inputs and rate outputs are per host step (``mm h-1`` for hourly, ``mm d-1`` for daily);
the main output ``land_surface_water__runoff_depth`` is the depth [m] over the host step (what
ngen turns into nexus flow), ``land_surface_water__runoff_volume_flux`` the same as m3 s-1.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import datetime as dt
import importlib
import json
import math
import os
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import yaml

from delta_core.bmi.base import BmiError, LumpedBmi, VarSpec, bad_value, value_problem
from delta_core.bmi.ensemble import EnsembleCore, ensemble_outputs, shared_names
from delta_core.bmi.core import LumpedCore
from delta_core.bmi.hourly import FlatTemperature
from delta_core.bmi.variables import bmi_units, bmi_variables
from delta_core.spec import Variable

#: Aggregation rules of input fields over a model step.
AGGREGATIONS = ("sum", "mean", "max", "min")
_RULE_CODES = {"sum": 0, "mean": 0, "max": 1, "min": 2}

#: Configuration keys every model has: name -> description (with ``backend``, and ``pet_source``
#: where the model derives PET: :meth:`NgenBmi.config_keys`).
COMMON_KEYS: dict[str, str] = {
    "bundle": "weight bundle path, or the file name of a shipped bundle, or a list of them (an "
              "ensemble: one instance steps every member; outputs are their means, plus "
              "land_surface_water__runoff_depth_ensemble_standard_deviation; members after the "
              "first may be of another model that steps alike, e.g. dcfe_hourly.pt beside "
              "dhbv_hourly.pt, and the outputs are then those they share) (default: the model's "
              "shipped default bundle)",
    "attributes": "mapping of every catchment attribute the bundle needs to its value",
    "latitude": "catchment latitude [degrees north]",
    "area_km2": "catchment area [km2] (runoff volume flux)",
    "time_step_seconds": "host time step [s] (see the model's valid values)",
    "start_time": "ISO datetime of model time 0 (model steps start at this time of day)",
    "end_time": "ISO datetime of the end time (optional; default: no end)",
    "n_steps": "number of time steps to the end time (optional; alternative to end_time)",
    "allow_exceed_end_time": "true: updating past the end time is allowed (default false)",
    "threads": "torch and kernel threads of this process (default 1: ngen runs many catchments "
               "per process, and extra BLAS/OpenMP threads per process cost system time)",
    "initial_state": "cold (default) or the path of a state file written by save_state",
    "spinup_forcing": "optional CSV of forcing run before start_time (its rows end by then) "
                      "to warm the states: rows at the model's step, or daily rows (their "
                      "columns say which) where the model takes them (BMI.md)",
    "spinup": "optional mapping: cycle the leading years of an hourly CsvPerFeature forcing "
              "file before start_time until every store settles: forcing (path, relative to "
              "this config's folder; the writers give the catchment's own run forcing), years "
              "(default 1), max_cycles (default 10), tolerance (relative change of each store "
              "per cycle, default 0.001)",
}
#: Defaults of the ``spinup`` mapping.
SPINUP_DEFAULTS = {"years": 1, "max_cycles": 10, "tolerance": 0.001}
#: A store changing by less than this [mm] per cycle counts as settled whatever its size.
SETTLED_FLOOR_MM = 1e-6
REQUIRED_KEYS = ("attributes", "latitude", "area_km2", "start_time")
#: Values of the ``pet_source`` key: PET derived from air temperature, or an input variable.
PET_SOURCES = ("hargreaves", "input")

STATE_VERSION = 2


class NgenBmi(LumpedBmi):
    """Generic BMI for a lumped δ model under ngen; see the module docstring.

    Subclasses set :attr:`MODEL` (registry name), :attr:`HOST_STEPS`, :attr:`EXTRA_KEYS`,
    :attr:`SPINUP_COLUMNS`, :attr:`KERNEL` and, with a ``pet_source`` key,
    :attr:`HARGREAVES_FROM`; they implement :meth:`_make_core` and may add conditions
    (:meth:`_conditions`). A model whose parameters do not come from a weight bundle also
    overrides :meth:`_load_model` (and may change :attr:`REQUIRED`, :attr:`BACKENDS`,
    :meth:`_set_threads`).
    """

    #: Registry name of the model.
    MODEL: str = ""
    #: Valid ``time_step_seconds`` (the first is the default).
    HOST_STEPS: tuple[int, ...] = (3600, 86400)
    #: Model-specific configuration keys: name -> description.
    EXTRA_KEYS: dict[str, str] = {}
    #: Configuration keys that must be given (not None).
    REQUIRED: tuple[str, ...] = REQUIRED_KEYS
    #: Valid values of the ``backend`` key: the compiled kernel first, then the fallback.
    BACKENDS: tuple[str, ...] = ("cpp", "torch")
    #: Module of the model's compiled kernel, with ``cpp_available() -> bool`` (None: no
    #: kernel; :meth:`_choose_backend` is then not used).
    KERNEL: str | None = None
    #: What ``pet_source: hargreaves`` derives PET from (None: the model has no ``pet_source``
    #: key).
    HARGREAVES_FROM: str | None = None
    #: The ``pet_source`` used without the key (as its description says).
    PET_SOURCE_DEFAULT: str = "hargreaves"
    #: The model's own :meth:`_conditions`: name -> the configuration it stands for (``BMI.md``).
    CONDITIONS: dict[str, str] = {}
    #: Spin-up CSV columns -> core fields (a ``date`` or ``time`` column is required too);
    #: columns of optional fields may be absent or empty.
    SPINUP_COLUMNS: dict[str, str] = {}
    #: Columns of daily spin-up rows that an hourly core also takes
    #: (:attr:`~delta_core.bmi.core.LumpedCore.spinup_fields`), beside rows at its step
    #: (:attr:`SPINUP_COLUMNS`): a file with a column of these that is not one of those (e.g.
    #: ``prcp_mm_day``) is daily. Empty: only rows at the step.
    DAILY_SPINUP_COLUMNS: dict[str, str] = {}

    def __init__(self) -> None:
        super().__init__()
        self._config: dict = {}
        self._config_dir = Path(".")
        self._core: LumpedCore | None = None

    # ==========================================================================================
    # subclass hooks
    # ==========================================================================================
    def _make_core(self, model, norm, x_attr: np.ndarray, cfg: dict) -> LumpedCore:
        """Build the core for this catchment (``x_attr``: encoded attributes [A])."""
        raise NotImplementedError

    def _conditions(self) -> set[str]:
        """The :attr:`~delta_core.spec.Variable.when` conditions that hold for this
        configuration (``self._time_step`` and the core are set): by default ``pet_input`` or
        ``pet_derived`` for a model with a ``pet_source`` key; a subclass adds its own."""
        if self.HARGREAVES_FROM is None:
            return set()
        return {"pet_input" if self._pet_input else "pet_derived"}

    @classmethod
    def condition_texts(cls) -> dict[str, str]:
        """Every condition a variable of this BMI may need -> the configuration it stands for:
        ``dynamic``, the ``pet_source`` ones (a model with the key) and :attr:`CONDITIONS`."""
        pet = {} if cls.HARGREAVES_FROM is None else {"pet_input": "`pet_source: input`",
                                                       "pet_derived": "`pet_source: hargreaves`"}
        return {"dynamic": "bundles with this dynamic parameter", **pet, **cls.CONDITIONS}

    def _cpp_unsupported(self, model) -> str | None:
        """Why the compiled kernel cannot run ``model`` (a bundle option it lacks), or None."""
        return None

    def _state_signature(self) -> dict:
        """Configuration a state file must match besides bundle, step and start (a subclass
        adds its own): ``pet_input`` for a model with a ``pet_source`` key."""
        return {} if self.HARGREAVES_FROM is None else {"pet_input": self._pet_input}

    # ==========================================================================================
    # initialize
    # ==========================================================================================
    @classmethod
    def config_keys(cls) -> dict[str, str]:
        """All valid configuration keys with descriptions."""
        keys = {**COMMON_KEYS, "backend": f"physics engine: cpp (compiled kernel, default) or "
                                          f"{cls.BACKENDS[-1]}"}
        if cls.HARGREAVES_FROM is not None:
            keys["pet_source"] = (f"hargreaves (PET from {cls.HARGREAVES_FROM}) or input (PET is "
                                  f"an input variable that must be set every step); default: "
                                  f"{cls.PET_SOURCE_DEFAULT}")
        return {**keys, **cls.EXTRA_KEYS}

    def initialize(self, config_file: str | None = None) -> None:
        if config_file is None:
            raise BmiError("initialize needs the path of a YAML configuration file "
                           f"(keys: {sorted(self.config_keys())})")
        path = Path(config_file)
        try:
            cfg = yaml.load(path.read_text(), Loader=_YAML_LOADER) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise BmiError(f"cannot read BMI config {path}: {exc}") from exc
        if not isinstance(cfg, dict):
            raise BmiError(f"BMI config {path} must be a YAML mapping, got {type(cfg).__name__}")
        self._config_dir = path.resolve().parent
        self._setup(cfg, where=str(path))

    def _setup(self, cfg: dict, where: str = "config") -> None:
        keys = self.config_keys()
        unknown = sorted(set(cfg) - set(keys))
        if unknown:
            raise BmiError(f"unknown key(s) {unknown} in {where}; valid keys: {sorted(keys)}")
        missing = [k for k in self.REQUIRED if cfg.get(k) is None]
        if missing:
            raise BmiError(f"missing required key(s) {missing} in {where} "
                           f"({'; '.join(f'{k}: {keys[k]}' for k in missing)})")
        self._config = dict(cfg)
        self._where = where
        self._finalized = False
        self._setup_time(cfg)
        self._lat = _number(cfg["latitude"], "latitude")
        if not -90.0 <= self._lat <= 90.0:
            raise BmiError(f"latitude must be in [-90, 90] degrees north, got {self._lat}")
        self._area_km2 = _number(cfg["area_km2"], "area_km2")
        if not self._area_km2 > 0:
            raise BmiError(f"area_km2 must be > 0, got {self._area_km2}")
        threads = cfg.get("threads", 1)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise BmiError(f"threads must be a positive integer, got {threads!r}")
        self._set_threads(threads)
        backend = cfg.get("backend")
        if backend is not None and backend not in self.BACKENDS:
            raise BmiError(f"backend must be {' or '.join(repr(b) for b in self.BACKENDS)}, "
                           f"got {backend!r}")

        bundles = cfg.get("bundle")
        if isinstance(bundles, (list, tuple)):
            core = self._ensemble_core(cfg, list(bundles))
        else:
            model, norm, x_attr = self._load_model(cfg)
            self._pet_input = self._read_pet_source(cfg)
            core = self._make_core(model, norm, x_attr, cfg)
        self._core = core
        self._wire(core)

        self._reset()
        init = cfg.get("initial_state", "cold")
        spin = cfg.get("spinup_forcing")
        given = [k for k, on in (("initial_state", init not in (None, "cold")),
                                 ("spinup_forcing", spin is not None),
                                 ("spinup", cfg.get("spinup") is not None)) if on]
        if len(given) > 1:
            raise BmiError(f"give one of initial_state (a state file), spinup_forcing (rows run "
                           f"once) or spinup (cycled forcing), not {' and '.join(given)}")
        self._initialized = True
        self.spinup_cycles = 0
        if spin is not None:
            self._spinup(self._path(spin))
        if cfg.get("spinup") is not None:
            self._cycled_spinup(_spinup_spec(cfg["spinup"], where))
        if init not in (None, "cold"):
            self._load_state_file(self._path(init), as_initial=True)

    def _ensemble_core(self, cfg: dict, bundles: list) -> EnsembleCore:
        """One core per bundle of a ``bundle`` list, stepped as one
        (:class:`~delta_core.bmi.ensemble.EnsembleCore`); state files are tied to the list."""
        if len(bundles) < 2:
            raise BmiError(f"bundle: a list makes an ensemble of at least 2 bundles, got "
                           f"{bundles!r}")
        self._pet_input = self._read_pet_source(cfg)
        cores, paths, sums, models = [], [], [], []
        for i, b in enumerate(bundles):
            path, model = self._member_file(b)
            if model == self.MODEL:
                cores.append(self._make_core(*self._load_model({**cfg, "bundle": str(path)}),
                                             cfg))
                paths.append(self._bundle_path)
                sums.append(self._bundle_checksum)
            elif i == 0:
                raise BmiError(f"bundle: the first member must be a {self.MODEL} bundle (the "
                               f"model of this BMI), got {b} ({model})")
            else:
                member = self._member_bmi(model, cfg, path, b)
                cores.append(member._core)
                paths.append(member._bundle_path)
                sums.append(member._bundle_checksum)
            models.append(model)
        try:
            core = EnsembleCore(cores, None if len(set(models)) == 1 else shared_names(models))
        except ValueError as exc:
            raise BmiError(f"bundle: {exc}") from None
        self._bundle_path = " + ".join(paths)
        self._bundle_checksum = hashlib.sha256(" ".join(sums).encode()).hexdigest()
        return core

    def _member_file(self, value) -> tuple[Path, str]:
        """The file and model of the bundle a ``bundle`` list entry names: a path, or the bare
        file name of a bundle shipped with this model or another."""
        import torch

        from delta_core.evaluation import load_model

        path = self._bundle_file(value)
        if not path.exists():
            raise BmiError(f"bundle: no file {value!r} (a path relative to the config, or the "
                           f"name of a shipped bundle)")
        return path, _shared_model(path, load_model, torch.float64)[2]["model"]

    def _member_bmi(self, model: str, cfg: dict, path: Path, value) -> "NgenBmi":
        """An ensemble member of another model: its own BMI set up with this config's keys that
        it takes (no spin-up or state: the ensemble runs those), from which the core is taken."""
        from delta_core.registry import model_spec

        cls = model_spec(model).load_bmi_class()
        keys = set(cls.config_keys()) - {"spinup", "spinup_forcing", "initial_state"}
        member = cls()
        member._config_dir = self._config_dir
        try:
            member._setup({**{k: v for k, v in cfg.items() if k in keys}, "bundle": str(path)},
                          f"{self._where} (ensemble member {value})")
        except BmiError as exc:
            raise BmiError(f"bundle: member {value} ({model}): {exc}") from None
        return member

    def _read_pet_source(self, cfg: dict) -> bool:
        """Whether PET is an input (``pet_source: input``); False for a model without the key."""
        if self.HARGREAVES_FROM is None:
            return False
        source = cfg.get("pet_source", self._pet_source_default(cfg))
        if source not in PET_SOURCES:
            raise BmiError(f"pet_source must be 'hargreaves' or 'input', got {source!r}")
        return source == "input"

    def _pet_source_default(self, cfg: dict) -> str:
        """``pet_source`` without the key (:attr:`PET_SOURCE_DEFAULT`; a model may decide by the
        configuration)."""
        return self.PET_SOURCE_DEFAULT

    def _choose_backend(self, cfg: dict, model) -> str:
        """The configured ``backend``; without the key, cpp where the kernel is built and runs
        the model (:meth:`_cpp_unsupported`), else the fallback (with a warning if the kernel is
        missing)."""
        backend, fallback = cfg.get("backend"), self.BACKENDS[-1]
        why = self._cpp_unsupported(model)
        built = importlib.import_module(self.KERNEL).cpp_available()
        if backend == "cpp" and why is not None:
            raise BmiError(f"backend: cpp: {why}; use backend: {fallback}")
        if backend == "cpp" and not built:
            raise BmiError(f"backend: cpp needs the compiled kernel of {self.KERNEL}, which could "
                           f"not be imported (reinstall the package with a C++ compiler, or set "
                           f"backend: {fallback})")
        if backend is not None:
            return backend
        if why is None and not built:
            warnings.warn(f"the compiled kernel of {self.KERNEL} is not available: {self.MODEL} "
                          f"BMI falls back to backend {fallback} (slower)", stacklevel=4)
        return "cpp" if why is None and built else fallback

    def _flat_temperature(self, cfg: dict) -> FlatTemperature:
        """The :class:`~delta_core.bmi.hourly.FlatTemperature` policy of ``cfg`` (keys
        :data:`~delta_core.bmi.hourly.FLAT_TEMPERATURE_KEYS`), naming this config."""
        try:
            return FlatTemperature.from_config(cfg, self._where)
        except ValueError as exc:
            raise BmiError(str(exc)) from None

    def _set_threads(self, threads: int) -> None:
        """Use ``threads`` torch/kernel threads in this process (subclass: a model without
        torch may do nothing)."""
        import torch

        torch.set_num_threads(threads)

    def _load_model(self, cfg: dict) -> tuple:
        """``(model, norm, x_attr)`` handed to :meth:`_make_core`: by default the weight bundle
        (``bundle`` key or the spec's) and the encoded ``attributes``. A model whose parameters
        do not come from a bundle overrides this (and sets ``_bundle_path`` and
        ``_bundle_checksum``, which identify its parameters in state files)."""
        model, norm, _ = self._load_bundle(cfg.get("bundle"))
        return model, norm, self._encode_attributes(cfg["attributes"], norm)

    def _setup_time(self, cfg: dict) -> None:
        step = _number(cfg.get("time_step_seconds", self.HOST_STEPS[0]), "time_step_seconds")
        if step not in self.HOST_STEPS:
            raise BmiError(f"time_step_seconds must be one of {list(self.HOST_STEPS)}, got "
                           f"{cfg.get('time_step_seconds')!r}")
        self._time_step = step
        self._start = _parse_time(cfg["start_time"], "start_time")
        if cfg.get("end_time") is not None and cfg.get("n_steps") is not None:
            raise BmiError("give end_time or n_steps, not both")
        if cfg.get("end_time") is not None:
            end = _parse_time(cfg["end_time"], "end_time")
            self._end_time = (end - self._start).total_seconds()
            if self._end_time < 0:
                raise BmiError(f"end_time {end} is before start_time {self._start}")
        elif cfg.get("n_steps") is not None:
            n = cfg["n_steps"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise BmiError(f"n_steps must be a non-negative integer, got {n!r}")
            self._end_time = n * step
        else:
            self._end_time = 1e18  # no end: ngen runs with allow_exceed_end_time anyway
        self._allow_exceed_end_time = bool(cfg.get("allow_exceed_end_time", False))
        self._time = 0.0

    def _load_bundle(self, bundle_path):
        import torch

        from delta_core.evaluation import load_model
        from delta_core.registry import model_spec

        spec = model_spec(self.MODEL)
        path = self._default_bundle() if bundle_path is None else self._bundle_file(bundle_path)
        if path is None:
            raise BmiError(f"model {self.MODEL} ships no bundle: give the key 'bundle'")
        model, norm, bundle = _shared_model(Path(path), load_model, torch.float64)
        if bundle["model"] != self.MODEL:
            raise BmiError(f"bundle {path} holds model {bundle['model']!r}, not {self.MODEL!r}")
        if tuple(norm.forcing.names) != tuple(spec.forcings):
            raise BmiError(f"bundle {path}: forcing variables {norm.forcing.names} are not "
                           f"{list(spec.forcings)}")
        self._bundle_path = str(path)
        self._bundle_checksum = bundle["checksum"]
        return model, norm, bundle

    def _bundle_file(self, value) -> Path:
        """The file a ``bundle`` key names: a path (relative to the config's folder), or the
        bare file name of a shipped bundle (e.g. ``dcfe_static.pt``;
        :func:`~delta_core.bundle.shipped_or_given`)."""
        from delta_core.bundle import shipped_or_given

        return shipped_or_given(value, self._config_dir, self.MODEL)

    def _default_bundle(self) -> Path | None:
        """The bundle used without a ``bundle`` key (:meth:`default_bundle_for` the host
        step, known by now)."""
        return self.default_bundle_for(self._time_step)

    @classmethod
    def default_bundle_for(cls, time_step: int) -> Path | None:
        """The shipped bundle a config without ``bundle`` runs at host steps of ``time_step``
        [s] (the spec's; a model may choose by the step)."""
        from delta_core.registry import model_spec

        return model_spec(cls.MODEL).default_bundle

    def _encode_attributes(self, attrs, norm) -> np.ndarray:
        if not isinstance(attrs, dict):
            raise BmiError(f"attributes must be a mapping {{name: value}}, got {attrs!r}")
        need = norm.attributes.names
        lacking = [n for n in need if n not in attrs]
        if lacking:
            raise BmiError(f"attributes lacks {len(lacking)} attribute(s) the bundle needs: "
                           f"{lacking} (the bundle needs: {need})")
        raw = {n: ["" if attrs[n] is None else str(attrs[n])] for n in need}
        try:
            return norm.attributes.transform(raw, ["catchment"])[0]
        except ValueError as exc:
            raise BmiError(f"bad attribute value: {exc}") from exc

    def _path(self, p) -> Path:
        p = Path(str(p)).expanduser()
        return p if p.is_absolute() else self._config_dir / p

    # ==========================================================================================
    # variables and their wiring to the core
    # ==========================================================================================
    def _variables(self) -> list[Variable]:
        """The model's declared BMI variables that hold for this configuration."""
        from delta_core.registry import model_spec

        core = self._core
        found = bmi_variables(model_spec(self.MODEL).variables, self._conditions(),
                              core.dynamic_names)
        return ensemble_outputs(found, core.shared) if isinstance(core, EnsembleCore) else found

    def _inputs(self) -> list[Variable]:
        """Input variables of this configuration, each feeding the core field of its name."""
        return [v for v in self._variables() if v.kind == "input"]

    def _outputs(self) -> list[Variable]:
        """Output variables of this configuration."""
        return [v for v in self._variables() if v.kind != "input"]

    def _wire(self, core: LumpedCore) -> None:
        """Declare the variables and precompute the per-step plumbing."""
        host, model = int(self._time_step), int(core.step_seconds)
        if model % host and host % model:
            raise BmiError(f"time_step_seconds {host} and the model step {model} s must divide "
                           f"one another")
        self._model_step = model
        self._n_sub = max(1, model // host)  # host steps per model step
        self._n_rep = max(1, host // model)  # model steps per host step
        inputs, outputs = self._inputs(), self._outputs()
        specs = [VarSpec(i.standard_name, bmi_units(i, host), "input", i.long_name,
                         min_value=i.min_value, plausible=i.plausible) for i in inputs]
        specs += [VarSpec(o.standard_name, bmi_units(o, host), "output", o.long_name)
                  for o in outputs]
        self._declare_variables(specs)
        v = self._values
        fields = core.fields
        self._in = []  # (array, input Variable, field index, rule code, low, high)
        for i in inputs:
            if i.name not in fields or i.aggregation not in AGGREGATIONS:
                raise ValueError(f"input {i.standard_name}: feeds unknown field {i.name!r} or "
                                 f"rule {i.aggregation!r}")
            lo = max(-math.inf if i.min_value is None else i.min_value,
                     -math.inf if i.plausible is None else i.plausible[0])
            hi = math.inf if i.plausible is None else i.plausible[1]
            # finite: lo <= x <= hi fails for NaN, and for +-inf unless a bound is infinite
            self._in.append((v[i.standard_name], i, fields.index(i.name),
                             _RULE_CODES[i.aggregation], max(lo, -sys.float_info.max),
                             min(hi, sys.float_info.max)))
        fed = {i.name for i in inputs}
        lacking = [f for f in fields if f not in fed and f not in core.optional_fields]
        if lacking:
            raise ValueError(f"{type(self).__name__}: no input feeds core field(s) {lacking}")
        self._rules = [_rule_of(f, inputs) for f in fields]
        self._acc0 = tuple(None if r is None else -math.inf if r == "max" else
                           math.inf if r == "min" else 0.0 for r in self._rules)
        self._wire_outputs(core, outputs)
        self._flux_m3s = self._area_km2 * 1e6 / self._time_step * 1e-3  # mm/step -> m3 s-1

    # ==========================================================================================
    # stepping
    # ==========================================================================================
    def _reset(self) -> None:
        core = self._core
        core.reset()
        self._carry = core.flow_carry.tolist()
        self._new_acc()
        self._n_in_step = 0
        self._model_steps = 0  # completed model steps since time 0
        self._write_held()

    def _new_acc(self) -> None:
        self._acc = list(self._acc0)

    def _bad_input(self, spec: Variable, x: float) -> BmiError:
        return bad_value(self._specs[spec.standard_name], x, f" at model time {self._time} s")

    def _advance(self) -> None:
        for arr, spec, _, _, lo, hi in self._in:  # finite and in range (NaN fails both)
            x = arr[0]
            if not lo <= x <= hi:
                raise self._bad_input(spec, float(x))
        if self._n_rep > 1:
            self._advance_repeated()
            return
        acc = self._acc
        for arr, _, k, code, _, _ in self._in:
            x = float(arr[0])
            if code == 0:  # sum or mean
                acc[k] += x
            elif code == 1:  # max
                if x > acc[k]:
                    acc[k] = x
            elif x < acc[k]:  # min
                acc[k] = x
        self._n_in_step += 1
        n = self._n_sub
        c = self._carry
        if self._n_in_step < n:
            self._emit([x / n for x in c])
            return
        forcing = [a / n if r == "mean" else a for a, r in zip(acc, self._rules)]
        core = self._core
        core.step(forcing, self._step_start())
        new = core.flow_new
        self._emit([c[j] / n + new[j] for j in range(len(c))])
        self._carry = core.flow_carry.tolist()
        self._model_steps += 1
        self._write_held()
        self._new_acc()
        self._n_in_step = 0

    def _advance_repeated(self) -> None:
        """Host step = k model steps: amounts split evenly, other fields held."""
        k = self._n_rep
        forcing = [None] * len(self._rules)
        for arr, _, i, _, _, _ in self._in:
            x = float(arr[0])
            forcing[i] = x / k if self._rules[i] == "sum" else x
        core = self._core
        flows = np.zeros(len(core.flows))
        rates = np.zeros(len(self._rate_out))
        for _ in range(k):
            c = np.array(self._carry)
            core.step(forcing, self._step_start())
            flows += c + core.flow_new
            for j, (_, src) in enumerate(self._rate_out):
                rates[j] += src[0]
            self._carry = core.flow_carry.tolist()
            self._model_steps += 1
        self._emit(flows.tolist())
        for (arr, _), x in zip(self._rate_out, rates):
            arr[0] = x
        for arr, src in self._level_out:
            arr[0] = src[0]

    def _wire_outputs(self, core: LumpedCore, outputs: list[Variable]) -> None:
        """Bind each output to its source: a flow by its index in the core's flows, a rate or
        level to the core's live named array, the runoff to the sum of the flows."""
        self._flow_out, self._rate_out, self._level_out = [], [], []
        self._runoff_depth = self._runoff_flux = None
        for o in outputs:
            arr = self._values[o.standard_name]
            if o.kind == "runoff_depth":
                self._runoff_depth = arr
            elif o.kind == "runoff_flux":
                self._runoff_flux = arr
            elif o.kind == "flow" and o.name in core.flows:
                self._flow_out.append((arr, core.flows.index(o.name)))
            elif o.kind in ("rate", "level") and o.name in core.values:
                (self._rate_out if o.kind == "rate" else self._level_out).append(
                    (arr, core.values[o.name]))
            else:
                raise ValueError(f"output {o.standard_name}: the core has no {o.kind} "
                                 f"{o.name!r}")

    def _step_start(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=self._model_steps * self._model_step)

    def _emit(self, flows: list[float]) -> None:
        """Write this host step's flows [mm per host step] and the runoff (their sum)."""
        for arr, j in self._flow_out:
            arr[0] = flows[j]
        total = 0.0
        for x in flows:
            total += x
        if self._runoff_depth is not None:
            self._runoff_depth[0] = total * 1e-3
        if self._runoff_flux is not None:
            self._runoff_flux[0] = total * self._flux_m3s

    def _write_held(self) -> None:
        """Rates (per host step) and levels of the last completed model step."""
        n = self._n_sub
        for arr, src in self._rate_out:
            arr[0] = src[0] / n
        for arr, src in self._level_out:
            arr[0] = src[0]

    def _release(self) -> None:
        self._core = None

    # ==========================================================================================
    # spin-up and state files
    # ==========================================================================================
    def _spinup(self, path: Path) -> None:
        """Run the core over a CSV of forcing at the model's step ending before time 0 (a
        ``.csv.gz`` is read through gzip), read column-wise and checked as a whole: steps, values
        and ranges (the first bad line named)."""
        core = self._core
        header, columns = _read_csv_columns(path)
        cols, run = self.SPINUP_COLUMNS, core.spinup
        if self.DAILY_SPINUP_COLUMNS:  # daily rows (by their columns), or rows at the step
            daily_only = [c for c in self.DAILY_SPINUP_COLUMNS if c not in cols]
            if any(c in header for c in daily_only):
                cols = self.DAILY_SPINUP_COLUMNS
            else:
                run = core.run_steps
        # the rows of core.spinup are spinup_fields every spinup_step_seconds where declared
        other = run == core.spinup and core.spinup_fields is not None
        step_s = core.spinup_step_seconds if other else core.step_seconds
        fields = core.spinup_fields if other else core.fields
        optional = (core.spinup_optional_fields or frozenset()) if other else core.optional_fields
        need = [c for c, f in cols.items() if f not in optional]
        tcol = next((c for c in ("date", "time") if c in header), None)
        n = len(columns[header[0]]) if header else 0
        if not n or tcol is None or any(c not in header for c in need):
            raise BmiError(f"spinup_forcing {path} must have a date column and columns {need} "
                           f"(optional: {[c for c in cols if c not in need]}) and at least one "
                           f"row")
        times = _parse_times(columns[tcol], tcol, path)
        gaps = np.flatnonzero(np.diff(times) != np.timedelta64(step_s, "s"))
        if gaps.size:
            i = int(gaps[0]) + 1
            raise BmiError(f"spinup_forcing {path} line {i + 2}: {times[i].item()} does not "
                           f"follow {times[i - 1].item()} by one step of the spin-up file "
                           f"({step_s} s)")
        end = times[-1] + np.timedelta64(step_s, "s")
        if end > np.datetime64(self._start, "s"):
            raise BmiError(f"spinup_forcing {path}: its last row ({times[-1].item()}) ends at "
                           f"{end.item()}, after start_time {self._start}: the spin-up must end "
                           f"before the run starts")
        values = {f: _floats(columns[c], c, path) if c in header else None
                  for c, f in cols.items()}
        self._check_spinup_values(path, values, cols, optional, columns[tcol])
        forcings = _rows_with_none([values.get(f) for f in fields], n)
        starts = times.astype("datetime64[us]").tolist()
        run(forcings, starts)
        del forcings, starts, columns, values
        _release_freed_memory()
        self._carry = core.flow_carry.tolist()
        self._write_held()

    def _check_spinup_values(self, path: Path, values: dict, cols: dict, optional,
                             times: list[str]) -> None:
        """Refuse the first row of a spin-up file (``values``: field -> column, NaN where empty)
        with a required value missing or an infinite one, or a value the input's
        :func:`value_problem` refuses; the message names the line and, for a range, the column."""
        checks = self._field_checks()
        n = len(times)
        first = (n, None)  # (row, column of a refused value; None: missing or not finite)
        for c, f in cols.items():
            x = values[f]
            if x is None:
                continue
            bad = np.flatnonzero(np.isinf(x) | (np.isnan(x) & (f not in optional)))
            if bad.size and bad[0] < first[0]:
                first = (int(bad[0]), None)
            if f in checks:
                bad = np.flatnonzero(~np.isnan(x) & _out_of_range(checks[f], x))
                if bad.size and bad[0] < first[0]:
                    first = (int(bad[0]), c)
        i, c = first
        if i == n:
            return
        missing = [f for f, x in values.items() if x is not None
                   and (np.isinf(x[i]) or f not in optional and np.isnan(x[i]))]
        if c is None or missing:
            raise BmiError(f"spinup_forcing {path} line {i + 2}: {missing} missing or not finite")
        x = float(values[cols[c]][i])
        raise BmiError(f"spinup_forcing {path} line {i + 2} ({times[i]}): column {c} = {x}: "
                       f"{value_problem(checks[cols[c]], x)}")

    def _cycled_spinup(self, spec: dict) -> None:
        """Cycle the leading ``spec["years"]`` of an hourly CsvPerFeature file (one batched
        :meth:`~delta_core.bmi.core.LumpedCore.run_steps` per cycle) until every store changes
        by at most ``tolerance`` (relative) between the ends of two cycles, or ``max_cycles``
        (then one warning naming this config)."""
        if self._time_step != 3600 or self._core.step_seconds != 3600:
            raise BmiError(f"spinup cycles hourly forcing: it needs time_step_seconds: 3600 (got "
                           f"{self._time_step:g}); give spinup_forcing rows instead")
        path = Path(os.path.normpath(self._path(spec["forcing"])))
        forcings, starts = self._hourly_rows(path, spec["years"])
        core, tol = self._core, spec["tolerance"]
        before = core.store_values()
        for cycle in range(1, spec["max_cycles"] + 1):
            core.run_steps(forcings, starts)
            after = core.store_values()
            change = np.abs(after - before)
            if np.all(change - SETTLED_FLOOR_MM <= tol * np.abs(after)):
                break
            before = after
        else:
            worst = int(np.argmax(change / np.maximum(np.abs(after), SETTLED_FLOOR_MM)))
            names = core.stores or core.levels
            warnings.warn(f"{self.MODEL} {self._where}: spin-up did not settle in "
                          f"{spec['max_cycles']} cycles of {len(starts) // 24} days of {path}: "
                          f"{names[worst]} still changed by {change[worst]:.3g} mm in the last "
                          f"cycle (tolerance {100 * tol:g} %); raise spinup.max_cycles or "
                          f"spinup.years", stacklevel=4)
        self.spinup_cycles = cycle
        del forcings, starts
        _release_freed_memory()
        self._carry = core.flow_carry.tolist()
        self._write_held()

    def _hourly_rows(self, path: Path, years: int) -> tuple[list[list], list[dt.datetime]]:
        """Core forcing rows and their start times of the first ``years`` years of an hourly
        CsvPerFeature file (all of it if shorter), read as
        :func:`delta_core.hourly_forcing.read_file` reads it (units from the header); fields
        that no input of this configuration feeds are None (e.g. PET when it is Hargreaves)."""
        from delta_core.hourly_forcing import HourlyForcingError, read_file

        try:
            start, prcp, temp, pet = read_file(path)
        except (HourlyForcingError, OSError, UnicodeDecodeError) as exc:
            raise BmiError(f"spinup forcing: {exc}") from None
        fed = {i.name for i in self._inputs()}
        if "pet" in fed and pet is None:
            raise BmiError(f"spinup forcing {path} has no PET column, but this configuration "
                           f"takes PET as an input: add a column 'PET [mm h-1]'")
        t0 = start.astype("datetime64[s]").item()
        try:
            end = t0.replace(year=t0.year + years)
        except ValueError:  # 29 February
            end = t0.replace(year=t0.year + years, day=28) + dt.timedelta(days=1)
        n = min(len(prcp), int((end - t0).total_seconds()) // 3600)
        values = {"prcp": prcp, "tmean": temp, "pet": pet}
        fields = [(values[f] if f in fed else None) for f in self._core.fields]
        starts = [t0 + dt.timedelta(hours=h) for h in range(n)]
        rows = [[None if x is None else float(x[h]) for x in fields] for h in range(n)]
        return rows, starts

    def _field_checks(self) -> dict[str, VarSpec]:
        """Core field -> spec of the input feeding it, whose :func:`value_problem` check the
        spin-up values of the field pass too (``tmax``/``tmin`` of a daily spin-up, fed by no
        hourly input, are checked as ``tmean``)."""
        checks = {i.name: self._specs[i.standard_name] for i in self._inputs()}
        for f in ("tmax", "tmin"):
            if f not in checks and "tmean" in checks:
                checks[f] = checks["tmean"]
        return checks

    def save_state(self, path: str | Path) -> None:
        """Write everything needed to continue this run bit for bit to ``path`` (npz)."""
        self._require_running("save_state")
        meta = {"format": f"{self.MODEL}/state", "version": STATE_VERSION,
                "bundle_checksum": self._bundle_checksum, "time_step": self._time_step,
                "start_time": self._start.isoformat(), "time": self._time,
                "model_steps": self._model_steps, "n_in_step": self._n_in_step,
                "signature": self._state_signature(),
                "datetime": (self._start + dt.timedelta(seconds=self._time)).isoformat()}
        arrays = {"core:" + k: v for k, v in self._core.get_state().items()}
        arrays.update(carry=self._carry,
                      acc=np.array([np.nan if a is None else a for a in self._acc]),
                      meta=np.array(json.dumps(meta)))
        for name, arr in self._values.items():
            arrays["var:" + name] = arr
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        try:  # through a temporary file: a failed save keeps the previous state file
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def load_state(self, path: str | Path) -> None:
        """Restore a state written by :meth:`save_state`, including the model time; the run then
        continues bit for bit as the saved one would have. The configuration must match
        (bundle, time step, start time, model options)."""
        self._require_running("load_state")
        self._load_state_file(Path(path), as_initial=False)

    def _load_state_file(self, path: Path, as_initial: bool) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise BmiError(f"cannot read {self.MODEL} state file {path}: truncated or not a "
                           f"state file written by save_state ({exc})") from None
        fmt = f"{self.MODEL}/state"
        if meta.get("format") != fmt or meta.get("version") != STATE_VERSION:
            raise BmiError(f"{path} is not a {fmt} v{STATE_VERSION} file (format "
                           f"{meta.get('format')!r} v{meta.get('version')})")
        if meta["bundle_checksum"] != self._bundle_checksum:
            raise BmiError(f"state file {path} was written with a different bundle than "
                           f"{self._bundle_path}")
        if meta["signature"] != self._state_signature():
            raise BmiError(f"state file {path} was written with model options "
                           f"{meta['signature']}, this run has {self._state_signature()}")
        if as_initial:
            if meta["n_in_step"] != 0:
                raise BmiError(f"state file {path} was saved in the middle of a model step "
                               f"(host step {meta['n_in_step']} of {self._n_sub}); an "
                               f"initial_state must be saved at a model-step boundary")
            saved_at = dt.datetime.fromisoformat(meta["datetime"])
            if saved_at != self._start:
                raise BmiError(f"initial_state {path} holds the state at {saved_at}, but "
                               f"start_time is {self._start}")
        elif meta["time_step"] != self._time_step or meta["start_time"] != self._start.isoformat():
            raise BmiError(f"state file {path} (time step {meta['time_step']} s, start "
                           f"{meta['start_time']}) does not match this configuration (time step "
                           f"{self._time_step} s, start {self._start.isoformat()})")
        self._core.set_state({k[5:]: v for k, v in data.items() if k.startswith("core:")})
        self._carry = data["carry"].tolist()
        if as_initial:
            self._time, self._model_steps, self._n_in_step = 0.0, 0, 0
            self._new_acc()
            self._emit([0.0] * len(self._carry))
            self._write_held()
            return
        self._time = float(meta["time"])
        self._model_steps, self._n_in_step = int(meta["model_steps"]), int(meta["n_in_step"])
        self._acc = [None if r is None else float(a) for a, r in zip(data["acc"], self._rules)]
        for name, arr in self._values.items():
            key = "var:" + name
            if key not in data or data[key].shape != arr.shape:
                raise BmiError(f"state file {path} lacks variable {name}")
            arr[...] = data[key]

    # ==========================================================================================
    # extras
    # ==========================================================================================
    @property
    def core(self) -> LumpedCore:
        """The model core (its states and parameters, for inspection)."""
        if self._core is None:
            raise BmiError("the model is not initialized")
        return self._core


#: Loaded bundles shared by every instance of a process (ngen runs one instance per catchment):
#: (resolved path, size, mtime) -> (model, normalisation, bundle dict). The cores only read the
#: networks, so instances hold their state and nothing else.
_MODELS: dict[tuple, tuple] = {}


def _shared_model(path: Path, load_model, dtype) -> tuple:
    """The bundle at ``path`` loaded once per process (reloaded if the file changed)."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, str(dtype))
    except OSError:
        key = None
    if key is None or key not in _MODELS:
        loaded = load_model(path, dtype=dtype)  # BundleError names an unreadable file
        if key is None:
            return loaded
        _MODELS[key] = loaded
    return _MODELS[key]


def _rule_of(field: str, inputs: list[Variable]) -> str | None:
    rules = {i.aggregation for i in inputs if i.name == field}
    if len(rules) > 1:
        raise ValueError(f"core field {field!r} is fed with different rules {sorted(rules)}")
    return rules.pop() if rules else None


def _spinup_spec(value, where: str) -> dict:
    """The ``spinup`` mapping with its defaults, checked (BmiError naming ``where``)."""
    if not isinstance(value, dict) or value.get("forcing") in (None, ""):
        raise BmiError(f"spinup in {where} must be a mapping with forcing: PATH (an hourly "
                       f"CsvPerFeature file) and optional {sorted(SPINUP_DEFAULTS)}, got "
                       f"{value!r}")
    unknown = sorted(set(value) - {"forcing", *SPINUP_DEFAULTS})
    if unknown:
        raise BmiError(f"spinup in {where}: unknown key(s) {unknown}; valid: forcing, "
                       f"{', '.join(SPINUP_DEFAULTS)}")
    spec = {**SPINUP_DEFAULTS, **value}
    for key in ("years", "max_cycles"):
        x = spec[key]
        if isinstance(x, bool) or not isinstance(x, int) or x < 1:
            raise BmiError(f"spinup.{key} in {where} must be a positive integer, got {x!r}")
    tol = spec["tolerance"]
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise BmiError(f"spinup.tolerance in {where} must be a number in (0, 1) (relative "
                       f"change per cycle), got {tol!r}")
    return spec


def _number(x, key: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        try:
            return float(str(x))
        except ValueError:
            raise BmiError(f"{key} must be a number, got {x!r}") from None
    return float(x)


def _release_freed_memory() -> None:
    """Hand memory freed by a spin-up's temporaries back to the OS (glibc ``malloc_trim``).

    A batched spin-up allocates tens of MB for a moment; glibc keeps much of it in the heap,
    so without this every catchment of an ngen process kept ~6 MB (measured with 11 years of
    hourly dHBV spin-up); with it, only the state. No-op where glibc is absent."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None
#: libyaml's safe loader where PyYAML was built with it (same results, ~6x faster per config).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_csv_columns(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The header and the columns (lists of strings) of a CSV file (``.gz``: through gzip);
    a BmiError names a file that cannot be read or a line of the wrong width."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as f:
            text = f.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise BmiError(f"cannot read spinup_forcing {path}: {exc}") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    if '"' in text:  # quoted fields: the csv module
        rows = list(csv.reader(lines))
    else:
        rows = [line.split(",") for line in lines]
    if not rows:
        return [], {}
    header = [h.strip() for h in rows[0]]
    width = len(header)
    if set(map(len, rows)) != {width}:
        i, r = next((i, r) for i, r in enumerate(rows[1:], start=2) if len(r) != width)
        raise BmiError(f"spinup_forcing {path} line {i}: {len(r)} fields, the header has "
                       f"{width}")
    body = list(zip(*rows[1:])) if len(rows) > 1 else [()] * width
    return header, {h: list(col) for h, col in zip(header, body)}


def _parse_times(texts: list[str], key: str, path: Path) -> np.ndarray:
    """ISO times of a spin-up file's rows as datetime64[s] (the first bad one named)."""
    try:
        return np.array([x.strip() for x in texts], dtype="datetime64[s]")
    except ValueError:
        for i, x in enumerate(texts, start=2):
            try:
                _parse_time(x, key)
            except BmiError as exc:
                raise BmiError(f"spinup_forcing {path} line {i}: {exc}") from None
        return np.array([np.datetime64(_parse_time(x, key), "s") for x in texts])


def _floats(texts: list[str], column: str, path: Path) -> np.ndarray:
    """A spin-up column as floats (empty: NaN; the first non-number named)."""
    out = np.empty(len(texts))
    for i, x in enumerate(texts):
        try:
            out[i] = float(x) if x.strip() else math.nan
        except ValueError:
            raise BmiError(f"spinup_forcing {path} line {i + 2}: column {column} = {x!r} is not "
                           f"a number") from None
    return out


def _out_of_range(spec: VarSpec, x: np.ndarray) -> np.ndarray:
    """:func:`value_problem` on an array: where a value is refused (NaN aside)."""
    bad = np.zeros(x.shape, bool)
    if spec.finite:
        bad |= np.isinf(x)
    if spec.min_value is not None:
        bad |= x < spec.min_value
    if spec.plausible is not None:
        bad |= (x < spec.plausible[0]) | (x > spec.plausible[1])
    return bad


def _rows_with_none(columns: list[np.ndarray | None], n: int) -> list[list]:
    """Rows of a core's forcing fields: floats, None where a field has no column or an empty
    cell."""
    full = [c if c is not None else np.full(n, np.nan) for c in columns]
    rows = np.stack(full, axis=1).tolist() if full else [[] for _ in range(n)]
    if any(c is None or np.isnan(c).any() for c in columns):
        for row in rows:
            for j, x in enumerate(row):
                if x != x:  # NaN: no value
                    row[j] = None
    return rows


def _parse_time(x, key: str) -> dt.datetime:
    if isinstance(x, dt.datetime):
        t = x
    elif isinstance(x, dt.date):
        t = dt.datetime(x.year, x.month, x.day)
    else:
        try:
            t = dt.datetime.fromisoformat(str(x).strip())
        except ValueError:
            raise BmiError(f"{key} must be an ISO datetime like '2015-12-01 00:00:00', "
                           f"got {x!r}") from None
    return t.replace(tzinfo=None)
