"""What a run keeps alive, and who stops it.

Playing episodes starts things that must be stopped or dropped when the run
ends: the child interpreters of ``SPEC@PYTHON`` members
(``populations.venv_member.bridge_process``), the members' resolved sources
(``populations.populations``; imported classes, loaded submissions), the
RLlib modules the ``rllib:`` members play (``populations.rllib_policy``)
and Ray's episode actors (``execution.ray_backend``). An :class:`ExecutionContext`
holds them, and its ``close()`` stops them all: each owner registers how to
stop what it made (``at_close``) when it makes it, and ``close()`` runs those
in the reverse order.

How code finds the context: ``current()``, a context variable set by
``with context:`` and reset when the block ends. Passing the context as an
argument would add a parameter to execute -> run_episode -> Slots ->
``Member.build`` -> every member source (public signatures, for the two
places that start something); the variable keeps those signatures and is as
scoped as the ``with`` block (nested blocks each see their own, and the
outer one is current again after the inner one ends).

The rule:

* ``execute()`` plays each run inside a context of its own and closes it when
  the run returns or raises (KeyboardInterrupt included), so no child
  interpreter it started outlives it. A caller that has entered a context
  (``with ExecutionContext(): execute(a); execute(b)``) lends it to the
  runs instead, which leave it open: both runs then use the same Ray actors
  and children, and the caller's ``with`` stops them.
* Outside every ``with`` block (a script calling ``Member.build`` or
  ``run_episode`` itself; the episode process of ``--isolate`` and of every
  Ray actor, whose loop is not ``execute()``), ``current()`` is the process's
  default context. It is closed when the interpreter exits: the one
  ``atexit`` hook, registered when the default context first holds something
  to stop. ``default_context().close()`` stops those things sooner.
* A new thread starts outside every block (threads do not inherit context
  variables), so it uses the default context unless it enters one.

This module imports nothing of capprof's: every runners subpackage may use it.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import threading
from typing import Callable

_CURRENT: contextvars.ContextVar = contextvars.ContextVar("capprof_execution_context", default=None)


class ExecutionContext:
    """The live things of one run (see the module docstring).

    ``bridges``: interpreter path -> its bridge child
    (``venv_member.BridgeProcess``); ``sources``: member spec -> its resolved
    source; ``models``: RLlib module directory -> its loaded module's
    ``InferenceBatch``; ``actors``: (Ray session, job, count) -> episode
    actors. Their
    owners fill them and register, with ``at_close``, how to stop what they
    started. ``with context:`` makes it the current context for the block
    and closes it at the end of the block.
    """

    def __init__(self):
        self.bridges: dict = {}
        self.sources: dict = {}
        self.models: dict = {}
        self.actors: dict = {}
        self._closers: list[Callable[[], object]] = []
        self._tokens: list = []

    def at_close(self, stop: Callable[[], object]) -> Callable[[], object]:
        """Have ``close()`` call ``stop()`` (after every ``stop`` registered
        after it); returns ``stop``."""
        self._closers.append(stop)
        return stop

    def close(self) -> None:
        """Call every registered ``stop`` (last registered first), each also
        when one before it raised, then forget what the context held. The
        first exception is raised once all have run. Closing again does
        nothing; a closed context can be used again."""
        closers, self._closers = self._closers, []
        error = None
        while closers:
            try:
                closers.pop()()
            except BaseException as exc:  # Ctrl-C during one stop: the others still run
                error = error or exc
        for table in (self.bridges, self.sources, self.models, self.actors):
            table.clear()
        if error is not None:
            raise error

    def __enter__(self) -> ExecutionContext:
        self._tokens.append(_CURRENT.set(self))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        _CURRENT.reset(self._tokens.pop())
        try:
            self.close()
        except BaseException:
            if exc_type is None:
                raise
            # The block's own exception (e.g. KeyboardInterrupt) says what
            # happened; a failure to stop a child after it must not replace it.
        return False


class _ProcessDefault(ExecutionContext):
    """The context of code outside every ``with`` block: closed at interpreter
    exit, once it holds something to stop."""

    def __init__(self):
        super().__init__()
        self._at_exit = False

    def at_close(self, stop):
        if not self._at_exit:
            self._at_exit = True
            atexit.register(self.close)
        return super().at_close(stop)


_DEFAULT: _ProcessDefault | None = None
_DEFAULT_LOCK = threading.Lock()


def default_context() -> ExecutionContext:
    """The process's default context (made on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = _ProcessDefault()
        return _DEFAULT


def current() -> ExecutionContext:
    """The context of the innermost ``with ExecutionContext()`` block around
    this call, else the process's default context."""
    entered = _CURRENT.get()
    return entered if entered is not None else default_context()


def run_scope():
    """The ``with`` block ``execute()`` plays a run in: the context its
    caller entered, left open for the caller to close, else a new one,
    closed when the block ends."""
    entered = _CURRENT.get()
    return contextlib.nullcontext(entered) if entered is not None else ExecutionContext()
