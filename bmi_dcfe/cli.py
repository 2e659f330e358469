"""Console scripts of dCFE: ``dcfe-train``, ``dcfe-eval``, ``dcfe-demo``, aliases of
``delta train|eval|demo --model dcfe`` (the shared commands of :mod:`delta_core.cli` bound to
dCFE's spec), and ``dcfe-export-cfe-config`` (``delta export --model dcfe``)."""
from __future__ import annotations

from bmi_dcfe.export import main as export_main  # noqa: F401  (console script)
from bmi_dcfe.model import SPEC
from delta_core import cli


def train_main(argv: list[str] | None = None) -> None:
    cli.run(cli.train_command, argv, "dcfe-train", SPEC)


def eval_main(argv: list[str] | None = None) -> None:
    cli.run(cli.eval_command, argv, "dcfe-eval", SPEC)


def demo_main(argv: list[str] | None = None) -> None:
    cli.run(cli.demo_command, argv, "dcfe-demo", SPEC)
