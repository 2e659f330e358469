"""CFE run with a selectable backend: the PyTorch reference or the compiled C++ kernel.

:func:`run` has the signature and semantics of :func:`bmi_dcfe.physics.run` plus ``backend``:

* ``"torch"`` calls :func:`bmi_dcfe.physics.run` (every option, any device);
* ``"cpp"`` runs the soil, groundwater and lateral Nash cascade of every hour in the compiled
  kernel ``bmi_dcfe._core`` (classic soil scheme, Schaake partitioning, GIUH surface routing:
  the configuration dCFE trains; other options raise a clear error) through a
  :class:`torch.autograd.Function` whose backward is a hand-derived adjoint through time; the
  GIUH convolution of the infiltration excess is linear and done here in PyTorch. Computes on the
  CPU in the inputs' dtype (float32 or float64); gradients reach every parameter, the initial
  state, rain and PET. Subgradients at thresholds follow torch autograd on the reference, so both
  backends give the same gradients (tests/test_cfe_kernel.py).
"""
from __future__ import annotations

import dataclasses

import torch

from bmi_dcfe import physics
from delta_core.kernels import KernelMismatchError, import_kernel, missing_kernel
from delta_core.kernels import check_names as _check_names

#: Per-basin kernel parameters, in the compiled module's order (derived constants).
PARAMETER_NAMES: tuple[str, ...] = (
    "storage_max", "field_capacity", "wilting_point", "coeff_percolation", "schaake_kdt", "k_lf",
    "expon_soil", "expon_soil_secondary", "max_gw_storage", "cgw", "expon_gw", "k_nash")
#: Kernel outputs [len, T, B]; the first N_GRAD_OUTPUTS carry gradients.
OUTPUT_NAMES: tuple[str, ...] = (
    "INFILTRATION_EXCESS", "NASH_LATERAL_RUNOFF", "DEEP_GW_TO_CHANNEL_FLUX", "GW_OVERFLOW",
    "ACTUAL_ET", "SOIL_STORAGE", "GW_STORAGE", "SOIL_TO_GW_FLUX", "INFILTRATION", "LATERAL_FLUX",
    "ET_FROM_RAIN", "ET_FROM_SOIL", "SOIL_STORAGE_CHANGE")
N_GRAD_OUTPUTS = 8
#: Scalar states before the Nash reservoirs in the kernel's state vector.
STATE_NAMES: tuple[str, ...] = ("soil", "gw", "percolation")

BACKENDS: tuple[str, ...] = ("torch", "cpp")


def check_names(core) -> None:
    """Raise :class:`KernelMismatchError` unless the compiled module's name tuples are ours."""
    _check_names(core, "CFE", "bmi_dcfe/kernel.py",
                 {"PARAMETER_NAMES": PARAMETER_NAMES, "OUTPUT_NAMES": OUTPUT_NAMES,
                  "STATE_NAMES": STATE_NAMES, "N_GRAD_OUTPUTS": N_GRAD_OUTPUTS})


_core, _IMPORT_ERROR = import_kernel("bmi_dcfe._core", check_names)

_N_THREADS = 0


def cpp_available() -> bool:
    """Whether the compiled kernel ``bmi_dcfe._core`` could be imported."""
    return _core is not None


def compiled_threads(n: int | None = None) -> int:
    """Get (``n=None``) or set the kernel's thread count; 0 follows ``torch.get_num_threads()``."""
    global _N_THREADS
    if n is not None:
        if n < 0:
            raise ValueError(f"threads must be >= 0, got {n}")
        _N_THREADS = int(n)
    return _N_THREADS


