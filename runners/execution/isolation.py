"""Episodes in a separate process, watched from outside.

The in-process limits of ``run_episode`` (a periodic SIGALRM watchdog, the
per-step and per-episode clocks, the memory check; runners/episode/guard.py and
runners/episode/observers.py) only act when Python code
runs. A submission that hangs inside native code (a C extension loop, a
deadlocked library) never returns to the interpreter, so no signal handler
runs; one that segfaults or is killed takes the whole interpreter with it.

:class:`EpisodeProcess` runs ``run_episode`` in a child process it spawns once
(a fresh interpreter that imports meltingpot when it starts) and watches it:

* the child publishes, in shared memory, when the current focal step began
  (``time.monotonic()``, system-wide on Linux), when its episode began and
  how many steps the episode has completed;
* if a focal step has run for longer than ``hard_step_seconds(limit)`` or the
  episode for longer than ``hard_episode_seconds(limit)``, the parent kills the
  child, records the episode as ``timeout`` and starts a new child;
* if the child dies (a segfault, ``os._exit``, the OOM killer), the episode
  is an ``error`` naming the dead process, with the steps it completed, and a
  new child takes the next episode.

Both the Ray backend (one per actor) and ``capprof run --isolate`` use it.
"""

from __future__ import annotations

import os
import signal
import time

from capprof.interrupts import die_with_parent

# Slack beyond the in-process limits before the parent kills: the in-process
# watchdog fires within 1.25 x the step limit, so a kill means it could not.
HARD_STEP_FACTOR, HARD_STEP_SLACK = 1.5, 2.0
HARD_EPISODE_FACTOR, HARD_EPISODE_SLACK = 1.25, 30.0  # slack covers the substrate build
POLL_SECONDS = 0.1

_CHILD_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                      "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def hard_step_seconds(step_seconds: float | None) -> float | None:
    """Kill threshold for one focal step: 1.5 x the limit + 2 s."""
    return None if step_seconds is None else HARD_STEP_FACTOR * step_seconds + HARD_STEP_SLACK


def hard_episode_seconds(episode_seconds: float | None) -> float | None:
    """Kill threshold for a whole episode: 1.25 x the limit + 30 s."""
    return None if episode_seconds is None else HARD_EPISODE_FACTOR * episode_seconds + HARD_EPISODE_SLACK


def _child_main(read_fd: int, write_fd: int, clock_fd: int) -> None:
    """The child: one CPU's worth of threads, niceness of a serial run,
    meltingpot imported once; then episodes until told to stop."""
    import ctypes
    import mmap
    from multiprocessing.connection import Connection

    # Ray starts its workers at niceness 15 (to favour its own daemons); the
    # episode process asks for the niceness of a serial run, where permitted.
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except (OSError, AttributeError):
        pass
    # Ctrl-C reaches the whole process group: the parent handles it (and
    # kills this child), so the child neither stops mid-write nor prints a
    # traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox, outbox = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    clocks = (ctypes.c_double * CLOCKS).from_buffer(mmap.mmap(clock_fd, CLOCK_BYTES))
    from capprof.runners.episode import episode
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    outbox.send("ready")
    while True:
        try:
            task = inbox.recv()
        except EOFError:  # the parent is gone (e.g. its Ray actor was killed): so are we
            return
        if task is None:
            return
        clocks[1], clocks[2] = time.monotonic(), 0.0
        try:
            record = episode.run_episode(task, clocks)
        finally:
            clocks[0] = clocks[1] = 0.0
        outbox.send(record)


# Shared memory, three doubles: [focal step began, episode began] (monotonic
# seconds; 0 = not running) and the steps the current episode has completed.
CLOCKS = 3
CLOCK_BYTES = 8 * CLOCKS


