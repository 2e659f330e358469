"""HBV run with a selectable backend: the PyTorch reference or the compiled C++ kernel.

:func:`run` has the signature and semantics of :func:`bmi_dhbv.hbv.run` plus ``backend``:

* ``"torch"`` calls :func:`bmi_dhbv.hbv.run` (supports ``recharge_net``, any device);
* ``"cpp"`` calls the compiled kernel ``bmi_dhbv._core`` through a :class:`torch.autograd.Function`
  whose backward is a hand-derived adjoint through time. It computes on the CPU in the promoted
  dtype of the inputs (float32 or float64); gradients reach every parameter and ``states0``, never
  the forcing. Subgradients at kinks follow torch autograd, so both backends give the same
  gradients (tests/test_kernel_equivalence.py).

:func:`step_numpy` advances one basin by one day in place (for the BMI),
:func:`compiled_threads` sets how many threads the kernel splits the basins across and
:func:`instruction_set` which build of its loops runs (AVX2 where the CPU has it, else SSE2).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from bmi_dhbv import hbv
from delta_core.kernels import KernelMismatchError, import_kernel, missing_kernel
from delta_core.kernels import check_names as _check_names



def check_names(core) -> None:
    """Raise :class:`KernelMismatchError` unless the compiled module's name tuples equal the
    Python spec's (:data:`hbv.PARAMETER_NAMES`, :data:`hbv.STATE_NAMES`, :data:`hbv.FLUX_NAMES`):
    a stale or foreign build must not run with silently permuted parameters."""
    _check_names(core, "HBV", "bmi_dhbv/hbv.py",
                 {a: getattr(hbv, a) for a in ("PARAMETER_NAMES", "STATE_NAMES", "FLUX_NAMES")})


# the compiled extension is optional at import time; cpp_available() tells
_core, _IMPORT_ERROR = import_kernel("bmi_dhbv._core", check_names)

#: Valid values of ``backend``.
BACKENDS: tuple[str, ...] = ("torch", "cpp")

_N_THREADS = 0  # 0: follow torch.get_num_threads(), capped at the hardware threads


def cpp_available() -> bool:
    """Whether the compiled kernel ``bmi_dhbv._core`` could be imported."""
    return _core is not None


def _require_core():
    if _core is None:
        raise missing_kernel("HBV", "bmi_dhbv._core", _IMPORT_ERROR, " or use backend='torch'")
    return _core


def compiled_threads(n: int | None = None) -> int:
    """Get (``n=None``) or set the number of threads of the C++ kernel; returns the value in force.

    ``0`` (default) follows ``torch.get_num_threads()`` (capped at the hardware threads), so one
    knob (``torch.set_num_threads``, or ``training.threads`` of a run config) sets both. Small problems run on one thread regardless (thread
    start-up would cost more than it saves).
    """
    global _N_THREADS
    if n is not None:
        n = int(n)
        if n < 0:
            raise ValueError(f"n_threads must be >= 0, got {n}")
        _N_THREADS = n
    if _N_THREADS == 0 and _core is not None:
        return max(1, min(int(_core.hardware_threads()), torch.get_num_threads()))
    return _N_THREADS if _N_THREADS > 0 else 1


def instruction_set(name: str | None = None) -> str:
    """Get (``name=None``) or set the instruction set of the batched kernel; returns the one in
    force.

    ``"avx2"`` (default where the CPU supports it and the environment variable
    ``DELTA_NO_AVX2`` is unset) or ``"sse2"`` (the x86-64 baseline, every CPU). Both give the
    reference's results within the equivalence tolerances; they differ from each other in the
    last bits (order of the component sums, libmvec's variants).
    """
    core = _require_core()
    if name is not None and not core.set_isa(name):
        raise ValueError(f"instruction set {name!r} is unknown or not supported by this CPU "
                         f"(in force: {core.isa()!r})")
    return core.isa()


_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _fn(name: str, dtype: torch.dtype):
    """The compiled kernel's ``name`` (forward, forward_at, backward) for ``dtype``."""
    core = _require_core()
    if dtype not in _SUFFIX:
        raise TypeError(f"the C++ kernel supports float32 and float64, not {dtype}")
    return getattr(core, f"{name}_{_SUFFIX[dtype]}")


def _contiguous(x: torch.Tensor) -> torch.Tensor:
    """``x``, or a contiguous copy where it is not contiguous."""
    return x if x.is_contiguous() else x.contiguous()


def _np(x: torch.Tensor) -> np.ndarray:
    """The numpy view of a CPU tensor (a contiguous copy only where it is not contiguous)."""
    return _contiguous(x.detach() if x.requires_grad else x).numpy()


class HBVFunction(torch.autograd.Function):
    """Differentiable HBV over T days on the C++ kernel.

    ``apply(p, t, pet, states0, n_threads, *params)`` with forcing ``[T, B]``, ``states0``
    ``[5, B, C]`` and the 13 parameters in :data:`hbv.PARAMETER_NAMES` order, each ``[B, C]`` or
    ``[T, B, C]`` (all CPU, same dtype, contiguous). Returns fluxes ``[12, T, B]``, storages
    ``[5, T, B]`` and final states ``[5, B, C]``.
    """

    @staticmethod
    def forward(ctx, p, t, pet, states0, n_threads, *params):
        fwd = _fn("forward", states0.dtype)
        need_saved = states0.requires_grad or any(x.requires_grad for x in params)
        pn, tn, petn = _np(p), _np(t), _np(pet)
        parn = [_np(x) for x in params]
        fl, st, fin, saved = fwd(pn, tn, petn, parn, _np(states0), need_saved, True, n_threads)
        ctx.set_materialize_grads(False)
        ctx.n_threads = n_threads
        ctx.dtype = states0.dtype
        if need_saved:
            ctx.arrays = (pn, tn, petn, parn, saved)
        return torch.from_numpy(fl), torch.from_numpy(st), torch.from_numpy(fin)

    @staticmethod
    def backward(ctx, g_fluxes, g_storages, g_final):
        if not hasattr(ctx, "arrays"):
            return (None,) * (5 + len(hbv.PARAMETER_NAMES))
        pn, tn, petn, parn, saved = ctx.arrays
        bwd = _fn("backward", ctx.dtype)
        conv = (lambda g: None if g is None else _np(g))
        g_par, g_s0 = bwd(pn, tn, petn, parn, saved, conv(g_fluxes), conv(g_storages),
                          conv(g_final), ctx.n_threads)
        need = ctx.needs_input_grad
        grads = [torch.from_numpy(g) if need[5 + i] else None for i, g in enumerate(g_par)]
        return (None, None, None, torch.from_numpy(g_s0) if need[3] else None, None, *grads)


def _promoted_dtype(tensors: list[torch.Tensor]) -> torch.dtype:
    """The dtype torch would compute ``tensors`` in (float32 or float64, else TypeError)."""
    dtype = tensors[0].dtype
    if any(x.dtype != dtype for x in tensors):
        for x in tensors:
            dtype = torch.promote_types(dtype, x.dtype)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the C++ kernel supports float32 and float64, not {dtype}")
    return dtype


def _on_cpu(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` as a CPU tensor of ``dtype`` (itself when it is one already)."""
    return x if x.dtype == dtype and x.is_cpu else x.to(device="cpu", dtype=dtype)


def _kernel_parameters(values: list[torch.Tensor], n_days: int, n_basins: int, n_comps: int,
                       dtype: torch.dtype) -> list[torch.Tensor]:
    """The 13 parameters (:data:`hbv.PARAMETER_NAMES` order) as the kernel takes them: CPU,
    ``dtype``, contiguous, ``[B, C]`` (static) or ``[T, B, C]`` (dynamic); broadcastable shapes
    are expanded (and then copied)."""
    out = []
    for name, v in zip(hbv.PARAMETER_NAMES, values):
        v = _on_cpu(v, dtype)
        if v.dim() == 2:
            want = (n_basins, n_comps)
        elif v.dim() == 3:
            if v.shape[0] != n_days:
                raise ValueError(f"dynamic parameter {name} has {v.shape[0]} days, "
                                 f"forcing has {n_days}")
            want = (n_days, n_basins, n_comps)
        else:
            raise ValueError(f"parameter {name} must be [B, C] or [T, B, C], got {tuple(v.shape)}")
        if v.shape != want:
            v = v.expand(want)
        out.append(v if v.is_contiguous() else v.contiguous())
    return out


def _check_shapes(p: torch.Tensor, t: torch.Tensor, pet: torch.Tensor,
                  states0: torch.Tensor) -> None:
    """ValueError unless the forcing is [T, B] (all three alike) and ``states0`` [5, B, C]."""
    if p.dim() != 2 or t.shape != p.shape or pet.shape != p.shape:
        raise ValueError(f"forcing must be [T, B] of equal shapes, got {tuple(p.shape)}, "
                         f"{tuple(t.shape)}, {tuple(pet.shape)}")
    n_basins = p.shape[1]
    if states0.dim() != 3 or states0.shape[0] != len(hbv.STATE_NAMES) or states0.shape[1] != n_basins:
        raise ValueError(f"states0 must be [5, {n_basins}, C], got {tuple(states0.shape)}")


def _run_cpp(p, t, pet, params, states0, keep_storages):
    try:
        values = [params[name] for name in hbv.PARAMETER_NAMES]
    except KeyError:
        missing = [n for n in hbv.PARAMETER_NAMES if n not in params]
        raise ValueError(f"missing HBV parameters: {missing}") from None
    _check_shapes(p, t, pet, states0)
    (n_days, n_basins), n_comps = p.shape, states0.shape[2]
    device = states0.device
    dtype = _promoted_dtype([p, t, pet, states0, *values])
    plist = _kernel_parameters(values, n_days, n_basins, n_comps, dtype)
    p, t, pet, s0 = (_on_cpu(x, dtype) for x in (p, t, pet, states0))
    if torch.is_grad_enabled() and (s0.requires_grad or any(v.requires_grad for v in plist)):
        fl, st, fin = HBVFunction.apply(p.detach(), t.detach(), pet.detach(), _contiguous(s0),
                                        compiled_threads(), *plist)
    else:  # no gradient wanted: the kernel on the tensors' own buffers (no autograd, no saves)
        p, t, pet, s0 = (_contiguous(x) for x in (p, t, pet, s0))
        fl, st, fin, _ = _fn("forward_at", dtype)(
            n_days, n_basins, n_comps, p.data_ptr(), t.data_ptr(), pet.data_ptr(),
            [v.data_ptr() for v in plist], [v.dim() == 3 for v in plist], s0.data_ptr(),
            keep_storages, compiled_threads())
        fl, fin = torch.from_numpy(fl), torch.from_numpy(fin)
        st = torch.from_numpy(st) if keep_storages else None
    if device.type != "cpu":
        fl, fin = fl.to(device), fin.to(device)
        st = st.to(device) if st is not None else None
    fluxes = dict(zip(hbv.FLUX_NAMES, fl.unbind(0)))
    storages = dict(zip(hbv.STATE_NAMES, st.unbind(0))) if keep_storages else {}
    return hbv.HBVResult(fluxes, storages, fin)


def run(
    p: torch.Tensor,
    t: torch.Tensor,
    pet: torch.Tensor,
    params: Mapping[str, torch.Tensor],
    states0: torch.Tensor,
    recharge_net: hbv.RechargeNet | None = None,
    keep_storages: bool = True,
    backend: str = "cpp",
) -> hbv.HBVResult:
    """Run HBV over T days for B basins x C components; see :func:`bmi_dhbv.hbv.run`.

    Parameters
    ----------
    backend : {"torch", "cpp"}
        ``"torch"``: the PyTorch reference; ``"cpp"``: the compiled kernel (no ``recharge_net``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown HBV backend {backend!r}; valid: {list(BACKENDS)}")
    if backend == "torch":
        return hbv.run(p, t, pet, params, states0, recharge_net=recharge_net,
                       keep_storages=keep_storages)
    if recharge_net is not None:
        raise ValueError("recharge_net (NN recharge, δn(NNr)) is only supported by "
                         "backend='torch'; the C++ kernel implements the (SM/FC)^BETA curve")
    return _run_cpp(p, t, pet, params, states0, keep_storages)


def step_numpy(states: np.ndarray, p: float, t: float, pet: float, params: np.ndarray,
               out: np.ndarray | None = None) -> np.ndarray:
    """Advance one basin by one day on the C++ kernel, in place.

    Parameters
    ----------
    states : ndarray [5, C], float32 or float64, C-contiguous
        Stores (:data:`hbv.STATE_NAMES` order); updated in place.
    p, t, pet : float
        Precipitation [mm/day], mean air temperature [degC], PET [mm/day] of the day.
    params : ndarray [13, C], same dtype as ``states``
        Parameters in :data:`hbv.PARAMETER_NAMES` order.
    out : ndarray [12], optional
        Receives the component-mean fluxes (:data:`hbv.FLUX_NAMES` order); avoids an allocation.

    Returns
    -------
    ndarray [12]
        Component-mean fluxes of the day (``out`` when given).
    """
    core = _require_core()
    if states.dtype == np.float64:
        return core.step_f64(states, p, t, pet, params, out)
    if states.dtype == np.float32:
        return core.step_f32(states, p, t, pet, params, out)
    raise TypeError(f"states must be float32 or float64, got {states.dtype}")
