"""``dcfe-realization --engine noaa``: the learned parameters of every catchment as a C CFE
config, read back by our C CFE config reader, run our engine in C mode exactly as the bundle's
parameters do; the realization runs the C CFE (bmi_c) after SLoTH; what cannot be expressed is
refused in one line."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from bmi_dcfe import physics
from bmi_dcfe.cfe_config import CfeConfig
from bmi_dcfe.noaa import STATIC_BUNDLE
from bmi_dcfe.realization import main
from delta_core.evaluation import load_model
from delta_core.ngen.noaa import encode_attributes

#: Parameters the Schaake/GIUH configuration dCFE learns does not read (written as defaults).
UNUSED = {"xaj_a", "xaj_b", "xaj_x", "urban_fraction", "k_nash_surface", "k_infiltration",
          "retention_depth"}
BASINS = ["01022500", "03439000", "06224000", "08023080", "12010000"]


@pytest.fixture
def libraries(tmp_path):
    """Stand-in shared libraries (the writer checks that they exist; ngen loads them)."""
    libs = tmp_path / "lib"
    libs.mkdir()
    for name in ("libcfebmi.so", "libslothmodel.so"):
        (libs / name).write_bytes(b"")
    return libs


def noaa_args(libs, out, *extra) -> list[str]:
    return ["--camels", *BASINS, "--out", str(out), "--start", "2000-01-01 00:00:00",
            "--end", "2000-01-31 23:00:00", "--engine", "noaa",
            "--noaa-library", str(libs / "libcfebmi"),
            "--noaa-sloth-library", str(libs / "libslothmodel.so"),
            "--noaa-pet-column", "pet", "--noaa-without-snow", *extra]


def c_mode(options: physics.CfeOptions) -> physics.CfeOptions:
    """The C model's switches (no mass-conserving fixes)."""
    return dataclasses.replace(options, mass_conserving=False)


def test_configs_of_every_catchment_reproduce_the_engine(libraries, tmp_path, sample):
    """Each catchment's exported config, read back, gives the bundle's parameters and initial
    state bit for bit, and our engine in C mode runs them to the same outputs (atol 0)."""
    out = tmp_path / "out"
    assert main(noaa_args(libraries, out, "--bundle", str(STATIC_BUNDLE))) == 0
    model, norm, _ = load_model(STATIC_BUNDLE, dtype=torch.float64)
    names = norm.attributes.names
    g = torch.Generator().manual_seed(0)
    rain = torch.rand(240, 1, generator=g, dtype=torch.float64) * 4e-3
    rain[rain < 2e-3] = 0.0
    pet = torch.full((240, 1), 5e-8, dtype=torch.float64)
    satdk = set()
    for gid in BASINS:
        attrs = {k: v[0] for k, v in sample.attributes([gid], names).items()}
        with torch.no_grad():
            x = torch.as_tensor(encode_attributes(attrs, norm, gid))[None]
            direct = model.cfe_parameters(model.parameters_physical(x))
        config = CfeConfig.read(out / "config" / f"cat-{gid}_cfe.txt")
        from_file = config.parameters(torch.float64)
        for f in dataclasses.fields(direct):
            if f.name in UNUSED:
                continue
            torch.testing.assert_close(getattr(from_file, f.name), getattr(direct, f.name),
                                       rtol=0, atol=0, msg=f"{gid} {f.name}")
        _, a = physics.run(config.initial_state(from_file), from_file, rain, pet,
                           config.options)
        _, b = physics.run(model.initial_state(direct), direct, rain, pet,
                           c_mode(model.config.options()))
        for k in physics.OUTPUT_NAMES:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{gid} {k}")
        assert float(a[physics.OUTPUT_NAMES[0]].abs().sum()) > 0
        satdk.add(float(direct.satdk[0]))
    assert len(satdk) == len(BASINS)  # the catchments' learned parameters differ


