"""The BMI variables of a model, derived from its declarations (:attr:`ModelSpec.variables
<delta_core.spec.ModelSpec.variables>`): which exist under a configuration, their units per host
step, and the table of each model's ``BMI.md``.

Each ``BMI.md`` holds its table between the markers :data:`BEGIN` and :data:`END`; a test checks
it equals :func:`markdown_table`, and ``python scripts/bmi_tables.py`` (:func:`main`) rewrites the
tables of every registered model that has one (``--check``: only report the stale ones).
"""
from __future__ import annotations

import argparse
import importlib
import math
from pathlib import Path

from delta_core.spec import ModelSpec, Variable

#: Unit strings of a water amount per host step [s].
RATE_UNITS = {3600: "mm h-1", 86400: "mm d-1"}
#: Markers around the generated table in a ``BMI.md``.
BEGIN = "<!-- variables: generated from the model's declarations by " \
        "`python scripts/bmi_tables.py`; do not edit -->"
END = "<!-- end of variables -->"
_ROLE = {"input": "in", "runoff_depth": "out", "runoff_flux": "out", "flow": "out",
         "rate": "out", "level": "out"}


def bmi_variables(variables: tuple[Variable, ...], conditions: set[str],
                  dynamic_names: tuple[str, ...] = ()) -> list[Variable]:
    """The BMI variables of a configuration, in declared order.

    Parameters
    ----------
    variables : tuple of Variable
        A model's declarations.
    conditions : set of str
        The configuration's conditions (:attr:`Variable.when` values that hold).
    dynamic_names : tuple of str
        The bundle's dynamic parameters (variables declared ``when="dynamic"``).
    """
    return [v for v in variables if v.standard_name is not None and (
        v.when is None or v.when in conditions or v.when == "dynamic" and v.name in dynamic_names)]


def bmi_units(v: Variable, time_step: int) -> str:
    """udunits units of ``v`` in the BMI at host steps of ``time_step`` [s]: an amount per
    model step per host step (``mm h-1``, ``mm d-1``), else its declared units."""
    return RATE_UNITS[int(time_step)] if v.per_step else v.units


def markdown_table(spec: ModelSpec) -> str:
    """The Markdown table of a model's BMI variables (every configuration, each variable with
    the configuration it needs, in the words of the BMI's
    :meth:`~delta_core.bmi.adapter.NgenBmi.condition_texts`; "rate": an amount per host step,
    ``mm h-1`` or ``mm d-1``)."""
    when = spec.load_bmi_class().condition_texts()
    unknown = {v.when for v in spec.variables if v.standard_name} - set(when) - {None}
    if unknown:
        raise ValueError(f"{spec.name}: variables need conditions {sorted(unknown)} that its BMI "
                         f"does not describe")
    rows = ["| name | units | in/out | when | meaning |", "|---|---|---|---|---|"]
    dynamic = tuple(v.name for v in spec.variables if v.when == "dynamic")
    for v in bmi_variables(spec.variables, set(when), dynamic):
        rows.append(f"| `{v.standard_name}` | {'rate' if v.per_step else v.units} | "
                    f"{_ROLE[v.kind]} | {when.get(v.when, 'always')} | {_meaning(v)} |")
    return "\n".join(rows)


def _meaning(v: Variable) -> str:
    """The table's meaning column: long name and input checks."""
    checks = []
    if v.min_value is not None:
        checks.append(f"must be finite and >= {v.min_value:g}")
    if v.plausible is not None:
        lo, hi = v.plausible
        checks.append(f"must be finite and in {lo:g}..{hi:g}" if math.isfinite(lo + hi)
                      else "must be finite")
    if v.kind == "input":
        checks.append(f"{v.aggregation} over a model step")
    return "; ".join([v.long_name, *checks])


def bmi_markdown(spec: ModelSpec) -> Path:
    """The ``BMI.md`` of the package of a model's BMI class."""
    package = spec.bmi_class.split(".")[0]
    return Path(importlib.import_module(package).__file__).resolve().parent / "BMI.md"


def with_table(text: str, spec: ModelSpec) -> str:
    """``text`` (a ``BMI.md``) with its generated table replaced by the current one."""
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{spec.name} BMI.md lacks the markers {BEGIN!r} ... {END!r}")
    return f"{head}{BEGIN}\n{markdown_table(spec)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or ``--check``) the variable tables of every registered model's ``BMI.md``."""
    from delta_core.registry import MODELS, model_spec

    ap = argparse.ArgumentParser(prog="python scripts/bmi_tables.py",
                                 description=main.__doc__)
    ap.add_argument("--check", action="store_true", help="only list stale tables (exit 1)")
    args = ap.parse_args(argv)
    stale = []
    for name in sorted(MODELS):
        spec = model_spec(name)
        if spec.bmi_class is None or not bmi_markdown(spec).is_file():
            continue
        path = bmi_markdown(spec)
        text = path.read_text()
        new = with_table(text, spec)
        if new != text:
            stale.append(str(path))
            if not args.check:
                path.write_text(new)
    print("\n".join(f"{'stale' if args.check else 'rewrote'} {p}" for p in stale))
    return 1 if args.check and stale else 0
