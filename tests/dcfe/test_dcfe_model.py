"""dCFE: the snow routine, the hourly disaggregation, the δ model's daily contract and the BMI's
hourly stepping, each against an independent expectation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bmi_dcfe import physics
from bmi_dcfe.model import PARAMETERS, PhysicsConfig
from delta_core import snow
from delta_core.patterns import WithinDay, to_hourly
from delta_core.subdaily import daily_sums
from delta_core.ngen.crosswalk import PET, PRECIP, RUNOFF_DEPTH, TEMP
from conftest import REPO


def test_snow_known_answers():
    f = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    # 10 mm at -5 degC with TT=0: all snow, no melt; refreezing limited by (zero) liquid water
    s = snow.degree_day_step(f(0.0), f(0.0), f(10.0), f(-5.0), f(0.0), f(3.0), f(0.05), f(0.1))
    assert s.snow.item() == 10.0 and s.rain.item() == 0.0 and s.melt.item() == 0.0
    assert s.snowpack.item() == 10.0 and s.outflow.item() == 0.0
    # 20 mm pack at +4 degC, CFMAX 3: melt 12 mm; the pack (8 mm) holds 0.1 x 8 = 0.8 mm
    s = snow.degree_day_step(f(20.0), f(0.0), f(0.0), f(4.0), f(0.0), f(3.0), f(0.05), f(0.1))
    assert s.melt.item() == pytest.approx(12.0) and s.snowpack.item() == pytest.approx(8.0)
    assert s.meltwater.item() == pytest.approx(0.8) and s.outflow.item() == pytest.approx(11.2)


@pytest.mark.parametrize("scheme", [WithinDay("block"), WithinDay("uniform", pet="uniform"),
                                    WithinDay("block", 0, 24), WithinDay("block", 20, 4)])
def test_disaggregation_conserves_daily_totals(scheme):
    daily = torch.rand(30, 4, dtype=torch.float64) * 20
    for w in (scheme.rain_weights(), scheme.pet_weights()):
        assert w.sum().item() == pytest.approx(1.0, abs=1e-15) and (w >= 0).all()
        torch.testing.assert_close(daily_sums(to_hourly(daily, w)), daily, rtol=1e-14, atol=0)
    rain = scheme.rain_weights()
    if scheme.rain == "block":
        wet = torch.nonzero(rain).flatten().tolist()
        assert wet == list(range(scheme.rain_start_hour, scheme.rain_start_hour + scheme.rain_hours))
    pet = scheme.pet_weights()
    if scheme.pet == "sine":
        assert pet[:6].sum() == 0 and pet.argmax().item() == 12


def test_disaggregation_errors():
    with pytest.raises(ValueError, match="within one day"):
        WithinDay("block", 20, 6)
    with pytest.raises(ValueError, match="choose one of"):
        WithinDay("gauss")


def test_parameter_scaling_spans_the_ranges():
    s = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    for p in PARAMETERS:
        v = p.from_unit(s)
        assert v[0].item() == pytest.approx(p.low) and v[2].item() == pytest.approx(p.high)
        mid = math.sqrt(p.low * p.high) if p.log_scale else 0.5 * (p.low + p.high)
        assert v[1].item() == pytest.approx(mid)


def test_daily_outputs_are_hourly_cfe_summed(sample_batch):
    """The model's daily streamflow is CFE's hourly Q_OUT over the disaggregated forcing, summed."""
    model, batch = sample_batch("dcfe")
    w = model.pattern.draw(*batch["forcing"].shape[:2], np.random.default_rng(3))
    batch = {**batch, "rain_weights": torch.from_numpy(w)}  # the default pattern: storms
    with torch.no_grad():
        out = model(batch)
        forcing = batch["forcing"]
        learned = model.parameters_physical(batch["x_attr"])
        params = model.cfe_parameters(learned)
        from delta_core.snow import liquid_water as snow_liquid_water

        liquid, _, _ = snow_liquid_water(forcing[..., 0], forcing[..., 1], learned)
        sch = model.config.pattern
        rain = to_hourly(liquid, batch["rain_weights"]) / 1000.0
        pet = to_hourly(forcing[..., 2], sch.pet_weights()) / 3.6e6
        _, hourly = physics.run(model.initial_state(params), params, rain, pet,
                                model.config.options())
    w = batch["warmup"]
    q = daily_sums(hourly["Q_OUT"])[w:] * 1000.0
    torch.testing.assert_close(out["streamflow"], q, rtol=1e-12, atol=1e-12)
    total = out["surface_flow"] + out["interflow"] + out["baseflow"]
    torch.testing.assert_close(out["streamflow"], total, rtol=1e-12, atol=1e-12)


def test_model_water_balance(sample_batch):
    """Precipitation = ET + streamflow + change in snow and every CFE store (mass_conserving)."""
    from delta_core.snow import liquid_water as snow_liquid_water

    model, batch = sample_batch("dcfe")
    w = torch.from_numpy(model.pattern.draw(*batch["forcing"].shape[:2], np.random.default_rng(5)))
    batch = {**batch, "warmup": 0, "rain_weights": w}
    forcing = batch["forcing"]
    with torch.no_grad():
        out = model(batch)
        learned = model.parameters_physical(batch["x_attr"])
        params = model.cfe_parameters(learned)
        liquid, _, swe = snow_liquid_water(forcing[..., 0], forcing[..., 1], learned)
        sch = model.config.pattern
        s0 = model.initial_state(params)
        s1, _ = physics.run(s0, params, to_hourly(liquid, w) / 1000.0,
                            to_hourly(forcing[..., 2], sch.pet_weights()) / 3.6e6,
                            model.config.options(), outputs=("Q_OUT",))
    torch.testing.assert_close(out["swe"], swe)
    change = out["swe"][-1] + (s1.total_water() - s0.total_water()) * 1000.0
    resid = forcing[..., 0].sum(0) - out["et"].sum(0) - out["streamflow"].sum(0) - change
    assert resid.abs().max().item() < 1e-9


def test_bmi_steps_cfe_hourly(make_bmi):
    """Above freezing with PET given, BmiDCFE's hourly runoff equals CFE run directly."""
    m = make_bmi("dcfe", pet_source="input")
    core = m.core
    rng = np.random.default_rng(1)
    hours = 96
    prcp = np.where(rng.random(hours) < 0.2, rng.gamma(1.0, 3.0, hours), 0.0)
    pet = 0.2 * np.clip(np.sin(np.pi * (np.arange(hours) % 24 - 6) / 12), 0, None)
    runoff = []
    for h in range(hours):
        m.set_value(PRECIP, np.array([prcp[h]]))
        m.set_value(TEMP, np.array([15.0]))
        m.set_value(PET, np.array([pet[h]]))
        m.update()
        runoff.append(m.get_value(RUNOFF_DEPTH, np.zeros(1))[0])
    params = core.params
    s0 = core._model.initial_state(params)
    _, out = physics.run(s0, params, torch.tensor(prcp / 1000.0)[:, None],
                         torch.tensor(pet / 3.6e6)[:, None], core._model.config.options())
    np.testing.assert_allclose(runoff, out["Q_OUT"][:, 0].numpy(), rtol=1e-12, atol=1e-15)


