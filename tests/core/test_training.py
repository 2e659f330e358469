"""dHBV training and evaluation end to end: config validation (unquoted ids, periods), bundle
contents, run provenance and tampering, training (loss decreases, Ctrl-C and resume, changed
config refused), evaluation outputs and warnings, the dhbv-* CLIs. The model-generic contract
(bundle round trip, resume equals an uninterrupted run) runs in test_generic_models.py."""
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch

from delta_core.bundle import BundleError, load_bundle
from delta_core.config import ConfigError, RunConfig
from delta_core.data.camels import CamelsDataset
from delta_core.evaluation import evaluate_model
from delta_core.training import train

from conftest import REPO

TINY = {
    "model": "dhbv",
    "data": {"basins": ["01022500", "03439000", "06224000"], "train_start": "1981-10-01",
             "train_end": "1983-09-30"},
    "physics": {"n_components": 2},
    "network": {"static_hidden": 16, "dynamic_hidden": 8},
    "training": {"epochs": 2, "batch_basins": 3, "window_days": 60, "warmup_days": 30,
                 "backend": "cpp", "optimizer": "adam", "learning_rate": 0.01},
}


def tiny_config(tmp_path, name="run", **training):
    d = {**TINY, "run_dir": str(tmp_path / name),
         "training": {**TINY["training"], **training}}
    return RunConfig.from_dict(d)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    return train(tiny_config(tmp_path_factory.mktemp("tiny")), progress=False)


def test_unknown_config_key_rejected(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model: dhbv\ntraining:\n  epochs: 3\n  learnig_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"learnig_rate.*valid:.*learning_rate"):
        RunConfig.from_yaml(f)
    with pytest.raises(ConfigError, match="must be an integer"):
        RunConfig.from_dict({"model": "dhbv", "training": {"epochs": "many"}})


def test_unquoted_gauge_ids_in_yaml_get_a_hint(tmp_path):
    f = tmp_path / "c.yaml"
    for text in ("[01022500]", "[01022500, 03439000]", "\n    - 01022500"):
        f.write_text(f"model: dhbv\ndata:\n  basins: {text}\n")
        with pytest.raises(ConfigError, match="quote them in YAML.*'01022500'"):
            RunConfig.from_yaml(f)
    # a single unquoted id: the number 271680
    f.write_text("model: dhbv\ndata:\n  basins: 01022500\n")
    with pytest.raises(ConfigError, match="quote gauge ids in YAML"):
        RunConfig.from_yaml(f)
    f.write_text("model: dhbv\ndata:\n  basins: ['01022500']\n")
    assert RunConfig.from_yaml(f).data.basins == ["01022500"]


def test_model_is_required_unless_the_command_names_it():
    with pytest.raises(ConfigError, match="model is required.*dhbv"):
        RunConfig.from_dict({"physics": {}})
    cfg = RunConfig.from_dict({}, model="dcfe")
    assert cfg.model == "dcfe" and cfg.run_dir == "runs/dcfe"
    assert RunConfig.from_dict({"model": "dhbv"}, model="dcfe").model == "dhbv"


def test_bad_periods_are_named():
    with pytest.raises(ConfigError, match="train_start .* is after"):
        RunConfig.from_dict({"model": "dhbv",
                             "data": {"train_start": "1990-01-01", "train_end": "1985-01-01"}})
    with pytest.raises(ConfigError, match="ISO date"):
        RunConfig.from_dict({"model": "dhbv", "data": {"test_end": "2010-13-40"}})


