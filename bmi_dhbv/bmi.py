"""NextGen BMI component of dHBV (one catchment per instance).

See :class:`BmiDHBV` and ``bmi_dhbv/BMI.md`` for the configuration keys, the variables and the
hourly scheme.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

from bmi_dhbv import hbv
from bmi_dhbv.model import FORCING_NAMES
from delta_core.bmi_base import BmiError, LumpedBmi, VarSpec
from delta_core.networks import LSTMStepper
from delta_core.pet import hargreaves_from_ra
from delta_core.pet import extraterrestrial_radiation

# -- variable names ----------------------------------------------------------------------------
PRECIP = "atmosphere_water__liquid_equivalent_precipitation_rate"
TEMP = "land_surface_air__temperature"
TMAX = "land_surface_air__max_of_temperature"
TMIN = "land_surface_air__min_of_temperature"
PET = "land_surface_water__potential_evaporation_volume_flux"

RUNOFF_DEPTH = "land_surface_water__runoff_depth"
RUNOFF_FLUX = "land_surface_water__runoff_volume_flux"
ET = "land_surface__evapotranspiration_volume_flux"
SWE = "snowpack__liquid-equivalent_depth"
SOIL = "soil_water__depth"
UPPER = "groundwater~upper_zone__depth"
LOWER = "groundwater~lower_zone__depth"
SURFACE_FLOW = "land_surface_water__surface_runoff_volume_flux"
INTERFLOW = "soil_water__interflow_volume_flux"
BASEFLOW = "groundwater__baseflow_volume_flux"


def parameter_var_name(name: str) -> str:
    """Output variable name of dynamic HBV parameter ``name`` (e.g. ``hbv__beta``)."""
    return f"hbv__{name.lower()}"


#: Configuration keys: name -> description (``initialize`` rejects anything else).
CONFIG_KEYS: dict[str, str] = {
    "bundle": "weight bundle path (default: the shipped bmi_dhbv/weights/dhbv_dynamic.pt)",
    "attributes": "mapping of every catchment attribute the bundle needs to its value",
    "latitude": "catchment latitude [degrees north] (Hargreaves PET)",
    "area_km2": "catchment area [km2] (runoff volume flux)",
    "time_step_seconds": "3600 (hourly, default) or 86400 (daily)",
    "start_time": "ISO datetime of model time 0 (day of year; model days start at this time "
                  "of day)",
    "end_time": "ISO datetime of the end time (optional; default: no end)",
    "n_steps": "number of time steps to the end time (optional; alternative to end_time)",
    "allow_exceed_end_time": "true: updating past the end time is allowed (default false)",
    "backend": "HBV engine: cpp (compiled kernel, default) or torch",
    "pet_source": "hargreaves (default: PET from the day's max/min temperature) or input "
                  "(PET is an input variable that must be set every step)",
    "initial_state": "cold (default) or the path of a state file written by save_state",
    "spinup_forcing": "optional CSV of daily date,prcp_mm_day,tmax_c,tmin_c[,pet_mm_day] run "
                      "before start_time to warm the states",
}
REQUIRED_KEYS = ("attributes", "latitude", "area_km2", "start_time")

STATE_FORMAT = "bmi_dhbv/state"
STATE_VERSION = 1

#: Plausible air temperature range [degC]; values outside are almost surely in K or garbage.
T_PLAUSIBLE = (-90.0, 70.0)


class BmiDHBV(LumpedBmi):
    """dHBV for the NextGen framework: one catchment, hourly or daily steps.

    **Model.** Static HBV parameters and the 15-day gamma unit hydrograph come from the bundle's
    attribute MLP (computed once at ``initialize``); the daily-dynamic parameters (BETA, BETAET)
    from the LSTM, stepped one day at a time (numpy, carrying ``h``, ``c``). HBV runs all
    components in parallel (C++ kernel, or the PyTorch reference with ``backend: torch``); the
    component-mean q0, q1, q2 are routed with the unit hydrograph: routed on day d =
    ``sum_k uh[k] * Q[d-k]`` (k = 0..14), with the last 14 days of unrouted flow kept.

    **Daily mode** (``time_step_seconds: 86400``): one update = one day. Inputs: precipitation
    [mm d-1], daily mean temperature [degC] and, with ``pet_source: hargreaves`` (default), the
    day's max and min temperature [degC] (Hargreaves PET); with ``pet_source: input``, PET
    [mm d-1] instead of max/min.

    **Hourly mode** (``time_step_seconds: 3600``, default; ngen's CSV forcing is hourly). Model
    days are aligned to model time 0 (``start_time``): hours 1..24 after each multiple of 86400 s
    form one model day. Each hour the inputs (precipitation [mm h-1], temperature [degC],
    optionally PET [mm h-1]) are accumulated: precipitation and PET summed, temperature
    averaged (the day's mean drives HBV and the LSTM) and its max/min kept (Hargreaves PET). The
    routed flow of day d splits into a carry-over part known when the day starts,
    ``B_d = sum_{k>=1} uh[k] * Q[d-k]``, and the new part ``uh[0] * Q_d``, which needs the whole
    day's forcing. Hours 1..23 output ``B_d / 24`` (no model step: cheap); hour 24 runs the daily
    step on the completed day and outputs ``B_d / 24 + uh[0] * Q_d``. The 24 hourly values of a
    day therefore sum exactly to the daily model's routed flow for that day's forcing, and no
    water is created or lost; the price is that the response to a day's rain appears at the last
    hour of that day (a within-day lag of up to 23 h). Surface flow, interflow and baseflow
    follow the same scheme (they sum to the runoff depth). ET and PET are reported as the mean
    rate of the most recently completed day (held for the next 23 hours: any 24 consecutive
    values from an hour 24 on sum to that day's total); stores and dynamic parameters are those
    at the end of the most recently completed day.

    The main output, ``land_surface_water__runoff_depth``, is the depth [m] over the time step,
    what ngen converts into nexus flow (``value_m * areasqkm * 1e6 / 3600`` m3 s-1).
    """

    _component_name = "dHBV: differentiable HBV with LSTM-dynamic parameters (NextGen BMI)"

    def __init__(self) -> None:
        super().__init__()
        self._config: dict = {}
        self._config_dir = Path(".")

    # ==========================================================================================
    # initialize
    # ==========================================================================================
    def initialize(self, config_file: str | None = None) -> None:
        if config_file is None:
            raise BmiError("initialize needs the path of a YAML configuration file "
                           f"(keys: {sorted(CONFIG_KEYS)})")
        path = Path(config_file)
        try:
            cfg = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise BmiError(f"cannot read BMI config {path}: {exc}") from exc
        if not isinstance(cfg, dict):
            raise BmiError(f"BMI config {path} must be a YAML mapping, got {type(cfg).__name__}")
        self._config_dir = path.resolve().parent
        self._setup(cfg, where=str(path))

    def _setup(self, cfg: dict, where: str = "config") -> None:
        from bmi_dhbv.model import DEFAULT_BUNDLE
        from delta_core.evaluation import load_model

        unknown = sorted(set(cfg) - set(CONFIG_KEYS))
        if unknown:
            raise BmiError(f"unknown key(s) {unknown} in {where}; valid keys: "
                           f"{sorted(CONFIG_KEYS)}")
        missing = [k for k in REQUIRED_KEYS if cfg.get(k) is None]
        if missing:
            raise BmiError(f"missing required key(s) {missing} in {where} "
                           f"({'; '.join(f'{k}: {CONFIG_KEYS[k]}' for k in missing)})")
        self._config = dict(cfg)

        # -- time ------------------------------------------------------------------------------
        step = _number(cfg.get("time_step_seconds", 3600), "time_step_seconds")
        if step not in (3600.0, 86400.0):
            raise BmiError(f"time_step_seconds must be 3600 (hourly) or 86400 (daily), "
                           f"got {cfg.get('time_step_seconds')!r}")
        self._time_step = step
        self._hourly = step == 3600.0
        self._steps_per_day = 24 if self._hourly else 1
        self._start = _parse_time(cfg["start_time"], "start_time")
        if cfg.get("end_time") is not None and cfg.get("n_steps") is not None:
            raise BmiError("give end_time or n_steps, not both")
        if cfg.get("end_time") is not None:
            end = _parse_time(cfg["end_time"], "end_time")
            self._end_time = (end - self._start).total_seconds()
            if self._end_time < 0:
                raise BmiError(f"end_time {end} is before start_time {self._start}")
        elif cfg.get("n_steps") is not None:
            n = cfg["n_steps"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise BmiError(f"n_steps must be a non-negative integer, got {n!r}")
            self._end_time = n * step
        else:
            self._end_time = 1e18  # no end: ngen runs with allow_exceed_end_time anyway
        self._allow_exceed_end_time = bool(cfg.get("allow_exceed_end_time", False))
        self._time = 0.0

        # -- catchment ---------------------------------------------------------------------------
        self._lat = _number(cfg["latitude"], "latitude")
        if not -90.0 <= self._lat <= 90.0:
            raise BmiError(f"latitude must be in [-90, 90] degrees north, got {self._lat}")
        self._area_km2 = _number(cfg["area_km2"], "area_km2")
        if not self._area_km2 > 0:
            raise BmiError(f"area_km2 must be > 0, got {self._area_km2}")
        self._ra = extraterrestrial_radiation(self._lat, np.arange(1, 367))[:, 0].tolist()

        pet_source = cfg.get("pet_source", "hargreaves")
        if pet_source not in ("hargreaves", "input"):
            raise BmiError(f"pet_source must be 'hargreaves' or 'input', got {pet_source!r}")
        self._pet_input = pet_source == "input"

        # -- model -------------------------------------------------------------------------------
        bundle_path = cfg.get("bundle")
        bundle_path = DEFAULT_BUNDLE if bundle_path is None else self._path(bundle_path)
        model, norm, bundle = load_model(bundle_path, dtype=torch.float64)  # BundleError names it
        if bundle["model"] != "dhbv":
            raise BmiError(f"bundle {bundle_path} holds model {bundle['model']!r}, not 'dhbv'")
        self._bundle_path = str(bundle_path)
        self._bundle_checksum = bundle["checksum"]
        self._model = model
        self._setup_backend(cfg.get("backend"), model)

        attrs = cfg["attributes"]
        if not isinstance(attrs, dict):
            raise BmiError(f"attributes must be a mapping {{name: value}}, got {attrs!r}")
        need = norm.attributes.names
        lacking = [n for n in need if n not in attrs]
        if lacking:
            raise BmiError(f"attributes lacks {len(lacking)} attribute(s) the bundle needs: "
                           f"{lacking} (the bundle needs: {need})")
        raw = {n: ["" if attrs[n] is None else str(attrs[n])] for n in need}
        try:
            x_attr = norm.attributes.transform(raw, ["catchment"])
        except ValueError as exc:
            raise BmiError(f"bad attribute value: {exc}") from exc
        fn = norm.forcing
        if tuple(fn.names) != FORCING_NAMES:
            raise BmiError(f"bundle forcing variables {fn.names} are not {FORCING_NAMES}")
        self._forcing_norm = fn

        with torch.no_grad():
            xa = torch.as_tensor(x_attr, dtype=torch.float64)
            static, uh = model.static_parameters(xa)
        self._n_comp = model.options.n_components
        self._dyn_names = tuple(model.dynamic_names)
        self._params = np.zeros((len(hbv.PARAMETER_NAMES), self._n_comp))
        for name, v in static.items():
            self._params[hbv.PARAMETER_NAMES.index(name)] = v[0].numpy()
        self._dyn_rows = [hbv.PARAMETER_NAMES.index(n) for n in self._dyn_names]
        self._dyn_lo = np.repeat([hbv.PARAMETER_RANGES[n][0] for n in self._dyn_names],
                                 self._n_comp)
        self._dyn_span = np.repeat([hbv.PARAMETER_RANGES[n][1] - hbv.PARAMETER_RANGES[n][0]
                                    for n in self._dyn_names], self._n_comp)
        self._uh = uh[0].numpy().copy()
        self._uh0 = float(self._uh[0])
        self._uh_tail = self._uh[1:].copy()
        self._lstm = (LSTMStepper(model.dynamic_net, x_attr[0]) if model.dynamic_net is not None
                      else None)

        # -- variables ---------------------------------------------------------------------------
        self._declare_variables(self._variable_specs())
        v = self._values
        self._in_p, self._in_t = v[PRECIP], v[TEMP]
        self._in_pet = v[PET] if self._pet_input else None
        self._in_tmax = v.get(TMAX) if not self._hourly and not self._pet_input else None
        self._in_tmin = v.get(TMIN) if not self._hourly and not self._pet_input else None
        self._o_depth, self._o_flux = v[RUNOFF_DEPTH], v[RUNOFF_FLUX]
        self._o_q = (v[SURFACE_FLOW], v[INTERFLOW], v[BASEFLOW])
        self._o_et = v[ET]
        self._o_pet = None if self._pet_input else v[PET]
        self._o_stores = (v[SWE], v[SOIL], v[UPPER], v[LOWER])
        self._o_dyn = [v[parameter_var_name(n)] for n in self._dyn_names]
        self._flux_m3s = self._area_km2 * 1e6 / self._time_step * 1e-3  # mm/step -> m3 s-1

        # -- states ------------------------------------------------------------------------------
        self._reset_states()
        init = cfg.get("initial_state", "cold")
        spin = cfg.get("spinup_forcing")
        if init not in (None, "cold") and spin is not None:
            raise BmiError("give initial_state (a state file) or spinup_forcing, not both")
        self._initialized = True
        if spin is not None:
            self._spinup(self._path(spin))
        if init not in (None, "cold"):
            self._load_state_file(self._path(init), as_initial=True)

    def _path(self, p) -> Path:
        p = Path(str(p)).expanduser()
        return p if p.is_absolute() else self._config_dir / p

    def _setup_backend(self, backend, model) -> None:
        from bmi_dhbv import kernel

        explicit = backend is not None
        backend = backend or "cpp"
        if backend not in ("cpp", "torch"):
            raise BmiError(f"backend must be 'cpp' or 'torch', got {backend!r}")
        if model.recharge_net is not None and backend == "cpp":
            if explicit:
                raise BmiError("this bundle uses NN recharge (nn_recharge), which only "
                               "backend: torch supports")
            backend = "torch"
        if backend == "cpp" and not kernel.cpp_available():
            if explicit:
                raise BmiError("backend: cpp needs the compiled HBV kernel bmi_dhbv._core, "
                               "which could not be imported (reinstall the package with a C++ "
                               "compiler, or set backend: torch)")
            warnings.warn("the compiled HBV kernel bmi_dhbv._core is not available: dHBV BMI "
                          "falls back to backend torch (slower)", stacklevel=3)
            backend = "torch"
        self._backend = backend
        self._step_numpy = kernel.step_numpy if backend == "cpp" else None
        self._fluxes = np.zeros(len(hbv.FLUX_NAMES))

    def _variable_specs(self) -> list[VarSpec]:
        rate = "mm h-1" if self._hourly else "mm d-1"
        per = "hour" if self._hourly else "day"
        specs = [
            VarSpec(PRECIP, rate, "input", f"precipitation rate (liquid equivalent) [{rate}]",
                    min_value=0.0),
            VarSpec(TEMP, "degC", "input",
                    "air temperature" + (" (hourly)" if self._hourly else " (daily mean)")),
        ]
        if self._pet_input:
            specs.append(VarSpec(PET, rate, "input", f"potential evapotranspiration [{rate}]",
                                 min_value=0.0))
        elif not self._hourly:
            specs += [VarSpec(TMAX, "degC", "input", "daily maximum air temperature"),
                      VarSpec(TMIN, "degC", "input", "daily minimum air temperature")]
        specs += [
            VarSpec(RUNOFF_DEPTH, "m", "output",
                    f"routed runoff depth over the time step (one {per})"),
            VarSpec(RUNOFF_FLUX, "m3 s-1", "output",
                    "routed runoff volume flux at the catchment outlet (depth x area / step)"),
            VarSpec(ET, rate, "output", "actual evapotranspiration (last completed day's mean)"),
            VarSpec(SWE, "mm", "output", "snow water equivalent (snowpack + liquid water)"),
            VarSpec(SOIL, "mm", "output", "soil moisture storage (HBV SM)"),
            VarSpec(UPPER, "mm", "output", "upper groundwater zone storage (HBV SUZ)"),
            VarSpec(LOWER, "mm", "output", "lower groundwater zone storage (HBV SLZ)"),
            VarSpec(SURFACE_FLOW, rate, "output", "routed surface (fast) flow Q0"),
            VarSpec(INTERFLOW, rate, "output", "routed interflow Q1"),
            VarSpec(BASEFLOW, rate, "output", "routed baseflow Q2"),
        ]
        if not self._pet_input:
            specs.append(VarSpec(PET, rate, "output",
                                 "Hargreaves potential evapotranspiration (last completed day)"))
        for n in self._dyn_names:
            specs.append(VarSpec(parameter_var_name(n), "1", "output",
                                 f"daily-dynamic HBV parameter {n} (component mean)"))
        return specs

    def _reset_states(self) -> None:
        self._states = np.full((len(hbv.STATE_NAMES), self._n_comp), hbv.COLD_START_MM)
        if self._lstm is not None:
            self._lstm.reset()
        self._qhist = np.zeros((3, len(self._uh) - 1))  # unrouted q0,q1,q2 at lags 1..14
        self._carry = np.zeros(3)  # B_d per component [mm/day]
        self._acc = [0.0, 0.0, -math.inf, math.inf, 0.0]  # P sum, T sum, T max, T min, PET sum
        self._n_in_day = 0
        self._day = 0  # completed model days since time 0

    # ==========================================================================================
    # the daily step
    # ==========================================================================================
    def _day_step(self, p: float, t: float, tmax: float, tmin: float, pet: float | None,
                  doy: int) -> tuple[float, float, float, float]:
        """One model day. Returns the new part ``uh[0] * Q_d`` of the routed q0, q1, q2 [mm/day]
        (the carry-over part ``B_d`` is ``self._carry`` before the call; after it, ``_carry``
        holds ``B_{d+1}``)."""
        if pet is None:
            pet = hargreaves_from_ra(tmax, tmin, self._ra[doy - 1])
        if self._lstm is not None:
            raw = self._lstm.step(self._forcing_norm.transform_day((p, t, pet)))
            unit = 1.0 / (1.0 + np.exp(-raw))
            dyn = self._dyn_lo + unit * self._dyn_span
            self._params[self._dyn_rows] = dyn.reshape(len(self._dyn_rows), self._n_comp)
        if self._step_numpy is not None:
            fl = self._step_numpy(self._states, p, t, pet, self._params, self._fluxes)
        else:
            fl = self._torch_step(p, t, pet)
        q = fl[:3]
        uh0 = self._uh0
        new = (uh0 * float(q[0]), uh0 * float(q[1]), uh0 * float(q[2]))
        hist = self._qhist
        hist[:, 1:] = hist[:, :-1].copy()
        hist[:, 0] = q
        self._carry = hist @ self._uh_tail
        self._day += 1
        self._last_et = float(fl[3])
        self._last_pet = pet
        return new

    def _torch_step(self, p: float, t: float, pet: float) -> np.ndarray:
        st = tuple(torch.from_numpy(self._states[i:i + 1]) for i in range(self._states.shape[0]))
        par = {n: torch.from_numpy(self._params[i:i + 1])
               for i, n in enumerate(hbv.PARAMETER_NAMES)}
        f = lambda x: torch.tensor([[x]], dtype=torch.float64)  # noqa: E731
        with torch.no_grad():
            new, fluxes = hbv.step(st, f(p), f(t), f(pet), par, self._model.recharge_net)
        for i, s in enumerate(new):
            self._states[i] = s[0].numpy()
        for i, x in enumerate(fluxes):
            self._fluxes[i] = float(x.mean())
        return self._fluxes

    def _doy(self, day: int) -> int:
        return (self._start + dt.timedelta(days=day)).timetuple().tm_yday

    def _write_day_outputs(self) -> None:
        """Stores, ET/PET and dynamic parameters after a completed day (held until the next)."""
        spd = self._steps_per_day
        self._o_et[0] = self._last_et / spd
        if self._o_pet is not None:
            self._o_pet[0] = self._last_pet / spd
        s = self._states.mean(axis=1)
        st = self._o_stores
        st[0][0] = s[0] + s[1]
        st[1][0] = s[2]
        st[2][0] = s[3]
        st[3][0] = s[4]
        for arr, row in zip(self._o_dyn, self._dyn_rows):
            arr[0] = self._params[row].mean()

    def _emit(self, q0: float, q1: float, q2: float) -> None:
        """Write the routed flow of this step (mm over the step) into the outputs."""
        total = q0 + q1 + q2
        self._o_depth[0] = total * 1e-3
        self._o_flux[0] = total * self._flux_m3s
        o = self._o_q
        o[0][0] = q0
        o[1][0] = q1
        o[2][0] = q2

    # ==========================================================================================
    # update
    # ==========================================================================================
    def _advance(self) -> None:
        p = float(self._in_p[0])
        t = float(self._in_t[0])
        if not p >= 0.0 or p == math.inf:
            raise BmiError(f"{PRECIP} must be finite and >= 0, got {p} (step at model time "
                           f"{self._time} s)")
        if not T_PLAUSIBLE[0] <= t <= T_PLAUSIBLE[1]:
            raise BmiError(f"{TEMP} = {t} degC is NaN or outside the plausible range "
                           f"{T_PLAUSIBLE} degC (is it in K?) at model time {self._time} s")
        pet = None
        if self._in_pet is not None:
            pet = float(self._in_pet[0])
            if not pet >= 0.0 or pet == math.inf:
                raise BmiError(f"{PET} must be finite and >= 0, got {pet} (model time "
                               f"{self._time} s)")
        if not self._hourly:
            tmax = tmin = t
            if pet is None:
                tmax, tmin = float(self._in_tmax[0]), float(self._in_tmin[0])
                if not (math.isfinite(tmax) and math.isfinite(tmin)):
                    raise BmiError(f"{TMAX}/{TMIN} must be finite, got {tmax}/{tmin} (model "
                                   f"time {self._time} s)")
            c = self._carry
            n = self._day_step(p, t, tmax, tmin, pet, self._doy(self._day))
            self._emit(c[0] + n[0], c[1] + n[1], c[2] + n[2])
            self._write_day_outputs()
            return
        acc = self._acc
        acc[0] += p
        acc[1] += t
        if t > acc[2]:
            acc[2] = t
        if t < acc[3]:
            acc[3] = t
        if pet is not None:
            acc[4] += pet
        self._n_in_day += 1
        c = self._carry
        if self._n_in_day < 24:
            self._emit(c[0] / 24.0, c[1] / 24.0, c[2] / 24.0)
            return
        n = self._day_step(acc[0], acc[1] / 24.0, acc[2], acc[3],
                           acc[4] if pet is not None else None, self._doy(self._day))
        self._emit(c[0] / 24.0 + n[0], c[1] / 24.0 + n[1], c[2] / 24.0 + n[2])
        self._write_day_outputs()
        self._acc = [0.0, 0.0, -math.inf, math.inf, 0.0]
        self._n_in_day = 0

    def finalize(self) -> None:
        self._model = None
        self._lstm = None
        self._initialized = False

    # ==========================================================================================
    # spin-up and state files
    # ==========================================================================================
    def _spinup(self, path: Path) -> None:
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as exc:
            raise BmiError(f"cannot read spinup_forcing {path}: {exc}") from exc
        need = ("date", "prcp_mm_day", "tmax_c", "tmin_c")
        if not rows or any(c not in rows[0] for c in need):
            raise BmiError(f"spinup_forcing {path} must have columns {list(need)} "
                           f"(optional pet_mm_day) and at least one row")
        prev = None
        for i, row in enumerate(rows, start=2):
            try:
                day = dt.date.fromisoformat(row["date"].strip()[:10])
                p, tmax, tmin = (float(row[c]) for c in need[1:])
                pet = float(row["pet_mm_day"]) if row.get("pet_mm_day") not in (None, "") \
                    else None
            except ValueError as exc:
                raise BmiError(f"spinup_forcing {path} line {i}: {exc}") from exc
            if prev is not None and (day - prev).days != 1:
                raise BmiError(f"spinup_forcing {path} line {i}: date {day} does not follow "
                               f"{prev} (days must be consecutive)")
            if not (p >= 0 and math.isfinite(p)):
                raise BmiError(f"spinup_forcing {path} line {i}: precipitation {p} must be "
                               f"finite and >= 0")
            if not (math.isfinite(tmax) and math.isfinite(tmin)):
                raise BmiError(f"spinup_forcing {path} line {i}: temperature is NaN")
            prev = day
            self._day_step(p, 0.5 * (tmax + tmin), tmax, tmin, pet,
                           day.timetuple().tm_yday)
        self._day = 0
        self._write_day_outputs()

    def save_state(self, path: str | Path) -> None:
        """Write everything needed to continue this run bit for bit to ``path`` (npz)."""
        if not self._initialized:
            raise BmiError("save_state called before initialize")
        meta = {"format": STATE_FORMAT, "version": STATE_VERSION,
                "bundle_checksum": self._bundle_checksum, "time_step": self._time_step,
                "start_time": self._start.isoformat(), "n_components": self._n_comp,
                "time": self._time, "day": self._day, "n_in_day": self._n_in_day,
                "pet_input": self._pet_input,
                "datetime": (self._start + dt.timedelta(seconds=self._time)).isoformat()}
        arrays = {"states": self._states, "qhist": self._qhist, "carry": self._carry,
                  "acc": np.array(self._acc), "params": self._params,
                  "meta": np.array(json.dumps(meta))}
        if self._lstm is not None:
            arrays.update(h=self._lstm.h, c=self._lstm.c)
        for name, arr in self._values.items():
            arrays["var:" + name] = arr
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    def load_state(self, path: str | Path) -> None:
        """Restore a state written by :meth:`save_state`, including the model time; the run then
        continues bit for bit as the saved one would have. The configuration must match
        (bundle, time step, start time)."""
        if not self._initialized:
            raise BmiError("load_state called before initialize")
        self._load_state_file(Path(path), as_initial=False)

    def _load_state_file(self, path: Path, as_initial: bool) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise BmiError(f"cannot read dHBV state file {path}: {exc}") from exc
        if meta.get("format") != STATE_FORMAT or meta.get("version") != STATE_VERSION:
            raise BmiError(f"{path} is not a {STATE_FORMAT} v{STATE_VERSION} file")
        if meta["bundle_checksum"] != self._bundle_checksum:
            raise BmiError(f"state file {path} was written with a different bundle than "
                           f"{self._bundle_path}")
        if meta["n_components"] != self._n_comp:
            raise BmiError(f"state file {path} has {meta['n_components']} components, the "
                           f"model {self._n_comp}")
        if as_initial:
            if meta["n_in_day"] != 0:
                raise BmiError(f"state file {path} was saved in the middle of a model day "
                               f"(hour {meta['n_in_day']}); an initial_state must be saved at "
                               f"a day boundary")
            saved_at = dt.datetime.fromisoformat(meta["datetime"])
            if saved_at != self._start:
                raise BmiError(f"initial_state {path} holds the state at {saved_at}, but "
                               f"start_time is {self._start}")
        else:
            if meta["time_step"] != self._time_step or meta["start_time"] != \
                    self._start.isoformat() or meta["pet_input"] != self._pet_input:
                raise BmiError(f"state file {path} (time step {meta['time_step']} s, start "
                               f"{meta['start_time']}, pet input {meta['pet_input']}) does not "
                               f"match this configuration (time step {self._time_step} s, "
                               f"start {self._start.isoformat()}, pet input {self._pet_input})")
        self._states[...] = data["states"]
        self._qhist[...] = data["qhist"]
        self._carry = data["carry"].copy()
        self._params[...] = data["params"]
        if self._lstm is not None:
            self._lstm.h = data["h"].copy()
            self._lstm.c = data["c"].copy()
        if as_initial:
            self._time, self._day, self._n_in_day = 0.0, 0, 0
            self._acc = [0.0, 0.0, -math.inf, math.inf, 0.0]
            for name in self._output_names:  # stores, parameters (fluxes are per step)
                if "var:" + name in data and data["var:" + name].shape == (1,):
                    self._values[name][...] = data["var:" + name]
            for o in (self._o_depth, self._o_flux, *self._o_q):
                o[0] = 0.0
            return
        self._time = float(meta["time"])
        self._day, self._n_in_day = int(meta["day"]), int(meta["n_in_day"])
        self._acc = [float(x) for x in data["acc"]]
        for name, arr in self._values.items():
            key = "var:" + name
            if key not in data or data[key].shape != arr.shape:
                raise BmiError(f"state file {path} lacks variable {name}")
            arr[...] = data[key]

    # ==========================================================================================
    # extras
    # ==========================================================================================
    @property
    def unit_hydrograph(self) -> np.ndarray:
        """The catchment's 15-day unit hydrograph (copy)."""
        return self._uh.copy()

    @property
    def backend(self) -> str:
        return self._backend


def _number(x, key: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        try:
            return float(str(x))
        except ValueError:
            raise BmiError(f"{key} must be a number, got {x!r}") from None
    return float(x)


def _parse_time(x, key: str) -> dt.datetime:
    if isinstance(x, dt.datetime):
        t = x
    elif isinstance(x, dt.date):
        t = dt.datetime(x.year, x.month, x.day)
    else:
        try:
            t = dt.datetime.fromisoformat(str(x).strip())
        except ValueError:
            raise BmiError(f"{key} must be an ISO datetime like '2015-12-01 00:00:00', "
                           f"got {x!r}") from None
    return t.replace(tzinfo=None)
