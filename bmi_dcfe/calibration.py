"""CFE with its parameters given directly: the per-basin DDS calibration baseline beside dCFE.

The same snow routine and hourly CFE engine as dCFE (:meth:`bmi_dcfe.model.DCFE.simulate`, the
physics configuration of the δ model compared with, static parameters), in the same ranges as the δ model's network
(:data:`bmi_dcfe.model.PARAMETERS`).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from bmi_dcfe.model import FORCING_NAMES, PARAMETERS, SPEC
from delta_core.spec import Engine


class CFECalibrationTarget:
    """Snow + hourly CFE for unit-cube parameter points.

    Parameters
    ----------
    physics : mapping, optional
        A dCFE ``physics`` config section (e.g. of the bundle compared with; default: the
        defaults); dynamic parameters are calibrated as static ones.
    backend : {"cpp", "torch"}
        Physics engine.
    """

    names: tuple[str, ...] = tuple(p.name for p in PARAMETERS)
    forcings: tuple[str, ...] = FORCING_NAMES

    def __init__(self, physics: Mapping | None = None, backend: str = "cpp"):
        physics = {**dict(physics or {}), "dynamic": []}
        # the networks are not used (parameters are given); training mode keeps flows only
        self.model = SPEC.build_model(physics, {}, 1, Engine(backend, torch.float64)).train()

    def physical(self, unit: np.ndarray) -> dict[str, np.ndarray]:
        """Physical values ``{name: [B]}`` in the units of :data:`bmi_dcfe.model.PARAMETERS`."""
        return {k: v.numpy() for k, v in self._learned(unit).items()}

    def _learned(self, unit: np.ndarray) -> dict[str, torch.Tensor]:
        u = torch.from_numpy(np.asarray(unit, dtype=float))
        return {p.name: p.from_unit(u[:, i]) for i, p in enumerate(PARAMETERS)}

    def simulate(self, unit: np.ndarray, forcing: torch.Tensor, warmup: int) -> np.ndarray:
        """Daily streamflow [mm/day] ``[D - warmup, B]`` of P [mm/day], T [degC], PET [mm/day]
        forcing ``[D, B, 3]``."""
        with torch.no_grad():
            return self.model.simulate(self._learned(unit), forcing, warmup)["streamflow"].numpy()
