"""Weight bundles: one file holding everything needed to run a trained δ model.

A bundle is a plain dict saved with ``torch.save`` and loaded with ``torch.load(weights_only=True)``
(tensors, numbers, strings, lists, dicts only: no pickled code). It carries a format version and a
SHA-256 checksum over its content, so a truncated or tampered file is refused with a clear error.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch

BUNDLE_FORMAT = "ngen-delta-models/bundle"
BUNDLE_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "model", "state_dict", "config", "normalization",
                 "provenance", "metrics", "checksum")


class BundleError(ValueError):
    """Raised for an unreadable, truncated, tampered or incompatible bundle."""


def _checksum(bundle: dict[str, Any]) -> str:
    h = hashlib.sha256()
    meta = {k: v for k, v in bundle.items() if k not in ("state_dict", "checksum")}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for name in sorted(bundle["state_dict"]):
        t = bundle["state_dict"][name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def save_bundle(path: str | Path, *, model: str, state_dict: dict[str, torch.Tensor],
                config: dict, normalization: dict, provenance: dict,
                metrics: dict | None = None) -> Path:
    """Write a bundle atomically (temporary file, then rename)."""
    bundle = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "model": model,
              "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
              "config": config, "normalization": normalization, "provenance": provenance,
              "metrics": metrics or {}}
    bundle["checksum"] = _checksum(bundle)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(bundle, buf)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return path


def _how_to_restore(path: Path) -> str:
    """How to get a good copy of the bundle at ``path`` back."""
    if path.resolve().parent.name == "weights":  # a bundle shipped in <package>/weights/
        return ("it ships with the package: reinstall the package (pip install "
                "--force-reinstall ngen-delta-models, or git checkout the file)")
    return "copy it again from where it was made, or retrain (<model>-train writes bundle.pt)"


def load_bundle(path: str | Path, model: str | None = None) -> dict[str, Any]:
    """Load and validate a bundle; raise :class:`BundleError` naming the problem.

    Parameters
    ----------
    path : path
        The bundle file.
    model : str, optional
        Registry name of the model the caller runs: a bundle of another model is refused.

    Returns
    -------
    dict
        The bundle (keys :data:`REQUIRED_KEYS`).
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"bundle {path} does not exist")
    try:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated zip, wrong file type, disallowed pickle content
        raise BundleError(f"bundle {path} is unreadable: truncated or not a bundle; "
                          f"{_how_to_restore(path)}") from None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} is not a {BUNDLE_FORMAT} file")
    version = bundle.get("format_version")
    if version != BUNDLE_VERSION:
        raise BundleError(f"bundle {path} has format version {version}; this package reads "
                          f"version {BUNDLE_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in bundle]
    if missing:
        raise BundleError(f"bundle {path} lacks {missing}")
    if _checksum(bundle) != bundle["checksum"]:
        raise BundleError(f"bundle {path} fails its checksum: it was modified or corrupted")
    if model is not None and bundle["model"] != model:
        raise BundleError(f"bundle {path} holds model {bundle['model']!r}, not {model!r}: give "
                          f"a {model} bundle (the shipped one or a {model} training run's "
                          f"bundle.pt)")
    return bundle


def shipped_or_given(value: str | Path, base: Path, model: str | None = None) -> Path:
    """The file a ``bundle`` value names: a path (relative to ``base``), or else the bare file
    name of a bundle shipped with ``model`` or, failing that, with any registered model (e.g.
    ``dcfe_hourly.pt``). The path returned may not exist (the caller says so)."""
    from delta_core.registry import MODELS, model_spec

    path = Path(str(value)).expanduser()
    path = path if path.is_absolute() else base / path
    if path.exists() or Path(str(value)).name != str(value):
        return path
    names = ([model] if model else []) + [m for m in MODELS if m != model]
    for name in names:
        shipped = model_spec(name).default_bundle
        if shipped is not None and (shipped.parent / str(value)).is_file():
            return shipped.parent / str(value)
    return path
