"""dLGAR for one catchment, stepped one hour at a time (the core the BMI wraps).

Each :meth:`LgarCore.step` is one forcing step of the LGAR column (:class:`bmi_lgar.physics.Lgar`,
the exact port of LGAR-C) with one fixed 3600 s substep: the same arithmetic as
:func:`bmi_lgar.runner.run_lgar` on an hourly config with ``timestep=3600[sec]``, so the core's
fluxes equal run_lgar's to the last bit. The parameters come from an
:class:`~bmi_lgar.parameters.LgarParameters` (LGAR-C config, texture table, or later the δ
model's learned soil parameters).

Forcing per hour: precipitation [mm] and PET [mm], or, without PET, air temperature [degC] from
which PET is Hargreaves of the trailing 24 hours spread over the day by sine weights. That and
the snow routine below are the hourly path every model's core shares
(:class:`delta_core.bmi.hourly.HourlyAdapter`, :attr:`LgarCore.hourly`). LGAR itself has no snow:
without ``snow`` the precipitation is the liquid water reaching the soil; with ``snow`` (the
fixed degree-day constants a dLGAR bundle was trained with) the degree-day routine of
:mod:`delta_core.snow` runs ahead of LGAR each hour at hourly rates (CFMAX / 24, phase by the
hour's temperature, as the dCFE core) and LGAR receives its rain and released water.

Knows nothing of BMI: amounts in mm per hour, stores in mm (LGAR computes in cm; outputs are
converted with ``x 10``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from bmi_lgar.fronts import Fronts
from bmi_lgar.model import VARIABLES
from bmi_lgar.parameters import LgarParameters
from bmi_lgar.physics import Lgar, LgarState, StepFluxes
from delta_core import snow as snow_routine
from delta_core.bmi.core import LumpedCore
from delta_core.bmi.hourly import FlatTemperature, HourlyAdapter
from delta_core.spec import core_names

#: cm -> mm (stores).
CM_TO_MM = 10.0
#: Fluxes go cm -> m as LGAR-C and the kernel write them (x 0.01), then m -> mm (x 1000), so
#: that both backends give the same bits.
CM_TO_M = 0.01
M_TO_MM = 1000.0
#: Engines: the Python port or the compiled kernel (bit for bit the same).
BACKENDS = ("python", "cpp")
#: Core rates -> the fields of the port's :class:`StepFluxes` and the kernel's outputs.
LGAR_RATES = {"surface_flow": "surface_runoff", "giuh_runoff": "giuh_runoff",
              "infiltration": "infiltration", "percolation": "percolation",
              "et": "actual_evapotranspiration", "pet": "potential_evapotranspiration",
              "baseflow": "conceptual_reservoir_to_stream_discharge"}
#: Scalars of :class:`LgarState` saved by :meth:`LgarCore.get_state`, in order.
STATE_SCALARS = ("ponded_cm", "precip_previous_cm", "runoff_in_prev_step", "cr_fast_cm",
                 "cr_slow_cm", "timestep_h", "time_s", "cache_fluxes", "cache_count",
                 "previous_aet", "previous_pet", "previous_recharge", "accumulated_pet",
                 "accumulated_free_drainage")
_BOOL_SCALARS = {"runoff_in_prev_step", "cache_fluxes"}
_INT_SCALARS = {"cache_count"}
#: Front arrays saved (the first ``n`` entries of each).
FRONT_FIELDS = ("depth", "theta", "psi", "k", "dzdt", "layer", "to_bottom")


class LgarCore(LumpedCore):
    """One LGAR column stepped hourly (see the module docstring).

    Parameters
    ----------
    params : LgarParameters
        Soil layers, ponding, GIUH, reservoirs.
    latitude : float, optional
        Degrees north; needed only when PET is derived from temperature.
    pet_weights : sequence of 24 float, optional
        Hourly shares of the daily Hargreaves PET (default: the sine scheme).
    backend : {"python", "cpp"}
        The port (:class:`bmi_lgar.physics.Lgar`) or the compiled kernel, one basin and one
        hour per call, its state kept in the kernel's packed layout
        (:func:`bmi_lgar.kernel.unpack_state`). Both give the same outputs and fronts bit for
        bit.
    snow : dict, optional
        Degree-day constants ``{TT [degC], CFMAX [mm degC-1 d-1], CFR, CWH}`` (daily, as
        :func:`delta_core.snow.degree_day_step`); None: no snow routine (precipitation is
        liquid).
    """

    step_seconds = 3600
    #: Hour's precipitation [mm], PET [mm] (None: from temperature), temperature [degC].
    fields = ("prcp", "pet", "tmean")
    optional_fields = frozenset({"pet", "tmean"})
    #: Routed discharge at the outlet (``streamflow``: GIUH of surface runoff + reservoir
    #: outflow) [mm h-1]; rates [mm h-1] and levels [mm, 1] of dLGAR's declared variables.
    flows = core_names(VARIABLES, "flow")
    rates = core_names(VARIABLES, "rate")
    levels = core_names(VARIABLES, "level")
    stores = ("soil_moisture", "ponded", "groundwater", "swe")

    def __init__(self, params: LgarParameters, latitude: float | None = None,
                 pet_weights=None, backend: str = "python", snow: dict | None = None):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"dLGAR backend must be one of {list(BACKENDS)}, got {backend!r}")
        self.params = params
        self.config = params.to_config()
        self.model = Lgar(self.config)
        self.backend = backend
        if backend == "cpp":
            from bmi_lgar import kernel

            self._kernel = kernel
            self._kb = kernel.pack_configs([dataclasses.replace(self.config,
                                                                endtime_s=3600.0 * 1e9)])
        self.snow = None if snow is None else {k: float(snow[k]) for k in
                                               snow_routine.PARAMETER_RANGES}
        #: PET and the snow routine ahead of LGAR (the shared hourly path)
        self.hourly = HourlyAdapter("dLGAR", latitude, snow=self.snow, pet_weights=pet_weights)
        self.reset()

    # -- LumpedCore --------------------------------------------------------------------------
    @property
    def state(self) -> LgarState:
        """The column's state as the port's :class:`LgarState` (backend cpp: unpacked from the
        kernel's packed state when first asked for after a step)."""
        if self._state is None:
            self._state = self.kernel_state()
        return self._state

    @state.setter
    def state(self, value: LgarState | None) -> None:
        self._state = value

    def reset(self) -> None:
        self.state = self.model.initial_state()
        self.fluxes: StepFluxes | None = None
        if self.backend == "cpp":
            empty = np.zeros((0, 1))
            self.packed = self._kernel.run_kernel(self._kb, empty, empty).state
            self.state = None
        self.hourly.reset()
        self.flow_new = np.zeros(len(self.flows))
        self.flow_carry = np.zeros(len(self.flows))
        self.rate_values[:] = 0.0
        self.level_values[:] = 0.0
        self._write_levels()

    def set_flat_policy(self, policy: FlatTemperature) -> None:
        """Use ``policy`` (:class:`~delta_core.bmi.hourly.FlatTemperature`) for hours whose
        trailing 24 h temperature is constant (no effect with PET as an input)."""
        self.hourly.set_flat_policy(policy)

    def step(self, forcing: list, start: dt.datetime) -> None:
        """One hour from ``start``: ``forcing`` = [P mm, PET mm or None, T degC or None]."""
        p, pet, t = forcing
        p, pet, melt, _ = self.hourly.hour(start, p, t, pet)
        if self.backend == "cpp":
            self._run_kernel(np.array([float(p)]), np.array([float(pet)]))
        else:
            self._step_port(p, pet)
        self.values["melt"][0] = melt
        self.values["swe"][0] = self.hourly.swe

    def run_steps(self, forcings: list[list], starts: list[dt.datetime]) -> None:
        """Many hours at once (backend cpp): PET and snow over all hours at once
        (:meth:`_hours_inputs`), LGAR in one kernel call from the packed state; ends in the state
        :meth:`step` in turn reaches."""
        if self.backend != "cpp" or len(forcings) < 2:
            return super().run_steps(forcings, starts)
        hours = self.hourly.hours(starts, np.array([f[0] for f in forcings], dtype=float),
                                  [f[2] for f in forcings], [f[1] for f in forcings])
        if hours is None:  # a mix of given and missing values: hour by hour
            n = len(forcings)
            water, pet, melt = np.empty(n), np.empty(n), np.empty(n)
            for i, ((p, e, t), start) in enumerate(zip(forcings, starts)):
                water[i], pet[i], melt[i], _ = self.hourly.hour(start, p, t, e)
        else:
            water, pet, melt = hours.water, hours.pet, hours.melt
        self._run_kernel(water, pet)
        self.values["melt"][0] = melt[-1]
        self.values["swe"][0] = self.hourly.swe

    def _step_port(self, p: float, pet: float) -> None:
        """One hour of the Python port (outputs in cm -> m -> mm)."""
        f = self.model.step(self.state, p, pet)
        self.fluxes = f
        self.flow_new[0] = f.total_discharge * CM_TO_M * M_TO_MM
        for name, field in LGAR_RATES.items():
            self.values[name][0] = getattr(f, field) * CM_TO_M * M_TO_MM
        self._write_levels()

    def _run_kernel(self, liquid: np.ndarray, pet: np.ndarray) -> None:
        """Hours of liquid water and PET [mm] in one kernel call from the packed state; the
        outputs of the last hour (m -> mm)."""
        run = self._kernel.run_kernel(self._kb, liquid[:, None], pet[:, None], state=self.packed)
        self.packed = run.state
        self.state = None
        o = run.outputs
        self.flow_new[0] = o["total_discharge"][-1, 0] * M_TO_MM
        for name, field in LGAR_RATES.items():
            self.values[name][0] = o[field][-1, 0] * M_TO_MM
        self._write_levels()

    def kernel_state(self) -> LgarState:
        """The kernel's packed state as an :class:`LgarState` of the port (fronts, ponding,
        reservoirs, GIUH queue, bookkeeping): the state the port would have."""
        u = self._kernel.unpack_state(self.packed)
        n = int(u["n"])
        fronts = Fronts(depth=[float(x) for x in u["depth"]], theta=[float(x) for x in u["theta"]],
                        psi=[float(x) for x in u["psi"]], k=[float(x) for x in u["k"]],
                        layer=[int(x) for x in u["layer"]],
                        to_bottom=[bool(x) for x in u["to_bottom"]],
                        dzdt=[float(x) for x in u["dzdt"]])
        if fronts.n != n:  # pragma: no cover - unpack_state slices n entries
            raise AssertionError("packed state: front count mismatch")
        st = self.model.initial_state()
        st.fronts = fronts
        for key in STATE_SCALARS:
            x = u[key]
            setattr(st, key, bool(x) if key in _BOOL_SCALARS else int(x)
                    if key in _INT_SCALARS else float(x))
        st.giuh_queue = [float(x) for x in u["giuh_queue"][:len(self.model.giuh) + 1]]
        return st

    def get_state(self) -> dict[str, np.ndarray]:
        if self.backend == "cpp":
            out = {"packed": self.packed[0]}
        else:
            st = self.state
            fr = st.fronts
            out = {f"front_{name}": np.array(getattr(fr, name)) for name in FRONT_FIELDS}
            out["front_layer"] = out["front_layer"].astype(np.int64)
            out["front_to_bottom"] = out["front_to_bottom"].astype(bool)
            out["scalars"] = np.array([float(getattr(st, k)) for k in STATE_SCALARS])
            out["giuh_queue"] = np.array(st.giuh_queue, dtype=np.float64)
        out.update(rate_values=self.rate_values, level_values=self.level_values,
                   flow_new=self.flow_new)
        return {**{k: np.array(v, copy=True) for k, v in out.items()},
                **self.hourly.get_state()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        if self.backend == "cpp":
            self._set_packed(state)
            return
        self._check_state(state)
        fronts = Fronts.empty()
        for name in FRONT_FIELDS:
            arr = state[f"front_{name}"]
            conv = int if name == "layer" else bool if name == "to_bottom" else float
            setattr(fronts, name, [conv(x) for x in arr])
        st = self.model.initial_state()
        st.fronts = fronts
        for key, x in zip(STATE_SCALARS, state["scalars"]):
            value = bool(x) if key in _BOOL_SCALARS else int(x) if key in _INT_SCALARS \
                else float(x)
            setattr(st, key, value)
        st.giuh_queue = [float(x) for x in state["giuh_queue"]]
        self.state = st
        self._set_common(state)

    # -- helpers -----------------------------------------------------------------------------
    def _common_keys(self) -> list[str]:
        """State keys of both backends: last outputs, trailing temperatures, snow stores."""
        return ["rate_values", "level_values", "flow_new", *self.hourly.get_state()]

    def _set_common(self, state: dict[str, np.ndarray]) -> None:
        self.fluxes = None
        self.set_values(state["rate_values"], state["level_values"])
        self.flow_new = state["flow_new"].astype(np.float64).copy()
        self.hourly.set_state(state)

    def _set_packed(self, state: dict[str, np.ndarray]) -> None:
        need = ["packed"] + self._common_keys()
        lacking = [k for k in need if k not in state]
        if lacking:
            raise ValueError(f"dLGAR kernel state lacks {lacking} (saved by backend python or "
                             f"another configuration?)")
        packed = np.asarray(state["packed"], dtype=np.float64)
        if packed.shape != (self._kb.state_width,):
            raise ValueError(f"dLGAR kernel state of {packed.shape} doubles; this column's "
                             f"packed state has {self._kb.state_width}")
        self.packed = packed[None, :].copy()
        self.state = None
        self._set_common(state)

    def _check_state(self, state: dict[str, np.ndarray]) -> None:
        """Refuse a state of another configuration (layers, GIUH length, PET model, snow)."""
        need = [f"front_{n}" for n in FRONT_FIELDS] + ["scalars", "giuh_queue"] + \
            self._common_keys()
        lacking = [k for k in need if k not in state]
        if lacking:
            raise ValueError(f"dLGAR state lacks {lacking} (saved by another model "
                             f"configuration?)")
        n = len(state["front_depth"])
        if any(len(state[f"front_{k}"]) != n for k in FRONT_FIELDS) or n < 1:
            raise ValueError("dLGAR state: front arrays of different lengths")
        layers = state["front_layer"]
        if layers.max() > self.model.num_layers or layers[-1] != self.model.num_layers:
            raise ValueError(f"dLGAR state has fronts in {int(layers.max())} layers; this "
                             f"column has {self.model.num_layers}")
        if len(state["giuh_queue"]) != len(self.model.giuh) + 1 or \
                len(state["scalars"]) != len(STATE_SCALARS):
            raise ValueError("dLGAR state: GIUH queue or scalars of another configuration")

    def _write_levels(self) -> None:
        v = self.values
        if self._state is None:  # backend cpp: read the packed row, no unpacking of the fronts
            u = self._kernel.unpack_state(self.packed)
            fronts = _FrontView(int(u["n"]), u["layer"].tolist(), u["depth"].tolist(),
                                u["theta"].tolist())
            ponded, fast, slow = u["ponded_cm"], u["cr_fast_cm"], u["cr_slow_cm"]
        else:
            st = self._state
            fronts, ponded, fast, slow = st.fronts, st.ponded_cm, st.cr_fast_cm, st.cr_slow_cm
        v["soil_moisture"][0] = self.model.mass(fronts) * CM_TO_MM
        v["ponded"][0] = ponded * CM_TO_MM
        v["groundwater"][0] = (fast + slow) * CM_TO_MM
        v["n_fronts"][0] = float(fronts.n)


@dataclasses.dataclass
class _FrontView:
    """What :meth:`bmi_lgar.physics.Lgar.mass` reads of the fronts (count, layer, depth [cm],
    theta [-])."""

    n: int
    layer: list
    depth: list
    theta: list
