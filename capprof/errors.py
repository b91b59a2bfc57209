"""What reaches the user as a single clear line: errors (exit 2) and notes.

Library code never prints. A problem with the user's input raises
``CapprofError``; something the user should know but that does not stop the
work (scenarios left out, values clipped, sampling not converged) is a
``warnings.warn(..., CapprofNote)``. The CLI renders both (``capprof: error:``
and ``capprof: note:``); a Python user sees ordinary exceptions and warnings.
"""

from __future__ import annotations

import warnings


class CapprofError(Exception):
    """A problem with the user's input or environment.

    The message names the problem and the fix in one line (several problems
    give several lines). The CLI prints it without a traceback and exits 2.
    """


class CapprofNote(UserWarning):
    """Something the user should know that does not stop the work.

    The CLI prints it as one ``capprof: note: ...`` line on stderr.
    """


def note(message: str, stacklevel: int = 2) -> None:
    """Emit ``message`` as a :class:`CapprofNote` (shown by the CLI as a note)."""
    warnings.warn(message, CapprofNote, stacklevel=stacklevel + 1)


def did_you_mean(name: str, known) -> str:
    """Return ' (did you mean "x"?)' for the closest known name, or ''."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