def test_bmi_hargreaves_pet_and_snow(make_bmi):
    """Hargreaves PET follows the day's sine weights; below freezing precipitation is stored."""
    m = make_bmi("dcfe")
    temps = 5.0 + 5.0 * np.sin(2 * np.pi * (np.arange(48) - 9) / 24)
    pets = []
    for h in range(48):
        m.set_value(PRECIP, np.array([0.0]))
        m.set_value(TEMP, np.array([temps[h]]))
        m.update()
        pets.append(m.get_value(PET, np.zeros(1))[0])
    pets = np.array(pets[24:])
    assert pets[:6].sum() == 0 and pets[12] == pets.max() and pets.sum() > 0.3
    cold = make_bmi("dcfe")
    for h in range(24):
        cold.set_value(PRECIP, np.array([1.0]))
        cold.set_value(TEMP, np.array([-10.0]))
        cold.update()
    from delta_core.ngen.crosswalk import SWE
    assert cold.get_value(SWE, np.zeros(1))[0] == pytest.approx(24.0)
    assert cold.get_value(RUNOFF_DEPTH, np.zeros(1))[0] < 1e-3


def test_physics_config_errors():
    with pytest.raises(ValueError, match="nash_cascade"):
        PhysicsConfig(surface="nash_cascade")
    with pytest.raises(ValueError, match="partitioning"):
        PhysicsConfig(partitioning="green_ampt")


