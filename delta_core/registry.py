"""Registry of δ models by name: ``name -> "module:ATTRIBUTE"`` of the model's
:class:`~delta_core.spec.ModelSpec`, imported on first use.

A new model registers itself by adding one entry here (or, for a model in another package, with
:func:`register` at import time); every shared command, the training loop, evaluation and the
generic tests then pick it up.
"""
from __future__ import annotations

import importlib

from delta_core.spec import ModelSpec

#: model name -> "module:attribute" of its ModelSpec.
MODELS: dict[str, str] = {"dhbv": "bmi_dhbv.model:SPEC", "dcfe": "bmi_dcfe.model:SPEC",
                          "dlgar": "bmi_lgar.model:SPEC",
                          "lstm": "delta_core.baselines.lstm:SPEC"}

_LOADED: dict[str, ModelSpec] = {}


def model_spec(name: str) -> ModelSpec:
    """The spec of model ``name``; an unknown name lists the valid ones."""
    if name in _LOADED:
        return _LOADED[name]
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {sorted(MODELS)}")
    module, attr = MODELS[name].split(":")
    spec = getattr(importlib.import_module(module), attr)
    if not isinstance(spec, ModelSpec) or spec.name != name:
        raise TypeError(f"{MODELS[name]} is not the ModelSpec of {name!r}")
    _LOADED[name] = spec
    return spec


def register(spec: ModelSpec, where: str | None = None) -> None:
    """Register ``spec`` under its name (``where``: its "module:attribute", for listings)."""
    MODELS[spec.name] = where or f"<registered>:{spec.name}"
    _LOADED[spec.name] = spec

