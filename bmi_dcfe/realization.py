"""``dcfe-realization``: NextGen realizations and per-catchment configs for dCFE (the generic
writer of :mod:`delta_core.ngen.realization` bound to dCFE's BMI names and options)."""
from __future__ import annotations

import argparse
import dataclasses

from bmi_dcfe.bmi import BmiDCFE
from bmi_dcfe.noaa import MODULE
from delta_core.ngen import crosswalk as X
from delta_core.ngen.realization import HOURLY_MAP, ModelBinding, main as _main


def _inputs(time_step: int, args: argparse.Namespace) -> dict[str, str]:
    if time_step != 3600:
        raise ValueError("dcfe-realization writes hourly realizations (--time-step 3600)")
    names = {k: v for k, v in HOURLY_MAP.items() if k in (X.PRECIP, X.TEMP)}
    if args.pet_source == "input":
        names[X.PET] = "pet"
    return names


BINDING = ModelBinding(
    model="dcfe", prog="dcfe-realization", model_type_name="dCFE",
    python_type="bmi_dcfe.BmiDCFE",
    inputs=_inputs,
    spinup_columns={c: f for c, f in BmiDCFE.DAILY_SPINUP_COLUMNS.items()
                    if f not in ("pet", "tmean")},
    bmi_class=BmiDCFE,
    noaa=MODULE,
)


def main(argv: list[str] | None = None, prog: str = BINDING.prog) -> int:
    """The ``dcfe-realization`` command (also ``delta realization --model dcfe``)."""
    return _main(argv, dataclasses.replace(BINDING, prog=prog))


if __name__ == "__main__":
    raise SystemExit(main())