def test_exported_cfe_config_reproduces_the_engine(random_bundle, sample, tmp_path):
    """A C CFE config written for a basin, read back, runs our hourly engine to the same output."""
    import dataclasses

    from bmi_dcfe.cfe_config import CfeConfig
    from bmi_dcfe.export import export
    from delta_core.evaluation import load_model

    bundle = random_bundle("dcfe")
    path = export(bundle, "01022500", tmp_path / "cfe.txt")
    text = path.read_text()
    assert text.startswith("# dCFE parameters of basin 01022500") and "CFMAX" in text
    config = CfeConfig.read(path)
    model, norm, _ = load_model(bundle, dtype=torch.float64)
    x = norm.attributes.transform(sample.attributes(["01022500"], norm.attributes.names),
                                  ["01022500"])
    with torch.no_grad():
        direct = model.cfe_parameters(model.parameters_physical(torch.as_tensor(x)))
    from_file = config.parameters(torch.float64)
    unused = {"xaj_a", "xaj_b", "xaj_x", "urban_fraction", "k_nash_surface", "k_infiltration",
              "retention_depth"}  # not read by the Schaake/GIUH configuration dCFE learns
    for f in dataclasses.fields(direct):
        if f.name in unused:
            continue
        torch.testing.assert_close(getattr(from_file, f.name), getattr(direct, f.name),
                                   rtol=0, atol=0)
    g = torch.Generator().manual_seed(0)
    rain = torch.rand(240, 1, generator=g, dtype=torch.float64) * 4e-3
    pet = torch.full((240, 1), 5e-8, dtype=torch.float64)
    opts = dataclasses.replace(config.options, mass_conserving=model.config.mass_conserving)
    _, a = physics.run(config.initial_state(from_file), from_file, rain, pet, opts)
    _, b = physics.run(model.initial_state(direct), direct, rain, pet, model.config.options())
    for k in physics.OUTPUT_NAMES:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["dcfe_ngen_example", "dcfe_camels_sample"])
def test_shipped_dcfe_realizations_replay(name, tmp_path):
    """The dCFE realizations replay in ngen's call sequence with the shipped bundle: finite,
    non-negative outputs, nexus flow = catchment flow, and a smooth hourly hydrograph (no jump at
    day ends: hourly-native CFE)."""

    from delta_core.ngen import replay as R
    from delta_core.ngen.crosswalk import RUNOFF_FLUX

    real = REPO / "realizations" / name
    res = R.replay(real / "realization.json", real / "catchment_data.geojson",
                   output_root=tmp_path / "out")
    for cid, r in res["catchments"].items():
        for v in r["outputs"].values():
            assert np.all(np.isfinite(v)) and np.all(v >= 0)
        np.testing.assert_allclose(r["flow_m3s"], r["outputs"][RUNOFF_FLUX], rtol=1e-12)
        q = r["flow_m3s"]
        step = np.abs(np.diff(q))
        day_end = step[23::24].mean()
        assert day_end <= 2.0 * step.mean() + 1e-12, (cid, day_end, step.mean())
        assert (tmp_path / "out" / f"{cid}.csv").is_file()


