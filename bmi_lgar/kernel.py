"""LGAR through the compiled C++ kernel ``bmi_lgar._core``: batched runs, sensitivities, autograd.

The kernel (``cpp_ext/lgar``) is a C++ transcription of the float64 Python port in this package
(the reference): the same operations in the same order, so its values equal the port's bit for
bit (tests/test_lgar_kernel.py). It runs ``B`` independent columns (each its own layers, soils,
options, GIUH and forcing) over ``T`` forcing steps, threads over basins, with front arrays of
fixed capacity (300) and no allocation per step. Every option of the port is covered (fixed and
adaptive substeps, flux caching, free drainage, reservoirs, closed-form and numerical capillary
drive).

Sensitivities: the same kernel code instantiated on a dual-number scalar (value + 28 tangents)
gives ``d output_t / d p`` for the :data:`PARAMETER_NAMES` of each basin at every step (forward
mode; the cost is independent of T). Branches follow the values, so fronts that are created,
merge or cross are thresholds (events) and the derivative is that of the scheme along the events
that happened. Iterative solves (theta from mass balance, the head of the mass-balance
correction, depth searches) iterate on values and then take one implicit Newton step in dual
arithmetic at the converged root, ``x = x* - F(x*, p) / F_x(x*)``, which leaves the value unchanged
and gives ``dx/dp = -F_p / F_x``; where a solve stops unconverged (iteration caps, guards, clamps)
its variable is held constant and the residual that the scheme hands to AET carries the tangents.
Not learned: layer thicknesses, initial head, GIUH ordinates, the AET heads, spf_factor.

Units: parameters as in LGAR-C (alpha 1/cm, Ks cm/h, ponded depth cm); forcing mm/h; outputs in
metres per forcing step (soil and reservoir storage and ponded water in metres), as
:func:`bmi_lgar.runner.run_lgar`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from bmi_lgar.lgar_config import LgarConfig
from bmi_lgar.soil import make_soil
from delta_core.kernels import KernelMismatchError, import_kernel, missing_kernel
from delta_core.kernels import check_names as _check_names

#: Van Genuchten / Mualem parameters of each layer, in the kernel's order.
LAYER_PARAMETERS: tuple[str, ...] = ("alpha", "n", "ks", "theta_e", "theta_r")
#: Maximum number of layers (slots of the parameter vector).
MAX_LAYERS = 4
#: Per-basin parameters after the layers (ponded depth [cm], reservoirs).
GLOBAL_PARAMETERS: tuple[str, ...] = ("ponded_depth_max", "a", "b", "frac_to_cr", "a_slow",
                                      "b_slow", "frac_slow")
#: Parameter vector of a basin [P = 27]: layer slots padded to 4 layers.
PARAMETER_NAMES: tuple[str, ...] = tuple(
    f"{name}_{layer}" for layer in range(1, MAX_LAYERS + 1) for name in LAYER_PARAMETERS
) + GLOBAL_PARAMETERS
#: Outputs per step [T, B] (metres), :data:`bmi_lgar.runner.DATA_VARIABLES` plus closed balance,
#: ponded water and reservoir storage.
OUTPUT_NAMES: tuple[str, ...] = (
    "precipitation", "potential_evapotranspiration", "actual_evapotranspiration",
    "surface_runoff", "giuh_runoff", "soil_storage", "total_discharge", "infiltration",
    "percolation", "conceptual_reservoir_to_stream_discharge", "mass_balance",
    "mass_balance_closed", "ponded", "reservoir_storage")
SCALAR_NAMES: tuple[str, ...] = ("initial_psi_cm", "timestep_h", "forcing_resolution_h",
                                 "endtime_s", "wilting_point_psi_cm", "field_capacity_psi_cm",
                                 "spf_factor", "mbal_tol")
FLAG_NAMES: tuple[str, ...] = ("use_closed_form_g", "adaptive_timestep", "allow_flux_caching",
                               "pet_affects_precip", "free_drainage_enabled",
                               "free_drainage_to_cr")


def check_names(core) -> None:
    """Raise :class:`KernelMismatchError` unless the compiled module's name tuples are ours."""
    _check_names(core, "LGAR", "bmi_lgar/kernel.py",
                 {"PARAMETER_NAMES": PARAMETER_NAMES, "OUTPUT_NAMES": OUTPUT_NAMES,
                  "SCALAR_NAMES": SCALAR_NAMES, "FLAG_NAMES": FLAG_NAMES})


_core, _IMPORT_ERROR = import_kernel("bmi_lgar._core", check_names)


def cpp_available() -> bool:
    """Whether the compiled kernel ``bmi_lgar._core`` could be imported."""
    return _core is not None


def core():
    """The compiled module (a clear error when it is missing)."""
    if _core is None:
        raise missing_kernel("LGAR", "bmi_lgar._core", _IMPORT_ERROR)
    return _core


