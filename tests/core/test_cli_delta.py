"""The ``delta`` command: subcommands, ``--model`` validation, help texts that state their
defaults, the older console scripts as aliases of it, and models found through entry points."""
from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

import toy_model
from conftest import REPO as ROOT
from delta_core import cli, registry
from delta_core.registry import BUILTIN_MODELS, ENTRY_POINT_GROUP, model_spec



def _pyproject_table(header: str) -> dict[str, str]:
    """The ``key = "value"`` lines of one table of pyproject.toml."""
    body = (ROOT / "pyproject.toml").read_text().split(f"\n[{header}]\n")[1].split("\n[")[0]
    return dict(re.findall(r'^([\w-]+) = "([^"]+)"$', body, re.M))


SCRIPTS = _pyproject_table("project.scripts")


def _delta(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``delta ARGV``."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def test_help_lists_subcommands_and_models(capsys):
    code, out, _ = _delta(["--help"], capsys)
    assert code == 0
    for name in [*cli.SUMMARIES, *registry.MODELS]:
        assert name in out


def test_help_imports_no_torch():
    code = ("import sys\nfrom delta_core.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert out.stdout.strip().endswith("False")


@pytest.mark.parametrize("argv", [["eval", "--model", "nope"], ["export", "--model", "dhbv"],
                                  ["demo", "--model", "lstm"], ["eval", "--out", "x"]])
def test_usage_errors_are_one_line_with_exit_code_2(argv, capsys):
    code, _, err = _delta(argv, capsys)
    assert code == 2 and err.count("\n") == 1


def test_unknown_model_lists_the_registered_ones(capsys):
    _, _, err = _delta(["eval", "--model", "nope"], capsys)
    assert all(name in err for name in registry.MODELS)


def test_export_names_the_models_that_have_it(capsys):
    _, _, err = _delta(["export", "--model", "dhbv"], capsys)
    assert err.strip().endswith("models with one: dcfe")


def test_model_help_shows_its_options(capsys):
    code, out, _ = _delta(["eval", "--model", "dcfe", "--help"], capsys)
    assert code == 0 and out.startswith("usage: delta eval --model dcfe")
    assert "--backend {cpp,torch}" in out and "default: 1995-10-01" in out


def test_subcommand_help_without_model_names_the_models(capsys):
    code, out, _ = _delta(["realization", "--help"], capsys)
    assert code == 0 and "--model NAME" in out and "dlgar" in out


class _Parsed(Exception):
    """Raised by the patched ``parse_args`` with the parser a command built."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def _command_parser(argv: list[str], monkeypatch) -> argparse.ArgumentParser:
    """The parser that ``delta ARGV`` hands its options to."""
    def capture(self, args=None, namespace=None):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(_Parsed) as exc:
        cli.main(argv)
    return exc.value.parser


COMMANDS = ([["train", "--model", "dhbv"], ["train"], ["eval", "--model", "lstm"],
             ["export", "--model", "dcfe"], ["replay"], ["experiment"]]
            + [[c, "--model", m] for c in ("eval", "demo", "realization")
               for m in ("dhbv", "dcfe", "dlgar")])


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help_texts_state_defaults(argv, monkeypatch):
    parser = _command_parser(argv, monkeypatch)
    assert parser.prog == "delta " + " ".join(argv)
    silent = [a.option_strings for a in parser._actions
              if a.default not in (None, False, [], argparse.SUPPRESS)
              and "default" not in (a.help or "")]
    assert not silent, f"options whose help does not state the default: {silent}"


@pytest.mark.parametrize("argv", [["eval", "--model", "dhbv"], ["realization", "--model", "dlgar"]])
@pytest.mark.parametrize("spelling", ["torch", "python"])
def test_backend_takes_both_spellings_of_the_reference(argv, spelling, monkeypatch):
    parser = _command_parser(argv, monkeypatch)
    action = next(a for a in parser._actions if "--backend" in a.option_strings)
    assert action.type(spelling) in action.choices


def _recorded_runs(monkeypatch) -> list[tuple]:
    """Calls of :func:`delta_core.cli.run` (which no longer runs anything)."""
    calls = []

    def record(fn, *args):
        calls.append((fn, *args))
        raise SystemExit(0)

    monkeypatch.setattr(cli, "run", record)
    return calls


SHARED_ALIASES = [(script, target) for script, target in SCRIPTS.items()
                  if target.split(":")[1] in ("train_main", "eval_main", "demo_main")]


@pytest.mark.parametrize("script,target", SHARED_ALIASES)
def test_alias_runs_what_delta_runs(script, target, monkeypatch):
    """``dcfe-eval ARGS`` runs the same function with the same spec and options as
    ``delta eval --model dcfe ARGS``."""
    module, fn = target.split(":")
    command = fn.removesuffix("_main")
    calls = _recorded_runs(monkeypatch)
    with pytest.raises(SystemExit):
        getattr(importlib.import_module(module), fn)(["--out", "x"])
    spec = calls[0][3]
    with pytest.raises(SystemExit):
        cli.main([command, "--model", spec.name, "--out", "x"])
    (fn_alias, argv_alias, _, spec_alias), (fn_delta, argv_delta, prog, spec_delta) = calls
    assert (fn_alias, argv_alias, spec_alias) == (fn_delta, argv_delta, spec_delta)
    assert prog == f"delta {command} --model {spec.name}"


@pytest.mark.parametrize("script", ["dhbv-realization", "dcfe-realization", "dlgar-realization",
                                    "dcfe-export-cfe-config", "ngen-replay", "delta-experiment"])
def test_alias_is_the_function_delta_calls(script):
    module, fn = SCRIPTS[script].split(":")
    target = getattr(importlib.import_module(module), fn)
    command = {"dcfe-export-cfe-config": "export", "ngen-replay": "replay",
               "delta-experiment": "experiment"}.get(script, "realization")
    if command in cli.PLAIN_COMMANDS:
        assert cli.PLAIN_COMMANDS[command] == SCRIPTS[script]
    else:
        assert model_spec(script.split("-")[0]).load_command(command) is target


def test_lgar_and_dlgar_names_are_the_same_commands():
    for command in ("train", "eval", "demo"):
        assert SCRIPTS[f"lgar-{command}"] == SCRIPTS[f"dlgar-{command}"]


def test_train_without_model_trains_the_configured_one(monkeypatch):
    calls = _recorded_runs(monkeypatch)
    with pytest.raises(SystemExit):
        cli.main(["train", "--config", "run.yaml"])
    assert calls == [(cli.train_command, ["--config", "run.yaml"], "delta train", None)]


def test_entry_point_model_is_found(monkeypatch):
    point = EntryPoint(name="toy", value="toy_model:SPEC", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [point] if group == point.group
                        else [])
    found = registry.discover()
    assert found == {**BUILTIN_MODELS, "toy": "toy_model:SPEC"}
    monkeypatch.setattr(registry, "MODELS", found)
    monkeypatch.setattr(registry, "_LOADED", {})
    assert model_spec("toy") is toy_model.SPEC


def test_builtin_models_without_distribution_metadata(monkeypatch):
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    assert registry.discover() == BUILTIN_MODELS


def test_pyproject_declares_the_builtin_models():
    declared = _pyproject_table(f'project.entry-points."{ENTRY_POINT_GROUP}"')
    assert declared == BUILTIN_MODELS