def test_bmi_backends_agree(make_bmi):
    """The BMI's kernel step (default) and its PyTorch step give the same hourly outputs."""
    from delta_core.ngen.crosswalk import ET, SOIL, SWE

    runs = {}
    rng = np.random.default_rng(3)
    prcp = np.where(rng.random(240) < 0.2, rng.gamma(1.0, 3.0, 240), 0.0)
    temp = 2.0 + 8.0 * np.sin(2 * np.pi * (np.arange(240) - 9) / 24) + np.linspace(-6, 6, 240)
    for backend in ("cpp", "torch"):
        m = make_bmi("dcfe", backend=backend)
        assert m.core.backend == backend
        rows = []
        for h in range(240):
            m.set_value(PRECIP, np.array([prcp[h]]))
            m.set_value(TEMP, np.array([temp[h]]))
            m.update()
            rows.append([m.get_value(v, np.zeros(1))[0] for v in (RUNOFF_DEPTH, ET, SWE, SOIL)])
        runs[backend] = np.array(rows)
    np.testing.assert_allclose(runs["cpp"], runs["torch"], rtol=1e-12, atol=1e-15)
    assert runs["cpp"][:, 2].max() > 0  # snow was on the ground at times


@pytest.mark.parametrize("name", ["dcfe", "dhbv"])
def test_constant_temperature_within_days_warns(make_bmi, name):
    """Forcing with the same temperature every hour gives a zero Hargreaves range: say so."""
    import warnings as w

    m = make_bmi(name)
    with w.catch_warnings(record=True) as caught:
        w.simplefilter("always")
        for _ in range(72):
            m.set_value(PRECIP, np.array([0.1]))
            m.set_value(TEMP, np.array([12.0]))
            m.update()
    msgs = [str(c.message) for c in caught if "PET" in str(c.message)]
    assert len(msgs) == 1 and "pet_source: input" in msgs[0]


def test_bmi_threads_key(make_bmi):
    m = make_bmi("dcfe", threads=1)
    assert torch.get_num_threads() == 1
    from delta_core.bmi.base import BmiError
    with pytest.raises(BmiError, match="threads must be a positive integer"):
        make_bmi("dcfe", threads=0)
    m.finalize()


def test_batched_spinup_equals_stepping(make_bmi, tmp_path):
    """The dCFE core's batched spin-up (one kernel call) ends where hour-by-hour stepping does."""
    import datetime as dt

    m = make_bmi("dcfe")
    core = m.core
    rng = np.random.default_rng(5)
    n = 24 * 60
    t0 = dt.datetime(1980, 1, 1)
    starts = [t0 + dt.timedelta(hours=h) for h in range(n)]
    temp = 1.0 + 9.0 * np.sin(2 * np.pi * (np.arange(n) - 9) / 24) + np.linspace(8, -12, n)
    forcings = [[float(p), float(t), None] for p, t in
                zip(np.where(rng.random(n) < 0.15, rng.gamma(1.0, 2.0, n), 0.0), temp)]
    core.reset()
    for f, s in zip(forcings, starts):
        core.step(f, s)
    stepped = core.get_state()
    core.reset()
    core.run_steps(forcings, starts)
    batched = core.get_state()
    for k, v in stepped.items():
        np.testing.assert_allclose(batched[k], v, rtol=1e-12, atol=1e-15, err_msg=k)
    assert stepped["snow"].max() > 0  # the snow routine took part


