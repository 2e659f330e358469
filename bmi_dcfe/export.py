"""Write a trained dCFE's parameters for one catchment as a NOAA-OWP C CFE config file.

The static CFE parameters the bundle's network gives for the catchment's attributes, the fixed
soil constants of the bundle's physics config and the cold-start storages are written in the
C model's format (:class:`bmi_dcfe.cfe_config.CfeConfig`), each number as the shortest text that
reads back as the same double. The C model has no snow routine and no ``mass_conserving`` switch:
the file's comment lines record the snow parameters, and the C model differs from dCFE only where
its water-balance quirks trigger (full groundwater store, saturated soil; see bmi_dcfe.physics).

The C model's parameters are constants: a bundle with daily-dynamic parameters is exported with
each dynamic parameter at its mean over a period of the basin's daily forcing (the LSTM run on
the pack's forcing, default the test period); the file's header says so and gives the range.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from bmi_dcfe.cfe_config import CfeConfig
from bmi_dcfe.model import SPEC
from delta_core import snow as snow_routine
from delta_core.fileio import atomic_write_text


def cfe_config_for(model, x_attr: np.ndarray, forcing_file: str = "BMI",
                   dynamic_values: dict[str, float] | None = None) -> tuple[CfeConfig, dict]:
    """The C CFE config of one catchment and its snow parameters.

    Parameters
    ----------
    model : DCFE
        Trained model (float64).
    x_attr : ndarray [A]
        Encoded attributes of the catchment.
    dynamic_values : dict, optional
        Constant values for the model's dynamic parameters (required if it has any).
    """
    dynamic_values = dynamic_values or {}
    missing = set(model.dynamic_names) - set(dynamic_values)
    if missing:
        raise ValueError(f"constant values for the dynamic parameters {sorted(missing)} needed "
                         f"(the C CFE has no time-varying parameters)")
    with torch.no_grad():
        learned = model.parameters_physical(torch.as_tensor(x_attr[None], dtype=torch.float64))
        learned.update({k: torch.tensor([float(v)], dtype=torch.float64)
                        for k, v in dynamic_values.items()})
        p = model.cfe_parameters(learned)
    values = {name: float(getattr(p, name)[0]) for name in (
        "depth", "bb", "satdk", "satpsi", "slop", "smcmax", "wltsmc", "expon_soil",
        "expon_soil_secondary", "max_gw_storage", "cgw", "expon_gw", "alpha_fc", "refkdt", "k_lf",
        "k_nash", "k_nash_surface", "k_infiltration", "retention_depth", "xaj_a", "xaj_b",
        "xaj_x", "urban_fraction")}
    c = model.config
    values.update(soil_storage=c.initial_soil_fraction, gw_storage=c.initial_gw_fraction)
    config = CfeConfig(values=values, options=dataclasses.replace(c.options(), mass_conserving=False),
                       giuh_ordinates=[float(x) for x in p.giuh_ordinates[0]],
                       nash_lateral=[0.0] * c.n_nash_lateral, forcing_file=forcing_file)
    snow = {k: float(learned[k][0]) for k in snow_routine.PARAMETER_RANGES}
    return config, snow


def dynamic_means(model, norm, ds, gauge_id: str, start: str, end: str
                  ) -> dict[str, tuple[float, float, float]]:
    """Mean, minimum and maximum of each dynamic parameter of ``model`` for basin ``gauge_id``
    over ``start..end`` (the LSTM run on all the basin's forcing up to ``end``)."""
    from delta_core.data.camels import date_index
    from delta_core.inputs import build_inputs

    ts = ds.load([gauge_id], end=end, forcings=SPEC.forcings)
    i0 = date_index(ts.dates, start, "--start")
    inputs = build_inputs(ts, ds.attributes([gauge_id], norm.attributes.names), norm)
    with torch.no_grad():
        dyn = model.dynamic_parameters(torch.as_tensor(inputs.x_forcing, dtype=torch.float64),
                                       torch.as_tensor(inputs.x_attr, dtype=torch.float64))
    return {k: (float(v[i0:].mean()), float(v[i0:].min()), float(v[i0:].max()))
            for k, v in dyn.items()}


def export(bundle: str | Path, gauge_id: str, out: str | Path, data: str | None = None,
           forcing_file: str = "BMI", start: str = "1995-10-01", end: str = "2010-09-30"
           ) -> Path:
    """Write ``out``: the C CFE config of CAMELS basin ``gauge_id`` under ``bundle``
    (dynamic parameters at their mean over ``start..end``)."""
    from delta_core.bundle import load_bundle
    from delta_core.data.camels import CamelsDataset
    from delta_core.evaluation import load_model

    model, norm, meta = load_model(load_bundle(bundle, model=SPEC.name), dtype=torch.float64)
    ds = CamelsDataset(data)
    attrs = ds.attributes([gauge_id], norm.attributes.names)
    x_attr = norm.attributes.transform(attrs, [gauge_id])[0]
    stats = dynamic_means(model, norm, ds, gauge_id, start, end) if model.dynamic_names else {}
    config, snow = cfe_config_for(model, x_attr, forcing_file,
                                  {k: v[0] for k, v in stats.items()})
    header = [f"# dCFE parameters of basin {gauge_id} from bundle {Path(bundle).name} "
              f"(checksum {meta['checksum'][:16]})",
              "# degree-day snow ahead of CFE in dCFE (not part of the C model): "
              + ", ".join(f"{k} {v!r}" for k, v in snow.items())]
    header += [f"# {k} is daily-dynamic in dCFE: written as its mean {m!r} over {start}..{end} "
               f"(daily values {lo:.6g}..{hi:.6g}); the C model holds it constant"
               for k, (m, lo, hi) in stats.items()]
    return atomic_write_text(out, "\n".join(header) + "\n" + config.to_text())


def export_command(argv: list[str] | None, prog: str, spec) -> int:
    """Parse the export options of ``argv`` (usage shown as ``prog``) and write the config."""
    ap = argparse.ArgumentParser(prog=prog, description=(
        "Write the learned CFE parameters of one basin as a config file of the NOAA-OWP C CFE "
        "(readable by NextGen's CFE and by bmi_dcfe.cfe_config)."))
    ap.add_argument("--basin", required=True, help="CAMELS gauge id (e.g. 01022500)")
    ap.add_argument("--bundle", default=str(spec.default_bundle),
                    help="weight bundle (default: the shipped one)")
    ap.add_argument("--data", help="data directory in the CAMELS pack format "
                                   "(default: shipped sample)")
    ap.add_argument("--start", default="1995-10-01",
                    help="first day of the period over which dynamic parameters are "
                         "averaged (default 1995-10-01; bundles with dynamic parameters)")
    ap.add_argument("--end", default="2010-09-30",
                    help="last day of that period (default 2010-09-30)")
    ap.add_argument("--forcing-file", default="BMI",
                    help="value of forcing_file in the config (default: BMI)")
    ap.add_argument("--out", required=True, help="config file to write")
    a = ap.parse_args(argv)
    path = export(a.bundle, a.basin, a.out, a.data, a.forcing_file, a.start, a.end)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None, prog: str = "dcfe-export-cfe-config") -> None:
    """The ``dcfe-export-cfe-config`` command (also ``delta export --model dcfe``)."""
    from delta_core import cli

    cli.run(export_command, argv, prog, SPEC)
