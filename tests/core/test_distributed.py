"""Data-parallel training (torchrun, gloo, 2 CPU processes) equals single-process training, for
every registered model; plus the device option."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import TESTS
from delta_core.bundle import load_bundle
from delta_core.config import ConfigError, RunConfig
from delta_core.distributed import Context, resolve_device
from test_generic_models import _tiny_config


def _config_file(name, run_dir, path, **training):
    cfg = _tiny_config(name, run_dir).to_dict()
    cfg["data"]["basins"] = ["01022500", "03439000", "06224000"]
    cfg["training"].update(batch_basins=3, **training)
    if "dropout" in cfg["network"]:  # dropout masks are drawn per process: not comparable
        cfg["network"]["dropout"] = 0.0
    path.write_text(yaml.safe_dump(cfg))
    return path


def _torchrun(module: str, config, n: int = 2) -> subprocess.CompletedProcess:
    import delta_core

    root = os.path.dirname(os.path.dirname(os.path.abspath(delta_core.__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(TESTS), root]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={n}", "-m", module, "--config", str(config), "--no-progress"]
    run = lambda: subprocess.run(cmd, env=env, capture_output=True, text=True,  # noqa: E731
                                 timeout=600, cwd=os.path.dirname(os.path.abspath(config)))
    res = run()
    # gloo's threads sometimes abort a rank at process exit, after the run has finished and
    # written its files ("terminate called without an active exception", seen once under a
    # loaded 2-core CI): run again once (the run resumes from its files and gives the same)
    if res.returncode != 0 and "terminate called without an active exception" in res.stderr:
        res = run()
    return res


@pytest.mark.slow
def test_two_processes_train_the_same_weights_as_one(model_name, tmp_path):
    """Two epochs on 2 processes give one process's weights; the toy model's 2-process run is
    interrupted after epoch 1 and resumed (resuming is model-agnostic: once is enough, and each
    torchrun costs the models' start-up twice)."""
    from delta_core.training import train

    single = train(RunConfig.from_yaml(_config_file(model_name, tmp_path / "one",
                                                    tmp_path / "one.yaml")), progress=False)
    module = "delta_core.training" if model_name != "toy" else "toy_model"
    resume = model_name == "toy"
    cfg = _config_file(model_name, tmp_path / "two", tmp_path / "two.yaml",
                       **({"epochs": 1} if resume else {}))
    res = _torchrun(module, cfg)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    if resume:
        _config_file(model_name, tmp_path / "two", cfg)  # 2 epochs: resume the 2-process run
        res = _torchrun(module, cfg)
        assert res.returncode == 0 and "resuming" in res.stdout, (res.stdout[-3000:]
                                                                  + res.stderr[-3000:])
    a, b = load_bundle(single), load_bundle(tmp_path / "two" / "bundle.pt")
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-9, atol=1e-12, msg=k)
    assert [h["processes"] for h in b["provenance"]["history"]] == [2, 2]
    assert b["metrics"]["median_nse"] == pytest.approx(a["metrics"]["median_nse"], abs=1e-6)


def test_shares_cover_the_batch_once():
    for world in (1, 2, 3, 7):
        shares = [Context(r, world).share(10) for r in range(world)]
        assert [i for s in shares for i in range(10)[s]] == list(range(10))


def test_device_option():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="cpu"):
        RunConfig.from_dict({"model": "dhbv", "training": {"device": "tpu"}})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
