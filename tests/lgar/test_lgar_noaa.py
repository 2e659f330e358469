"""``dlgar-realization --engine noaa``: every catchment's learned LGAR parameters as an LGAR-C
config and soil table; read back by the LGAR-C config reader the BMI uses, they give the bundle's
parameter set exactly, and our engine runs both front for front to the same outputs."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from bmi_lgar.forcing import Forcing
from bmi_lgar.lgar_config import read_lgar_config
from bmi_lgar.model import DEFAULT_BUNDLE
from bmi_lgar.noaa import parameters_from_files
from bmi_lgar.realization import main
from bmi_lgar.runner import run_lgar
from delta_core.evaluation import load_model
from delta_core.ngen.noaa import encode_attributes

BASINS = ["01022500", "03439000", "06224000"]
HOURS = 24 * 15


@pytest.fixture
def libraries(tmp_path):
    libs = tmp_path / "lib"
    libs.mkdir()
    for name in ("liblasambmi.so", "libslothmodel.so"):
        (libs / name).write_bytes(b"")
    return libs


def noaa_args(libs, out, *extra) -> list[str]:
    return ["--camels", *BASINS, "--out", str(out), "--start", "2000-01-01 00:00:00",
            "--end", "2000-01-15 23:00:00", "--engine", "noaa",
            "--noaa-library", str(libs / "liblasambmi.so"),
            "--noaa-sloth-library", str(libs / "libslothmodel.so"),
            "--noaa-pet-column", "pet", "--noaa-without-snow", *extra]


def storm_forcing() -> Forcing:
    """Hourly rain bursts (up to 30 mm/h) and a daytime PET cycle, 15 days."""
    rng = np.random.default_rng(1)
    rain = np.where(rng.random(HOURS) < 0.08, rng.gamma(1.0, 8.0, HOURS), 0.0)
    hour = np.arange(HOURS) % 24
    pet = 0.3 * np.maximum(np.sin(np.pi * (hour - 6) / 12), 0.0)
    return Forcing([str(i) for i in range(HOURS)], rain, pet)


def bundle_parameters(sample, gid: str):
    """The parameter set the BMI computes for sample basin ``gid`` under the shipped bundle."""
    model, norm, _ = load_model(DEFAULT_BUNDLE, dtype=torch.float64)
    need = list(norm.attributes.names) + [n for n in model.raw_attributes
                                          if n not in norm.attributes.names]
    attrs = {k: v[0] for k, v in sample.attributes([gid], need).items()}
    x = torch.as_tensor(encode_attributes(attrs, norm, gid), dtype=torch.float64)[None]
    raw = torch.tensor([[float(attrs[n]) for n in model.raw_attributes]], dtype=torch.float64)
    return model.lgar_parameters(x, raw)[0]


def test_exported_files_give_the_bundle_parameters_and_the_same_run(libraries, tmp_path,
                                                                    sample):
    out = tmp_path / "out"
    assert main(noaa_args(libraries, out)) == 0
    forcing = storm_forcing()
    ks = set()
    for gid in BASINS:
        config = out / "config" / f"cat-{gid}_lgar.txt"
        from_files = parameters_from_files(config, out)
        direct = bundle_parameters(sample, gid)
        for a, b in zip(from_files.layers, direct.layers):  # names differ (no spaces in C)
            assert dataclasses.replace(a, name="") == dataclasses.replace(b, name="")
        assert dataclasses.replace(from_files, layers=direct.layers, source="") == \
            dataclasses.replace(direct, source="")
        assert read_lgar_config(config, out).soil_params_file == \
            out / "config" / f"cat-{gid}_soil.dat"
        a = run_lgar(from_files.to_config(), forcing, HOURS)
        b = run_lgar(direct.to_config(), forcing, HOURS)
        assert max(len(f) for f in b.fronts) > 3  # the storms made wetting fronts
        for fa, fb in zip(a.fronts, b.fronts):
            np.testing.assert_array_equal(fa, fb)
        for k in b.variables:
            np.testing.assert_array_equal(a.variables[k], b.variables[k], err_msg=f"{gid} {k}")
        assert b.variables["total_discharge"].sum() > 0
        ks.add(direct.layers[0].ks)
    assert len(ks) == len(BASINS)


def test_realization_runs_lgar_c_after_sloth(libraries, tmp_path):
    out = tmp_path / "out"
    assert main(noaa_args(libraries, out)) == 0
    multi = json.loads((out / "realization.json").read_text())["global"]["formulations"][0]
    sloth, lgar = multi["params"]["modules"]
    p = lgar["params"]
    assert lgar["name"] == "bmi_c++" and p["create_function"] == "bmi_model_create"
    assert p["init_config"] == "./config/{{id}}_lgar.txt"
    assert p["main_output_variable"] == multi["params"]["main_output_variable"] == \
        "total_discharge"
    assert p["variables_names_map"] == {"precipitation_rate": "precip_rate",
                                        "potential_evapotranspiration_rate": "pet",
                                        "soil_temperature_profile": "soil_temperature_profile"}
    assert list(sloth["params"]["model_params"]) == ["soil_temperature_profile(1,double,K,node)"]
    text = (out / "config" / "cat-01022500_lgar.txt").read_text()
    assert "soil_params_file=./config/cat-01022500_soil.dat\n" in text
    assert "adaptive_timestep=false" in text and "endtime=360[hr]" in text
    soil = (out / "config" / "cat-01022500_soil.dat").read_text().splitlines()
    assert len(soil) == 4 and all(" " not in row.split("\t")[0] for row in soil[1:])


def test_bundle_none_is_refused(libraries, tmp_path, capsys):
    assert main(noaa_args(libraries, tmp_path / "out", "--bundle", "none")) == 2
    assert "not --bundle none" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