# ----------------------------------------------------------------------------------------------
# Parameters and settings of a batch
# ----------------------------------------------------------------------------------------------
def parameters_from_config(config: LgarConfig) -> np.ndarray:
    """The kernel's parameter vector [27] of a config (unused layer slots repeat the last layer)."""
    p = np.empty(len(PARAMETER_NAMES))
    soils = config.layer_soils
    for layer in range(MAX_LAYERS):
        s = soils[min(layer, len(soils) - 1)]
        p[layer * 5:layer * 5 + 5] = (s.alpha, s.n, s.ks, s.theta_e, s.theta_r)
    p[20:] = (config.ponded_depth_max_cm, config.a, config.b, config.frac_to_cr, config.a_slow,
              config.b_slow, config.frac_slow)
    return p


def config_with_parameters(config: LgarConfig, params: Sequence[float]) -> LgarConfig:
    """A copy of ``config`` whose layer soils and reservoir parameters are ``params`` [27]
    (to run the Python port with the parameters given to the kernel)."""
    p = [float(x) for x in params]
    soils = list(config.soils)
    types = []
    for layer in range(config.num_layers):
        alpha, n, ks, theta_e, theta_r = p[layer * 5:layer * 5 + 5]
        soils.append(make_soil(f"kernel_layer_{layer + 1}", theta_r, theta_e, alpha, n, ks,
                               config.wilting_point_psi_cm))
        types.append(len(soils))
    names = ("ponded_depth_max_cm", "a", "b", "frac_to_cr", "a_slow", "b_slow", "frac_slow")
    return dataclasses.replace(config, soils=soils, layer_soil_type=types,
                               **dict(zip(names, p[20:])))


@dataclass
class KernelBatch:
    """Fixed settings of B basins and their parameters, as the kernel takes them.

    Attributes
    ----------
    num_layers : numpy.ndarray
        [B] int32.
    cum_depth : numpy.ndarray
        [B, 5] layer-bottom depths [cm], 0 first (padded with the last).
    scalars : numpy.ndarray
        [B, 8] :data:`SCALAR_NAMES` (heads cm, times h, end time s).
    flags : numpy.ndarray
        [B, 6] int32 :data:`FLAG_NAMES`.
    giuh : numpy.ndarray
        [B, G] GIUH ordinates per forcing step (zero padded); ``n_giuh`` [B] int32 counts them.
    params : numpy.ndarray
        [B, 27] :data:`PARAMETER_NAMES`.
    n_steps : int
        Forcing steps LGAR-C's driver runs for the first config (``int(endtime / step)``).
    """

    num_layers: np.ndarray
    cum_depth: np.ndarray
    scalars: np.ndarray
    flags: np.ndarray
    giuh: np.ndarray
    n_giuh: np.ndarray
    params: np.ndarray
    n_steps: int

    @property
    def n_basins(self) -> int:
        return len(self.num_layers)

    @property
    def state_width(self) -> int:
        """Doubles of one basin's packed state."""
        return int(core().state_width(self.giuh.shape[1] + 1))


def pack_configs(configs: Sequence[LgarConfig]) -> KernelBatch:
    """The :class:`KernelBatch` of a list of configs (one basin each)."""
    if not configs:
        raise ValueError("pack_configs: no configs")
    b = len(configs)
    giuhs = [c.giuh_per_step for c in configs]
    g = max(len(x) for x in giuhs)
    batch = KernelBatch(num_layers=np.empty(b, np.int32), cum_depth=np.zeros((b, MAX_LAYERS + 1)),
                        scalars=np.empty((b, len(SCALAR_NAMES))),
                        flags=np.empty((b, len(FLAG_NAMES)), np.int32), giuh=np.zeros((b, g)),
                        n_giuh=np.empty(b, np.int32), params=np.empty((b, len(PARAMETER_NAMES))),
                        n_steps=configs[0].num_forcing_steps)
    for i, c in enumerate(configs):
        batch.num_layers[i] = c.num_layers
        cum = c.cum_layer_thickness_cm
        batch.cum_depth[i, :len(cum)] = cum[:MAX_LAYERS + 1]
        batch.cum_depth[i, len(cum):] = cum[-1]
        batch.scalars[i] = (c.initial_psi_cm, c.timestep_h, c.forcing_resolution_h, c.endtime_s,
                            c.wilting_point_psi_cm, c.field_capacity_psi_cm, c.spf_factor,
                            c.mbal_tol)
        batch.flags[i] = [int(getattr(c, name)) for name in FLAG_NAMES]
        batch.giuh[i, :len(giuhs[i])] = giuhs[i]
        batch.n_giuh[i] = len(giuhs[i])
        batch.params[i] = parameters_from_config(c)
    return batch


