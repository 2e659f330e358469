"""How close a bundle's learned static parameters sit to their range bounds, over basins.

Prints, per parameter of a dHBV bundle (all components of all basins of the pack), the median,
the 90th percentile, the bounds and the share of values within 5 % of the range from the upper
bound: a parameter stuck at its bound is one the training wanted beyond it.

    python scripts/parameter_bounds.py bmi_dhbv/weights/dhbv_dynamic_hourly.pt
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from delta_core.data.camels import CamelsDataset
from delta_core.evaluation import load_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", help="a dHBV bundle")
    ap.add_argument("--data", default="../shared/data/camels_us_daily",
                    help="CAMELS pack (default: ../shared/data/camels_us_daily)")
    ap.add_argument("--basins", default="all", help="basins (default: all)")
    a = ap.parse_args(argv)
    ds = CamelsDataset(a.data)
    ids = ds.resolve_basins(a.basins)
    model, norm, _ = load_model(a.bundle, dtype=torch.float64)
    if not hasattr(model, "static_and_routing"):
        ap.error("the bundle is not a dHBV bundle")
    x = torch.as_tensor(norm.attributes.transform(ds.attributes(ids, norm.attributes.names), ids))
    with torch.no_grad():
        static, _, _ = model.static_and_routing(x)
    ranges = model.options.parameter_ranges
    print(f"{'parameter':<10} {'median':>8} {'p90':>8} {'low':>8} {'high':>8} {'near high':>10}")
    for name, v in static.items():
        lo, hi = ranges[name]
        v = v.numpy()
        near = np.mean(v > hi - 0.05 * (hi - lo))
        print(f"{name:<10} {np.median(v):8.3f} {np.quantile(v, 0.9):8.3f} {lo:8.3f} {hi:8.3f} "
              f"{near:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
