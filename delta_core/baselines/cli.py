"""Console scripts of the LSTM baseline: ``lstm-train``, ``lstm-eval``, aliases of
``delta train|eval --model lstm`` (the shared commands of :mod:`delta_core.cli` bound to its
spec; no bundle ships, so ``lstm-eval`` needs ``--bundle``)."""
from __future__ import annotations

from delta_core import cli
from delta_core.baselines.lstm import SPEC


def train_main(argv: list[str] | None = None) -> None:
    cli.run(cli.train_command, argv, "lstm-train", SPEC)


def eval_main(argv: list[str] | None = None) -> None:
    cli.run(cli.eval_command, argv, "lstm-eval", SPEC)
