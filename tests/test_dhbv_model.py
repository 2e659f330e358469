"""dHBV-specific model tests (the generic contract runs in test_generic_models.py): the LSTM
stepped one day at a time equals the sequence, and the δn(NNr) option (NN recharge)."""
import numpy as np
import pytest
import torch

from bmi_dhbv.model import FORCING_NAMES, SPEC
from delta_core.data.camels import CamelsDataset
from delta_core.inputs import Normalization, build_inputs
from delta_core.networks import get_network
from delta_core.spec import Engine

SMALL_NET = {"static_hidden": 16, "dynamic_hidden": 8}


@pytest.fixture(scope="module")
def sample_inputs():
    ds = CamelsDataset()
    ids = ds.basin_ids()[:3]
    ts = ds.load(ids, "1990-01-01", "1990-04-30")
    names = ["p_mean", "aridity", "frac_snow", "geol_1st_class"]
    norm = Normalization.fit(ds, ids, names, ts, FORCING_NAMES)
    return norm, build_inputs(ts, ds.attributes(ids, names), norm)


def _batch(inputs, dtype=torch.float64):
    return {"forcing": torch.tensor(inputs.forcing, dtype=dtype),
            "x_attr": torch.tensor(inputs.x_attr, dtype=dtype),
            "x_forcing": torch.tensor(inputs.x_forcing, dtype=dtype), "warmup": 0}


def test_lstm_stepping_equals_sequence():
    net = get_network("lstm")(5, 3).double()
    x = torch.randn(10, 2, 5, dtype=torch.float64)
    full, _ = net(x)
    state, steps = None, []
    for t in range(10):
        y, state = net(x[t:t + 1], state)
        steps.append(y)
    torch.testing.assert_close(torch.cat(steps), full, rtol=1e-12, atol=1e-12)


def test_nn_recharge_trains_conserves_water_and_is_torch_only(sample_inputs):
    from bmi_dhbv import hbv

    _, inputs = sample_inputs
    physics = {"n_components": 2, "nn_recharge": True}
    model = SPEC.build_model(physics, SMALL_NET, inputs.x_attr.shape[1],
                             Engine("torch", torch.float64)).eval()
    batch = _batch(inputs)
    out = model(batch)
    out["streamflow"].sum().backward()
    grads = [p.grad for p in model.recharge_net.parameters()]
    assert all(g is not None and torch.any(g != 0) for g in grads)
    # water balance with the NN recharge (before routing)
    p = batch["forcing"][..., 0]
    q = out["streamflow_unrouted"].sum(0)
    s0 = hbv.total_storage(hbv.cold_states(3, 2, torch.float64))
    resid = p.sum(0) - q - out["et"].sum(0) - (hbv.total_storage(out["final_states"]) - s0)
    assert torch.all(resid.abs() <= 1e-9 * p.sum(0))
    cpp = SPEC.build_model(physics, SMALL_NET, inputs.x_attr.shape[1],
                           Engine("cpp", torch.float64))
    with pytest.raises(ValueError, match="only supported by backend='torch'"):
        cpp(batch)


def test_training_mode_skips_stores(sample_inputs):
    """Stores are collected for evaluation, not in training (the loss needs streamflow only)."""
    _, inputs = sample_inputs
    model = SPEC.build_model({"n_components": 2}, SMALL_NET, inputs.x_attr.shape[1],
                             Engine("torch", torch.float64))
    assert "soil_moisture" not in model.train()(_batch(inputs))
    out = model.eval()(_batch(inputs))
    assert out["soil_moisture"].shape == out["streamflow"].shape