def test_realization_runs_the_c_cfe_after_sloth(libraries, tmp_path):
    out = tmp_path / "out"
    assert main(noaa_args(libraries, out, "--bundle", str(STATIC_BUNDLE))) == 0
    r = json.loads((out / "realization.json").read_text())
    multi = r["global"]["formulations"][0]
    assert multi["name"] == "bmi_multi" and multi["params"]["main_output_variable"] == "Q_OUT"
    sloth, cfe = multi["params"]["modules"]
    assert sloth["name"] == "bmi_c++" and sloth["params"]["library_file"] == str(
        libraries / "libslothmodel.so")
    p = cfe["params"]
    assert cfe["name"] == "bmi_c" and p["registration_function"] == "register_bmi_cfe"
    assert p["library_file"] == str(libraries / "libcfebmi")
    assert p["init_config"] == "./config/{{id}}_cfe.txt"
    assert p["variables_names_map"] == {
        "atmosphere_water__liquid_equivalent_precipitation_rate": "precip_rate",
        "water_potential_evaporation_flux": "pet",
        "ice_fraction_schaake": "sloth_ice_fraction_schaake",
        "ice_fraction_xinanjiang": "sloth_ice_fraction_xinanjiang",
        "soil_moisture_profile": "sloth_smp"}
    provided = {k.split("(")[0] for k in sloth["params"]["model_params"]}
    assert provided == {"sloth_ice_fraction_schaake", "sloth_ice_fraction_xinanjiang",
                        "sloth_smp"}
    assert sorted(p.name for p in (out / "config").iterdir()) == sorted(
        f"cat-{g}_cfe.txt" for g in BASINS)
    assert "not run by the C CFE: TT" in (out / "config" / "cat-01022500_cfe.txt").read_text()


@pytest.mark.parametrize("drop, add, match", [
    ((), (), "bundle dcfe_hourly.pt has daily-dynamic parameters .* --bundle .*dcfe_static.pt"),
    (("--noaa-library",), ("--bundle", str(STATIC_BUNDLE)), "needs --noaa-library PATH"),
    (("--noaa-sloth-library",), ("--bundle", str(STATIC_BUNDLE)),
     "needs --noaa-sloth-library PATH"),
    (("--noaa-pet-column",), (), "needs --noaa-pet-column COLUMN: the C CFE takes PET"),
    (("--noaa-without-snow",), (), "has no snow routine.* --noaa-without-snow"),
    ((), ("--cold-start", "--spinup-forcing", "x.csv"), "ngen has no spin-up"),
])
def test_what_the_c_cfe_cannot_express_is_refused(libraries, tmp_path, capsys, drop, add,
                                                   match):
    """Dynamic bundles, missing libraries, PET, snow and spin-up: one line, nothing written."""
    import re

    args = noaa_args(libraries, tmp_path / "out", *add)
    for option in drop:
        i = args.index(option)
        del args[i:i + (1 if option == "--noaa-without-snow" else 2)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(match, err), err
    assert not (tmp_path / "out").exists()


def test_missing_library_and_pet_column_are_named(libraries, tmp_path, capsys):
    args = noaa_args(libraries, tmp_path / "out", "--bundle", str(STATIC_BUNDLE))
    args[args.index("--noaa-library") + 1] = str(libraries / "libnothing.so")
    assert main(args) == 2
    assert "--noaa-library " in (err := capsys.readouterr().err)
    assert "libnothing.so: no such file" in err
    forcing = tmp_path / "out2" / "forcing"
    forcing.mkdir(parents=True)
    for g in BASINS:
        (forcing / f"cat-{g}.csv").write_text(
            "time,precip_rate,TMP_2maboveground\n2000-01-01 00:00:00,0,270\n"
            "2000-02-01 00:00:00,0,270\n")
    assert main(noaa_args(libraries, tmp_path / "out2", "--bundle", str(STATIC_BUNDLE))) == 2
    assert "no column 'pet' (--noaa-pet-column)" in capsys.readouterr().err


def test_dhbv_has_no_noaa_module(tmp_path, capsys):
    from bmi_dhbv.realization import main as dhbv_main

    assert dhbv_main(["--camels", "01022500", "--out", str(tmp_path / "o"), "--start",
                      "2000-01-01", "--end", "2000-01-02", "--engine", "noaa"]) == 2
    assert "dHBV has no NOAA module" in capsys.readouterr().err


def test_table_catchments_get_their_own_configs(libraries, tmp_path, sample):
    """Catchments of an attributes table (as for hydrofabric divides): one config per id, each
    with the parameters of its own attributes."""
    import csv

    _, norm, _ = load_model(STATIC_BUNDLE, dtype=torch.float64)
    names = list(norm.attributes.names)
    table = tmp_path / "attributes.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["divide_id", "latitude", "area_km2", *names])
        for i, gid in enumerate(BASINS[:3], start=1):
            attrs = sample.attributes([gid], names)
            w.writerow([f"cat-{i}", 44.0, 50.0 * i, *(attrs[n][0] for n in names)])
    args = noaa_args(libraries, tmp_path / "out", "--bundle", str(STATIC_BUNDLE))
    args[0:1 + len(BASINS)] = ["--table", str(table)]
    assert main(args) == 0
    texts = [(tmp_path / "out" / "config" / f"cat-{i}_cfe.txt").read_text() for i in (1, 2, 3)]
    assert len({t.split("soil_params.satdk=")[1].split("[")[0] for t in texts}) == 3
    assert all(t.startswith(f"# dCFE parameters of catchment cat-{i}") for i, t in
               enumerate(texts, start=1))
