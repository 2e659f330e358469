"""The CFE port against outputs of the C model, and its physics on its own terms.

Reference runs: the shared ones (tests/data/cfe_c_reference, copied from ../shared/reference/cfe:
720 h and one-year runs) and further runs of the C model with other configurations
(tests/data/cfe_c_extra). Every output column must match
to 1e-12 m in float64.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bmi_dcfe import physics
from bmi_dcfe.cfe_config import CfeConfig, CfeConfigError
from conftest import DATA

REFERENCE = DATA / "cfe_c_reference"
EXTRA = DATA / "cfe_c_extra"

REFERENCE_RUNS = [
    ("cfg_schaake_giuh.txt", "cfe_c_ref_schaake_giuh_pet0.csv.gz"),
    ("cfg_schaake_giuh.txt", "cfe_c_ref_schaake_giuh_pet1.csv.gz"),
    ("cfg_schaake_nash.txt", "cfe_c_ref_schaake_nash_pet1.csv.gz"),
    ("cfg_xaj_giuh.txt", "cfe_c_ref_xaj_giuh_pet1.csv.gz"),
    ("long_runs/cfg_schaake_giuh_camels01022500_wy1997.txt",
     "long_runs/cfe_c_ref_schaake_giuh_camels01022500_wy1997.csv.gz"),
    ("long_runs/cfg_schaake_nash_camels01022500_wy1997.txt",
     "long_runs/cfe_c_ref_schaake_nash_camels01022500_wy1997.csv.gz"),
]
RUNS = [pytest.param(REFERENCE / c, REFERENCE / r, id=r.split("/")[-1].split(".")[0],
                     marks=[pytest.mark.slow] if "long_runs" in r else [])
        for c, r in REFERENCE_RUNS] + [
    pytest.param(d / "cfg.txt", d / "cfe_c_out.csv", id=d.name) for d in sorted(EXTRA.glob("seed*"))]


def read_config(path: Path) -> CfeConfig:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unknown key 'nash_storage'")
        return CfeConfig.read(path)


def run_reference(cfg: Path, ref: Path, **option_changes):
    config = read_config(cfg)
    params = config.parameters(torch.float64)
    data = np.genfromtxt(ref, delimiter=",", names=True)
    rain = torch.tensor(data["precip_input_mm_per_h"]).unsqueeze(1) / 1000.0
    pet = torch.tensor(data["pet_input_m_per_s"]).unsqueeze(1)
    options = dataclasses.replace(config.options, **option_changes)
    _, out = physics.run(config.initial_state(params), params, rain, pet, options)
    return data, out, config, params


@pytest.mark.parametrize("cfg, ref", RUNS)
def test_reproduces_c_model(cfg, ref):
    if not ref.exists():
        pytest.fail(f"reference run missing: {ref}")
    data, out, _, _ = run_reference(cfg, ref)
    for name in physics.OUTPUT_NAMES:
        err = np.abs(out[name][:, 0].numpy() - data[name]).max()
        assert err <= 1e-12, f"{name}: max |port - C| = {err:.3e} m"


def test_extra_runs_exercise_the_c_quirks():
    """The extra runs must reach the branches that the shared runs never reach."""
    reached = {"soil_full": False, "overflow": False, "quirk": False}
    for d in sorted(EXTRA.glob("seed*")):
        data, out, config, params = run_reference(d / "cfg.txt", d / "cfe_c_out.csv")
        smax = (params.smcmax * params.depth).item()
        reached["soil_full"] |= bool((out["SOIL_STORAGE"] > smax).any())
        reached["overflow"] |= bool((out["GW_OVERFLOW"] > 0).any())
        _, fixed, _, _ = run_reference(d / "cfg.txt", d / "cfe_c_out.csv", mass_conserving=True)
        reached["quirk"] |= not torch.equal(fixed["INFILTRATION_EXCESS"], out["INFILTRATION_EXCESS"])
    assert all(reached.values()), reached


def water_balance(out, s0: physics.CfeState, s1: physics.CfeState):
    """Residual [m]: initial + rain - ET - Q_OUT - final storage (per basin)."""
    return (s0.total_water() + out["RAIN_RATE"].sum(0) - out["ACTUAL_ET"].sum(0)
            - out["Q_OUT"].sum(0) - s1.total_water())


@pytest.mark.parametrize("cfg", [d / "cfg.txt" for d in sorted(EXTRA.glob("seed*"))],
                         ids=lambda p: p.parent.name)
def test_mass_conserving_closes_the_balance(cfg):
    """With mass_conserving every C quirk is corrected and the balance closes to round-off."""
    data = np.genfromtxt(cfg.parent / "cfe_c_out.csv", delimiter=",", names=True)
    config = read_config(cfg)
    options = dataclasses.replace(config.options, mass_conserving=True)
    params = config.parameters(torch.float64)
    s0 = config.initial_state(params)
    rain = torch.tensor(np.tile(data["precip_input_mm_per_h"], 4)).unsqueeze(1) / 1000.0
    pet = torch.tensor(np.tile(data["pet_input_m_per_s"], 4)).unsqueeze(1)
    s1, out = physics.run(s0, params, rain, pet, options)
    residual = water_balance(out, s0, s1).abs().item()
    assert residual <= 1e-12 * max(1.0, rain.sum().item()), residual
    smax = (params.smcmax * params.depth).item()
    assert (out["SOIL_STORAGE"] <= smax * (1 + 1e-15)).all()
    assert (out["GW_STORAGE"] <= params.max_gw_storage.item() * (1 + 1e-15)).all()


def _balance(d: Path, **option_changes) -> tuple[float, dict]:
    data, out, config, params = run_reference(d / "cfg.txt", d / "cfe_c_out.csv", **option_changes)
    s0 = config.initial_state(params)
    options = dataclasses.replace(config.options, **option_changes)
    s1, out = physics.run(s0, params, torch.tensor(data["precip_input_mm_per_h"]).unsqueeze(1) / 1000.0,
                          torch.tensor(data["pet_input_m_per_s"]).unsqueeze(1), options)
    return water_balance(out, s0, s1).item(), out


def test_c_mode_balance():
    """C mode: the #77 overflow stays in the soil (balance closes); the soil-full branches do not."""
    residual, out = _balance(next(EXTRA.glob("seed5_case01*")))  # overflow, no soil-full quirk
    assert out["GW_OVERFLOW"].sum() > 0
    assert abs(residual) <= 1e-13
    residual, _ = _balance(next(EXTRA.glob("seed5_case19*")))  # soil-full branches reached
    assert abs(residual) > 1e-6
    fixed, _ = _balance(next(EXTRA.glob("seed5_case19*")), mass_conserving=True)
    assert abs(fixed) <= 1e-13