def test_validation_period_and_schedule_are_checked():
    base = {"model": "dhbv", "data": {"train_end": "1992-09-30"}}
    ok = RunConfig.from_dict({**base, "data": {"train_end": "1992-09-30",
                                               "validation_start": "1992-10-01",
                                               "validation_end": "1995-09-30"}})
    assert ok.data.validation == ("1992-10-01", "1995-09-30")
    for period, what in ((("1990-10-01", "1993-09-30"), "train"),
                         (("1993-10-01", "1996-09-30"), "test")):
        with pytest.raises(ConfigError, match=f"overlaps the {what} period"):
            RunConfig.from_dict({**base, "data": {"train_end": "1992-09-30",
                                                  "validation_start": period[0],
                                                  "validation_end": period[1]}})
    with pytest.raises(ConfigError, match="give both or neither"):
        RunConfig.from_dict({**base, "data": {"validation_start": "1992-10-01"}})
    with pytest.raises(ConfigError, match="patience needs a validation period"):
        RunConfig.from_dict({**base, "training": {"patience": 3}})
    with pytest.raises(ConfigError, match="lr_schedule must map epochs"):
        RunConfig.from_dict({**base, "training": {"lr_schedule": {0: 0.1}}})
    tc = RunConfig.from_dict({**base, "training": {"learning_rate": 0.01,
                                                   "lr_schedule": {5: 0.001, 3: 0.005}}}).training
    assert [tc.learning_rate_at(e) for e in (1, 2, 3, 4, 5, 9)] == [0.01, 0.01, 0.005, 0.005,
                                                                  0.001, 0.001]


def test_validation_keeps_the_best_epoch_and_patience_stops(tmp_path, monkeypatch):
    """Scored after each epoch on the validation period; with scores falling after epoch 1 and
    patience 2 the run stops after epoch 3 and its bundle holds epoch 1's weights."""
    import csv

    import delta_core.training as T

    val = {**TINY["data"], "validation_start": "1983-10-01", "validation_end": "1984-09-30"}
    d = {**TINY, "data": val, "training": {**TINY["training"], "epochs": 5, "patience": 2,
                                           "lr_schedule": {2: 0.001}}}
    one = RunConfig.from_dict({**d, "run_dir": str(tmp_path / "one")})
    T.train(one, progress=False, max_epochs=1)
    epoch1 = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=False)["model"]
    real, scores = T.validation_score, iter([0.5, 0.4, 0.3, 0.9, 0.9])
    recomputed = []

    def falling(cfg, data, model, *a, **k):
        recomputed.append(real(cfg, data, model, *a, **k))
        return next(scores)

    monkeypatch.setattr(T, "validation_score", falling)
    cfg = RunConfig.from_dict({**d, "run_dir": str(tmp_path / "run")})
    b = load_bundle(T.train(cfg, progress=False))
    v = b["provenance"]["validation"]
    assert (v["selected_epoch"], v["score"], v["stopped_early"]) == (1, 0.5, True)
    assert b["provenance"]["epochs_run"] == 3
    assert all(torch.equal(b["state_dict"][k], epoch1[k]) for k in epoch1)
    with open(tmp_path / "run" / "training_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["validation_nse"]) for r in rows] == [0.5, 0.4, 0.3]
    assert [float(r["learning_rate"]) for r in rows] == [0.01, 0.001, 0.001]
    assert all(np.isfinite(recomputed)) and len(recomputed) == 3
    monkeypatch.setattr(T, "validation_score", real)
    _, data = T.prepare_training_data(cfg)
    from delta_core.evaluation import load_model

    m, _, _ = load_model(b)
    assert T.validation_score(cfg, data, m, torch.float32) == pytest.approx(recomputed[0],
                                                                              abs=1e-6)


def test_bundle_contents(tiny_bundle):
    b = load_bundle(tiny_bundle)
    assert b["model"] == "dhbv"
    assert b["provenance"]["train_period"] == ["1981-10-01", "1983-09-30"]
    assert b["provenance"]["basins"] == TINY["data"]["basins"]
    assert "git_commit" in b["provenance"] and len(b["provenance"]["history"]) == 2
    assert np.isfinite(b["metrics"]["median_nse"])
    assert "p_mean" in b["normalization"]["attributes"]["names"]
    import csv

    with open(tiny_bundle.parent / "test_metrics.csv") as f:  # the per-basin test scores
        rows = list(csv.DictReader(f))
    assert len(rows) == b["metrics"]["n_basins"]
    # the CSV writes 6 significant digits (write_metrics_csv), so compare at that precision
    median_csv = np.median([float(r["nse"]) for r in rows])
    assert median_csv == pytest.approx(b["metrics"]["median_nse"], rel=1e-5, abs=1e-6)
    # weights_only loading is what load_bundle uses; it must hold no pickled code
    torch.load(tiny_bundle, weights_only=True)


def test_run_info_records_provenance(tiny_bundle):
    """run_info.yaml names the code that ran (version, location, commit only for a checkout) and,
    after the run, the checksum of the bundle it wrote."""
    import yaml

    import delta_core

    info = yaml.safe_load((tiny_bundle.parent / "run_info.yaml").read_text())
    assert info["bundle_checksum"] == load_bundle(tiny_bundle)["checksum"]
    assert info["package_version"] == delta_core.__version__
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'version = "{info["package_version"]}"' in pyproject  # one version, two places
    pkg = Path(delta_core.__file__).resolve().parent
    assert info["package_path"] == str(pkg)
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "provenance.py"], cwd=pkg,
                             capture_output=True).returncode == 0
    if tracked:  # run from a source checkout: its HEAD (+dirty when edited)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pkg, capture_output=True,
                              text=True).stdout.strip()
        assert info["git_commit"] in (head, head + "+dirty")
    else:
        assert info["git_commit"].startswith("none")


