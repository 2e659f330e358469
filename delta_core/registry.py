"""Registry of δ models by name: ``name -> "module:ATTRIBUTE"`` of the model's
:class:`~delta_core.spec.ModelSpec`, imported on first use.

Model packages register through the entry-point group :data:`ENTRY_POINT_GROUP` of their
distribution's metadata, e.g. in ``pyproject.toml``::

    [project.entry-points."delta_models"]
    mymodel = "bmi_mymodel.model:SPEC"

so a new model package edits no file of ``delta_core``; every shared command, the training loop,
evaluation and the generic tests then pick it up. Code that is not installed as a distribution
(a test's toy model) calls :func:`register` instead. Listing the names imports no model.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from delta_core.spec import ModelSpec

#: Entry-point group in which model packages declare their ModelSpec.
ENTRY_POINT_GROUP = "delta_models"

#: This package's own models, as its pyproject.toml declares them in :data:`ENTRY_POINT_GROUP`;
#: registered also where the distribution's metadata is not installed (a source-tree run).
BUILTIN_MODELS: dict[str, str] = {"dhbv": "bmi_dhbv.model:SPEC", "dcfe": "bmi_dcfe.model:SPEC",
                                  "dlgar": "bmi_lgar.model:SPEC",
                                  "lstm": "delta_core.baselines.lstm:SPEC"}


def discover() -> dict[str, str]:
    """The built-in models and those of the installed entry points (which win on a clash).

    Returns
    -------
    dict of str to str
        Model name -> ``"module:attribute"`` of its ModelSpec.
    """
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**BUILTIN_MODELS, **found}


#: model name -> "module:attribute" of its ModelSpec.
MODELS: dict[str, str] = discover()

_LOADED: dict[str, ModelSpec] = {}


def model_spec(name: str) -> ModelSpec:
    """The spec of model ``name``; an unknown name lists the valid ones."""
    from delta_core.spec import ModelSpec

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
