"""``dcfe-realization --engine noaa``: every catchment's learned CFE parameters as a config of
the NOAA-OWP C CFE (``config/<id>_cfe.txt``, :func:`bmi_dcfe.export.cfe_config_for`), run by
ngen's ``bmi_c`` formulation (``register_bmi_cfe``) after SLoTH (see
:mod:`delta_core.ngen.noaa` for the realization and for what is refused and why).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bmi_dcfe.bmi import BmiDCFE
from bmi_dcfe.export import cfe_config_for
from bmi_dcfe.model import SPEC
from delta_core.ngen import noaa

#: The shipped bundle with static parameters (the hourly default is daily-dynamic).
STATIC_BUNDLE = Path(__file__).resolve().parent / "weights" / "dcfe_static.pt"
#: Name of a catchment's config in ``<out>/config`` after its id.
SUFFIX = "_cfe.txt"


def cfe_configs(rows: list[dict], bundle: Path) -> dict[str, str]:
    """The C CFE config text of every catchment ``{id: text}`` under ``bundle``.

    Parameters
    ----------
    rows : list of dict
        Catchments of the realization writer (``id`` and ``attributes`` ``{name: value}``).
    bundle : Path
        A static dCFE bundle (refused if it has daily-dynamic parameters).

    Returns
    -------
    dict
        Config text: a header (bundle, checksum, the degree-day snow parameters the C CFE does
        not run) and the parameters in the C model's units (m, m s-1, m h-1, h-1).
    """
    from delta_core.bundle import load_bundle
    from delta_core.evaluation import load_model

    model, norm, meta = load_model(load_bundle(bundle, model=SPEC.name), dtype=torch.float64)
    noaa.refuse_dynamic(model, bundle, STATIC_BUNDLE)
    out = {}
    for r in rows:
        config, snow = cfe_config_for(model, noaa.encode_attributes(r["attributes"], norm, r["id"]))
        header = (f"# dCFE parameters of catchment {r['id']} from bundle {bundle.name} "
                  f"(checksum {meta['checksum'][:16]})\n# degree-day snow of dCFE, not run by "
                  f"the C CFE: " + ", ".join(f"{k} {v!r}" for k, v in snow.items()) + "\n")
        out[r["id"]] = header + config.to_text()
    return out


def configs(rows: list[dict], args: argparse.Namespace) -> tuple[dict[str, str], str]:
    """``config/<id>_cfe.txt`` of every row and the ``init_config`` pattern."""
    texts = cfe_configs(rows, noaa.resolve_bundle(args.bundle, BmiDCFE))
    return ({f"config/{cid}{SUFFIX}": text for cid, text in texts.items()},
            "./config/{{id}}" + SUFFIX)


MODULE = noaa.NoaaModule(
    label="C CFE", formulation="bmi_c", model_type_name="bmi_c_cfe",
    factory={"registration_function": "register_bmi_cfe"},
    precip_input="atmosphere_water__liquid_equivalent_precipitation_rate",
    pet_input="water_potential_evaporation_flux",
    constant_inputs={"ice_fraction_schaake": ("sloth_ice_fraction_schaake", "m", 0.0),
                     "ice_fraction_xinanjiang": ("sloth_ice_fraction_xinanjiang", "1", 0.0),
                     "soil_moisture_profile": ("sloth_smp", "1", 0.0)},
    main_output="Q_OUT",
    outputs=("RAIN_RATE", "DIRECT_RUNOFF", "NASH_LATERAL_RUNOFF", "DEEP_GW_TO_CHANNEL_FLUX",
             "Q_OUT", "POTENTIAL_ET", "ACTUAL_ET", "GW_STORAGE", "SOIL_STORAGE"),
    library_hint="build NOAA-OWP/cfe with cmake (-DNGEN=ON); the library is "
                 "cmake_build/libcfebmi.so",
    configs=configs,
)