@pytest.mark.parametrize("dynamic", [False, True])
def test_daily_spinup_rows_equal_their_hours(make_bmi, dynamic_bundle, tmp_path, dynamic):
    """Daily spin-up rows (a ``date`` column) run as the same days spread over their hours by
    the bundle's pattern and given as hourly rows: the runs that follow are the same."""
    import torch

    from delta_core import subdaily

    rng = np.random.default_rng(7)
    days = 90
    p = np.where(rng.random(days) < 0.4, rng.gamma(1.0, 8.0, days), 0.0)
    tmax = rng.normal(4.0, 6.0, days)
    tmin = tmax - rng.uniform(3.0, 12.0, days)
    dates = np.datetime64("1980-10-03") + np.arange(days)
    daily = tmp_path / "daily.csv"
    daily.write_text("date,prcp_mm_day,tmax_c,tmin_c\n" + "".join(
        f"{d},{a!r},{b!r},{c!r}\n" for d, a, b, c in
        zip(dates, p.tolist(), tmax.tolist(), tmin.tolist())))
    bundle = {"bundle": str(dynamic_bundle)} if dynamic else {}
    a = make_bmi("dcfe", spinup_forcing=str(daily), pet_source="input",
                 start_time="1981-01-01 00:00:00", **bundle)
    # the same days by hand: PET by Hargreaves of the day, spread as in training
    pd, td, petd = a.core.hourly.daily.__class__(a._lat, "x").days(
        [[x, None, y, z, None] for x, y, z in zip(p, tmax, tmin)],
        [d.astype("datetime64[us]").item() for d in dates])
    pattern = a.core._model.pattern
    steps = subdaily.step_forcing(
        torch.tensor(np.stack([pd, td, petd], -1)[:, None, :]), pattern,
        {"rain_weights": torch.from_numpy(pattern.spinup_weights(days)[:, None])})
    hours = np.datetime64("1980-10-03T00:00:00") + np.arange(24 * days) * np.timedelta64(1, "h")
    hourly = tmp_path / "hourly.csv"
    hourly.write_text("time,prcp_mm_h,tmean_c,pet_mm_h\n" + "".join(
        f"{str(h).replace('T', ' ')},{x!r},{y!r},{z!r}\n" for h, x, y, z in
        zip(hours, steps.prcp[:, 0].tolist(), steps.temp[:, 0].tolist(),
            steps.pet[:, 0].tolist())))
    b = make_bmi("dcfe", spinup_forcing=str(hourly), pet_source="input",
                 start_time="1981-01-01 00:00:00", **bundle)
    pack_a, pack_b = a.core.hourly.snowpack, b.core.hourly.snowpack
    assert pack_a > 0 and pack_a == pytest.approx(pack_b, rel=1e-12)
    out = {id(m): [] for m in (a, b)}
    for h in range(72):
        for m in (a, b):
            m.set_value(PRECIP, np.array([2.0 if h % 17 == 3 else 0.0]))
            m.set_value(TEMP, np.array([3.0]))
            m.set_value(PET, np.array([0.1]))
            m.update()
            out[id(m)].append(m.get_value(RUNOFF_DEPTH, np.zeros(1))[0])
    np.testing.assert_allclose(out[id(a)], out[id(b)], rtol=1e-10, atol=1e-16)
    assert max(out[id(a)]) > 0


# -- dynamic parameters ---------------------------------------------------------------------
DYNAMIC = ["refkdt", "satdk"]


@pytest.fixture(scope="module")
def dynamic_bundle(tmp_path_factory, sample):
    """A random dCFE bundle with LSTM-dynamic refkdt and satdk (small networks)."""
    from conftest import fit_normalization, small_network
    from bmi_dcfe.model import SPEC
    from delta_core.bundle import save_bundle
    from delta_core.spec import Engine

    norm = fit_normalization(sample, SPEC.forcings)
    torch.manual_seed(4)
    net = small_network("dcfe")
    model = SPEC.build_model({"dynamic": DYNAMIC}, net, len(norm.attributes.feature_names),
                             Engine("torch", torch.float32))
    with torch.no_grad():  # make the days differ visibly: a strong forcing response
        model.dynamic_net.head.weight.mul_(20.0)
    cfg = {"model": "dcfe", "physics": {"dynamic": DYNAMIC}, "network": net.__dict__}
    return save_bundle(tmp_path_factory.mktemp("dyn") / "bundle.pt", model="dcfe",
                       state_dict=model.state_dict(), config=cfg, normalization=norm.to_dict(),
                       provenance={"note": "random dynamic test bundle",
                                   "train_period": ["1980-10-01", "1985-09-30"]})