def test_batch_equals_single_basins():
    """Basins in one batch do not interact: a batch of 3 equals 3 single runs."""
    cfgs = [d / "cfg.txt" for d in sorted(EXTRA.glob("seed*"))
            if "giuh" in d.name and "schaake" in d.name][:2]
    configs = [read_config(c) for c in cfgs]
    assert len({len(c.giuh_ordinates) for c in configs}) >= 1
    T = 120
    g = torch.Generator().manual_seed(0)
    rain = torch.rand(T, 1, generator=g, dtype=torch.float64) * 0.01 * (torch.rand(T, 1, generator=g) < 0.3)
    pet = torch.full((T, 1), 1e-7, dtype=torch.float64)
    singles = []
    for c in configs:
        p = c.parameters()
        p = p.map(lambda t: t)
        singles.append((c, p))
    n = max(c.parameters().giuh_ordinates.shape[1] for c in configs)
    pad = lambda p: dataclasses.replace(  # noqa: E731
        p, giuh_ordinates=torch.nn.functional.pad(p.giuh_ordinates, (0, n - p.giuh_ordinates.shape[1])))
    params = [pad(p) for _, p in singles]
    states = [c.initial_state(p) for (c, _), p in zip(singles, params)]
    batch_p = physics.CfeParameters(**{f.name: torch.cat([getattr(p, f.name) for p in params])
                                       for f in dataclasses.fields(physics.CfeParameters)})
    batch_s = physics.CfeState(**{f.name: torch.cat([getattr(s, f.name) for s in states])
                                  for f in dataclasses.fields(physics.CfeState)})
    options = configs[0].options
    _, out_b = physics.run(batch_s, batch_p, rain.expand(T, len(params)), pet.expand(T, len(params)), options)
    for i, (p, s) in enumerate(zip(params, states)):
        _, out_1 = physics.run(s, p, rain, pet, options)
        for k in physics.OUTPUT_NAMES:
            torch.testing.assert_close(out_b[k][:, i], out_1[k][:, 0], rtol=0, atol=0)


COMMON = ["bb", "satdk", "satpsi", "slop", "smcmax", "wltsmc", "expon_soil", "expon_soil_secondary",
          "max_gw_storage", "cgw", "expon_gw", "alpha_fc", "k_lf", "k_nash"]