# ----------------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------------
@dataclass
class KernelRun:
    """Result of :func:`run_kernel`.

    Attributes
    ----------
    outputs : dict of str to numpy.ndarray
        :data:`OUTPUT_NAMES` -> [T, B], metres per forcing step.
    state : numpy.ndarray
        [B, S] final packed state (pass as ``state`` to continue the run).
    n_fronts, substeps : numpy.ndarray
        [T, B] number of fronts after each step, substeps taken.
    fronts : numpy.ndarray or None
        [T, B, K, 4] (depth [cm], theta, layer, psi [cm]) of the first K fronts after each step.
    jacobian : numpy.ndarray or None
        [T, B, V, P] d output / d parameter [m per unit of the parameter] (sensitivities).
    state_tangent : numpy.ndarray or None
        [B, S, P] tangents of the final state (pass as ``state_tangent`` to continue).
    vjp : numpy.ndarray or None
        [B, P] vector-Jacobian product with ``vjp_weights`` (sensitivities).
    """

    outputs: dict[str, np.ndarray]
    state: np.ndarray
    n_fronts: np.ndarray
    substeps: np.ndarray
    fronts: np.ndarray | None = None
    jacobian: np.ndarray | None = None
    state_tangent: np.ndarray | None = None
    vjp: np.ndarray | None = None


#: Fields of the front arrays in a packed state, in order (each MAX_FRONTS long).
STATE_FRONT_FIELDS: tuple[str, ...] = ("depth", "theta", "psi", "k", "dzdt", "layer", "to_bottom")
#: Scalars at the start of a packed state, in order (``n`` fronts first).
STATE_SCALARS: tuple[str, ...] = (
    "n", "ponded_cm", "precip_previous_cm", "cr_fast_cm", "cr_slow_cm", "previous_aet",
    "previous_pet", "previous_recharge", "accumulated_pet", "accumulated_free_drainage",
    "runoff_in_prev_step", "cache_fluxes", "cache_count", "timestep_h", "time_s", "reserved")


def unpack_state(state: np.ndarray, basin: int = 0) -> dict[str, np.ndarray | float]:
    """The packed state of one basin as named values: the :data:`STATE_SCALARS`, the fronts
    (:data:`STATE_FRONT_FIELDS`, ``n`` each; depth and psi cm, K and dZ/dt cm/h) and
    ``giuh_queue`` (cm)."""
    row = np.asarray(state)[basin]
    cap = int(core().MAX_FRONTS)
    ns = len(STATE_SCALARS)
    out: dict[str, np.ndarray | float] = {k: float(row[i]) for i, k in enumerate(STATE_SCALARS)}
    n = int(row[0])
    for j, name in enumerate(STATE_FRONT_FIELDS):
        values = row[ns + j * cap: ns + j * cap + n]
        out[name] = values.astype(int) if name == "layer" else (
            values != 0 if name == "to_bottom" else values.copy())
    out["giuh_queue"] = row[ns + len(STATE_FRONT_FIELDS) * cap:].copy()
    return out


def _forcing(x, n_basins: int, name: str) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if a.ndim == 1 and n_basins == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] != n_basins:
        raise ValueError(f"{name}: expected [T, {n_basins}] (mm/h), got shape {a.shape}")
    return a