def test_dynamic_parameters_are_lagged_daily_values(sample_batch):
    """Day d's dynamic values depend on the forcing of days before d only (the BMI knows them
    at the day's first hour); the cpp and torch engines agree; gradients reach the LSTM."""
    from bmi_dcfe.model import DCFE, NetworkConfig
    from delta_core.spec import Engine

    _, batch = sample_batch("dcfe")
    n_attr = batch["x_attr"].shape[1]
    torch.manual_seed(1)
    models = [DCFE(PhysicsConfig(dynamic=DYNAMIC), n_attr, NetworkConfig(hidden=8, dynamic_hidden=8),
                   Engine(b, torch.float64)).double().eval() for b in ("torch", "cpp")]
    models[1].load_state_dict(models[0].state_dict())
    dyn = models[0].dynamic_parameters(batch["x_forcing"], batch["x_attr"])
    assert set(dyn) == set(DYNAMIC) and dyn["refkdt"].shape == batch["x_forcing"].shape[:2]
    changed = batch["x_forcing"].clone()
    changed[50] += 3.0
    dyn2 = models[0].dynamic_parameters(changed, batch["x_attr"])
    for k in DYNAMIC:
        assert torch.equal(dyn[k][:51], dyn2[k][:51]) and not torch.equal(dyn[k][51], dyn2[k][51])
        lo, hi = next((p.low, p.high) for p in PARAMETERS if p.name == k)
        assert (dyn[k] >= lo).all() and (dyn[k] <= hi).all() and dyn[k].std(0).min() > 0
    out_t, out_c = (m(batch) for m in models)
    for k in ("streamflow", "et", "soil_moisture", "groundwater", *DYNAMIC):
        torch.testing.assert_close(out_c[k], out_t[k], rtol=1e-10, atol=1e-13)
    models[1].train()
    models[1](batch)["streamflow"].sum().backward()
    assert models[1].dynamic_net.inp.weight.grad.abs().sum() > 0


