"""The repository stays lean: no run artefacts tracked, no large files outside the shipped weights.

Run directories (checkpoints, bundles, simulations) belong outside git; results live as small
CSV/MD files in benchmarks/. Skips where the tree is not a git checkout (e.g. an sdist).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 2 * 1024 * 1024


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to check about tracked files")
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                         check=True)
    return [p for p in out.stdout.decode().split("\0") if p]


def test_no_run_directory_is_tracked():
    runs = [p for p in _tracked() if p.startswith("runs/")]
    assert not runs, f"{len(runs)} files under runs/ are tracked (git rm -r --cached runs): {runs[:5]}"


def test_no_large_file_outside_weights():
    big = [(p, (ROOT / p).stat().st_size) for p in _tracked()
           if "/weights/" not in f"/{p}" and (ROOT / p).is_file()
           and (ROOT / p).stat().st_size > MAX_BYTES]
    assert not big, f"tracked files over 2 MB outside */weights/: {big}"


def test_bundles_only_in_weights_folders():
    stray = [p for p in _tracked() if p.endswith(".pt") and "/weights/" not in f"/{p}"]
    assert not stray, f"bundles or checkpoints outside */weights/: {stray}"
