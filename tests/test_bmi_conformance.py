"""CSDMS BMI conformance suite (bmi-tester) on BmiDHBV, hourly and daily configurations.

bmi-tester does not exercise set_value, get_value_at_indices, get_value_ptr, update_until or
the type/itemsize agreement ngen relies on: tests/test_bmi.py covers those.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("bmi_tester", reason="bmi-tester is not installed "
                    "(pip install bmi-tester 'gimli.units<0.4')")

from test_bmi import make_random_bundle  # noqa: E402  (tests/ is on sys.path under pytest)


@pytest.mark.parametrize("mode", [
    {"time_step_seconds": 3600},
    {"time_step_seconds": 86400, "n_steps": 10, "pet_source": "input", "backend": "torch"},
], ids=["hourly", "daily-pet-input-torch"])
def test_bmi_tester(tmp_path, mode):
    from delta_core.config import RunConfig
    from delta_core.data.camels import CamelsDataset

    try:
        import gimli.units  # noqa: F401
    except ImportError:
        pytest.skip("gimli.units is not installed: bmi-tester would silently skip unit checks")
    bundle = make_random_bundle(tmp_path / "bundle.pt", n_components=2, dynamic_hidden=8,
                                static_hidden=16)
    ds = CamelsDataset()
    attrs = {k: v[0] for k, v in ds.attributes(["01022500"], RunConfig().data.attributes).items()}
    stage = tmp_path / "stage"
    stage.mkdir()
    cfg = {"bundle": str(bundle), "attributes": attrs, "latitude": 44.6, "area_km2": 587.7,
           "start_time": "2015-12-01 00:00:00", **mode}
    (stage / "config.yaml").write_text(yaml.safe_dump(cfg))
    exe = shutil.which("bmi-test") or str(Path(sys.executable).parent / "bmi-test")
    import bmi_dhbv

    # the folder bmi_dhbv was imported from here (site-packages when installed, else the repo)
    pkg_root = str(Path(bmi_dhbv.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([exe, "bmi_dhbv:BmiDHBV", "--root-dir", str(stage), "--config-file",
                          "config.yaml"], cwd=stage, env=env, capture_output=True, text=True,
                         timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    assert " failed" not in out and "passed" in out, out[-6000:]
