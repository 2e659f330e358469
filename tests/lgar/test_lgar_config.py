"""LGAR-C config reader: values and units as LGAR-C reads them, clear errors on bad input."""
from __future__ import annotations

import shutil

import pytest

from bmi_lgar.lgar_config import LgarConfigError, read_lgar_config
from bmi_lgar.runner import run_lgar
from lgar_helpers import SOIL_TABLE

BASE = """verbosity=none
forcing_file=./forcing/f.csv
soil_params_file=./data/vG_default_params.dat
layer_thickness=44.0,131.0,25.0[cm]
initial_psi=2000.0[cm]
timestep=300[sec]
endtime=2[hr]
forcing_resolution=3600[sec]
ponded_depth_max=2[cm]
use_closed_form_G=true
layer_soil_type=13,14,15
max_valid_soil_types=25
wilting_point_psi=15495.0[cm]
field_capacity_psi=340.9[cm]
giuh_ordinates=0.06,0.51,0.28,0.12,0.03
"""


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "forcing").mkdir()
    shutil.copy(SOIL_TABLE, tmp_path / "data" / SOIL_TABLE.name)
    (tmp_path / "forcing" / "f.csv").write_text(
        "Time,P(mm/h),PET(mm/h)\n2016-10-01 00:00:00,5.0,0.1\n2016-10-01 01:00:00,0.0,0.2\n")
    return tmp_path


def write(folder, text, **changes):
    lines = dict(line.split("=", 1) for line in text.strip().splitlines())
    for key, value in changes.items():
        if value is None:
            lines.pop(key, None)
        else:
            lines[key] = value
    path = folder / "config.txt"
    path.write_text("\n".join(f"{k}={v}" for k, v in lines.items()) + "\n")
    return path


def test_reads_values_and_units(folder):
    cfg = read_lgar_config(write(folder, BASE))
    assert cfg.timestep_h == 300 / 3600 and cfg.forcing_resolution_h == 1.0
    assert cfg.endtime_s == 7200.0 and cfg.num_forcing_steps == 2
    assert cfg.substeps_per_forcing_step == 12
    assert cfg.layer_thickness_cm == [44.0, 131.0, 25.0]
    assert cfg.cum_layer_thickness_cm == [0.0, 44.0, 175.0, 200.0]
    assert [s.name for s in cfg.layer_soils] == ["P-1", "P-2", "P-3"]
    assert cfg.use_closed_form_g and cfg.ponded_depth_max_cm == 2.0
    assert not cfg.has_reservoir and cfg.spf_factor == 0.98
    assert cfg.giuh_per_step == [0.06, 0.51, 0.28, 0.12, 0.03]


def test_defaults_and_giuh_split(folder):
    cfg = read_lgar_config(write(folder, BASE, forcing_resolution="1800[sec]",
                                 ponded_depth_max=None, use_closed_form_G=None,
                                 timestep="30[min]", endtime="0.5[d]"))
    assert cfg.ponded_depth_max_cm == 0.0 and not cfg.use_closed_form_g
    assert cfg.timestep_h == 0.5 and cfg.endtime_s == 43200.0
    assert cfg.giuh_per_step == [0.03, 0.03, 0.255, 0.255, 0.14, 0.14, 0.06, 0.06, 0.015, 0.015]


def test_reservoir_keys(folder):
    cfg = read_lgar_config(write(folder, BASE, a="0.002", b="2.0", frac_to_GW="0.2"))
    assert cfg.has_reservoir and cfg.frac_to_cr == 0.2
    with pytest.raises(LgarConfigError, match="all together"):
        read_lgar_config(write(folder, BASE, a="0.002", b="2.0"))
    with pytest.raises(LgarConfigError, match="all together"):
        read_lgar_config(write(folder, BASE, a_slow="0.002"))
    with pytest.raises(LgarConfigError, match=r"frac_to_CR must be within \[0, 1\]"):
        read_lgar_config(write(folder, BASE, a="0.002", b="2.0", frac_to_CR="1.5"))


def test_zero_substeps_is_refused(folder):
    """LGAR-C takes int(300/3600 + 1e-8) = 0 substeps and silently does nothing."""
    with pytest.raises(LgarConfigError, match="0 substeps per forcing step"):
        read_lgar_config(write(folder, BASE, timestep="3600[sec]", forcing_resolution="300[sec]"))
    with pytest.raises(LgarConfigError, match="longer than forcing_resolution"):
        read_lgar_config(write(folder, BASE, timestep="2[hr]"))


