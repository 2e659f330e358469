"""Writing output files without losing the previous ones: each file is written to a temporary
file beside it and renamed into place only once complete, so an error or an interrupt leaves the
old file as it was."""
from __future__ import annotations

import os
from pathlib import Path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place.

    Parameters
    ----------
    path : path
        Destination; its folder is created if missing.
    text : str
        The whole content (written with ``\\n`` line ends as given).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
