"""An ensemble of bundles in one BMI instance (``bundle: [a, b]``): its runoff is the mean of the
members' runs as single BMIs, its spread output their standard deviation, its state restores
bit for bit, and it replays in a realization as ngen drives it."""
from __future__ import annotations

import numpy as np
import pytest

from delta_core.bmi.base import BmiError
from delta_core.ngen.crosswalk import PRECIP, RUNOFF_DEPTH, TEMP

SPREAD = "land_surface_water__runoff_depth_ensemble_standard_deviation"
PAIRS = {"dhbv": ["dhbv_hourly.pt", "dhbv_dynamic_hourly.pt"],
         "dcfe": ["dcfe_hourly.pt", "dcfe_static.pt"]}


def _run(bmis, hours: int, start: int = 0):
    rng = np.random.default_rng(3)
    p = np.where(rng.random(hours) < 0.15, rng.gamma(1.0, 4.0, hours), 0.0)
    t = 6.0 + 7.0 * np.sin(2 * np.pi * (np.arange(hours) - 9) / 24)
    out = {id(m): [] for m in bmis}
    for h in range(start, hours):
        for m in bmis:
            m.set_value(PRECIP, np.array([p[h]]))
            m.set_value(TEMP, np.array([t[h]]))
            m.update()
            out[id(m)].append([m.get_value(RUNOFF_DEPTH, np.zeros(1))[0],
                               m.get_value(SPREAD, np.zeros(1))[0]
                               if SPREAD in m.get_output_var_names() else np.nan])
    return [np.array(out[id(m)]) for m in bmis]


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_ensemble_is_the_mean_of_its_members(make_bmi, name, tmp_path):
    a, b = PAIRS[name]
    ens = make_bmi(name, bundle=[a, b])
    singles = [make_bmi(name, bundle=x) for x in (a, b)]
    assert SPREAD in ens.get_output_var_names() and ens.get_var_units(SPREAD) == "mm h-1"
    got, one, two = _run([ens, *singles], 96)
    np.testing.assert_allclose(got[:, 0], 0.5 * (one[:, 0] + two[:, 0]), rtol=1e-12, atol=1e-18)
    members = np.stack([one[:, 0], two[:, 0]]) * 1000.0  # m -> mm per hour
    np.testing.assert_allclose(got[:, 1], members.std(axis=0), rtol=1e-9, atol=1e-15)
    assert got[:, 1].max() > 0
    # state mid-run: restores bit for bit
    ens.save_state(tmp_path / "ens.state")
    later = _run([ens], 120, start=96)[0]
    ens.load_state(tmp_path / "ens.state")
    again = _run([ens], 120, start=96)[0]
    np.testing.assert_array_equal(later, again)


def test_ensemble_refusals(make_bmi):
    from conftest import REPO

    with pytest.raises(BmiError, match="at least 2 bundles"):
        make_bmi("dcfe", bundle=["dcfe_hourly.pt"])
    with pytest.raises(BmiError, match="the first member must be a dcfe bundle"):
        make_bmi("dcfe", bundle=["dhbv_hourly.pt", "dcfe_hourly.pt"])
    with pytest.raises(BmiError, match="step alike: their step_seconds differ"):
        make_bmi("dhbv", step=86400, bundle=["dhbv_dynamic.pt", "dhbv_static.pt",
                                             str(REPO / "bmi_dcfe" / "weights" / "dcfe_hourly.pt")])
    with pytest.raises(BmiError, match="step alike: their fields differ"):
        make_bmi("dhbv", bundle=["dhbv_hourly.pt", "dlgar_hourly.pt"])
    with pytest.raises(BmiError, match="no file 'nothing.pt'"):
        make_bmi("dhbv", bundle=["dhbv_hourly.pt", "nothing.pt"])


