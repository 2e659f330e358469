"""Console scripts of dLGAR: ``dlgar-train``, ``dlgar-eval``, ``dlgar-demo``, also installed under
their older names ``lgar-train``, ``lgar-eval``, ``lgar-demo`` (the shared commands of
:mod:`delta_core.cli` bound to dLGAR's spec, as ``delta train|eval|demo --model dlgar``)."""
from __future__ import annotations

from bmi_lgar.model import SPEC
from delta_core import cli


def train_main(argv: list[str] | None = None) -> None:
    cli.run(cli.train_command, argv, "dlgar-train", SPEC)


def eval_main(argv: list[str] | None = None) -> None:
    cli.run(cli.eval_command, argv, "dlgar-eval", SPEC)


def demo_main(argv: list[str] | None = None) -> None:
    cli.run(cli.demo_command, argv, "dlgar-demo", SPEC)
