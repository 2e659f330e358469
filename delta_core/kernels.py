"""Loading the models' compiled kernels (``bmi_*._core``, built from ``cpp_ext/`` by
``pip install .``): optional at import time, refused when stale.

A kernel module exports the name tuples (parameter, state, output names ...) it was compiled
with; :func:`import_kernel` compares them with the Python side's so that a stale or foreign build
never runs with silently permuted parameters, and keeps the import error of a missing build for
the message of :func:`missing_kernel`.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Mapping


class KernelMismatchError(ImportError):
    """The compiled kernel orders parameters, states or outputs differently from the Python
    module that drives it."""


def check_names(core: ModuleType, label: str, source: str, expected: Mapping[str, object]
                ) -> None:
    """Raise :class:`KernelMismatchError` unless ``core`` has every ``expected`` attribute
    (name tuples or constants) with the value ``source`` (the Python file) holds.

    ``label`` names the kernel in the message (e.g. ``"HBV"``)."""
    for attr, want in expected.items():
        got = getattr(core, attr, None)
        if isinstance(want, tuple):
            got = tuple(got or ())
        if got != want:
            raise KernelMismatchError(
                f"the compiled {label} kernel {getattr(core, '__file__', core)} has {attr} "
                f"{got}, {source} has {want}: rebuild the package (pip install .)")


def import_kernel(module: str, check) -> tuple[ModuleType | None, ImportError | None]:
    """``(module, None)`` if the compiled ``module`` imports and passes ``check(module)``;
    ``(None, error)`` if it is not built. A mismatch (:class:`KernelMismatchError`) is raised."""
    try:
        core = importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the build
        return None, exc
    check(core)
    return core, None


def missing_kernel(label: str, module: str, error: Exception | None, hint: str = ""
                   ) -> RuntimeError:
    """The error to raise when a kernel is needed but ``module`` could not be imported."""
    return RuntimeError(f"the compiled {label} kernel {module} is not available ({error}); "
                        f"reinstall the package with a C++ compiler{hint}")


def _check_spinup_loops(core: ModuleType) -> None:
    check_names(core, "spin-up", "delta_core/networks.py",
                {"LSTM_GATE_ORDER": ("i", "f", "o", "g")})


#: The compiled sequential loops of a BMI spin-up (``delta_core._core``: an LSTM over days, the
#: degree-day snow routine over hours), or None where the package was not built; their users
#: fall back to their Python references (:meth:`delta_core.networks.LSTMStepper.run`,
#: :func:`delta_core.snow.degree_day_series`).
SPINUP_LOOPS, SPINUP_LOOPS_ERROR = import_kernel("delta_core._core", _check_spinup_loops)
