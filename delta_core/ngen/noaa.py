"""``<model>-realization --engine noaa``: the learned parameters of a static bundle written as the
config files of a NOAA-OWP C/C++ module, one per catchment, and a realization that runs that
module through ngen's C/C++ BMI formulations.

Each catchment's configs are written to ``<out>/config/<id>.<suffix>`` by the model's
:class:`NoaaModule` (the C CFE for dCFE, LGAR-C for dLGAR), and ``<out>/realization.json`` holds
one ``bmi_multi`` formulation of two modules, in update order:

1. SLoTH (``bmi_c++``, ``--noaa-sloth-library``): constant values for the inputs the NOAA module
   declares but the learned model does not have (CFE's ice fractions and soil-moisture profile,
   LGAR-C's soil-temperature profile). ngen sets every declared input each step and aborts on
   one that no forcing or module provides.
2. The NOAA module (``--noaa-library``): precipitation from the forcing column of the Python
   realization (``precip_rate``), PET from the forcing column ``--noaa-pet-column``.

What the C modules cannot express is refused, in one line naming why:

* **Daily-dynamic parameters** (an LSTM varies them with the weather): a C config holds
  constants; use one of the model's static bundles.
* **PET**: the learned models compute Hargreaves PET from the trailing 24 h of temperature; the
  NOAA modules take PET as an input and NOAA's PET module has no Hargreaves method. PET must be
  a forcing column (``--noaa-pet-column``, its unit in the header, e.g. ``pet [mm h-1]``).
* **Snow**: the learned models melt a degree-day snow pack ahead of the soil; the C modules have
  no snow (NOAA's Snow17 is another model with its own parameters). ``--noaa-without-snow``
  accepts running the module on all precipitation as rain (the same as the learned model where
  no snow falls); the learned snow parameters are recorded in each config's header.
* **Spin-up**: the modules cold-start from the stores written in their configs; ngen has no
  spin-up, so start the run early instead of ``--spinup-*``.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from delta_core.fileio import atomic_write_text

#: ``--engine`` values: our Python BMI (``bmi_python``) or the NOAA C/C++ module.
ENGINES = ("python", "noaa")
#: SLoTH's main output (ngen needs one; SLoTH's outputs are the constants it is given).
SLOTH_MAIN_OUTPUT = "z"
#: The only model step the NOAA modules are written for [s].
STEP_S = 3600


class NoaaExportError(ValueError):
    """A bundle or option that the NOAA module cannot express (one line, names the fix)."""


@dataclass(frozen=True)
class NoaaModule:
    """What the realization needs of one NOAA module.

    Attributes
    ----------
    label : str
        Human name, e.g. ``"C CFE"``.
    formulation : str
        ngen formulation name: ``"bmi_c"`` or ``"bmi_c++"``.
    model_type_name : str
        ngen's ``model_type_name`` of the module.
    factory : dict
        ``registration_function`` (C) or ``create_function`` (C++) entry of the module.
    precip_input, pet_input : str
        The module's input names of precipitation and PET.
    constant_inputs : dict
        Module input -> (SLoTH output name, unit, value): inputs SLoTH holds constant.
    main_output : str
        Runoff depth per step [m] for the nexus.
    outputs : tuple of str
        ``output_variables`` of the per-catchment CSVs.
    library_hint : str
        How to build the module's shared library (``--noaa-library``).
    configs : callable(rows, args) -> (dict, str)
        The files of every row ``{path relative to the output folder: text}`` (nothing written
        yet: a refusal leaves no files) and the realization's ``init_config`` pattern
        (``./config/{{id}}...``).
    """

    label: str
    formulation: str
    model_type_name: str
    factory: dict
    precip_input: str
    pet_input: str
    constant_inputs: dict
    main_output: str
    outputs: tuple[str, ...]
    library_hint: str
    configs: Callable


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The ``--engine`` option and the options of ``--engine noaa``."""
    ap.add_argument("--engine", choices=ENGINES, default="python",
                    help="python: configs of our Python BMI (default); noaa: the learned "
                         "parameters as configs of the NOAA C/C++ module (C CFE for dCFE, "
                         "LGAR-C for dLGAR) run through ngen's C/C++ BMI formulation")
    ap.add_argument("--noaa-library", metavar="PATH",
                    help="--engine noaa: the module's shared library (e.g. libcfebmi.so, "
                         "liblasambmi.so); required")
    ap.add_argument("--noaa-sloth-library", metavar="PATH",
                    help="--engine noaa: SLoTH's shared library (libslothmodel.so), which "
                         "holds the module's unused inputs constant; required")
    ap.add_argument("--noaa-pet-column", metavar="COLUMN",
                    help="--engine noaa: forcing column of PET (unit in its header, e.g. "
                         "'pet [mm h-1]'); required: the modules have no Hargreaves PET")
    ap.add_argument("--noaa-without-snow", action="store_true",
                    help="--engine noaa: accept that the module has no snow (all "
                         "precipitation enters as rain; the learned snow is left out)")


