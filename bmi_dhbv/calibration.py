"""HBV with its parameters given directly: the per-basin DDS calibration baseline beside dHBV.

One HBV component with gamma routing, the 13 HBV parameters and the two routing parameters in
the same ranges as the δ model's networks (:data:`bmi_dhbv.hbv.PARAMETER_RANGES`,
:data:`bmi_dhbv.hbv.ROUTING_RANGES`), all static; it runs through the same daily engine as
dHBV (:func:`bmi_dhbv.substeps.simulate`, the C++ kernel), so the calibrated model and the δ
model differ only in where the parameters come from.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from bmi_dhbv import hbv
from bmi_dhbv.model import FORCING_NAMES
from delta_core.spec import Engine


class HBVCalibrationTarget:
    """One-component daily HBV + gamma routing for unit-cube parameter points.

    Parameters
    ----------
    physics : mapping, optional
        A dHBV ``physics`` config section (e.g. of the bundle compared with); its structure is
        kept except that the calibrated model has one component and no dynamic parameters.
    backend : {"cpp", "torch"}
        Physics engine.
    """

    names: tuple[str, ...] = hbv.PARAMETER_NAMES + tuple(hbv.ROUTING_RANGES)
    forcings: tuple[str, ...] = FORCING_NAMES

    def __init__(self, physics: Mapping | None = None, backend: str = "cpp"):
        from delta_core.config import section

        opts = {**dict(physics or {}), "n_components": 1, "dynamic": []}
        self.options = section(hbv.HBVOptions, opts, "dHBV physics")
        if self.options.nn_recharge:
            raise ValueError("the calibration baseline has no NN recharge (nn_recharge: false)")
        self.engine = Engine(backend, torch.float64)
        self.training = True  # substeps.simulate then keeps the flows only
        self.dynamic_net = None
        self.recharge_net = None

    def physical(self, unit: np.ndarray) -> dict[str, np.ndarray]:
        """Physical values ``{name: [B]}`` (HBV units of PARAMETER_RANGES, routing a [1], b [d])."""
        par, a, b = self.static_and_routing(torch.from_numpy(np.asarray(unit, dtype=float)))
        return {**{k: v[:, 0].numpy() for k, v in par.items()}, "route_a": a.numpy(),
                "route_b": b.numpy()}

    def static_and_routing(self, unit: torch.Tensor):
        """HBV parameters ``{name: [B, 1]}`` and routing ``(a [B], b [B])`` of ``unit [B, P]``
        (the interface :func:`bmi_dhbv.substeps.simulate` calls on a model)."""
        n_h = len(hbv.PARAMETER_NAMES)
        par = hbv.scale_parameters(unit[:, :n_h, None], hbv.PARAMETER_NAMES)
        (lo_a, hi_a, _), (lo_b, hi_b, _) = hbv.ROUTING_RANGES.values()
        return par, lo_a + unit[:, n_h] * (hi_a - lo_a), lo_b + unit[:, n_h + 1] * (hi_b - lo_b)

    def simulate(self, unit: np.ndarray, forcing: torch.Tensor, warmup: int) -> np.ndarray:
        """Daily streamflow [mm/day] ``[D - warmup, B]`` of P [mm/day], T [degC], PET [mm/day]
        forcing ``[D, B, 3]``."""
        from bmi_dhbv import substeps

        x = torch.from_numpy(np.asarray(unit, dtype=float))
        with torch.no_grad():
            o = self.options
        out = substeps.simulate(self, {"forcing": forcing, "x_attr": x, "warmup": warmup},
                                o.steps_per_day, o.within_day, lag_days=0)
        return out["streamflow"].numpy()
