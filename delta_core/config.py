"""Typed run configuration, read from YAML with every key validated.

Unknown keys are rejected with the list of valid ones. The ``network`` and ``physics`` sections are
model-specific: they are validated by the dataclasses the model's spec declares
(:attr:`delta_core.spec.ModelSpec.network_config`, ``physics_config``). The resolved config is
written, with the package version and code provenance, into every run directory.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: The 35 CAMELS attributes of the dHBV papers (Feng et al. 2022, Table A1).
CAMELS_ATTRIBUTES: list[str] = [
    "p_mean", "pet_mean", "p_seasonality", "frac_snow", "aridity", "high_prec_freq",
    "high_prec_dur", "low_prec_freq", "low_prec_dur", "elev_mean", "slope_mean", "area_gages2",
    "frac_forest", "lai_max", "lai_diff", "gvf_max", "gvf_diff", "dom_land_cover_frac",
    "dom_land_cover", "root_depth_50", "soil_depth_pelletier", "soil_depth_statsgo",
    "soil_porosity", "soil_conductivity", "max_water_content", "sand_frac", "silt_frac",
    "clay_frac", "geol_1st_class", "glim_1st_class_frac", "geol_2nd_class",
    "glim_2nd_class_frac", "carbonate_rocks_frac", "geol_porostiy", "geol_permeability",
]


class ConfigError(ValueError):
    """Raised for an invalid configuration (unknown key, bad value)."""


@dataclass
class DataConfig:
    """Which data, basins and periods (ISO dates, inclusive)."""

    root: str | None = None  # None: the sample shipped with the package
    basins: str | list[str] | None = None  # None: all; ids, a file of ids, or a subset name
    train_start: str = "1980-10-01"
    train_end: str = "1995-09-30"
    test_start: str = "1995-10-01"
    test_end: str = "2010-09-30"
    #: Validation period (ISO dates, inclusive; both or neither): scored after every epoch, the
    #: epoch with the best median NSE over the training basins is the one the bundle keeps.
    #: It must overlap neither the training nor the test period (e.g. the training period's
    #: last years, with train_end moved before them).
    validation_start: str | None = None
    validation_end: str | None = None
    attributes: list[str] = field(default_factory=lambda: list(CAMELS_ATTRIBUTES))
    #: Source of precipitation and temperature (:data:`delta_core.data.camels.FORCING_SETS`).
    forcing_set: str = "daymet"

    def __post_init__(self) -> None:
        from delta_core.data.camels import FORCING_SETS

        if self.forcing_set not in FORCING_SETS:
            raise ConfigError(f"data.forcing_set must be one of {sorted(FORCING_SETS)}, got "
                              f"{self.forcing_set!r}")
        if self.basins is not None and not isinstance(self.basins, (str, list)):
            raise ConfigError(f"data.basins must be a subset name, a file, or a list of gauge "
                              f"ids, got {self.basins!r}: quote gauge ids in YAML, e.g. "
                              f"'01022500' (an unquoted 01022500 is read as the octal number "
                              f"271680)")
        if isinstance(self.basins, list):
            ints = [b for b in self.basins if isinstance(b, int) and not isinstance(b, bool)]
            if ints:
                raise ConfigError(f"data.basins holds number(s) {ints[:5]}: gauge ids are strings "
                                  f"with leading zeros; quote them in YAML, e.g. ['01022500'] "
                                  f"(an unquoted 01022500 is read as the octal number 271680)")
        for key in ("train_start", "train_end", "test_start", "test_end"):
            _check_date(getattr(self, key), f"data.{key}")
        for a, b in (("train_start", "train_end"), ("test_start", "test_end")):
            if getattr(self, a) > getattr(self, b):
                raise ConfigError(f"data.{a} {getattr(self, a)} is after data.{b} "
                                  f"{getattr(self, b)}")
        self._check_validation()

    @property
    def validation(self) -> tuple[str, str] | None:
        """The validation period, or None."""
        return (None if self.validation_start is None
                else (self.validation_start, self.validation_end))

    def _check_validation(self) -> None:
        if (self.validation_start is None) != (self.validation_end is None):
            raise ConfigError("data.validation_start and data.validation_end go together: give "
                              "both or neither")
        if self.validation_start is None:
            return
        for key in ("validation_start", "validation_end"):
            _check_date(getattr(self, key), f"data.{key}")
            setattr(self, key, str(getattr(self, key)))
        v0, v1 = self.validation_start, self.validation_end
        if v0 > v1:
            raise ConfigError(f"data.validation_start {v0} is after data.validation_end {v1}")
        for name in ("train", "test"):
            a, b = getattr(self, f"{name}_start"), getattr(self, f"{name}_end")
            if v0 <= b and a <= v1:
                raise ConfigError(f"the validation period {v0}..{v1} overlaps the {name} period "
                                  f"{a}..{b}: choosing epochs on {name} data would flatter the "
                                  f"result")


@dataclass
class TrainingConfig:
    """Optimisation protocol (defaults: Feng et al. 2022)."""

    epochs: int = 50
    batch_basins: int = 100
    window_days: int = 365
    warmup_days: int = 365
    optimizer: str = "adadelta"
    learning_rate: float = 1.0
    loss: str = "rmse_log_combined"
    loss_alpha: float = 0.25
    seed: int = 111111
    backend: str = "cpp"
    dtype: str = "float32"
    checkpoint_every: int = 1
    grad_clip: float | None = 1.0
    #: Batches in a row whose loss or gradient is non-finite that are skipped (no weight update,
    #: counted in training_log.csv) before the run stops; 0: stop at the first.
    skip_nonfinite: int = 0
    threads: int | None = None  # torch intra-op and kernel threads; None: torch default
    device: str = "cpu"  # cpu | cuda | auto (networks and PyTorch physics; the kernel is CPU)
    #: Learning rate from an epoch on, {epoch: rate} (e.g. {21: 5.0e-4, 41: 1.0e-4}); before
    #: the first key, ``learning_rate``.
    lr_schedule: dict[int, float] | None = None
    #: Stop when the validation score has not improved for this many epochs (needs
    #: data.validation_start/end); None: run all epochs.
    patience: int | None = None
    #: A bundle whose weights and normalisation start the run (fine-tuning, e.g. a daily-trained
    #: model for another time step); same model and network sizes. None: random initialisation.
    init_from: str | None = None
    #: A refit on all the training years, without a validation period: the validation run that
    #: chose its number of epochs, ``{run: name, period: [first, last day], selected_epoch: int,
    #: score: float}``, recorded in the bundle as its validation. None: not a refit.
    refit_validation: dict | None = None

    def __post_init__(self) -> None:
        from delta_core.distributed import DEVICES
        from delta_core.spec import BACKENDS

        if self.refit_validation is not None:
            self.refit_validation = _refit_validation(self.refit_validation)

        if self.skip_nonfinite < 0:
            raise ConfigError(f"training.skip_nonfinite must be >= 0, got {self.skip_nonfinite}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"training.patience must be >= 1, got {self.patience}")
        if self.lr_schedule is not None:
            if not isinstance(self.lr_schedule, dict) or not all(
                    isinstance(k, int) and k >= 1 and isinstance(v, (int, float)) and v > 0
                    for k, v in self.lr_schedule.items()):
                raise ConfigError(f"training.lr_schedule must map epochs (integers >= 1) to "
                                  f"positive learning rates, got {self.lr_schedule!r}")
            self.lr_schedule = {int(k): float(v) for k, v in sorted(self.lr_schedule.items())}
        if self.device not in DEVICES:
            raise ConfigError(f"training.device must be one of {list(DEVICES)}, got "
                              f"{self.device!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"training.backend must be one of {list(BACKENDS)}, got "
                              f"{self.backend!r}")

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (1-based) under :attr:`lr_schedule`."""
        rate = self.learning_rate
        for start, value in (self.lr_schedule or {}).items():
            if epoch >= start:
                rate = value
        return rate