def test_forcing_step_must_divide_an_hour(folder):
    """LGAR-C's GIUH split into int(1 h / step) copies squeezes the GIUH's time base otherwise
    (the ordinates still sum to 1); above 1 h there are no ordinates and nothing is routed."""
    for step, msg in (("7200[sec]", "= 0 steps: there are no ordinates and no runoff"),
                      ("2400[sec]", "= 1 steps of 2400 s = 40 min instead of 60: the ordinates "
                                    "still sum to 1 but the GIUH's time base is squeezed"),
                      ("420[sec]", "= 8 steps of 420 s = 56 min instead of 60")):
        with pytest.raises(LgarConfigError, match="must divide one hour") as e:
            read_lgar_config(write(folder, BASE, forcing_resolution=step, endtime="4[hr]"))
        assert msg in str(e.value) and "loses runoff" not in str(e.value)
    assert read_lgar_config(write(folder, BASE, forcing_resolution="900[sec]")).giuh_per_step[
        :4] == [0.015] * 4


def test_caching_with_sub_hourly_forcing_warns(folder):
    with pytest.warns(UserWarning, match="only with hourly forcing"):
        read_lgar_config(write(folder, BASE, forcing_resolution="1800[sec]",
                               allow_flux_caching="true"))


def test_caching_with_free_drainage_warns(folder):
    with pytest.warns(UserWarning, match="does not conserve water per step"):
        read_lgar_config(write(folder, BASE, allow_flux_caching="true",
                               free_drainage_enabled="true"))


def test_unknown_soil_type_names_valid_ones(folder):
    with pytest.raises(LgarConfigError, match=r"soil type 19 is not in the soil table; valid "
                                              r"types: 1=Clay, 2=Clay-loam"):
        read_lgar_config(write(folder, BASE, layer_soil_type="13,14,19"))
    with pytest.raises(LgarConfigError, match="soil type 0 is not"):
        read_lgar_config(write(folder, BASE, layer_soil_type="0,14,15"))
    with pytest.raises(LgarConfigError, match="soil type 14 is not"):
        read_lgar_config(write(folder, BASE, max_valid_soil_types="13"))


def test_layers_must_add_up(folder):
    with pytest.raises(LgarConfigError, match="3 layers but layer_soil_type gives 2"):
        read_lgar_config(write(folder, BASE, layer_soil_type="13,14"))
    with pytest.raises(LgarConfigError, match="at most 4"):
        read_lgar_config(write(folder, BASE, layer_thickness="10,10,10,10,10[cm]",
                               layer_soil_type="1,2,3,4,5"))
    with pytest.raises(LgarConfigError, match="must be positive"):
        read_lgar_config(write(folder, BASE, layer_thickness="10,0,10[cm]"))


@pytest.mark.parametrize("key", ["layer_soil_type", "soil_params_file", "layer_thickness",
                                 "initial_psi", "timestep", "endtime", "wilting_point_psi",
                                 "field_capacity_psi", "forcing_resolution", "giuh_ordinates"])
def test_missing_required_key(folder, key):
    with pytest.raises(LgarConfigError, match=f"does not set {key}"):
        read_lgar_config(write(folder, BASE, **{key: None}))


def test_other_bad_input(folder):
    with pytest.raises(LgarConfigError, match="unknown unit"):
        read_lgar_config(write(folder, BASE, timestep="300[fortnight]"))
    with pytest.raises(LgarConfigError, match="use_closed_form_G='yes'"):
        read_lgar_config(write(folder, BASE, use_closed_form_G="yes"))
    with pytest.raises(LgarConfigError, match="free_drainage_enabled=true"):
        read_lgar_config(write(folder, BASE, free_drainage_to_CR="true"))
    with pytest.raises(LgarConfigError, match="soil freeze-thaw coupling is not supported"):
        read_lgar_config(write(folder, BASE, sft_coupled="true"))
    with pytest.raises(LgarConfigError, match="is not a number"):
        read_lgar_config(write(folder, BASE, initial_psi="dry"))
    with pytest.raises(LgarConfigError, match="does not exist"):
        read_lgar_config(folder / "missing.txt")
    with pytest.warns(UserWarning, match="keys ignored by LGAR-C: layer_soil_typ"):
        read_lgar_config(write(folder, BASE, layer_soil_typ="1"))


def test_run_from_config_and_forcing_length(folder):
    run = run_lgar(write(folder, BASE))
    assert run.time == ["2016-10-01 00:00:00", "2016-10-01 01:00:00"]
    assert run.variables["precipitation"][0] == pytest.approx(0.005, rel=1e-14)
    with pytest.raises(LgarConfigError, match="3 forcing steps asked for"):
        run_lgar(write(folder, BASE), n_steps=3)
