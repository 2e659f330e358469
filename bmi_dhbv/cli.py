"""Console scripts of dHBV: ``dhbv-train``, ``dhbv-eval``, ``dhbv-demo``."""
from __future__ import annotations

from delta_core import cli
from delta_core.evaluation import default_bundle_path


def train_main(argv: list[str] | None = None) -> None:
    cli.run(cli.train_command, argv, "dhbv-train")


def eval_main(argv: list[str] | None = None) -> None:
    cli.run(cli.eval_command, argv, "dhbv-eval", default_bundle_path())


def demo_main(argv: list[str] | None = None) -> None:
    cli.run(cli.demo_command, argv, "dhbv-demo", default_bundle_path())