@dataclass
class RunConfig:
    """A whole training run.

    ``model`` is required (a registry name); ``run_dir`` defaults to ``runs/<model>``;
    ``network`` is the model's network-config dataclass (a dict is validated into it);
    ``physics`` stays the mapping given (what bundles store), validated by the model's
    physics-config dataclass.
    """

    model: str
    run_dir: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    physics: dict[str, Any] = field(default_factory=dict)
    network: Any = None
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def __post_init__(self) -> None:
        from delta_core.registry import model_spec

        try:
            spec = model_spec(self.model)
        except ValueError as exc:
            raise ConfigError(f"config.model: {exc}") from None
        if not isinstance(self.physics, dict):
            raise ConfigError(f"config.physics must be a mapping, got {self.physics!r}")
        spec.physics_section(self.physics)  # validates
        if self.training.patience is not None and self.data.validation is None:
            raise ConfigError("training.patience needs a validation period "
                              "(data.validation_start, data.validation_end)")
        if self.training.refit_validation is not None and self.data.validation is not None:
            raise ConfigError("training.refit_validation is for a refit without a validation "
                              "period; this run has data.validation_start/end")
        self.run_dir = self.run_dir or f"runs/{self.model}"
        if self.network is None:
            self.network = spec.network_config()
        elif not isinstance(self.network, spec.network_config):
            self.network = section(spec.network_config, self.network, "config.network")

    @property
    def spec(self):
        """The :class:`~delta_core.spec.ModelSpec` of :attr:`model`."""
        from delta_core.registry import model_spec

        return model_spec(self.model)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, model: str | None = None) -> "RunConfig":
        """The run config of mapping ``d``; ``model`` is the model where ``d`` names none."""
        from delta_core.registry import MODELS

        if isinstance(d, dict) and model is not None:
            d = {"model": model, **d}
        if isinstance(d, dict) and d.get("model") is None:
            raise ConfigError(f"config.model is required: one of {sorted(MODELS)}")
        return section(cls, d, "config")

    @classmethod
    def from_yaml(cls, path: str | Path, model: str | None = None) -> "RunConfig":
        """The run config of a YAML file (``model``: as :meth:`from_dict`)."""
        try:
            d = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(d, dict):
            raise ConfigError(f"config {path} must be a mapping, got {type(d).__name__}")
        return cls.from_dict(d, model)


