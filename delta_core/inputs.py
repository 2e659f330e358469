"""Model inputs from a data directory: raw forcing, normalised forcing and encoded attributes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from delta_core.data.camels import BasinTimeseries, CamelsDataset
from delta_core.normalization import AttributeEncoder, ForcingNormalizer

#: Names of the columns of :meth:`BasinTimeseries.forcing` (P, T, PET).
FORCING_COLUMNS = ("prcp", "tmean", "pet")


@dataclass
class Normalization:
    """Attribute encoder and forcing normaliser fitted on the training basins and period."""

    attributes: AttributeEncoder
    forcing: ForcingNormalizer

    @classmethod
    def fit(cls, dataset: CamelsDataset, ids: list[str], attribute_names: list[str],
            ts_train: BasinTimeseries) -> "Normalization":
        enc = AttributeEncoder.fit(dataset.attributes(ids, attribute_names))
        norm = ForcingNormalizer.fit(ts_train.forcing(), list(FORCING_COLUMNS))
        return cls(enc, norm)

    def to_dict(self) -> dict:
        return {"attributes": self.attributes.to_dict(), "forcing": self.forcing.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(AttributeEncoder.from_dict(d["attributes"]), ForcingNormalizer.from_dict(d["forcing"]))


@dataclass
class ModelInputs:
    """Arrays for B basins over T days.

    Attributes
    ----------
    forcing : ndarray [T, B, 3]
        P [mm/day], T [degC], PET [mm/day].
    x_forcing : ndarray [T, B, 3]
        Normalised forcing.
    x_attr : ndarray [B, n_features]
        Encoded attributes.
    qobs : ndarray [T, B]
        Observed streamflow [mm/day] (NaN where missing).
    """

    forcing: np.ndarray
    x_forcing: np.ndarray
    x_attr: np.ndarray
    qobs: np.ndarray


def build_inputs(ts: BasinTimeseries, raw_attributes: dict[str, list[str]],
                 norm: Normalization) -> ModelInputs:
    """Assemble :class:`ModelInputs` from a loaded timeseries and raw attributes."""
    forcing = ts.forcing()
    return ModelInputs(forcing, norm.forcing.transform(forcing),
                       norm.attributes.transform(raw_attributes, ts.gauge_ids), ts.qobs)
