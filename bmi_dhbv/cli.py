"""Console scripts of dHBV: ``dhbv-train``, ``dhbv-eval``, ``dhbv-demo``, aliases of
``delta train|eval|demo --model dhbv`` (the shared commands of :mod:`delta_core.cli` bound to
dHBV's spec)."""
from __future__ import annotations

from bmi_dhbv.model import SPEC
from delta_core import cli


def train_main(argv: list[str] | None = None) -> None:
    cli.run(cli.train_command, argv, "dhbv-train", SPEC)


def eval_main(argv: list[str] | None = None) -> None:
    cli.run(cli.eval_command, argv, "dhbv-eval", SPEC)


def demo_main(argv: list[str] | None = None) -> None:
    cli.run(cli.demo_command, argv, "dhbv-demo", SPEC)
