"""The one exception type that reaches the user as a single clear line."""


class CapprofError(Exception):
    """A problem with the user's input or environment.

    The message names the problem and the fix in one line (several problems
    give several lines). The CLI prints it without a traceback and exits 2.
    """


def did_you_mean(name: str, known) -> str:
    """Return ' (did you mean "x"?)' for the closest known name, or ''."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
