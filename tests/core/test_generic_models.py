"""Contract tests of every registered model (``model_name`` runs over the registry, the toy model
included): spec, forward on a batch, bundle round trip, config validation, training with resume,
evaluation output. Plus the loss and network registries."""
from __future__ import annotations

import dataclasses

import netCDF4
import numpy as np
import pytest
import torch

from delta_core.bundle import load_bundle
from delta_core.config import ConfigError, RunConfig
from delta_core.data.camels import FORCING_VARIABLES
from delta_core.evaluation import evaluate_model, load_model
from delta_core.losses import LOSSES
from delta_core.networks import NETWORKS, get_network
from delta_core.registry import MODELS, model_spec


def test_spec_is_consistent(model_name):
    spec = model_spec(model_name)
    assert spec.step_seconds > 0
    assert set(spec.forcings) <= set(FORCING_VARIABLES)
    assert all(o.units and o.long_name for o in spec.outputs)
    if spec.bmi_class is not None:  # a δ model ships a BMI bound to it; baselines need not
        assert spec.load_bmi_class().MODEL == spec.name
    assert spec.physics_steps and all(86400 % t == 0 for t in spec.physics_steps)


def test_physics_step_is_declared_and_checked(model_name, sample_batch):
    """A built model carries its physics step, one of the spec's; an hourly one spreads its
    forcing by a within-day pattern, a daily one has none."""
    spec = model_spec(model_name)
    model, _ = sample_batch(model_name)
    step = model.physics_step_seconds
    assert step in spec.physics_steps
    assert (getattr(model, "pattern", None) is not None) == (step < 86400)
    if hasattr(spec.physics_section({}), "physics_step_seconds"):  # else the spec's first
        other = tuple(t for t in (86400, 3600, 1800) if t != spec.physics_steps[0])
        with pytest.raises(ValueError, match="s is not one of"):
            dataclasses.replace(spec, physics_steps=other).build_model({}, {}, 3)
    with pytest.raises(ValueError, match="divide a day"):
        dataclasses.replace(spec, physics_steps=(7000,))


def test_forward_shapes_finite_and_backend_bound(model_name, sample_batch):
    model, batch = sample_batch(model_name)
    out = model(batch)
    n_steps = batch["forcing"].shape[0] - batch["warmup"]
    names = [o.name for o in model_spec(model_name).outputs]
    for k, v in out.items():
        if k == "final_states":
            continue
        assert k in names, f"{k} is not a declared output"
        assert v.shape == (n_steps, 3) and torch.all(torch.isfinite(v)), k
    assert torch.all(out["streamflow"] >= 0)
    assert model.engine.backend == "torch"


def test_gradients_reach_every_network_weight(model_name, sample_batch):
    model, batch = sample_batch(model_name)
    model.train()
    model(batch)["streamflow"].sum().backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n


def test_bundle_round_trip_is_exact(model_name, random_bundle, sample_batch):
    model, batch = sample_batch(model_name)
    b = load_bundle(random_bundle(model_name))
    loaded, norm, _ = load_model(b, dtype=torch.float64, backend="torch")
    fresh = load_model(b, dtype=torch.float64, backend="torch")[0]
    assert norm.forcing.names == list(model_spec(model_name).forcings)
    x = {**batch, "x_attr": torch.zeros(3, len(norm.attributes.feature_names),
                                        dtype=torch.float64)}
    assert torch.equal(loaded(x)["streamflow"], fresh(x)["streamflow"])
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, b["state_dict"][k].to(v.dtype)), k


def test_unknown_config_keys_are_named(model_name):
    spec = model_spec(model_name)
    with pytest.raises(ConfigError, match="valid"):
        RunConfig.from_dict({"model": model_name, "network": {"no_such_size": 3}})
    with pytest.raises(ConfigError, match="valid"):
        RunConfig.from_dict({"model": model_name, "physics": {"no_such_option": 1}})
    cfg = RunConfig.from_dict({"model": model_name})
    assert isinstance(cfg.network, spec.network_config)
    assert RunConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


def test_unknown_model_lists_valid():
    with pytest.raises(ValueError, match="valid:.*dhbv"):
        model_spec("hbv96")
    with pytest.raises(ConfigError, match="dhbv"):
        RunConfig.from_dict({"model": "hbv96"})


def _tiny_config(name, run_dir, epochs=2):
    net = {f.name: 8 for f in dataclasses.fields(model_spec(name).network_config)
           if "hidden" in f.name}
    return RunConfig.from_dict({
        "model": name, "run_dir": str(run_dir), "network": net,
        "data": {"basins": ["01022500", "03439000"], "train_start": "1981-01-01",
                 "train_end": "1982-12-31", "test_start": "1983-01-01", "test_end": "1983-06-30",
                 "attributes": ["p_mean", "aridity", "frac_snow"]},
        "training": {"epochs": epochs, "batch_basins": 2, "window_days": 120, "warmup_days": 60,
                     "backend": "cpp", "dtype": "float64", "learning_rate": 0.5}})


@pytest.mark.slow
def test_training_resumes_exactly_and_writes_bundle(model_name, tmp_path):
    from delta_core.training import train

    full = train(_tiny_config(model_name, tmp_path / "a"), progress=False)
    cfg = _tiny_config(model_name, tmp_path / "b")
    assert train(cfg, progress=False, max_epochs=1).name == "checkpoint.pt"
    resumed = train(cfg, progress=False)
    a, b = load_bundle(full), load_bundle(resumed)
    assert a["model"] == model_name and np.isfinite(a["metrics"]["median_nse"])
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    log = np.loadtxt(tmp_path / "a" / "training_log.csv", delimiter=",", skiprows=1)
    assert log.shape[0] == 2 and np.all(np.isfinite(log[:, 1]))


def test_evaluation_writes_declared_outputs(model_name, random_bundle, sample, tmp_path):
    spec = model_spec(model_name)
    res = evaluate_model(random_bundle(model_name), sample, ["01022500", "03439000"],
                         "1990-10-01", "1991-09-30", out_dir=tmp_path)
    assert res["n_basins"] == 2 and np.isfinite(res["median_nse"])
    assert ("bfi_sim" in res["rows"][0]) == (spec.baseflow_output is not None)
    with netCDF4.Dataset(tmp_path / "simulation.nc") as nc:
        t = nc["time"]
        assert t.units.startswith({86400: "days", 3600: "hours"}[spec.step_seconds])
        assert len(t) == 365 and t[1] - t[0] == 1
        for o in spec.outputs:
            if o.name in res["simulation"]["outputs"]:
                assert nc[o.name].units == o.units
    assert (tmp_path / "metrics.csv").read_text().startswith("gauge_id,nse,kge")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_contract(name):
    obs = torch.tensor([[1.0, np.nan], [2.0, 0.5], [0.0, 0.7]])
    sim = torch.tensor([[1.5, 3.0], [1.0, 0.4], [0.2, 0.9]], requires_grad=True)
    std = torch.tensor([0.8, 0.3]) if LOSSES[name].needs_basin_std else None
    loss = LOSSES[name](sim, obs, 0.25, basin_std=std)
    loss.backward()
    assert torch.isfinite(loss) and float(loss.detach()) > 0
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


def test_registry_lists_the_toy_and_dhbv():
    assert {"dhbv", "toy"} <= set(MODELS)
