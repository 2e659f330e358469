"""What a δ model declares about itself, as data: the one contract between a model package and
the shared machinery.

A model package (``bmi_dhbv``, ...) defines one :class:`ModelSpec` and registers it by name
through the entry-point group of :mod:`delta_core.registry`. Everything shared reads the spec
and nothing else:

* the data reader serves the forcing variables the spec names (:attr:`ModelSpec.forcings`,
  names of :data:`delta_core.data.camels.FORCING_VARIABLES`), and the normaliser is fitted on them;
* the training loop and evaluation build the model with :attr:`ModelSpec.build` and call it with a
  :class:`Batch`-shaped dict; the loss reads ``out["streamflow"]``;
* evaluation, netCDF output and plots use :attr:`ModelSpec.outputs` (units, long names: the
  series among the model's :attr:`ModelSpec.variables`),
  :attr:`ModelSpec.step_seconds` (netCDF time units) and :attr:`ModelSpec.flow_components`
  (the flows shaded in hydrographs; the first one named ``baseflow``, if any, gives the simulated
  baseflow index);
* the run config validates its ``network`` section with :attr:`ModelSpec.network_config` and its
  ``physics`` section with :attr:`ModelSpec.physics_config` (unknown keys rejected);
* the NextGen BMI adapter, the realization writer and each ``BMI.md`` derive the BMI variables
  from :attr:`ModelSpec.variables` (:mod:`delta_core.bmi.variables`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypedDict

import torch

#: Valid physics engines: the PyTorch reference or the model's compiled kernel.
BACKENDS: tuple[str, ...] = ("cpp", "torch")


#: How a BMI variable passes between host steps and model steps (:class:`Variable` ``kind``).
KINDS: tuple[str, ...] = ("", "input", "flow", "rate", "level", "runoff_depth", "runoff_flux")


@dataclass(frozen=True)
class Variable:
    """A variable of a model, declared once: a series of ``module(batch)``, a named array of the
    model's BMI core, a BMI variable, or several of these.

    Attributes
    ----------
    name : str
        Short name: key of ``module(batch)``'s outputs, of the core's named arrays
        (:attr:`delta_core.bmi.core.LumpedCore.values`) and, for an input, the core forcing
        field it feeds.
    units : str
        udunits units of the series and of a ``level``; a water amount per model step
        (``flow``, ``rate``, an input aggregated by ``sum``) is declared per day (``mm d-1``)
        and is exchanged by the BMI per host step (``mm h-1`` or ``mm d-1``).
    long_name : str
        What it is (netCDF long name, BMI description, ``BMI.md``).
    standard_name : str or None
        CSDMS standard name of the BMI variable; None: not a BMI variable.
    kind : str
        How the BMI passes it between host steps and model steps (one of :data:`KINDS`):
        ``""`` not in the core; ``input`` a forcing field, aggregated over a model step by
        ``aggregation``; ``flow`` a routed flow [mm per step] (carry-over part released evenly
        over the host steps of a model step, the new part at its last); ``rate`` an amount per
        step held at ``1/n`` of the last model step's value over its ``n`` host steps (summed
        over model steps when a host step is longer); ``level`` a store or parameter, the last
        model step's value; ``runoff_depth`` [m] and ``runoff_flux`` [m3 s-1] the sum of the
        flows over the host step.
    aggregation : {"sum", "mean", "max", "min"} or None
        Inputs: how the host steps of a model step make the field.
    series : bool
        One of ``module(batch)``'s outputs (:attr:`ModelSpec.outputs`).
    when : str or None
        The configuration under which the BMI has the variable (a condition of the BMI's
        :meth:`~delta_core.bmi.adapter.NgenBmi._conditions`; ``"dynamic"``: a dynamic parameter
        of the bundle); None: always.
    csv_header : str or None
        Column of the realization's per-catchment output CSV (None: not written).
    min_value : float or None
        Inputs: values below are rejected.
    plausible : (low, high) or None
        Inputs: values outside are rejected with a hint (e.g. temperature in K given as degC).
    """

    name: str
    units: str
    long_name: str
    standard_name: str | None = None
    kind: str = ""
    aggregation: str | None = None
    series: bool = True
    when: str | None = None
    csv_header: str | None = None
    min_value: float | None = None
    plausible: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"variable {self.name}: kind {self.kind!r} not in {KINDS}")
        if (self.kind == "input") != (self.aggregation is not None):
            raise ValueError(f"variable {self.name}: an input needs an aggregation, and only "
                             f"an input has one")
        if self.kind not in ("", "flow") and self.standard_name is None:
            raise ValueError(f"variable {self.name}: a BMI {self.kind} needs a standard name")

    @property
    def per_step(self) -> bool:
        """Whether it is an amount per model step (exchanged per host step by the BMI)."""
        return self.kind in ("flow", "rate") or self.aggregation == "sum"


def core_names(variables: tuple[Variable, ...], kind: str) -> tuple[str, ...]:
    """Names of the core's arrays of one ``kind`` (``flow``, ``rate``, ``level``) in declared
    order, without the ``dynamic`` ones (a core adds its bundle's)."""
    return tuple(v.name for v in variables if v.kind == kind and v.when != "dynamic")


@dataclass(frozen=True)
class ParameterSpec:
    """A physical parameter learned by the network from s in (0, 1): ``low + s (high - low)``, or
    ``low (high / low)^s`` with ``log_scale`` (for parameters spanning decades, e.g. conductivity).

    ``dynamic_capable`` marks parameters that may vary in time (one value per model step from a
    sequence network).
    """

    name: str
    low: float
    high: float
    units: str
    dynamic_capable: bool = False
    log_scale: bool = False

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"parameter {self.name}: high {self.high} must exceed low {self.low}")
        if self.log_scale and not self.low > 0:
            raise ValueError(f"parameter {self.name}: a log-scaled range needs low > 0")

    def from_unit(self, s: torch.Tensor) -> torch.Tensor:
        """Physical value of network output ``s`` in (0, 1)."""
        if self.log_scale:
            return self.low * torch.exp(s * math.log(self.high / self.low))
        return self.low + s * (self.high - self.low)


