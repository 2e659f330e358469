"""dHBV-specific model tests (the generic contract runs in test_generic_models.py): the LSTM
stepped one day at a time equals the sequence, and the δn(NNr) option (NN recharge)."""
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


# -- hourly substeps (bmi_dhbv.substeps) ----------------------------------------------------
def _model(options: dict, n_attr: int, backend="cpp"):
    torch.manual_seed(3)
    return SPEC.build_model(options, SMALL_NET, n_attr, Engine(backend, torch.float64)).double().eval()


def test_substep_rules_and_hourly_unit_hydrograph():
    from bmi_dhbv import substeps
    from delta_core.routing import gamma_unit_hydrograph, gamma_unit_hydrograph_substeps

    k = torch.tensor([[0.05, 0.5, 0.9]], dtype=torch.float64)
    par = substeps.substep_parameters({"K0": k, "K1": k, "K2": k, "PERC": k * 10,
                                       "CFMAX": k * 4, "FC": k * 100}, 24)
    for name in ("K0", "K1", "K2"):  # a store without inflow drains as in one daily step
        torch.testing.assert_close(1.0 - (1.0 - par[name]) ** 24, k, rtol=1e-13, atol=0)
    torch.testing.assert_close(par["PERC"] * 24, k * 10, rtol=1e-15, atol=0)
    torch.testing.assert_close(par["CFMAX"] * 24, k * 4, rtol=1e-15, atol=0)
    assert torch.equal(par["FC"], k * 100)
    a, b = torch.tensor([0.3, 1.5, 2.8], dtype=torch.float64), torch.tensor([0.2, 2.0, 6.0],
                                                                           dtype=torch.float64)
    assert torch.equal(gamma_unit_hydrograph_substeps(a, b, 1, 15), gamma_unit_hydrograph(a, b, 15))
    uh = gamma_unit_hydrograph_substeps(a, b, 24, 15)
    assert uh.shape == (3, 360)
    torch.testing.assert_close(uh.sum(1), torch.ones(3, dtype=torch.float64), rtol=1e-14, atol=0)
    # hour 24 k carries daily ordinate k's density: the hourly and daily shapes agree
    daily = gamma_unit_hydrograph(a, b, 15)
    torch.testing.assert_close(uh[:, ::24] / uh[:, ::24].sum(1, keepdim=True), daily,
                               rtol=1e-12, atol=0)


def test_hourly_mode_conserves_water_and_lags_dynamic_parameters(sample_inputs):
    """steps_per_day 24: daily sums of hourly HBV close the water balance; with the one-day lag
    day d's flow does not depend on day d's LSTM input; cpp equals torch."""
    _, inputs = sample_inputs
    batch = _batch(inputs)
    opts = {"n_components": 3, "steps_per_day": 24, "dynamic_lag_days": 1}
    n_attr = batch["x_attr"].shape[1]
    cpp, ref = _model(opts, n_attr), _model(opts, n_attr, "torch")
    out, out_t = cpp(batch), ref(batch)
    for k in ("streamflow", "et", "soil_moisture", "BETA"):
        torch.testing.assert_close(out[k], out_t[k], rtol=1e-10, atol=1e-12)
    p = batch["forcing"][..., 0]
    s0 = 5 * 0.001  # cold stores
    storage = out["swe"][-1] + out["soil_moisture"][-1] + out["upper_zone"][-1] + out["lower_zone"][-1]
    resid = p.sum(0) - out["et"].sum(0) - out["streamflow_unrouted"].sum(0) - (storage - s0)
    assert resid.abs().max().item() < 1e-9 * p.sum(0).max().item()
    changed = dict(batch, x_forcing=batch["x_forcing"].clone())
    changed["x_forcing"][40] += 2.0
    moved = cpp(changed)
    assert torch.equal(moved["BETA"][:41], out["BETA"][:41])
    assert not torch.equal(moved["BETA"][41], out["BETA"][41])
    daily = _model({"n_components": 3}, n_attr)(batch)
    rel = (out["streamflow"].sum() - daily["streamflow"].sum()).abs() / daily["streamflow"].sum()
    assert 0 < rel.item() < 0.2  # a different model, the same water
