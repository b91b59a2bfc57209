"""SIGTERM handled as Ctrl-C by the commands that do long work, and child
processes that die with their parent.

``kill PID`` and batch schedulers stop a job with SIGTERM, whose default
action ends the process on the spot: no checkpoint, no "continue with" line.
Inside ``sigterm_as_interrupt()`` SIGTERM raises ``KeyboardInterrupt`` in the
main thread instead, so ``capprof run`` and ``capprof train`` stop the way
Ctrl-C stops them (finished work kept, the command to continue printed).
"""

from __future__ import annotations

import contextlib
import signal
import threading


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def install_sigterm_as_interrupt():
    """Make SIGTERM raise KeyboardInterrupt; returns the previous handler
    (None off the main thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt inside the block; the previous
    handler is restored after it."""
    previous = install_sigterm_as_interrupt()
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def die_with_parent() -> None:
    """Run in a child before it execs (Linux, ``preexec_fn``): the kernel
    kills it when the process that started it dies, so a child stuck in a
    policy's step cannot outlive a killed parent. Elsewhere it does nothing."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
