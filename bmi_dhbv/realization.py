"""``dhbv-realization``: NextGen realizations and per-catchment configs for dHBV (the generic
writer of :mod:`delta_core.ngen.realization` bound to dHBV's BMI names and options)."""
from __future__ import annotations

import argparse
import dataclasses

from bmi_dhbv.bmi import BmiDHBV
from delta_core.ngen import crosswalk as X
from delta_core.ngen.realization import DAILY_MAP, HOURLY_MAP, ModelBinding, main as _main


def _inputs(time_step: int, args: argparse.Namespace) -> dict[str, str]:
    names = dict(HOURLY_MAP if time_step == 3600 else DAILY_MAP)
    if args.pet_source == "input":
        names.pop(X.TMAX, None)
        names.pop(X.TMIN, None)
        names[X.PET] = "pet"
    return names


BINDING = ModelBinding(
    model="dhbv", prog="dhbv-realization", model_type_name="dHBV",
    python_type="bmi_dhbv.BmiDHBV",
    inputs=_inputs,
    spinup_columns={c: f for c, f in BmiDHBV.SPINUP_COLUMNS.items() if f != "pet"},
    bmi_class=BmiDHBV,
)


def main(argv: list[str] | None = None, prog: str = BINDING.prog) -> int:
    """The ``dhbv-realization`` command (also ``delta realization --model dhbv``)."""
    return _main(argv, dataclasses.replace(BINDING, prog=prog))


if __name__ == "__main__":
    raise SystemExit(main())