def check_library(value: str | None, option: str, hint: str) -> str:
    """The absolute path of a shared library option; NoaaExportError if missing.

    ngen also tries ``PATH.so`` (and ``.dylib``) when ``PATH`` itself does not exist.
    """
    if not value:
        raise NoaaExportError(f"--engine noaa needs {option} PATH ({hint})")
    path = Path(value).expanduser().resolve()
    if not any(Path(f"{path}{ext}").is_file() for ext in ("", ".so", ".dylib")):
        raise NoaaExportError(f"{option} {value}: no such file (nor {path.name}.so); {hint}")
    return str(path)


def check_options(args: argparse.Namespace, module: NoaaModule | None, model: str) -> None:
    """Refuse ``--engine noaa`` options that cannot be honoured (before anything is written)."""
    if module is None:
        raise NoaaExportError(f"--engine noaa: {model} has no NOAA module (dCFE exports to the "
                              f"C CFE, dLGAR to LGAR-C)")
    if args.time_step != STEP_S:
        raise NoaaExportError(f"--engine noaa: the {module.label} steps {STEP_S} s; use "
                              f"--time-step {STEP_S}")
    if args.spinup_forcing or args.spinup_start:
        raise NoaaExportError(f"--engine noaa: the {module.label} cold-starts from its config "
                              f"and ngen has no spin-up; drop --spinup-forcing/--spinup-start "
                              f"and start the run earlier")
    if not args.noaa_pet_column:
        raise NoaaExportError(f"--engine noaa needs --noaa-pet-column COLUMN: the {module.label} "
                              f"takes PET as an input and no NOAA module computes the learned "
                              f"model's Hargreaves PET")
    if not args.noaa_without_snow:
        raise NoaaExportError(f"--engine noaa: the {module.label} has no snow routine, so the "
                              f"learned degree-day snow cannot be expressed; pass "
                              f"--noaa-without-snow to run it on all precipitation as rain")
    args.noaa_library = check_library(args.noaa_library, "--noaa-library", module.library_hint)
    args.noaa_sloth_library = check_library(
        args.noaa_sloth_library, "--noaa-sloth-library",
        "build NOAA-OWP/SLoTH with cmake; the library is cmake_build/libslothmodel.so")


def check_pet_column(files: dict[str, Path], column: str) -> None:
    """Refuse forcing files (the first 20) whose header lacks the PET column ``column``."""
    for cid, path in list(files.items())[:20]:
        with open(path) as f:
            header = [h.split("[")[0].strip() for h in f.readline().split(",")]
        if column not in header:
            raise NoaaExportError(f"{path}: no column {column!r} (--noaa-pet-column) in the "
                                  f"forcing of {cid}; add PET there or name its column")