def run_kernel(batch: KernelBatch | Sequence[LgarConfig], precip_mm_per_h, pet_mm_per_h,
               params: np.ndarray | None = None, state: np.ndarray | None = None,
               state_tangent: np.ndarray | None = None, sensitivities: bool = False,
               record_fronts: int = 0, n_threads: int = 1, jacobian: bool = True,
               vjp_weights: np.ndarray | None = None,
               vjp_outputs: Sequence[str] = ()) -> KernelRun:
    """Run B columns over T forcing steps in the compiled kernel.

    Parameters
    ----------
    batch : KernelBatch or list of LgarConfig
        Settings and (default) parameters of the basins.
    precip_mm_per_h, pet_mm_per_h : array_like
        [T, B] forcing rates [mm/h] (finite).
    params : numpy.ndarray, optional
        [B, 27] parameters replacing ``batch.params``.
    state, state_tangent : numpy.ndarray, optional
        [B, S] packed state to start from (default: the initial state of the configs), and with
        ``sensitivities`` its tangents [B, S, P] (default zero when a state is given).
    sensitivities : bool
        Also return the per-step Jacobian of every output to every parameter.
    record_fronts : int
        Record the first K fronts of each basin after every step.
    n_threads : int
        Threads over basins.
    jacobian : bool
        With ``sensitivities``, return the Jacobian [T, B, 14, 27] (memory T B 378 doubles).
    vjp_weights, vjp_outputs : optional
        With ``sensitivities``, weights [T, B, K] of the outputs named ``vjp_outputs`` (K names):
        return ``vjp`` [B, P] = sum over steps and outputs of weight x d output / d p, accumulated
        in the kernel (memory independent of T; pass ``jacobian=False`` to skip the Jacobian).
    """
    if not isinstance(batch, KernelBatch):
        batch = pack_configs(list(batch))
    b = batch.n_basins
    p = batch.params if params is None else np.ascontiguousarray(params, dtype=np.float64)
    precip = _forcing(precip_mm_per_h, b, "precip")
    pet = _forcing(pet_mm_per_h, b, "pet")
    fn = core().run_sensitivities if sensitivities else core().run
    kwargs = {}
    if sensitivities:
        kwargs["state_tangent"] = state_tangent
        kwargs["jacobian"] = jacobian
        if vjp_weights is not None:
            unknown = [name for name in vjp_outputs if name not in OUTPUT_NAMES]
            if unknown or not vjp_outputs:
                raise ValueError(f"vjp_outputs: expected names of {OUTPUT_NAMES}, got "
                                 f"{list(vjp_outputs)}")
            kwargs["vjp_weights"] = np.ascontiguousarray(vjp_weights, dtype=np.float64)
            kwargs["vjp_outputs"] = np.array([OUTPUT_NAMES.index(n) for n in vjp_outputs],
                                             np.int32)
    elif state_tangent is not None or vjp_weights is not None:
        raise ValueError("state_tangent, vjp_weights: only with sensitivities=True")
    res = fn(batch.num_layers, batch.cum_depth, batch.scalars, batch.flags, batch.giuh,
             batch.n_giuh, p, precip, pet, state=state, record_fronts=record_fronts,
             n_threads=n_threads, **kwargs)
    out = res["outputs"]
    return KernelRun(outputs={name: out[:, :, i] for i, name in enumerate(OUTPUT_NAMES)},
                     state=res["state"], n_fronts=res["n_fronts"], substeps=res["substeps"],
                     fronts=res.get("fronts"), jacobian=res.get("jacobian"),
                     state_tangent=res.get("state_tangent"), vjp=res.get("vjp"))


# ----------------------------------------------------------------------------------------------
# Autograd
# ----------------------------------------------------------------------------------------------
class LgarFunction(torch.autograd.Function):
    """params [B, P] (float64) -> selected outputs [T, B, K] (metres per step).

    Forward runs the plain kernel. Backward runs the sensitivity kernel once more with the
    incoming gradient as weights and returns ``sum_t sum_k grad_out[t, b, k] J[t, b, k, :]``,
    accumulated in the kernel (no Jacobian stored; memory independent of T)."""

    @staticmethod
    def forward(ctx, params: torch.Tensor, batch: KernelBatch, precip, pet,
                outputs: tuple[str, ...], n_threads: int, state=None):
        p = np.ascontiguousarray(params.detach().cpu().numpy(), dtype=np.float64)
        run = run_kernel(batch, precip, pet, params=p, state=state, n_threads=n_threads)
        ctx.args = (p, batch, precip, pet, outputs, n_threads, state)
        y = np.stack([run.outputs[name] for name in outputs], axis=-1)
        return torch.from_numpy(y).to(params.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        p, batch, precip, pet, outputs, n_threads, state = ctx.args
        w = grad_out.detach().cpu().numpy().astype(np.float64)
        run = run_kernel(batch, precip, pet, params=p, state=state, sensitivities=True,
                         jacobian=False, vjp_weights=w, vjp_outputs=outputs,
                         n_threads=n_threads)
        grad = torch.from_numpy(run.vjp).to(grad_out.dtype)
        return grad, None, None, None, None, None, None


def lgar_outputs(params: torch.Tensor, batch: KernelBatch, precip, pet,
                 outputs: Sequence[str] = ("total_discharge",), n_threads: int = 1,
                 state: np.ndarray | None = None) -> torch.Tensor:
    """Differentiable kernel run: outputs [T, B, len(outputs)] (metres per step) of the
    parameters ``params`` [B, 27] (float64 tensor); gradients reach ``params`` only.

    ``state`` [B, S]: a packed state to start from (e.g. after a warm-up run without
    gradient), taken as constant (zero tangents)."""
    unknown = [name for name in outputs if name not in OUTPUT_NAMES]
    if unknown:
        raise ValueError(f"unknown outputs {unknown}; known: {OUTPUT_NAMES}")
    if params.dtype != torch.float64:
        raise TypeError("params: expected a float64 tensor")
    if tuple(params.shape) != (batch.n_basins, len(PARAMETER_NAMES)):
        raise ValueError(f"params: expected shape ({batch.n_basins}, {len(PARAMETER_NAMES)}), "
                         f"got {tuple(params.shape)}")
    if state is not None:
        state = np.ascontiguousarray(state, dtype=np.float64)
    return LgarFunction.apply(params, batch, precip, pet, tuple(outputs), n_threads, state)