def _threads(n_basins: int) -> int:
    n = _N_THREADS or torch.get_num_threads()
    return max(1, min(n, n_basins // 8 or 1))


def unsupported(options: physics.CfeOptions) -> str | None:
    """Why the kernel cannot run ``options`` (None if it can)."""
    if options.soil_scheme != "classic":
        return "the CFE-ODE soil scheme"
    if options.partitioning != "schaake":
        return "Xinanjiang partitioning"
    if options.surface != "giuh":
        return "the Nash-cascade surface scheme"
    return None


def _require_core():
    if _core is None:
        raise missing_kernel("CFE", "bmi_dcfe._core", _IMPORT_ERROR, " or use backend='torch'")
    return _core


def _fn(name: str, dtype: torch.dtype):
    return getattr(_require_core(), f"{name}_{'f64' if dtype == torch.float64 else 'f32'}")


class _CfeFunction(torch.autograd.Function):
    """Kernel forward/adjoint: (params [12, R, B] in rows of ``period`` steps, state0 [3+n, B],
    rain, pet [T, B]) -> (outputs [13, T, B], final state [3+n, B])."""

    @staticmethod
    def forward(ctx, params, state0, rain, pet, period: int, mass_conserving: bool,
                n_threads: int):
        dtype = rain.dtype
        arrs = [x.detach().cpu().contiguous().numpy() for x in (params, state0, rain, pet)]
        save = any(ctx.needs_input_grad[:4])
        out, final, saved = _fn("forward", dtype)(*arrs, period, mass_conserving, save, n_threads)
        ctx.mass_conserving, ctx.n_threads, ctx.period = mass_conserving, n_threads, period
        ctx.arrays = (arrs[0], saved, arrs[2], arrs[3])
        return torch.from_numpy(out), torch.from_numpy(final)

    @staticmethod
    def backward(ctx, g_out, g_final):
        params, saved, rain, pet = ctx.arrays
        dtype = g_out.dtype
        g = g_out[:N_GRAD_OUTPUTS].contiguous().numpy()
        gp, gs, gr, ge = _fn("backward", dtype)(params, saved, rain, pet, g,
                                                g_final.contiguous().numpy(), ctx.period,
                                                ctx.mass_conserving, ctx.n_threads)
        return (torch.from_numpy(gp), torch.from_numpy(gs), torch.from_numpy(gr),
                torch.from_numpy(ge), None, None, None)


def giuh_route(excess: torch.Tensor, ordinates: torch.Tensor, queue0: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """GIUH convolution of the hourly infiltration excess, as CFE's runoff queue does it.

    Parameters
    ----------
    excess : Tensor [T, B]
    ordinates : Tensor [B, n]
    queue0 : Tensor [B, n]
        Runoff queue at the start (water due in 0, 1, ... steps ahead).

    Returns
    -------
    (direct runoff [T, B], queue after the last step [B, n])
        Without gradients (float64) in one call of the compiled kernel, bit for bit the
        additions of :func:`giuh_route_torch`.
    """
    if (_core is not None and excess.dtype == torch.float64 and not (
            torch.is_grad_enabled() and any(x.requires_grad for x in (excess, ordinates, queue0)))):
        direct, queue = _core.giuh_route(excess.detach().numpy(), ordinates.detach().numpy(),
                                         queue0.detach().numpy())
        return torch.from_numpy(direct), torch.from_numpy(queue)
    return giuh_route_torch(excess, ordinates, queue0)


def giuh_route_torch(excess: torch.Tensor, ordinates: torch.Tensor, queue0: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`giuh_route` in PyTorch (differentiable; the reference of the compiled one)."""
    t_len, _ = excess.shape
    n = ordinates.shape[1]
    pad = torch.cat([excess.new_zeros(n, excess.shape[1]), excess])  # excess[t - k] at pad[n + t - k]
    q0 = torch.cat([queue0.T, excess.new_zeros(max(t_len, 0), excess.shape[1])])[:t_len]
    direct = q0
    for k in range(n - 1, -1, -1):
        direct = direct + ordinates[:, k] * pad[n - k:n - k + t_len]
    tail = []
    for j in range(n):
        v = queue0[:, t_len + j] if t_len + j < n else excess.new_zeros(excess.shape[1])
        for k in range(n - 1, j, -1):
            t = t_len + j - k
            if 0 <= t < t_len:
                v = v + ordinates[:, k] * excess[t]
        tail.append(v)
    return direct, torch.stack(tail, dim=1)


def kernel_parameters(p: physics.CfeParameters) -> tuple[torch.Tensor, ...]:
    """The kernel's per-basin parameters (:data:`PARAMETER_NAMES`, derived soil constants
    included) from CFE parameters, each of ``p``'s shape (``[B]``, or ``[R, B]`` rows)."""
    c = physics.soil_constants(p)
    return (c.storage_max, c.field_capacity, c.wilting_point, c.coeff_percolation,
            c.schaake_kdt, p.k_lf, p.expon_soil, p.expon_soil_secondary, p.max_gw_storage, p.cgw,
            p.expon_gw, p.k_nash)


def run(state: physics.CfeState, p: physics.CfeParameters, rain: torch.Tensor,
        pet: torch.Tensor, options: physics.CfeOptions, outputs: tuple[str, ...] | None = None,
        backend: str = "cpp", dynamic: dict[str, torch.Tensor] | None = None, period: int = 24
        ) -> tuple[physics.CfeState, dict[str, torch.Tensor]]:
    """:func:`bmi_dcfe.physics.run` on the chosen backend (module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {list(BACKENDS)}")
    if backend == "torch":
        return physics.run(state, p, rain, pet, options, outputs, dynamic, period)
    why = unsupported(options)
    if why is not None:
        raise ValueError(f"the CFE kernel does not implement {why}: use backend='torch'")
    if rain.shape != pet.shape or rain.dim() != 2 or rain.shape[1] != p.n_basins:
        raise ValueError(f"rain {tuple(rain.shape)} and pet {tuple(pet.shape)} must both be "
                         f"[T, {p.n_basins}]")
    n_steps = rain.shape[0]
    dynamic = physics.check_dynamic(dynamic, n_steps, p.n_basins, period)
    if not dynamic:
        period = max(n_steps, 1)
    rows = physics.dynamic_rows(n_steps, period)
    pr = dataclasses.replace(p, **dynamic) if dynamic else p
    params = torch.stack([v.expand(rows, p.n_basins) for v in kernel_parameters(pr)])
    state0 = torch.cat([torch.stack([state.soil, state.gw, state.percolation]),
                        state.nash_lateral.T])
    dtype = rain.dtype
    params, state0, pet = params.to(dtype), state0.to(dtype), pet.to(dtype)
    out, final = _CfeFunction.apply(params, state0, rain, pet, period, options.mass_conserving,
                                    _threads(p.n_basins))
    k = {name: out[i] for i, name in enumerate(OUTPUT_NAMES)}
    direct, queue = giuh_route(k["INFILTRATION_EXCESS"], p.giuh_ordinates.to(dtype),
                               state.giuh_queue.to(dtype))
    q_out = direct + k["NASH_LATERAL_RUNOFF"] + k["DEEP_GW_TO_CHANNEL_FLUX"]
    if options.mass_conserving:
        q_out = q_out + k["GW_OVERFLOW"]
    zero = torch.zeros_like(rain)
    ponded = (state.giuh_queue.sum(-1) + torch.cumsum(k["INFILTRATION_EXCESS"], 0)
              - torch.cumsum(direct, 0))
    every = {**k, "RAIN_RATE": rain, "DIRECT_RUNOFF": direct, "Q_OUT": q_out,
             "POTENTIAL_ET": pet * physics.STEP_SECONDS, "NWM_PONDED_DEPTH": ponded,
             "ET_FROM_RETENTION": zero, "RUNON_INFILTRATION": zero}
    keep = outputs or physics.OUTPUT_NAMES + physics.EXTRA_OUTPUTS
    new = physics.CfeState(soil=final[0], gw=final[1], giuh_queue=queue,
                           nash_lateral=final[3:].T, nash_surface=state.nash_surface,
                           percolation=final[2])
    return new, {name: every[name] for name in keep}