@dataclass(frozen=True)
class Engine:
    """How the physics runs, bound when a model is built.

    Attributes
    ----------
    backend : {"cpp", "torch"}
        The compiled kernel or the PyTorch reference.
    dtype : torch.dtype
        Floating-point type of the networks and the physics (float32 or float64).
    """

    backend: str = "cpp"
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; valid: {list(BACKENDS)}")
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {self.dtype}")


class Batch(TypedDict, total=False):
    """The model input dict (tensors of one dtype).

    forcing : Tensor [T, B, F]
        Raw forcing, the spec's :attr:`~ModelSpec.forcings` in order, in their units.
    x_forcing : Tensor [T, B, F]
        The same, normalised (network input).
    x_attr : Tensor [B, A]
        Encoded catchment attributes.
    warmup : int
        Leading steps that only spin up the states (no gradient, not returned).
    raw_attr : Tensor [B, R]
        Raw (not encoded) values of the spec's :attr:`~ModelSpec.raw_attributes`, in that
        order; only for models that declare some.
    """

    forcing: torch.Tensor
    x_forcing: torch.Tensor
    x_attr: torch.Tensor
    warmup: int
    raw_attr: torch.Tensor


#: ``build(physics, network, n_attributes, engine) -> torch.nn.Module`` with ``module(batch)``
#: returning ``{output name: Tensor [T - warmup, B]}``; ``physics`` and ``network`` are instances
#: of the spec's config dataclasses.
Builder = Callable[[Any, Any, int, Engine], torch.nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the shared machinery needs to know about one δ model.

    Attributes
    ----------
    name : str
        Registry name (``"dhbv"``); stored in every bundle.
    description : str
        One line for listings and help texts.
    forcings : tuple of str
        Forcing variables the model reads, in order (names of the data reader's catalogue).
    step_seconds : int
        Time step of the model's output series [s] (daily for all δ models: the networks and
        the loss see days; netCDF time units).
    physics_steps : tuple of int
        Time steps [s] at which the process model can step, dividing a day; the first is the
        default. A physics section chooses one (:meth:`physics_step`: its
        ``physics_step_seconds``); hourly steps run through :mod:`delta_core.subdaily`, with
        daily forcing spread by the section's within-day ``pattern``.
    variables : tuple of Variable
        Every variable of the model, declared once: the output series of ``module(batch)``
        (:attr:`outputs`; must contain ``streamflow``), the BMI core's named arrays and the BMI
        variables (:mod:`delta_core.bmi.variables`).
    network_config, physics_config : dataclass types
        Typed ``network`` and ``physics`` sections of a run config (defaults = the paper's).
    build : Builder
        Model constructor.
    flow_components : tuple of str
        Outputs that add up to ``streamflow`` (plots; ``baseflow`` gives the baseflow index).
    default_bundle : Path or None
        The pretrained bundle shipped with the model package.
    bmi_class : str or None
        Its NextGen BMI component as ngen's ``python_type`` (``"bmi_dhbv.BmiDHBV"``).
    calibration_target : str or None
        ``"module:Class"`` of its process model with parameters given directly, a
        :class:`delta_core.baselines.calibration.CalibrationTarget` (the per-basin DDS baseline).
    raw_attributes : tuple of str
        Catchment attributes the model needs as raw values besides the encoded network input
        (e.g. soil texture for a texture-table prior): served as ``batch["raw_attr"]`` [B, R]
        in this order, whatever the run's ``data.attributes``; the built module must carry the
        same tuple as its attribute ``raw_attributes``. Empty for most models.
    commands : mapping of str to str
        The model's own subcommands of ``delta`` besides train, eval and demo (``"realization"``,
        ``"export"``): name -> ``"module:function"`` of a ``function(argv, prog)`` that parses
        ``argv`` (usage shown as ``prog``) and returns the exit code.
    """

    name: str
    description: str
    forcings: tuple[str, ...]
    step_seconds: int
    variables: tuple[Variable, ...]
    network_config: type
    physics_config: type
    build: Builder
    flow_components: tuple[str, ...] = ()
    default_bundle: Path | None = None
    bmi_class: str | None = None
    calibration_target: str | None = None
    raw_attributes: tuple[str, ...] = ()
    commands: Mapping[str, str] = field(default_factory=dict, hash=False)
    physics_steps: tuple[int, ...] = (86400,)

    def __post_init__(self) -> None:
        names = [o.name for o in self.outputs]
        if "streamflow" not in names:
            raise ValueError(f"model {self.name}: outputs must include 'streamflow'")
        unknown = [c for c in self.flow_components if c not in names]
        if unknown:
            raise ValueError(f"model {self.name}: flow_components {unknown} are not outputs")
        if not self.physics_steps or any(86400 % int(t) for t in self.physics_steps):
            raise ValueError(f"model {self.name}: physics_steps {self.physics_steps} must be "
                             f"time steps [s] that divide a day")
        for cls in (self.network_config, self.physics_config):
            if not dataclasses.is_dataclass(cls):
                raise TypeError(f"model {self.name}: {cls!r} must be a dataclass")

    @property
    def outputs(self) -> tuple[Variable, ...]:
        """Output series of ``module(batch)`` (the :attr:`Variable.series` variables)."""
        return tuple(v for v in self.variables if v.series)

    @property
    def output_units(self) -> dict[str, tuple[str, str]]:
        """``{output name: (units, long name)}``."""
        return {o.name: (o.units, o.long_name) for o in self.outputs}

    @property
    def baseflow_output(self) -> str | None:
        """The output holding baseflow, if the model has one."""
        return "baseflow" if "baseflow" in self.flow_components else None

    def load_bmi_class(self) -> type:
        """The BMI component class named by :attr:`bmi_class`."""
        import importlib

        if self.bmi_class is None:
            raise ValueError(f"model {self.name} has no BMI component")
        module, _, cls = self.bmi_class.rpartition(".")
        return getattr(importlib.import_module(module), cls)

    def load_command(self, name: str) -> Callable:
        """The function of the model's subcommand ``name`` (:attr:`commands`)."""
        import importlib

        if name not in self.commands:
            raise ValueError(f"model {self.name} has no command {name!r}")
        module, _, fn = self.commands[name].partition(":")
        return getattr(importlib.import_module(module), fn)

    def load_calibration_target(self) -> type:
        """The class named by :attr:`calibration_target`."""
        import importlib

        if self.calibration_target is None:
            raise ValueError(f"model {self.name} has no calibration target")
        module, _, cls = self.calibration_target.partition(":")
        return getattr(importlib.import_module(module), cls)

    def physics_section(self, physics: Mapping | Any, where: str = "config.physics") -> Any:
        """The validated :attr:`physics_config` of a mapping (or the instance itself); a
        mapping of an older bundle with flat within-day keys is read as it was trained
        (:meth:`delta_core.patterns.WithinDay.from_physics`, the config class's
        ``LEGACY_WITHIN_DAY``)."""
        from delta_core.config import section
        from delta_core.patterns import WithinDay

        legacy = getattr(self.physics_config, "LEGACY_WITHIN_DAY", None)
        if legacy is not None and isinstance(physics, Mapping):
            try:
                physics = WithinDay.from_physics(dict(physics), legacy)
            except ValueError as exc:
                from delta_core.config import ConfigError

                raise ConfigError(f"{where}: {exc}") from None
        return section(self.physics_config, physics, where)

    def physics_step(self, physics: Any) -> int:
        """The physics step [s] of a validated physics section: its ``physics_step_seconds``
        (the first of :attr:`physics_steps` where it declares none), one of
        :attr:`physics_steps`."""
        step = int(getattr(physics, "physics_step_seconds", self.physics_steps[0]))
        if step not in self.physics_steps:
            raise ValueError(f"model {self.name}: physics step {step} s is not one of "
                             f"{list(self.physics_steps)}")
        return step

    def build_model(self, physics: Mapping | Any, network: Mapping | Any, n_attributes: int,
                    engine: Engine | None = None) -> torch.nn.Module:
        """Build the model from config sections (dicts are validated into the dataclasses), in
        the engine's dtype; the module carries its physics step [s] as ``physics_step_seconds``
        (:meth:`physics_step`)."""
        from delta_core.config import section

        engine = engine or Engine()
        phys = self.physics_section(physics, f"{self.name} physics")
        step = self.physics_step(phys)
        net = section(self.network_config, network, f"{self.name} network")
        model = self.build(phys, net, n_attributes, engine).to(engine.dtype)
        model.physics_step_seconds = step
        return model
