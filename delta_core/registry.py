"""Registry of δ models by name. Each entry points to a builder
``build_model(physics: dict, network: dict, n_attributes: int) -> nn.Module`` whose module
forward follows the δ-model contract::

    out = model(forcing[T, B, 3], x_attr[B, A], x_forcing[T, B, 3], warmup_days, backend)
    out["streamflow"]  # [T - warmup_days, B], mm/day

and which declares ``FORCING_NAMES`` and ``OUTPUTS`` (name -> (units, long name)).
"""
from __future__ import annotations

import importlib
from types import ModuleType

#: model name -> module defining ``build_model``, ``FORCING_NAMES`` and ``OUTPUTS``.
MODELS: dict[str, str] = {"dhbv": "bmi_dhbv.model"}


def model_module(name: str) -> ModuleType:
    """The module implementing model ``name``; an unknown name lists the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {sorted(MODELS)}")
    return importlib.import_module(MODELS[name])
