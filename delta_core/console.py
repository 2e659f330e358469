"""What the console scripts print besides their results: warnings as one line each.

Python's default warning display adds the source path, line number and code line of the
``warnings.warn`` call, which means nothing to a user. :func:`one_line_warnings` replaces it, for
the commands of this package, by ``warning: <message>`` on a line of its own: stdout is flushed
first, and when stderr is not a terminal (a log file) and a progress bar may have been drawn,
the warning starts on a new line instead of continuing the bar's last ``\\r``-rewritten line.
"""
from __future__ import annotations

import sys
import warnings


def format_warning(message: Warning | str, category: type[Warning]) -> str:
    """``warning: <message>`` (``warning (<Category>): ...`` for other than UserWarning), one
    line (newlines in the message become spaces)."""
    kind = "warning" if category is UserWarning else f"warning ({category.__name__})"
    return f"{kind}: {' '.join(str(message).split())}"


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    stream = file if file is not None else sys.stderr
    if stream is None:
        return
    sys.stdout.flush()
    text = format_warning(message, category)
    if "tqdm" in sys.modules and not getattr(stream, "isatty", lambda: False)():
        text = "\n" + text  # a bar's line in a log file has no newline of its own
    try:
        stream.write(text + "\n")
        stream.flush()
    except OSError:  # stderr closed: nothing to do (as Python's own display)
        pass


def one_line_warnings() -> None:
    """Show warnings as one line each for the rest of this process (console scripts call it)."""
    warnings.showwarning = _show