def test_ensemble_of_two_models(make_bmi, tmp_path):
    """dHBV and dCFE (both hourly, the same forcing fields) in one instance: the runoff is the
    mean of the two single BMIs', the spread their standard deviation; only outputs both models
    declare with the same meaning remain, and the state restores bit for bit."""
    ens = make_bmi("dhbv", bundle=["dhbv_hourly.pt", "dcfe_hourly.pt"])
    singles = [make_bmi("dhbv", bundle="dhbv_hourly.pt"), make_bmi("dcfe", bundle="dcfe_hourly.pt")]
    names = set(ens.get_output_var_names())
    assert SPREAD in names and RUNOFF_DEPTH in names
    assert names < set(singles[0].get_output_var_names()) | {SPREAD}
    assert names - {SPREAD} <= set(singles[1].get_output_var_names())
    assert not any("baseflow" in n or "interflow" in n for n in names)  # components differ
    assert len(ens.core.stores) == len(ens.core.store_values())  # named in spin-up warnings
    got, one, two = _run([ens, *singles], 96)
    np.testing.assert_allclose(got[:, 0], 0.5 * (one[:, 0] + two[:, 0]), rtol=1e-12, atol=1e-18)
    members = np.stack([one[:, 0], two[:, 0]]) * 1000.0
    np.testing.assert_allclose(got[:, 1], members.std(axis=0), rtol=1e-9, atol=1e-15)
    assert got[:, 1].max() > 0
    ens.save_state(tmp_path / "ens.state")
    later = _run([ens], 120, start=96)[0]
    ens.load_state(tmp_path / "ens.state")
    np.testing.assert_array_equal(later, _run([ens], 120, start=96)[0])


def test_ensemble_realization_replays(tmp_path):
    """realizations/camels_sample with a two-bundle ensemble, and with dHBV + dCFE: ngen's call
    sequence runs them, and the runoff is the mean of the single-bundle replays (dCFE's from
    realizations/dcfe_camels_sample, the same catchment and forcing)."""
    import shutil

    import yaml

    from conftest import REPO
    from delta_core.ngen import replay as R

    flows = {}
    for key, bundle, sample in (
            ("a", "dhbv_hourly.pt", "camels_sample"),
            ("b", "dhbv_dynamic_hourly.pt", "camels_sample"),
            ("c", "dcfe_hourly.pt", "dcfe_camels_sample"),
            ("ens", ["dhbv_hourly.pt", "dhbv_dynamic_hourly.pt"], "camels_sample"),
            ("mixed", ["dhbv_hourly.pt", "dcfe_hourly.pt"], "camels_sample")):
        real = tmp_path / key
        shutil.copytree(REPO / "realizations" / sample, real)
        cfg_path = next((real / "config").glob("*.yaml"))
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg.update(bundle=bundle, spinup_forcing=str(
            REPO / "realizations" / "camels_sample" / "spinup" / "cat-01022500.csv"))
        cfg_path.write_text(yaml.safe_dump(cfg))
        if key == "mixed":  # outputs both models share, and the spread (ngen aborts on others)
            _keep_outputs(real / "realization.json", {"groundwater__baseflow_volume_flux"},
                          SPREAD, "runoff_sd")
        res = R.replay(real / "realization.json", real / "catchment_data.geojson",
                       output_root=real / "out")
        flows[key] = next(iter(res["catchments"].values()))["flow_m3s"]
    np.testing.assert_allclose(flows["ens"], 0.5 * (np.asarray(flows["a"]) + flows["b"]),
                               rtol=1e-12)
    np.testing.assert_allclose(flows["mixed"], 0.5 * (np.asarray(flows["a"]) + flows["c"]),
                               rtol=1e-12)
    assert not np.allclose(flows["a"], flows["c"])


def _keep_outputs(path, drop: set, add: str, header: str) -> None:
    """Edit a realization's outputs: drop the ``drop`` variables (and their header fields),
    append ``add`` under ``header``."""
    import json

    real = json.loads(path.read_text())
    params = real["global"]["formulations"][0]["params"]
    pairs = [(v, h) for v, h in zip(params["output_variables"], params["output_header_fields"])
             if v not in drop] + [(add, header)]
    params["output_variables"] = [v for v, _ in pairs]
    params["output_header_fields"] = [h for _, h in pairs]
    path.write_text(json.dumps(real, indent=2))
