"""Import meltingpot quietly (the one importer every stage uses).

TensorFlow (imported by meltingpot) writes absl start-up lines straight to file
descriptor 2 before any logging configuration can run, so environment
variables do not silence them. We point fd 2 at /dev/null for the duration of
the first import only; later errors reach stderr as usual.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def stderr_silenced():
    """Send everything written to fd 2 (C and Python) to /dev/null."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all (rare, e.g. some daemons): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_meltingpot():
    """Return the meltingpot package, importing it without start-up noise."""
    if "meltingpot" in sys.modules and "meltingpot.substrate" in sys.modules:
        return sys.modules["meltingpot"]
    # Set here, where TensorFlow is first imported, not when capprof is: a
    # program importing capprof keeps its own environment until it plays.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with stderr_silenced():
            import meltingpot  # noqa: F401
            import meltingpot.bot  # noqa: F401
            import meltingpot.scenario  # noqa: F401
            import meltingpot.substrate  # noqa: F401
    except ImportError as exc:
        from capprof.errors import CapprofError

        raise CapprofError(
            f"meltingpot is not importable ({exc}); install the runners extra: "
            "`make install-runners` or `pip install 'capprof[runners]'`"
        ) from None
    return sys.modules["meltingpot"]
