"""dHBV test helpers shared by the dHBV-specific test files."""
from __future__ import annotations

import torch

from bmi_dhbv.model import SPEC
from delta_core.bundle import save_bundle
from delta_core.config import RunConfig
from delta_core.data.camels import CamelsDataset
from delta_core.inputs import Normalization
from delta_core.spec import Engine


def make_random_bundle(path, n_components=4, dynamic_hidden=16, static_hidden=32, seed=0):
    """A bundle of a randomly initialised dHBV with normalisation fitted on the 5-basin sample."""
    cfg = RunConfig.from_dict({"model": "dhbv", "physics": {"n_components": n_components},
                               "network": {"static_hidden": static_hidden,
                                           "dynamic_hidden": dynamic_hidden}})
    ds = CamelsDataset()
    ids = ds.basin_ids()
    ts = ds.load(ids, end="1985-09-30")
    norm = Normalization.fit(ds, ids, cfg.data.attributes,
                             ts.slice_dates("1980-10-01", "1985-09-30"), SPEC.forcings)
    torch.manual_seed(seed)
    model = SPEC.build_model(cfg.physics, cfg.network, len(norm.attributes.feature_names),
                             Engine("torch"))
    return save_bundle(path, model="dhbv", state_dict=model.state_dict(), config=cfg.to_dict(),
                       normalization=norm.to_dict(), provenance={"note": "random test bundle"})
