"""One `capprof run` at a time per results directory.

``RunLock(out_dir)`` holds an exclusive ``flock`` on ``OUT_DIR/_capprof_run.lock``
(the file holds the holder's pid, for the message a second run gets). The
kernel releases an flock when its holder dies, kill -9 included, so a lock
file left behind never blocks a later run. Opening the lock file is also the
first write into the directory: an --out that cannot be written is found
there, before any episode is played.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from capprof.errors import CapprofError
from capprof.runners.constants import LOCK_FILE


def unwritable(directory: Path, exc: OSError) -> CapprofError:
    reason = exc.strerror or type(exc).__name__
    return CapprofError(f"--out {directory} cannot be written ({reason}); choose a directory you can write")


class RunLock:
    """Exclusive use of a results directory (a context manager)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise unwritable(self.directory, exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = self._holder(fd)
                os.close(fd)
                raise CapprofError(
                    f"{self.directory} is in use by another `capprof run` ({holder}); wait for it to finish, "
                    "or choose another --out") from None
            # The previous holder may have removed the file between our open
            # and our lock: then we locked a file nobody else will see; retry.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            os.close(fd)
            raise unwritable(self.directory, exc) from None
        self._fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        except OSError:
            text = ""
        return f"pid {text}" if text.isdigit() else "pid unknown"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