def section(cls: type, d: Any, where: str):
    """Instance of dataclass ``cls`` from mapping ``d`` (or ``d`` itself if already one).

    Unknown keys raise :class:`ConfigError` listing the valid ones; values are type-checked
    against the field annotations; nested dataclass fields are built recursively.
    """
    if isinstance(d, cls):
        return d
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping, got {d!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in d.items():
        ftype = hints[name]
        if dataclasses.is_dataclass(ftype):
            kwargs[name] = section(ftype, value, f"{where}.{name}")
        else:
            kwargs[name] = _check_type(value, ftype, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_type(value, ftype, where: str):
    """Check (and lightly coerce) ``value`` against annotation ``ftype``."""
    args = typing.get_args(ftype)
    optional = type(None) in args
    if value is None:
        if optional or ftype is Any:
            return None
        raise ConfigError(f"{where} must not be empty")
    if ftype is Any:
        return value
    is_union = typing.get_origin(ftype) in (typing.Union, types.UnionType)
    base = [a for a in args if a is not type(None)] if is_union else [ftype]
    first = typing.get_origin(base[0]) or base[0]
    if first is int and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if first is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if first is bool and not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if first is str and not any((typing.get_origin(b) or b) in (list, tuple) for b in base):
        if isinstance(value, (list, dict)):
            raise ConfigError(f"{where} must be a single value, got {value!r}")
        return str(value)  # YAML reads dates as date objects
    if first in (list, tuple) and not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a list, got {value!r}")
    return value


def _check_date(value: str, where: str) -> None:
    import datetime as dt

    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where} must be an ISO date YYYY-MM-DD, got {value!r}") from None


#: Keys of ``training.refit_validation`` and their types.
REFIT_VALIDATION_KEYS = {"run": str, "period": list, "selected_epoch": int, "score": float}


def _refit_validation(value) -> dict:
    """``training.refit_validation`` checked: exactly :data:`REFIT_VALIDATION_KEYS`, a period
    of two ISO days (ConfigError naming what is wrong)."""
    if not isinstance(value, dict) or set(value) != set(REFIT_VALIDATION_KEYS):
        raise ConfigError(f"training.refit_validation must map exactly "
                          f"{sorted(REFIT_VALIDATION_KEYS)}, got {value!r}")
    for key, kind in REFIT_VALIDATION_KEYS.items():
        ok = isinstance(value[key], kind) or (kind is float and isinstance(value[key], int))
        if not ok or isinstance(value[key], bool):
            raise ConfigError(f"training.refit_validation.{key} must be a {kind.__name__}, got "
                              f"{value[key]!r}")
    period = [str(d) for d in value["period"]]
    if len(period) != 2 or not all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in period):
        raise ConfigError(f"training.refit_validation.period must be [first, last] days "
                          f"(YYYY-MM-DD), got {value['period']!r}")
    return {**value, "period": period, "score": float(value["score"])}