@pytest.mark.parametrize("case, names", [
    ("seed5_case08", COMMON + ["refkdt", "giuh_ordinates"]),
    ("seed5_case12", COMMON + ["refkdt", "k_nash_surface", "k_infiltration", "retention_depth"]),
    ("seed5_case14", COMMON + ["xaj_a", "xaj_b", "xaj_x", "urban_fraction"]),
])
def test_gradients_finite_difference(case, names):
    """d(sum Q_OUT + sum ET)/d(parameter) against float64 finite differences (relative steps)."""
    d = next(EXTRA.glob(case + "*"))
    config = read_config(d / "cfg.txt")
    data = np.genfromtxt(d / "cfe_c_out.csv", delimiter=",", names=True)
    T = 72
    rain = torch.tensor(data["precip_input_mm_per_h"][:T]).unsqueeze(1) / 1000.0
    pet = torch.tensor(data["pet_input_m_per_s"][:T]).unsqueeze(1)
    base = config.parameters(torch.float64)

    def total(*rel):
        p = dataclasses.replace(base, **{n: getattr(base, n) * (1.0 + r) for n, r in zip(names, rel)})
        _, out = physics.run(config.initial_state(p), p, rain, pet, config.options,
                             outputs=("Q_OUT", "ACTUAL_ET"))
        return out["Q_OUT"].sum() + out["ACTUAL_ET"].sum()

    rel = tuple(torch.zeros_like(getattr(base, n), requires_grad=True) for n in names)
    assert torch.autograd.gradcheck(total, rel, eps=1e-6, atol=1e-7, rtol=1e-3)


def test_config_errors_name_the_problem(tmp_path):
    text = (REFERENCE / "cfg_schaake_giuh.txt").read_text()
    bad = tmp_path / "bad.txt"
    bad.write_text(text.replace("soil_params.satdk=0.00000338[m s-1]\n", ""))
    with pytest.raises(CfeConfigError, match="soil_params.satdk"):
        read_config(bad)
    bad.write_text(text.replace("Cgw=1.8e-05", "Cgw=fast"))
    with pytest.raises(CfeConfigError, match="Cgw='fast' is not a number"):
        read_config(bad)
    bad.write_text(text.replace("surface_water_partitioning_scheme=Schaake",
                                "surface_water_partitioning_scheme=Green-Ampt"))
    with pytest.raises(CfeConfigError, match="Green-Ampt"):
        read_config(bad)
    bad.write_text(text + "is_sft_coupled=true\n")
    with pytest.raises(CfeConfigError, match="frozen-soil"):
        read_config(bad)
    bad.write_text(text + "soil_params.smcmx=0.4\n")
    with pytest.warns(UserWarning, match="smcmx"):
        CfeConfig.read(bad)


def test_config_units_and_conflicting_aliases_are_refused(tmp_path):
    """The C reader drops [units] and lets soil_params.bb override soil_params.b: a value in
    other units, or two aliases with different values, would be silently wrong, so both are
    refused naming the key(s); equivalent spellings and agreeing aliases are read."""
    text = (EXTRA / "seed5_case08_schaake_giuh" / "cfg.txt").read_text()
    satdk = next(line for line in text.splitlines() if line.startswith("soil_params.satdk="))
    b = next(line for line in text.splitlines() if line.startswith("soil_params.b="))
    value = satdk.split("=")[1].split("[")[0]
    bad = tmp_path / "bad.txt"
    bad.write_text(text.replace(satdk, f"soil_params.satdk={value}[m h-1]"))
    with pytest.raises(CfeConfigError, match=rf"bad.txt:\d+: soil_params.satdk={value}\[m h-1\]: "
                                             r"the C model reads soil_params.satdk in \[m s-1\]"):
        read_config(bad)
    bad.write_text(text.replace(satdk, f"soil_params.satdk={value}[m/s]"))
    assert read_config(bad).values["satdk"] == float(value)
    bb = float(b.split("=")[1].split("[")[0]) + 1.0
    bad.write_text(text + f"soil_params.bb={bb}\n")
    with pytest.raises(CfeConfigError, match=rf"soil_params.b=.* and soil_params.bb={bb} both "
                                             r"set bb"):
        read_config(bad)
    bad.write_text(text + b.replace("soil_params.b=", "soil_params.bb=") + "\n")
    assert read_config(bad).values["bb"] == read_config(EXTRA / "seed5_case08_schaake_giuh" /
                                                        "cfg.txt").values["bb"]


@pytest.mark.parametrize("cfg", ["cfg_schaake_giuh.txt", "cfg_schaake_nash.txt", "cfg_xaj_giuh.txt"])
def test_config_round_trip(cfg, tmp_path):
    """Writing a config and reading it back gives the same model (values read back exactly)."""
    config = read_config(REFERENCE / cfg)
    again = CfeConfig.read(config.write(tmp_path / "cfg.txt"))
    assert again.values == config.values and again.options == config.options
    assert again.giuh_ordinates == config.giuh_ordinates
    assert again.nash_lateral == config.nash_lateral and again.nash_surface == config.nash_surface


