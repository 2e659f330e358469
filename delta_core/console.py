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


def _format(message, category, filename, lineno, line=None) -> str:
    """:func:`warnings.formatwarning` of the console scripts (the location is left out)."""
    sys.stdout.flush()  # results printed so far come first
    text = format_warning(message, category) + "\n"
    if "tqdm" in sys.modules and not getattr(sys.stderr, "isatty", lambda: False)():
        text = "\n" + text  # a bar's line in a log file has no newline of its own
    return text


def one_line_warnings() -> None:
    """Show warnings as one line each for the rest of this process (console scripts call it).

    Replaces :func:`warnings.formatwarning` (not ``showwarning``), so code recording warnings
    (``warnings.catch_warnings(record=True)``, ``pytest.warns``) still receives them.
    """
    warnings.formatwarning = _format
