"""Contract tests parametrised over the registries, so a new model, network or loss is tested
automatically; plus the δn(NNr) option of dHBV."""
import numpy as np
import pytest
import torch

from delta_core.bundle import save_bundle
from delta_core.config import NetworkConfig
from delta_core.data.camels import CamelsDataset
from delta_core.evaluation import load_model
from delta_core.inputs import Normalization, build_inputs
from delta_core.losses import LOSSES
from delta_core.networks import NETWORKS, get_network
from delta_core.registry import MODELS, model_module

SMALL_NET = {**NetworkConfig().__dict__, "static_hidden": 16, "dynamic_hidden": 8}


@pytest.fixture(scope="module")
def sample_inputs():
    ds = CamelsDataset()
    ids = ds.basin_ids()[:3]
    ts = ds.load(ids, "1990-01-01", "1990-04-30")
    names = ["p_mean", "aridity", "frac_snow", "geol_1st_class"]
    norm = Normalization.fit(ds, ids, names, ts)
    return norm, build_inputs(ts, ds.attributes(ids, names), norm)


def _tensors(inputs, dtype=torch.float64):
    return (torch.tensor(inputs.forcing, dtype=dtype), torch.tensor(inputs.x_attr, dtype=dtype),
            torch.tensor(inputs.x_forcing, dtype=dtype))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract_and_bundle_roundtrip(name, sample_inputs, tmp_path):
    norm, inputs = sample_inputs
    module = model_module(name)
    assert "streamflow" in module.OUTPUTS and len(module.FORCING_NAMES) == 3
    physics = {"n_components": 2}
    model = module.build_model(physics, SMALL_NET, inputs.x_attr.shape[1]).double()
    out = model(*_tensors(inputs), warmup_days=30, backend="torch")
    assert out["streamflow"].shape == (inputs.forcing.shape[0] - 30, 3)
    for k, (units, _) in module.OUTPUTS.items():
        assert k in out and torch.all(torch.isfinite(out[k])), k
        assert units
    path = save_bundle(tmp_path / "b.pt", model=name, state_dict=model.state_dict(),
                       config={"physics": physics, "network": SMALL_NET},
                       normalization=norm.to_dict(), provenance={})
    loaded, norm2, _ = load_model(path, dtype=torch.float64)
    out2 = loaded(*_tensors(inputs), warmup_days=30, backend="torch")
    assert torch.equal(out["streamflow"], out2["streamflow"])
    assert norm2.attributes.feature_names == norm.attributes.feature_names


def test_unknown_model_lists_valid():
    with pytest.raises(ValueError, match="valid:.*dhbv"):
        model_module("hbv96")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_contract(name):
    obs = torch.tensor([[1.0, np.nan], [2.0, 0.5], [0.0, 0.7]])
    sim = torch.tensor([[1.5, 3.0], [1.0, 0.4], [0.2, 0.9]], requires_grad=True)
    loss = LOSSES[name](sim, obs, 0.25)
    loss.backward()
    assert torch.isfinite(loss) and float(loss) > 0
    assert torch.all(torch.isfinite(sim.grad)) and sim.grad[0, 1] == 0  # NaN obs masked


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_contract(name):
    net = get_network(name)(5, 7)
    x = torch.randn(4, 3, 5) if name == "lstm" else torch.randn(3, 5)
    y = net(x)
    y = y[0] if isinstance(y, tuple) else y
    assert y.shape[-1] == 7
    with pytest.raises(ValueError, match="valid"):
        get_network("transformer")


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
    from bmi_dhbv import hbv, kernel

    _, inputs = sample_inputs
    model = model_module("dhbv").build_model({"n_components": 2, "nn_recharge": True}, SMALL_NET,
                                             inputs.x_attr.shape[1]).double()
    forcing, x_attr, x_forcing = _tensors(inputs)
    out = model(forcing, x_attr, x_forcing, backend="torch")
    out["streamflow"].sum().backward()
    grads = [p.grad for p in model.recharge_net.parameters()]
    assert all(g is not None and torch.any(g != 0) for g in grads)
    # water balance with the NN recharge (before routing)
    p = forcing[..., 0]
    q = out["streamflow_unrouted"].sum(0)
    s0 = hbv.total_storage(hbv.cold_states(3, 2, torch.float64))
    resid = p.sum(0) - q - out["et"].sum(0) - (hbv.total_storage(out["final_states"]) - s0)
    assert torch.all(resid.abs() <= 1e-9 * p.sum(0))
    with pytest.raises(Exception, match="torch"):
        model(forcing, x_attr, x_forcing, backend="cpp")
    assert "cpp" in kernel.BACKENDS
