"""Focal policies under the contest's rules: each step timed against the
per-step limit, stopped by a watchdog if it never returns, its action checked.

``GuardedPolicy`` wraps a focal policy and keeps meltingpot's Policy protocol,
so the episode loop treats every slot alike. Its ``step`` raises
``PolicyFailure`` (status ``error``, ``timeout`` or ``invalid_action``) for
anything the policy does wrong, including ``SystemExit``.
"""

from __future__ import annotations

import signal
import threading
import time

from capprof.runners.constants import STATUS_ERROR, STATUS_INVALID_ACTION, STATUS_TIMEOUT
from capprof.runners.episode.records import PolicyFailure, exception_line


class StepTimeout(BaseException):
    """Raised by the watchdog inside a focal policy's step (BaseException so
    a submission's own ``except Exception`` cannot swallow it)."""


class StepWatchdog:
    """A periodic SIGALRM, every quarter of the step limit, that interrupts a
    focal step running for longer than the limit (within 1.25 x the limit).

    Periodic rather than armed around every call: ``setitimer`` is a system
    call, and two per focal player per step cost ~8% of stepping speed. It
    acts only in the main thread (where Python delivers signals); elsewhere
    each step is still timed when it returns.
    """

    def __init__(self, step_seconds: float | None):
        self.limit = step_seconds
        self.began: float | None = None  # perf_counter() when the current focal step began
        self._previous = None
        self._armed = False

    def __enter__(self) -> "StepWatchdog":
        if (self.limit is not None and hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()):
            self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
            period = max(self.limit / 4, 0.01)
            signal.setitimer(signal.ITIMER_REAL, period, period)
            self._armed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous if self._previous is not None else signal.SIG_DFL)
            self._armed = False

    def _on_alarm(self, signum, frame) -> None:
        began = self.began
        if began is not None and time.perf_counter() - began > self.limit:
            self.began = None
            raise StepTimeout()


class GuardedPolicy:
    """A focal policy whose ``step`` is timed, watched and checked.

    ``clocks`` (optional) is shared memory read by an outside watcher
    (runners/execution/isolation.py): index 0 holds ``time.monotonic()`` when the
    current focal step began, 0 between steps.

    A policy that steps elsewhere (a bridged one, runners/populations/venv_member.py)
    may offer ``step_ahead(timestep, state)``, which starts the step and
    never raises, with ``step_seconds``, how long its last step ran there.
    The guard passes ``step_ahead`` on unchanged (None for other policies);
    such a step is slow when its wait here or its run there exceeded the
    limit (it may have run before ``step`` was called).
    """

    def __init__(self, policy, name: str, num_actions: int, watchdog: StepWatchdog, clocks=None):
        self.policy = policy
        self.name = name
        self.num_actions = num_actions
        self.watchdog = watchdog
        self.clocks = clocks
        self.step_ahead = getattr(policy, "step_ahead", None)

    def initial_state(self):
        try:
            return self.policy.initial_state()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise PolicyFailure(STATUS_ERROR, f"focal policy {self.name} raised {exception_line(exc)} "
                                              "in initial_state") from None

    def step(self, timestep, state):
        watchdog, clocks, limit = self.watchdog, self.clocks, self.watchdog.limit
        try:
            if clocks is not None:
                clocks[0] = time.monotonic()
            began = watchdog.began = time.perf_counter()
            try:
                action, state = self.policy.step(timestep, state)
            finally:
                watchdog.began = None
                if clocks is not None:
                    clocks[0] = 0.0
            took = time.perf_counter() - began
            if self.step_ahead is not None:  # its run over there, which may have begun before this call
                took = max(took, self.policy.step_seconds)
            slow = limit is not None and took > limit
        except StepTimeout:
            slow = True
        except (PolicyFailure, KeyboardInterrupt):
            raise
        except BaseException as exc:  # SystemExit too: the episode's failure, not the run's
            raise PolicyFailure(STATUS_ERROR, f"focal policy {self.name} raised {exception_line(exc)}") from None
        if slow:
            raise PolicyFailure(STATUS_TIMEOUT, f"focal policy {self.name} took longer than {limit:g} s "
                                                "for one step")
        if type(action) is int:  # the common case, checked without conversions
            valid = 0 <= action < self.num_actions
        else:
            try:
                valid = int(action) == action and 0 <= int(action) < self.num_actions
            except (TypeError, ValueError):
                valid = False
        if not valid:
            raise PolicyFailure(STATUS_INVALID_ACTION, f"focal policy {self.name} returned action {action!r}; "
                                f"actions are integers in 0..{self.num_actions - 1}")
        return int(action), state

    def close(self) -> None:
        self.policy.close()