def _rk4_soil(s0, infil, pet, fc, wp, kp, kl, n=4000):
    """Reference: classical RK4 with n steps of the soil ODE (fluxes integrated alongside)."""
    def f(s):
        above, mid = s > fc, (s > wp) & (s <= fc)
        pe = torch.where(above, kp * (s - fc), 0 * s)
        la = torch.where(above, kl * (s - fc), 0 * s)
        e = torch.where(above, pet, torch.where(mid, pet * (s - wp) / (fc - wp), 0 * s))
        return torch.stack([infil - pe - la - e, pe, la, e])
    dt, s, acc = 1.0 / n, s0.clone(), torch.zeros(3, *s0.shape, dtype=s0.dtype)
    for _ in range(n):
        k1 = f(s)
        k2 = f(s + 0.5 * dt * k1[0])
        k3 = f(s + 0.5 * dt * k2[0])
        k4 = f(s + dt * k3[0])
        inc = dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        s, acc = s + inc[0], acc + inc[1:]
    return s, acc[0], acc[1], acc[2]


def test_ode_soil_scheme_is_exact():
    """The closed-form CFE-ODE hour equals a fine RK4 integration across every regime change."""
    from bmi_dcfe import ode

    g = torch.Generator().manual_seed(0)
    r = lambda: torch.rand(400, generator=g, dtype=torch.float64)  # noqa: E731
    fc = 0.3 + 0.3 * r()
    wp = fc * 0.5 * r()
    smax = fc + 0.2
    s0 = r() * smax
    infil = torch.minimum(torch.where(r() < 0.5, 0.02 * r(), 0 * r()), smax - s0)
    pet = 0.01 * r() * (r() < 0.8)
    kp, kl = 2 * r() ** 3, 2 * r() ** 3
    s1, perc, lat, et = ode.soil_hour(s0, infil, pet, fc, wp, kp, kl)
    torch.testing.assert_close(s1, s0 + infil - perc - lat - et, rtol=0, atol=1e-15)
    ref = _rk4_soil(s0, infil, pet, fc, wp, kp, kl)
    for got, want in zip((s1, perc, lat, et), ref):
        assert (got - want).abs().max().item() < 1e-10
    # every regime path is exercised: down through fc, up through fc, up through wp
    assert ((s0 > fc) & (s1 < fc)).any() and ((s0 < fc) & (s1 > fc)).any()
    assert ((s0 < wp) & (s1 > wp)).any()


def test_ode_scheme_run_conserves_and_differentiates():
    d = next(EXTRA.glob("seed5_case08*"))
    config = read_config(d / "cfg.txt")
    data = np.genfromtxt(d / "cfe_c_out.csv", delimiter=",", names=True)
    base = config.parameters(torch.float64)
    base = dataclasses.replace(base, expon_soil=torch.ones(1, dtype=torch.float64),
                               expon_soil_secondary=torch.ones(1, dtype=torch.float64))
    options = dataclasses.replace(config.options, soil_scheme="ode", mass_conserving=True)
    rain = torch.tensor(data["precip_input_mm_per_h"]).unsqueeze(1) / 1000.0
    pet = torch.tensor(data["pet_input_m_per_s"]).unsqueeze(1)
    s0 = config.initial_state(base)
    s1, out = physics.run(s0, base, rain, pet, options)
    assert abs(water_balance(out, s0, s1).item()) < 1e-12
    names = ["bb", "satdk", "smcmax", "slop", "k_lf", "cgw", "refkdt"]

    def total(*rel):
        p = dataclasses.replace(base, **{n: getattr(base, n) * (1.0 + x) for n, x in zip(names, rel)})
        _, o = physics.run(config.initial_state(p), p, rain[:72], pet[:72], options,
                           outputs=("Q_OUT", "ACTUAL_ET"))
        return o["Q_OUT"].sum() + o["ACTUAL_ET"].sum()

    rel = tuple(torch.zeros(1, dtype=torch.float64, requires_grad=True) for _ in names)
    assert torch.autograd.gradcheck(total, rel, eps=1e-6, atol=1e-7, rtol=1e-3)
    with pytest.raises(ValueError, match="expon"):
        physics.run(s0, dataclasses.replace(base, expon_soil=torch.full((1,), 2.0,
                                                                        dtype=torch.float64)),
                    rain, pet, options)
