"""Model inputs from a data directory: raw forcing, normalised forcing and encoded attributes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from delta_core.data.camels import FORCING_VARIABLES, BasinTimeseries, CamelsDataset
from delta_core.normalization import AttributeEncoder, ForcingNormalizer


@dataclass
class Normalization:
    """Attribute encoder and forcing normaliser fitted on the training basins and period.

    ``forcing.names`` are the model's forcing variables in order (its spec's ``forcings``).
    """

    attributes: AttributeEncoder
    forcing: ForcingNormalizer

    @classmethod
    def fit(cls, dataset: CamelsDataset, ids: list[str], attribute_names: list[str],
            ts_train: BasinTimeseries, forcing_names) -> "Normalization":
        names = list(forcing_names)
        enc = AttributeEncoder.fit(dataset.attributes(ids, attribute_names))
        skewed = [n for n in names if FORCING_VARIABLES[n].skewed]
        norm = ForcingNormalizer.fit(ts_train.forcing(names), names, log_vars=skewed)
        return cls(enc, norm)

    def to_dict(self) -> dict:
        return {"attributes": self.attributes.to_dict(), "forcing": self.forcing.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(AttributeEncoder.from_dict(d["attributes"]), ForcingNormalizer.from_dict(d["forcing"]))


@dataclass
class ModelInputs:
    """Arrays for B basins over T steps.

    Attributes
    ----------
    forcing : ndarray [T, B, F]
        Raw forcing, the normaliser's variables in order, in their catalogue units.
    x_forcing : ndarray [T, B, F]
        Normalised forcing.
    x_attr : ndarray [B, n_features]
        Encoded attributes.
    qobs : ndarray [T, B]
        Observed streamflow [mm/day] (NaN where missing).
    raw_attr : ndarray [B, R] or None
        Raw values of the model's ``raw_attributes`` (see
        :attr:`delta_core.spec.ModelSpec.raw_attributes`); None if it declares none.
    """

    forcing: np.ndarray
    x_forcing: np.ndarray
    x_attr: np.ndarray
    qobs: np.ndarray
    raw_attr: np.ndarray | None = None

    def batch(self, steps, basins, warmup: int, dtype: torch.dtype) -> dict:
        """A model :class:`~delta_core.spec.Batch` of the given steps ``[T]`` or ``[T, B]``
        (indices) and basins ``[B]``."""
        to = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)  # noqa: E731
        basins = np.asarray(basins)
        steps = np.asarray(steps)
        rows = steps if steps.ndim == 2 else steps[:, None]
        idx = (rows, basins[None, :])
        out = {"forcing": to(self.forcing[idx]), "x_forcing": to(self.x_forcing[idx]),
               "x_attr": to(self.x_attr[basins]), "warmup": int(warmup)}
        if self.raw_attr is not None:
            out["raw_attr"] = to(self.raw_attr[basins])
        return out


def raw_attribute_array(dataset, ids: list[str], names) -> np.ndarray | None:
    """Raw values [B, R] of the attributes ``names`` (a model's ``raw_attributes``) of basins
    ``ids``; None when ``names`` is empty.

    Raises
    ------
    ValueError
        An attribute is missing or not a number for some basin (names the attribute and basin).
    """
    names = list(names)
    if not names:
        return None
    values = dataset.attributes(ids, names)
    out = np.empty((len(ids), len(names)))
    for j, name in enumerate(names):
        for i, gid in enumerate(ids):
            try:
                out[i, j] = float(values[name][i])
            except (TypeError, ValueError):
                raise ValueError(f"attribute {name} of basin {gid} is not a number: "
                                 f"{values[name][i]!r} (the model reads it raw)") from None
    return out


def build_inputs(ts: BasinTimeseries, raw_attributes: dict[str, list[str]],
                 norm: Normalization, raw_attr: np.ndarray | None = None) -> ModelInputs:
    """Assemble :class:`ModelInputs` from a loaded timeseries and raw attributes
    (``raw_attr``: the model's raw attribute array, :func:`raw_attribute_array`)."""
    forcing = ts.forcing(norm.forcing.names)
    return ModelInputs(forcing, norm.forcing.transform(forcing),
                       norm.attributes.transform(raw_attributes, ts.gauge_ids), ts.qobs,
                       raw_attr)
