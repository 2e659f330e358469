"""Console scripts of dLGAR: ``lgar-train``, ``lgar-eval``, ``lgar-demo`` (the shared commands of
:mod:`delta_core.cli` bound to dLGAR's spec)."""
from __future__ import annotations

from bmi_lgar.model import SPEC
from delta_core import cli


def train_main(argv: list[str] | None = None) -> None:
    cli.run(cli.train_command, argv, "lgar-train", SPEC)


def eval_main(argv: list[str] | None = None) -> None:
    cli.run(cli.eval_command, argv, "lgar-eval", SPEC)


def demo_main(argv: list[str] | None = None) -> None:
    cli.run(cli.demo_command, argv, "lgar-demo", SPEC)
