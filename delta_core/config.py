"""Typed run configuration, read from YAML with every key validated.

Unknown keys are rejected with the list of valid ones; the ``physics`` section is model-specific
and is validated by the model's options class. The resolved config is written, with the package
version and git commit, into every run directory.
"""
from __future__ import annotations

import dataclasses
import subprocess
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
    basins: str | list[str] | None = None  # None: all; a file of ids; a list; or a subset name
    train_start: str = "1980-10-01"
    train_end: str = "1995-09-30"
    test_start: str = "1995-10-01"
    test_end: str = "2010-09-30"
    attributes: list[str] = field(default_factory=lambda: list(CAMELS_ATTRIBUTES))


@dataclass
class NetworkConfig:
    """Sizes of the parameter networks."""

    static_hidden: int = 256
    static_layers: int = 2
    dynamic_hidden: int = 64
    dropout: float = 0.0


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
    threads: int | None = None  # torch intra-op threads; None: torch default


@dataclass
class RunConfig:
    """A whole training run."""

    model: str = "dhbv"
    run_dir: str = "runs/dhbv"
    data: DataConfig = field(default_factory=DataConfig)
    physics: dict[str, Any] = field(default_factory=dict)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return _build(cls, d, "config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RunConfig":
        try:
            d = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(d, dict):
            raise ConfigError(f"config {path} must be a mapping, got {type(d).__name__}")
        return cls.from_dict(d)


def _build(cls, d: dict, where: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping, got {d!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid: {sorted(fields)}")
    kwargs = {}
    for name, value in d.items():
        ftype = fields[name].type
        sub = {"DataConfig": DataConfig, "NetworkConfig": NetworkConfig,
               "TrainingConfig": TrainingConfig}.get(ftype if isinstance(ftype, str) else "")
        if sub is not None:
            kwargs[name] = _build(sub, value, f"{where}.{name}")
        else:
            kwargs[name] = _check_type(value, ftype, f"{where}.{name}")
    return cls(**kwargs)


def _check_type(value, ftype: str, where: str):
    if value is None:
        if "None" in ftype:
            return None
        raise ConfigError(f"{where} must not be empty")
    base = ftype.split("|")[0].strip()
    if base == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if base == "str" and "list" not in ftype and not isinstance(value, str):
        return str(value)  # YAML reads dates as date objects
    return value


def git_commit(path: str | Path | None = None) -> str:
    """Commit hash of the source tree holding ``path`` (or 'unknown')."""
    here = Path(path or __file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
