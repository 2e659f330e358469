"""Console scripts of dHBV: ``dhbv-train``, ``dhbv-eval``, ``dhbv-demo``."""
from __future__ import annotations

from delta_core import cli
from bmi_dhbv.model import DEFAULT_BUNDLE


def train_main(argv: list[str] | None = None) -> None:
    cli.run(cli.train_command, argv, "dhbv-train")


def eval_main(argv: list[str] | None = None) -> None:
    cli.run(cli.eval_command, argv, "dhbv-eval", DEFAULT_BUNDLE)


def demo_main(argv: list[str] | None = None) -> None:
    cli.run(cli.demo_command, argv, "dhbv-demo", DEFAULT_BUNDLE)
