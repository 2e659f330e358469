"""Where the running code comes from, recorded in run directories, bundles and outputs.

A git commit is reported only when the imported package *is* a git checkout (run from source or an
editable install): the file of this module must be tracked by the repository that holds it. An
installed copy (site-packages, even inside a clone's ``.venv``) reports its package version and
location instead, never the HEAD of some clone it happens to sit in.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from delta_core import __version__


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def source_commit() -> str | None:
    """Commit of the source checkout this package runs from (``+dirty`` if its Python files
    differ from it), or None when the package is an installed copy."""
    here = Path(__file__).resolve()
    if _git(["ls-files", "--error-unmatch", here.name], here.parent) is None:
        return None
    head = _git(["rev-parse", "HEAD"], here.parent)
    if head is None:
        return None
    top = _git(["rev-parse", "--show-toplevel"], here.parent)
    dirty = _git(["status", "--porcelain", "--untracked-files=no", "--", "*.py", "*.cpp",
                  "*.hpp"], Path(top or here.parent))
    return head + ("+dirty" if dirty else "")


def code_provenance() -> dict:
    """``package_version``, ``package_path`` and ``git_commit`` (a commit, or a sentence saying
    the package is installed, not a checkout)."""
    commit = source_commit()
    return {"package_version": __version__,
            "package_path": str(Path(__file__).resolve().parent),
            "git_commit": commit or "none (installed package, not a source checkout)"}
