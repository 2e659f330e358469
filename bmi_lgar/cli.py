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
    import sys

    args = sys.argv[1:] if argv is None else argv
    if SPEC.default_bundle is None and not any(a.startswith("--bundle") or a in ("-h", "--help")
                                               for a in args):
        raise SystemExit("lgar-demo: no trained dLGAR bundle ships with the package yet; give "
                         "--bundle PATH (a bundle.pt of lgar-train)")
    cli.run(cli.demo_command, argv, "lgar-demo", SPEC)