def test_bmi_dynamic_parameters_follow_the_trained_model(make_bmi, dynamic_bundle, tmp_path):
    """BmiDCFE with a dynamic bundle, fed hourly forcing disaggregated from days as in training,
    gives the hourly CFE of the δ model (LSTM on the daily forcing, lagged a day) exactly; its
    state (LSTM and day sums included) saves and restores bit for bit."""
    from delta_core.bundle import load_bundle
    from delta_core.inputs import Normalization

    m = make_bmi("dcfe", pet_source="input", bundle=str(dynamic_bundle))
    core = m.core
    assert core.dynamic_names == tuple(DYNAMIC)
    rng = np.random.default_rng(2)
    days = 20
    daily = np.stack([np.where(rng.random(days) < 0.4, rng.gamma(1.0, 12.0, days), 0.0),
                      np.full(days, 15.0), rng.uniform(1.0, 5.0, days)], -1)
    sch = core._model.config.pattern
    w = torch.from_numpy(sch.draw(days, 1, np.random.default_rng(6)))
    rain_h = to_hourly(torch.tensor(daily[:, None, 0]), w)[:, 0].numpy()
    pet_h = to_hourly(torch.tensor(daily[:, None, 2]), sch.pet_weights())[:, 0].numpy()
    runoff, refkdt = [], []
    for h in range(24 * days):
        if h == 24 * 7 + 5:
            m.save_state(tmp_path / "mid_day.state")
        m.set_value(PRECIP, np.array([rain_h[h]]))
        m.set_value(TEMP, np.array([15.0]))
        m.set_value(PET, np.array([pet_h[h]]))
        m.update()
        runoff.append(m.get_value(RUNOFF_DEPTH, np.zeros(1))[0])
        refkdt.append(m.get_value("cfe__refkdt", np.zeros(1))[0])
    # the δ model's path: LSTM over the normalised daily forcing, CFE with daily rows
    model = core._model
    norm = Normalization.from_dict(load_bundle(dynamic_bundle)["normalization"])
    x_f = torch.tensor(norm.forcing.transform(daily[:, None, :]), dtype=torch.float64)
    with torch.no_grad():
        dyn = model.dynamic_parameters(x_f, torch.tensor(core.x_attr[None]))
        s0 = model.initial_state(core.static_params)
        _, ref = physics.run(s0, core.static_params, torch.tensor(rain_h / 1000.0)[:, None],
                             torch.tensor(pet_h / 3.6e6)[:, None], model.config.options(),
                             dynamic=dyn, period=24)
    np.testing.assert_allclose(runoff, ref["Q_OUT"][:, 0].numpy(), rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(refkdt[::24], dyn["refkdt"][:, 0].numpy(), rtol=1e-12)
    assert len(set(np.round(refkdt[::24], 9))) > 5 and len(set(refkdt[24:48])) == 1
    # restore mid-day and continue: bit for bit
    m.load_state(tmp_path / "mid_day.state")
    again = []
    for h in range(24 * 7 + 5, 24 * days):
        m.set_value(PRECIP, np.array([rain_h[h]]))
        m.set_value(TEMP, np.array([15.0]))
        m.set_value(PET, np.array([pet_h[h]]))
        m.update()
        again.append(m.get_value(RUNOFF_DEPTH, np.zeros(1))[0])
    assert again == runoff[24 * 7 + 5:]


def test_export_of_a_dynamic_bundle_writes_period_means(dynamic_bundle, sample, tmp_path):
    """The C CFE has constant parameters: dynamic ones are written as their mean over the
    chosen period of the basin's forcing, and the header says so; without values it refuses."""
    from bmi_dcfe.cfe_config import CfeConfig
    from bmi_dcfe.export import cfe_config_for, dynamic_means, export
    from delta_core.evaluation import load_model

    path = export(dynamic_bundle, "01022500", tmp_path / "cfe.txt", start="1990-10-01",
                  end="1992-09-30")
    text = path.read_text()
    assert "refkdt is daily-dynamic in dCFE: written as its mean" in text
    model, norm, _ = load_model(dynamic_bundle, dtype=torch.float64)
    stats = dynamic_means(model, norm, sample, "01022500", "1990-10-01", "1992-09-30")
    config = CfeConfig.read(path)
    for k in DYNAMIC:
        mean, lo, hi = stats[k]
        assert lo < mean < hi
        assert config.values[k] == mean
    with pytest.raises(ValueError, match="dynamic parameters"):
        cfe_config_for(model, np.zeros(len(norm.attributes.feature_names)))


@pytest.mark.parametrize("command, args", [
    ("bmi_dcfe.cli:export_main", ["--basin", "01022500", "--out", "{tmp}/x.cfe"]),
    ("bmi_dcfe.cli:eval_main", ["--out", "{tmp}/ev"]),
    ("bmi_lgar.cli:eval_main", ["--out", "{tmp}/ev"]),
    ("bmi_dhbv.cli:demo_main", ["--out", "{tmp}/demo"])])
def test_per_model_clis_refuse_another_models_bundle(command, args, tmp_path, capsys):
    """dcfe-export-cfe-config failed with a 40-line shape error on a dHBV bundle and lgar-eval
    evaluated it as dHBV: every per-model command now refuses it in one line, writing nothing."""
    import importlib

    module, fn = command.split(":")
    main = getattr(importlib.import_module(module), fn)
    wrong = "dlgar_arid.pt" if module.startswith("bmi_dhbv") else "dhbv_static.pt"
    bundle = next(REPO.glob(f"bmi_*/weights/{wrong}"))
    with pytest.raises(SystemExit) as e:
        main(["--bundle", str(bundle), *(a.format(tmp=tmp_path) for a in args)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"bundle {bundle} holds model '{wrong.split('_')[0]}', not '" in err
    assert not list(tmp_path.iterdir())


def test_spinup_rows_reaching_past_start_time_are_refused(make_bmi, tmp_path):
    """A spin-up file whose last row ends after start_time would put the run's first hours in
    the spin-up: refused, naming the row and the start."""
    from delta_core.bmi.base import BmiError

    path = tmp_path / "late.csv"
    path.write_text("date,prcp_mm_day,tmax_c,tmin_c\n1980-12-30,1.0,5.0,0.0\n"
                    "1980-12-31,0.0,6.0,1.0\n1981-01-01,0.0,6.0,1.0\n")
    with pytest.raises(BmiError, match=r"late.csv: its last row \(1981-01-01 00:00:00\) ends at "
                                       r"1981-01-02 00:00:00, after start_time 1981-01-01"):
        make_bmi("dcfe", spinup_forcing=str(path), start_time="1981-01-01 00:00:00")
    path.write_text("date,prcp_mm_day,tmax_c,tmin_c\n1980-12-30,1.0,5.0,0.0\n"
                    "1980-12-31,0.0,6.0,1.0\n")
    assert make_bmi("dcfe", spinup_forcing=str(path), start_time="1981-01-01 00:00:00").core