def sloth_module(module: NoaaModule, library: str) -> dict:
    """The SLoTH formulation holding ``module.constant_inputs`` constant."""
    params = {f"{name}(1,double,{unit},node)": value
              for name, unit, value in module.constant_inputs.values()}
    return {"name": "bmi_c++", "params": {
        "model_type_name": "bmi_c++_sloth", "library_file": library,
        "init_config": "/dev/null", "allow_exceed_end_time": True,
        "main_output_variable": SLOTH_MAIN_OUTPUT, "model_params": params}}


def module_formulation(module: NoaaModule, library: str, init_config: str,
                       precip_column: str, pet_column: str) -> dict:
    """The NOAA module's formulation: its library, factory, configs and input wiring."""
    names = {module.precip_input: precip_column, module.pet_input: pet_column}
    names.update({k: v[0] for k, v in module.constant_inputs.items()})
    return {"name": module.formulation, "params": {
        "model_type_name": module.model_type_name, "library_file": library, **module.factory,
        "init_config": init_config, "allow_exceed_end_time": True,
        "main_output_variable": module.main_output, "variables_names_map": names,
        "output_variables": list(module.outputs)}}


def write_realization(out: Path, module: NoaaModule, args: argparse.Namespace,
                      init_config: str, precip_column: str) -> Path:
    """Write ``out/realization.json``: one ``bmi_multi`` of SLoTH and the NOAA module."""
    multi = {"name": "bmi_multi", "params": {
        "model_type_name": f"bmi_multi_{module.model_type_name.split('_')[-1]}", "init_config": "",
        "allow_exceed_end_time": True, "main_output_variable": module.main_output,
        "output_variables": list(module.outputs),
        "modules": [sloth_module(module, args.noaa_sloth_library),
                    module_formulation(module, args.noaa_library, init_config, precip_column,
                                       args.noaa_pet_column)]}}
    realization = {
        "global": {"formulations": [multi],
                   "forcing": {"file_pattern": args.file_pattern, "path": args.forcing_path,
                               "provider": "CsvPerFeature"}},
        "time": {"start_time": args.start, "end_time": args.end,
                 "output_interval": int(args.output_interval or STEP_S)},
        "output": {"root": "./output/"},
    }
    return atomic_write_text(out / "realization.json", json.dumps(realization, indent=2) + "\n")


def write(out: Path, configs: tuple[dict[str, str], str], module: NoaaModule,
          args: argparse.Namespace, precip_column: str) -> Path:
    """Write the module's ``configs`` (:attr:`NoaaModule.configs`) and the realization; return
    the latter."""
    files, init_config = configs
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return write_realization(out, module, args, init_config, precip_column)


def resolve_bundle(value: str | None, bmi_class) -> Path:
    """The bundle file a ``--bundle`` value names (None or ``shipped``: the BMI's hourly
    default; a bare shipped file name, e.g. ``dcfe_static.pt``, is found beside it)."""
    shipped = bmi_class.default_bundle_for(STEP_S)
    if value in (None, "shipped"):
        return shipped
    path = Path(value).expanduser()
    if not path.is_file() and path.name == value and (shipped.parent / value).is_file():
        return shipped.parent / value
    if not path.is_file():
        raise NoaaExportError(f"--bundle {value}: no such file")
    return path


def refuse_dynamic(model, bundle: Path, static: Path) -> None:
    """Refuse a bundle with daily-dynamic parameters, naming the shipped static bundle
    ``static``."""
    dynamic = list(getattr(model, "dynamic_names", ()))
    if dynamic:
        raise NoaaExportError(f"--engine noaa: bundle {bundle.name} has daily-dynamic "
                              f"parameters {dynamic}, which a NOAA config cannot hold as "
                              f"constants; use a static bundle, e.g. --bundle {static}")


def encode_attributes(attrs: dict, norm, cid: str) -> np.ndarray:
    """The network input of catchment ``cid``'s attributes, encoded exactly as the BMI does
    (values as text; a missing one imputed with the training mean, warned)."""
    raw = {n: ["" if attrs[n] is None else str(attrs[n])] for n in norm.attributes.names}
    return norm.attributes.transform(raw, [cid])[0]
