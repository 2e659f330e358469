"""``dlgar-realization``: NextGen realizations and per-catchment configs for dLGAR (the generic
writer of :mod:`delta_core.ngen.realization` bound to dLGAR's BMI names and options).

By default the configs run the shipped dLGAR bundle (``bundle: shipped``,
``bmi_lgar/weights/dlgar_hourly.pt``) and carry every attribute it needs and the texture
attributes of its prior: each catchment runs the learned parameters and the bundle's snow.
``--bundle PATH`` runs another bundle; ``--bundle none`` writes no bundle, so each catchment
runs the texture-table parameter set (no learning) from its texture attributes
(:data:`bmi_lgar.texture.ATTRIBUTES`). The hourly AORC-style forcing has no PET,
so PET is Hargreaves from the hourly temperature (``pet_source: hargreaves``, inputs
precipitation and temperature) unless ``--pet-source input`` (a forcing column ``pet``).
"""
from __future__ import annotations

import argparse
import dataclasses

from bmi_lgar import bmi as B
from bmi_lgar.bmi import BmiLGAR
from bmi_lgar.noaa import MODULE
from bmi_lgar.texture import ATTRIBUTES
from delta_core.ngen import crosswalk as X
from delta_core.ngen.realization import HOURLY_MAP, ModelBinding, main as _main, \
    needed_attributes


def _inputs(time_step: int, args: argparse.Namespace) -> dict[str, str]:
    if time_step != 3600:
        raise ValueError("dlgar-realization writes hourly realizations (--time-step 3600)")
    if args.pet_source == "input":
        return {X.PRECIP: HOURLY_MAP[X.PRECIP], X.PET: "pet"}
    return {k: v for k, v in HOURLY_MAP.items() if k in (X.PRECIP, X.TEMP)}


def _attributes(args: argparse.Namespace) -> list[str]:
    """Texture attributes (``--bundle none``), or the bundle's and the texture prior's."""
    bundle = getattr(args, "bundle", None)
    if not bundle:
        return list(ATTRIBUTES)
    need = needed_attributes(None if bundle == B.SHIPPED else bundle, "dlgar")
    return need + [a for a in ATTRIBUTES if a not in need]


BINDING = ModelBinding(
    model="dlgar", prog="dlgar-realization", model_type_name="dLGAR",
    python_type="bmi_lgar.bmi.BmiLGAR",
    inputs=_inputs,
    spinup_columns={c: f for c, f in BmiLGAR.SPINUP_COLUMNS.items() if f != "pet"},
    spinup_step=3600,
    pet_source="hargreaves",
    attributes=_attributes,
    bundle_help="a bundle.pt, 'shipped' (default: the package's dLGAR bundle, dlgar_hourly.pt; "
                "the configs run its learned parameters and snow) or 'none' (texture-table "
                "parameters, no learning)",
    backends=("cpp", "python"),
    bmi_class=BmiLGAR,
    default_bundle=B.SHIPPED,
    no_bundle="texture-table parameters from sand/silt/clay fractions and soil depth (no "
              "learning, no snow)",
    noaa=MODULE,
)


def main(argv: list[str] | None = None, prog: str = BINDING.prog) -> int:
    """The ``dlgar-realization`` command (also ``delta realization --model dlgar``)."""
    return _main(argv, dataclasses.replace(BINDING, prog=prog))


if __name__ == "__main__":
    raise SystemExit(main())