class EpisodeProcess:
    """``run(task) -> record`` in a watched child process (see module doc).

    The child is a fresh interpreter (``python -m capprof.runners.execution.isolation``),
    not a multiprocessing child: that would re-import the caller's main
    module, which breaks scripts without an ``if __name__ == "__main__"``
    guard, and a forked child would inherit the parent's threads' slowness
    inside dmlab2d (see runners/execution/execute.py).
    """

    def __init__(self):
        self._child = None
        self._start()

    def _start(self) -> None:
        import ctypes
        import mmap
        import subprocess
        import sys
        import tempfile
        from multiprocessing.connection import Connection

        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self._clock_file = tempfile.TemporaryFile()
        self._clock_file.truncate(CLOCK_BYTES)
        self._clock_map = mmap.mmap(self._clock_file.fileno(), CLOCK_BYTES)
        self._clocks = (ctypes.c_double * CLOCKS).from_buffer(self._clock_map)
        env = dict(os.environ)
        for var in _CHILD_THREAD_VARS:  # one CPU per episode process
            env.setdefault(var, "1")
        fds = (to_child_r, from_child_w, self._clock_file.fileno())
        self._child = subprocess.Popen(
            [sys.executable, "-m", "capprof.runners.execution.isolation", *map(str, fds)],
            pass_fds=fds, env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        os.close(to_child_r)
        os.close(from_child_w)
        self._to_child = Connection(to_child_w, readable=False)
        self._from_child = Connection(from_child_r, writable=False)
        try:
            ready = self._from_child.recv()
        except EOFError:
            ready = None
        if ready != "ready":
            from capprof.errors import CapprofError

            code = self._child.wait()
            raise CapprofError(f"the episode process exited while starting (exit code {code}); "
                               "run `capprof run` without --isolate to see the error")

    def _stop_child(self, kill: bool) -> None:
        if self._child is None:
            return
        if not kill:
            try:
                self._to_child.send(None)
                self._child.wait(timeout=10)
            except Exception:  # a child that is already gone: killed below
                pass
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        for thing in (self._to_child, self._from_child):
            thing.close()
        del self._clocks  # release the buffer before closing the map
        self._clock_map.close()
        self._clock_file.close()
        self._child = None

    def close(self) -> None:
        """Ask the child to stop after its current episode (waits up to 10 s)."""
        self._stop_child(kill=False)

    def kill(self) -> None:
        """Stop the child now (e.g. on Ctrl-C)."""
        self._stop_child(kill=True)

    def _restart(self) -> None:
        self._stop_child(kill=True)
        self._start()

    def run(self, task):
        """The episode's ``EpisodeRecord``; a child that dies or hangs gives a
        failed record with the steps it had completed."""
        from capprof.runners.episode.records import failed_record

        step_limit = hard_step_seconds(task.limits.step_seconds)
        episode_limit = hard_episode_seconds(task.limits.episode_seconds)
        sent = time.monotonic()
        self._clocks[2] = 0.0

        def failed(status: str, error: str):
            # Steps are read before the restart replaces the shared memory.
            record = failed_record(task, status, error, steps=int(self._clocks[2]),
                                   wall_seconds=time.monotonic() - sent)
            self._restart()
            return record

        self._to_child.send(task)
        while True:
            if self._from_child.poll(POLL_SECONDS):
                try:
                    return self._from_child.recv()
                except EOFError:
                    pass  # the child died while sending: reported below
            now = time.monotonic()
            step_began, episode_began = self._clocks[0], self._clocks[1]
            code = self._child.poll()
            if code is not None:
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                return failed("error", f"the episode process died ({how}); a focal policy may have "
                                       "crashed the interpreter or been killed")
            if step_limit is not None and step_began and now - step_began > step_limit:
                return failed("timeout", f"a focal policy step ran for more than {step_limit:g} s without "
                                         f"returning (limit {task.limits.step_seconds:g} s; stuck outside "
                                         "Python, so the episode process was killed)")
            if episode_limit is not None and episode_began and now - episode_began > episode_limit:
                return failed("timeout", f"the episode ran for more than {episode_limit:g} s (limit "
                                         f"{task.limits.episode_seconds:g} s; stuck outside Python, so the "
                                         "episode process was killed)")

if __name__ == "__main__":
    import sys

    _child_main(*(int(arg) for arg in sys.argv[1:4]))
