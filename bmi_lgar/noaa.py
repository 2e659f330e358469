"""``dlgar-realization --engine noaa``: every catchment's learned LGAR parameters as an LGAR-C
config (``config/<id>_lgar.txt``) and a soil table of its learned van Genuchten layers
(``config/<id>_soil.dat``, one row per layer), run by ngen's ``bmi_c++`` formulation
(``bmi_model_create``) after SLoTH (see :mod:`delta_core.ngen.noaa` for the realization and for
what is refused and why).

The config's ``soil_params_file`` is relative to the realization folder, ngen's working
directory, where LGAR-C opens it (:func:`bmi_lgar.lgar_config.read_lgar_config` with
``base_dir`` that folder reads it the same way). Every number is written as the shortest text
that reads back as the same double, so the files give the bundle's parameter set exactly
(:func:`parameters_from_files`). LGAR-C steps one hour with one fixed 3600 s substep and no flux
caching, as the learned model does.
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import torch

from bmi_lgar.bmi import BmiLGAR
from bmi_lgar.parameters import LgarParameters
from delta_core.ngen import noaa

#: Names of a catchment's config and soil table in ``<out>/config`` after its id.
CONFIG_SUFFIX, SOIL_SUFFIX = "_lgar.txt", "_soil.dat"
#: Header of the soil table (LGAR-C skips the first line).
SOIL_HEADER = "Texture\ttheta_r\ttheta_e\talpha (cm^-1)\tn\tKs (cm/h)"


def soil_table(params: LgarParameters) -> str:
    """The soil table of the learned layers: one row ``dLGAR_layer_<k>`` per layer (no spaces:
    LGAR-C reads the name with ``%s``), theta_r, theta_e, alpha [1/cm], n, Ks [cm/h]."""
    rows = [f"dLGAR_layer_{k}\t{s.theta_r!r}\t{s.theta_e!r}\t{s.alpha!r}\t{s.n!r}\t{s.ks!r}"
            for k, s in enumerate(params.layers, start=1)]
    return "\n".join([SOIL_HEADER, *rows]) + "\n"


def _join(values) -> str:
    return ",".join(repr(float(v)) for v in values)


def lgar_config(params: LgarParameters, soil_file: str, hours: int) -> str:
    """LGAR-C config text of ``params`` with soil table ``soil_file`` (as LGAR-C opens it) and
    ``endtime`` ``hours`` [h]; hourly, one fixed 3600 s substep, no flux caching."""
    r = params.reservoirs
    lines = [
        "verbosity=none", f"soil_params_file={soil_file}",
        f"layer_thickness={_join(params.thickness_cm)}[cm]",
        f"layer_soil_type={','.join(str(k) for k in range(1, len(params.layers) + 1))}",
        f"max_valid_soil_types={len(params.layers)}",
        f"initial_psi={params.initial_psi_cm!r}[cm]", "timestep=3600[sec]",
        f"endtime={hours}[hr]", "forcing_resolution=3600[sec]",
        f"ponded_depth_max={params.ponded_depth_max_cm!r}[cm]",
        f"use_closed_form_G={str(params.use_closed_form_g).lower()}",
        f"wilting_point_psi={params.wilting_point_psi_cm!r}[cm]",
        f"field_capacity_psi={params.field_capacity_psi_cm!r}[cm]",
        f"giuh_ordinates={_join(params.giuh_ordinates)}",
        "adaptive_timestep=false", "allow_flux_caching=false",
        f"free_drainage_enabled={str(r.free_drainage).lower()}",
        f"free_drainage_to_CR={str(r.free_drainage_to_cr).lower()}",
        f"mbal_tol={params.mbal_tol!r}", f"spf_factor={r.spf_factor!r}"]
    if r.frac_to_cr != 0.0:
        lines += [f"a={r.a!r}", f"b={r.b!r}", f"frac_to_CR={r.frac_to_cr!r}"]
        if r.frac_slow != 0.0:
            lines += [f"a_slow={r.a_slow!r}", f"b_slow={r.b_slow!r}",
                      f"frac_slow={r.frac_slow!r}"]
    return "\n".join(lines) + "\n"


def bundle_parameters(rows: list[dict], bundle: Path) -> tuple[dict[str, LgarParameters], dict,
                                                                  str]:
    """The parameter set the BMI runs for every catchment under ``bundle``.

    Returns
    -------
    params : dict
        ``{id: LgarParameters}`` (:meth:`bmi_lgar.model.DLGAR.lgar_parameters` of the encoded
        and raw attributes, as :class:`bmi_lgar.bmi.BmiLGAR` computes them).
    snow : dict
        The bundle's fixed degree-day snow parameters (not run by LGAR-C).
    checksum : str
        The bundle's checksum.
    """
    from delta_core.bundle import load_bundle
    from delta_core.evaluation import load_model

    model, norm, meta = load_model(load_bundle(bundle, model="dlgar"), dtype=torch.float64)
    out = {}
    for r in rows:
        x = torch.as_tensor(noaa.encode_attributes(r["attributes"], norm, r["id"]),
                            dtype=torch.float64)[None]
        raw = torch.tensor([[float(r["attributes"][n]) for n in model.raw_attributes]],
                           dtype=torch.float64)
        out[r["id"]] = model.lgar_parameters(x, raw)[0]
    return out, model.config.snow(), meta["checksum"]


def run_hours(args: argparse.Namespace) -> int:
    """Hours from ``--start`` to ``--end`` inclusive (LGAR-C's ``endtime``)."""
    t0, t1 = (dt.datetime.fromisoformat(s.strip()) for s in (args.start, args.end))
    return int((t1 - t0).total_seconds() // 3600) + 1


def configs(rows: list[dict], args: argparse.Namespace) -> tuple[dict[str, str], str]:
    """``config/<id>_lgar.txt`` and ``config/<id>_soil.dat`` of every row and the
    ``init_config`` pattern."""
    if args.bundle is None:
        raise noaa.NoaaExportError("--engine noaa writes a bundle's learned parameters, not "
                                   "--bundle none: give a bundle (or leave --bundle out for "
                                   "the shipped one)")
    bundle = noaa.resolve_bundle(args.bundle, BmiLGAR)
    params, snow, checksum = bundle_parameters(rows, bundle)
    header = (f"# dLGAR parameters from bundle {bundle.name} (checksum {checksum[:16]})\n"
              f"# degree-day snow of dLGAR, not run by LGAR-C: "
              + ", ".join(f"{k} {v!r}" for k, v in snow.items()) + "\n")
    files = {}
    for cid, p in params.items():
        soil = f"config/{cid}{SOIL_SUFFIX}"
        files[soil] = soil_table(p)
        files[f"config/{cid}{CONFIG_SUFFIX}"] = header + lgar_config(p, f"./{soil}",
                                                                     run_hours(args))
    return files, "./config/{{id}}" + CONFIG_SUFFIX


def parameters_from_files(config: str | Path, folder: str | Path) -> LgarParameters:
    """The parameter set of an exported config, read as LGAR-C reads it (``soil_params_file``
    relative to the realization ``folder``) by the reader the BMI uses for LGAR-C configs."""
    return LgarParameters.from_lgar_config(config, base_dir=folder)


MODULE = noaa.NoaaModule(
    label="LGAR-C", formulation="bmi_c++", model_type_name="bmi_c++_lasam",
    factory={"create_function": "bmi_model_create", "destroy_function": "bmi_model_destroy"},
    precip_input="precipitation_rate", pet_input="potential_evapotranspiration_rate",
    constant_inputs={"soil_temperature_profile": ("soil_temperature_profile", "K", 275.15)},
    main_output="total_discharge",
    outputs=("precipitation", "potential_evapotranspiration", "actual_evapotranspiration",
             "surface_runoff", "giuh_runoff", "soil_storage", "total_discharge",
             "infiltration", "percolation"),
    library_hint="build NOAA-OWP/LGAR-C with cmake; the library is "
                 "cmake_build/liblasambmi.so",
    configs=configs,
)