def test_installed_copy_claims_no_commit(tmp_path):
    """The installed package (site-packages, even in a .venv inside a clone) reports no commit."""
    code = ("import json, delta_core.provenance as p; "
            "print(json.dumps(p.code_provenance()))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"the package is not installed in this interpreter: {res.stderr[-300:]}")
    prov = json.loads(res.stdout)
    if Path(prov["package_path"]) == REPO / "delta_core":
        pytest.skip("the interpreter imports the source tree (editable install)")
    assert prov["git_commit"].startswith("none (installed package"), prov
    assert prov["package_version"] == importlib.metadata.version("ngen-delta-models")


def test_truncated_bundle_refused(tiny_bundle, tmp_path):
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(tiny_bundle.read_bytes()[:2000])
    with pytest.raises(BundleError, match="unreadable"):
        load_bundle(bad)


def test_tampered_bundle_refused(tiny_bundle, tmp_path):
    b = torch.load(tiny_bundle, weights_only=True)
    name = next(iter(b["state_dict"]))
    b["state_dict"][name] = b["state_dict"][name] + 1e-3
    bad = tmp_path / "tampered.pt"
    torch.save(b, bad)
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(bad)
    b = torch.load(tiny_bundle, weights_only=True)
    b["format_version"] = 99
    torch.save(b, bad)
    with pytest.raises(BundleError, match="version 99"):
        load_bundle(bad)


def test_loss_decreases(tmp_path):
    cfg = tiny_config(tmp_path, epochs=6)
    train(cfg, progress=False)
    hist = np.loadtxt(tmp_path / "run" / "training_log.csv", delimiter=",", skiprows=1)[:, 1]
    assert hist[-2:].mean() < hist[:2].mean(), hist


def test_ctrl_c_says_how_to_resume(tmp_path, monkeypatch):
    """A KeyboardInterrupt in the second epoch becomes TrainingInterrupted with a resume hint,
    and rerunning resumes from the checkpoint of epoch 1 to the uninterrupted result."""
    import delta_core.training as T

    full = train(tiny_config(tmp_path, "full"), progress=False)
    calls = {"n": 0}
    real = T.sample_batch

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == T.iterations_per_epoch(cfg, data) + 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    cfg = tiny_config(tmp_path, "split")
    _, data = T.prepare_training_data(cfg)
    monkeypatch.setattr(T, "sample_batch", interrupting)
    with pytest.raises(T.TrainingInterrupted, match="rerun the same command to resume"):
        train(cfg, progress=False)
    monkeypatch.setattr(T, "sample_batch", real)
    resumed = train(cfg, progress=False)
    a, b = load_bundle(full)["state_dict"], load_bundle(resumed)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_a_different_config_is_refused(tmp_path):
    cfg = tiny_config(tmp_path, "r")
    train(cfg, progress=False, max_epochs=1)
    changed = tiny_config(tmp_path, "r", learning_rate=0.1)
    with pytest.raises(ValueError, match="training.learning_rate"):
        train(changed, progress=False)
    more = tiny_config(tmp_path, "r", epochs=3)  # more epochs: allowed
    assert train(more, progress=False, max_epochs=1).name == "checkpoint.pt"


def test_evaluation_writes_metrics_and_netcdf(tiny_bundle, tmp_path):
    ds = CamelsDataset()
    res = evaluate_model(tiny_bundle, ds, ["01022500", "12010000"], "2000-10-01", "2001-09-30",
                         backend="torch", out_dir=tmp_path)
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    for col in ("gauge_id", "nse", "kge", "fhv", "flv", "bfi_sim"):
        assert col in header
    with netCDF4.Dataset(tmp_path / "simulation.nc") as nc:
        assert nc.dimensions["time"].size == 365 and nc.dimensions["basin"].size == 2
        assert nc["streamflow"].units == "mm d-1" and nc["swe"].units == "mm"
        assert list(nc["gauge_id"][:]) == ["01022500", "12010000"]
        np.testing.assert_allclose(nc["streamflow"][:], res["simulation"]["outputs"]["streamflow"],
                                   rtol=1e-6)
        for v in ("qobs", "et", "baseflow", "soil_moisture", "upper_zone", "lower_zone", "BETA"):
            assert v in nc.variables


def test_overlapping_test_period_warns(tiny_bundle):
    ds = CamelsDataset()
    with pytest.warns(UserWarning, match="overlaps the bundle's training period"):
        evaluate_model(tiny_bundle, ds, ["01022500"], "1983-01-01", "1983-12-31", backend="torch")
    with pytest.raises(ValueError, match="before start"):
        evaluate_model(tiny_bundle, ds, ["01022500"], "1990-01-01", "1989-12-31")


@pytest.mark.slow
def test_spinup_gives_same_result_as_longer_run(tiny_bundle):
    """Evaluation spins up from the first day of data, whatever --start is."""
    ds = CamelsDataset()
    a = evaluate_model(tiny_bundle, ds, ["01022500"], "2000-10-01", "2000-12-31", backend="torch")
    b = evaluate_model(tiny_bundle, ds, ["01022500"], "2000-01-01", "2000-12-31", backend="torch")
    np.testing.assert_allclose(a["simulation"]["outputs"]["streamflow"][:, 0],
                               b["simulation"]["outputs"]["streamflow"][-92:, 0], rtol=1e-5)


@pytest.mark.parametrize("cmd", ["dhbv-train", "dhbv-eval", "dhbv-demo"])
def test_cli_help(cmd):
    mod = {"dhbv-train": "train_main", "dhbv-eval": "eval_main", "dhbv-demo": "demo_main"}[cmd]
    out = subprocess.run([sys.executable, "-c", f"from bmi_dhbv.cli import {mod}; {mod}(['--help'])"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "usage" in out.stdout


def test_cli_eval_and_bad_bundle(tiny_bundle, tmp_path):
    from bmi_dhbv.cli import eval_main

    ids = tmp_path / "ids.txt"
    ids.write_text("01022500\n# comment\n08023080\n")
    with pytest.raises(SystemExit) as e:
        eval_main(["--bundle", str(tiny_bundle), "--basins", str(ids), "--start", "2005-10-01",
                   "--end", "2006-09-30", "--out", str(tmp_path / "ev"), "--backend", "torch"])
    assert e.value.code == 0
    assert len((tmp_path / "ev" / "metrics.csv").read_text().splitlines()) == 3
    for basins in ("01022500", "01022500,03439000"):
        with pytest.raises(SystemExit) as e:
            eval_main(["--bundle", str(tiny_bundle), "--basins", basins, "--start", "2005-10-01",
                       "--end", "2005-12-31", "--out", str(tmp_path / basins), "--threads", "1"])
        assert e.value.code == 0
        rows = (tmp_path / basins / "metrics.csv").read_text().splitlines()[1:]
        assert [r.split(",")[0] for r in rows] == basins.split(",")
    with pytest.raises(SystemExit) as e:
        eval_main(["--bundle", str(tiny_bundle), "--basins", "99999999", "--out",
                   str(tmp_path / "x")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:  # data end is 2010-09-30
        eval_main(["--bundle", str(tiny_bundle), "--basins", "01022500", "--end", "2010-10-01",
                   "--out", str(tmp_path / "y")])
    assert e.value.code == 2
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a bundle")
    with pytest.raises(SystemExit) as e:
        eval_main(["--bundle", str(bad), "--out", str(tmp_path / "ev2")])
    assert e.value.code == 2


def test_fine_tuning_starts_from_the_bundle(tiny_bundle, tmp_path):
    """training.init_from: the run starts from the bundle's weights and normalisation (0
    optimizer steps -> the same model), records it, and refuses a bundle that does not fit."""
    from delta_core.training import _load_init_weights, init_bundle, prepare_training_data
    from delta_core.spec import Engine

    cfg = tiny_config(tmp_path, "ft", init_from=str(tiny_bundle), epochs=1)
    b = init_bundle(cfg)
    _, data = prepare_training_data(cfg)
    assert data.norm.to_dict() == b["normalization"]
    model = cfg.spec.build_model(cfg.physics, cfg.network, data.inputs.x_attr.shape[1],
                                 Engine("cpp", torch.float32))
    _load_init_weights(cfg, model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, b["state_dict"][k]), k
    out = train(cfg, progress=False)
    assert load_bundle(out)["provenance"]["init_from"]["checksum"] == b["checksum"]
    wrong = RunConfig.from_dict({**TINY, "run_dir": str(tmp_path / "w"),
                                 "network": {"static_hidden": 32, "dynamic_hidden": 8},
                                 "training": {**TINY["training"], "init_from": str(tiny_bundle)}})
    with pytest.raises(ValueError, match="do not fit the configured networks"):
        train(wrong, progress=False)


def test_refit_records_the_validation_that_chose_its_epochs(tmp_path):
    """training.refit_validation (a refit on all training years, no validation period) is
    checked and recorded as the bundle's validation; with a validation period it is refused."""
    record = {"run": "configs/x.yaml", "period": ["1983-10-01", "1984-09-30"],
              "selected_epoch": 1, "score": 0.5}
    out = train(tiny_config(tmp_path, "refit", epochs=1, refit_validation=record),
                progress=False)
    v = load_bundle(out)["provenance"]["validation"]
    assert {k: v[k] for k in record} == record and "refit" in v
    with pytest.raises(ConfigError, match="refit_validation.selected_epoch must be a int"):
        tiny_config(tmp_path, refit_validation={**record, "selected_epoch": "49"})
    with pytest.raises(ConfigError, match="must map exactly"):
        tiny_config(tmp_path, refit_validation={"selected_epoch": 1})
    with pytest.raises(ConfigError, match="refit without a validation period"):
        RunConfig.from_dict({**TINY, "data": {**TINY["data"], "validation_start": "1983-10-01",
                                              "validation_end": "1984-09-30"},
                             "training": {**TINY["training"], "refit_validation": record}})


def test_non_finite_gradient_stops_training(tmp_path, monkeypatch):
    """A NaN loss or gradient stops the run with a message before it reaches the weights."""
    import dataclasses

    import delta_core.training as training

    real = training.get_loss

    def poisoned(name):
        loss = real(name)
        return dataclasses.replace(loss, combine=lambda p, a: loss.combine(p, a) * float("nan"))

    monkeypatch.setattr(training, "get_loss", poisoned)
    with pytest.raises(FloatingPointError, match="non-finite in epoch 1, iteration 1.*float64"):
        train(tiny_config(tmp_path), progress=False)


def test_skip_nonfinite_skips_batches_and_logs_them(tmp_path, monkeypatch):
    """With training.skip_nonfinite, a poisoned batch leaves the weights alone and is counted;
    more poisoned batches in a row than allowed still stop the run."""
    import csv
    import dataclasses

    import delta_core.training as training

    real, calls = training.get_loss, []

    def poison_first(name):
        loss = real(name)

        def combine(p, a):
            calls.append(1)
            return loss.combine(p, a) * (float("nan") if len(calls) == 1 else 1.0)
        return dataclasses.replace(loss, combine=combine)

    monkeypatch.setattr(training, "get_loss", poison_first)
    cfg = tiny_config(tmp_path, skip_nonfinite=1)
    train(cfg, progress=False)
    with open(tmp_path / "run" / "training_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["skipped"]) for r in rows] == [1] + [0] * (len(rows) - 1)
    assert all(np.isfinite(float(r["loss"])) for r in rows)

    def poisoned(name):
        loss = real(name)
        return dataclasses.replace(loss, combine=lambda p, a: loss.combine(p, a) * float("nan"))

    monkeypatch.setattr(training, "get_loss", poisoned)
    with pytest.raises(FloatingPointError, match="iteration 3.*after 2 skipped"):
        train(tiny_config(tmp_path, "all_bad", skip_nonfinite=2), progress=False)
