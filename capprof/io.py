"""Writing files and directories so that a reader never sees half of one.

Every file or directory capprof writes goes through this module:

* ``atomic_write(target, write)`` / ``atomic_write_text`` / ``atomic_path``
  (``atomic_paths`` for several files that are renamed in together):
  the content is written to a temporary sibling ``.NAME.PID-TOKEN.tmp``,
  fsynced, then renamed over ``target`` (``os.replace``: atomic on POSIX), and
  the directory entry is fsynced. A reader sees the old file or the new one,
  never a mixture; a failed write (a full disk) leaves the old file untouched
  and removes its temporary.
* ``atomic_directory(target)``: a context manager yielding a fresh temporary
  directory beside ``target``; when the block ends without an exception the
  temporary replaces ``target`` with ``replace_directory``; on any exception
  (a full disk, Ctrl-C) it is deleted and ``target`` is untouched.
* ``replace_directory(new, target)`` swaps ``new`` into ``target`` so that
  ``target`` names the old or the new directory at every instant: on Linux
  (3.15+, glibc 2.28+, on ext4, xfs, btrfs, tmpfs and most local file systems)
  with one ``renameat2(RENAME_EXCHANGE)`` call, after which the old directory
  sits at ``new``'s temporary name and is deleted. Where the exchange is not
  available (another OS, a file system that refuses it: EINVAL/ENOSYS) the
  fallback renames the old directory aside to ``.NAME.old-PID`` and the new
  one in: a kill -9 between those two renames leaves no ``target`` for a
  moment, and the next write to ``target`` (``clean_stale``) renames the old
  one back before anything else.
* ``clean_stale(target)`` runs before every write to ``target`` (and
  ``clean_stale_in(directory)`` for every entry of a directory, as before a
  training checkpoint): temporaries
  ``.NAME.*.tmp`` and ``.NAME.old-*`` whose writer process is gone (kill -9,
  power loss) are deleted. A temporary whose PID is alive is left alone (a
  concurrent writer); one without a PID in its name (not one of ours as
  written) counts as stale. The PID test is per machine: two hosts writing one NFS directory at
  once are not supported.
* ``check_space(directory)``: a probe write (64 KiB, fsynced, deleted) that a
  command runs before its work, so a full, read-only or quota-bound file
  system is one line at the start, not an error after minutes of work.
  ``require_space(directory, needed, command)`` adds the free-space test: it
  refuses with one CapprofError line naming the directory, the free and the
  needed space (each command's estimate of what it writes, docs/schema.md).
* ``staged_outputs(target, companions)``: a staging directory for a writer
  that makes a file and sibling files or directories it refers to (a report
  and its charts); on success each is moved into place (directories by
  ``replace_directory``, files by rename), on failure nothing appears.

Errors are ordinary ``OSError``; ``write_problem(exc, target)`` turns the
ones caused by the file system (no space, quota, read-only, permission) into
one line naming the directory, which the CLI prints (exit 2).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

# What a full, read-only or quota-bound file system (or a directory capprof may
# not write) raises: the user's environment, not a bug.
DISK_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for the file system",
}
PROBE_BYTES = 64 * 1024
NEARLY_FULL_BYTES = 1024 * 1024  # below this much free space a failed write is blamed on the disk
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
_TMP_PATTERN = re.compile(r"^(?P<pid>\d+)(?:-[A-Za-z0-9_]+)?$")


# ------------------------------------------------------------------ names


def temporary_name(target: Path) -> Path:
    """A fresh sibling of ``target`` named ``.NAME.PID-TOKEN.tmp`` (Parquet
    readers and ``capprof.readers`` skip dot files)."""
    target = Path(target)
    return target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def stale_entries(target: Path) -> list[Path]:
    """The temporaries of ``target`` left by writers that no longer run:
    ``.NAME.*.tmp`` and ``.NAME.old-*`` whose PID is dead or absent."""
    target = Path(target)
    parent, prefix = target.parent, f".{target.name}."
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    found = []
    for name in names:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):]
        if rest.endswith(".tmp"):
            match = _TMP_PATTERN.match(rest[:-len(".tmp")])
        elif rest.startswith("old-"):
            match = _TMP_PATTERN.match(rest[len("old-"):])
        else:
            continue
        if match is None or not _alive(int(match.group("pid"))):
            found.append(parent / name)
    return sorted(found)


def clean_stale_in(directory: Path) -> list[Path]:
    """Delete the stale temporaries of every entry of ``directory`` (a
    killed writer's ``.NAME.PID-TOKEN.tmp`` / ``.NAME.old-PID`` for whatever
    NAME); returns what was removed."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = re.compile(r"^\.(?P<name>.+?)\.(?:\d+(?:-[A-Za-z0-9_]+)?\.tmp|old-\d+(?:-[A-Za-z0-9_]+)?)$")
    removed = []
    for target in sorted({m.group("name") for m in map(found.match, names) if m}):
        removed += clean_stale(Path(directory) / target)
    return removed


def clean_stale(target: Path) -> list[Path]:
    """Delete the stale temporaries of ``target`` (``stale_entries``); when
    ``target`` itself is missing and a stale ``.NAME.old-*`` exists (a kill
    inside the fallback swap), that old directory is renamed back first.
    Returns what was removed or restored."""
    target = Path(target)
    stale = stale_entries(target)
    if not os.path.lexists(target):
        olds = [p for p in stale if p.name.startswith(f".{target.name}.old-")]
        if olds:
            newest = max(olds, key=lambda p: p.stat().st_mtime)
            os.rename(newest, target)
            stale = [p for p in stale if p != newest]
    for path in stale:
        _remove(path)
    return stale


# ------------------------------------------------------------------ files


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories
    cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` for a writer that wants a file
    name (NetCDF, XGBoost, pandas); when the block ends it is fsynced and
    renamed over ``target``; on an exception it is deleted and ``target`` is
    untouched."""
    target = Path(target)
    clean_stale(target)
    tmp = temporary_name(target)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    fsync_directory(target.parent)


@contextmanager
def atomic_paths(targets) -> Iterator[list[Path]]:
    """``atomic_path`` for several files that belong together (a command's
    outputs): every temporary is written in the block, then all are renamed
    into place; when any write fails none of the targets changes."""
    targets = [Path(t) for t in targets]
    for target in targets:
        clean_stale(target)
    temporaries = [temporary_name(t) for t in targets]
    try:
        yield temporaries
        for tmp in temporaries:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        with signals_held():
            for tmp, target in zip(temporaries, targets):
                os.replace(tmp, target)
    except BaseException:
        for tmp in temporaries:
            _remove(tmp)
        raise
    for directory in dict.fromkeys(t.parent for t in targets):
        fsync_directory(directory)


def atomic_write(target, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary binary file beside ``target``,
    fsync it and rename it over ``target``; returns ``target``."""
    target = Path(target)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
    return target


def atomic_write_text(target, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically (``atomic_write``)."""
    data = text.encode(encoding)
    return atomic_write(target, lambda handle: handle.write(data))


# ------------------------------------------------------------------ directories


@contextmanager
def signals_held():
    """Hold off SIGINT/SIGTERM (delivered when the block ends) so a swap is
    not cut in half by Ctrl-C or ``kill`` (kill -9 cannot be held: hence the
    exchange and ``clean_stale``)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def exchange(first: Path, second: Path) -> bool:
    """Swap the names ``first`` and ``second`` in one atomic step
    (``renameat2(RENAME_EXCHANGE)``); False when this system or file system
    cannot (then nothing changed)."""
    if _RENAMEAT2 is None:
        return False
    rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def replace_directory(new: Path, target: Path) -> None:
    """Put directory ``new`` at ``target`` so that ``target`` names the old or
    the new directory at every instant (module docstring); the old one is
    deleted."""
    new, target = Path(new), Path(target)
    with signals_held():
        if not os.path.lexists(target):
            os.rename(new, target)
            fsync_directory(target.parent)
            return
        if exchange(new, target):
            fsync_directory(target.parent)
            old = new  # the exchange left the old directory at the temporary name
        else:
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            _remove(old)
            os.rename(target, old)
            try:
                os.rename(new, target)
            except BaseException:
                os.rename(old, target)
                raise
            fsync_directory(target.parent)
    _remove(old)


def temporary_directory(target: Path) -> Path:
    """A fresh empty directory beside ``target`` (``.NAME.PID-TOKEN.tmp``,
    mode 0777 less the umask, as ``mkdir`` gives), stale ones cleaned first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = temporary_name(target)
    tmp.mkdir()
    return tmp


@contextmanager
def atomic_directory(target) -> Iterator[Path]:
    """Yield an empty temporary directory; fill it in the block. On success it
    replaces ``target`` (``replace_directory``); on any exception it is
    deleted and ``target`` is as it was."""
    target = Path(target)
    tmp = temporary_directory(target)
    try:
        yield tmp
        replace_directory(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def staged_outputs(target, companions=()) -> Iterator[Path]:
    """Yield a staging directory beside ``target``; the block writes
    ``STAGE/target.name`` and the ``companions`` (names of siblings, files or
    directories). When the block ends, each companion and then ``target`` is
    moved into ``target.parent`` (a directory by ``replace_directory``, a
    file by an atomic rename), so every one of them is the old or the new
    version at every instant and ``target`` is last; on an exception the
    staging directory is deleted and nothing at ``target.parent`` changed."""
    target = Path(target)
    stage = temporary_directory(target)
    try:
        yield stage
        for name in (*companions, target.name):
            staged, final = stage / name, target.parent / name
            if not os.path.lexists(staged):
                continue
            if staged.is_dir() and not staged.is_symlink():
                clean_stale(final)
                replace_directory(staged, final)
            else:
                os.replace(staged, final)
        fsync_directory(target.parent)
    finally:
        _remove(stage)


# ------------------------------------------------------------------ space


def nearest_directory(target) -> Path:
    """``target`` if it is a directory, else its nearest existing ancestor."""
    probe = Path(target).absolute()
    while not probe.is_dir():
        if probe.parent == probe:
            break
        probe = probe.parent
    return probe


def foreign_entries(directory, own) -> list[str]:
    """The sorted names in ``directory`` (if it is one) that ``own(name)``
    does not claim: what replacing the directory whole would delete."""
    directory = Path(directory)
    return sorted(p.name for p in directory.iterdir() if not own(p.name)) if directory.is_dir() else []


def file_in_the_way(target) -> Path | None:
    """The nearest existing ``target`` or ancestor of it when that is a file
    (so nothing can be made at ``target``); None when it is a directory."""
    for existing in (Path(target).absolute(), *Path(target).absolute().parents):
        if existing.exists():
            return None if existing.is_dir() else existing
    return None


def check_space(directory, name: str = "capprof-probe") -> None:
    """Write and delete a small probe file in ``directory`` (the nearest
    existing one); raises the file system's ``OSError`` (ENOSPC, EROFS,
    EDQUOT, EACCES) when nothing can be written there."""
    directory = nearest_directory(directory)
    probe = temporary_name(directory / name)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(directory)) from None
    try:
        os.write(fd, b"\0" * PROBE_BYTES)
        os.fsync(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(directory)) from None
    finally:
        os.close(fd)
        try:
            os.unlink(probe)
        except OSError:
            pass


def free_bytes(directory) -> int | None:
    """Bytes an unprivileged writer may still use on the file system of
    ``directory`` (None when it cannot be asked)."""
    try:
        stat = os.statvfs(nearest_directory(directory))
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def format_bytes(count: float) -> str:
    """``count`` bytes for a person: 512 B, 3.4 KiB, 12.0 MiB, 1.50 GiB."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.2f} {unit}" if unit == "GiB" else f"{count / size:.1f} {unit}"
    return f"{int(count)} B"


def require_space(directory, needed: int, command: str, fix: str = "choose another --out") -> None:
    """Refuse, before long work, an output directory whose file system cannot
    take what ``command`` will write: a CapprofError line naming the
    directory, the free space and ``needed`` (bytes); a directory that cannot
    be written at all (read-only, quota, permission) is named likewise."""
    from capprof.errors import CapprofError

    directory = nearest_directory(directory)
    free = free_bytes(directory)
    if free is not None and free < needed:
        raise CapprofError(f"no space left in {directory}: {format_bytes(free)} free, `{command}` needs about "
                           f"{format_bytes(needed)}; free space there or {fix}")
    try:
        check_space(directory)
    except OSError as exc:
        problem = write_problem(exc, directory, fix)
        if problem is None:
            raise
        raise CapprofError(problem) from None


def nearly_full(directory) -> bool:
    """True when the file system holding ``directory`` has less than
    NEARLY_FULL_BYTES available (or cannot be asked)."""
    free = free_bytes(directory)
    return free is not None and free < NEARLY_FULL_BYTES


def disk_error(exc: BaseException) -> OSError | None:
    """The OSError with a file-system errno (DISK_ERRNOS) in ``exc`` or in
    the exceptions it was raised from, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


@dataclass(frozen=True)
class DiskProblem:
    """A write the file system refused: ``what`` names the target (if it is
    not the directory itself), the reason and the directory; ``space`` is
    True when freeing space there is the remedy (full, quota, file too big)."""

    what: str
    directory: Path | None
    space: bool

    def line(self, fix: str) -> str:
        """The one line a command prints: the problem, then ``fix``."""
        if self.directory is None:
            return f"{self.what}; free space or {fix}"
        return f"{self.what}; free space there or {fix}" if self.space else f"{self.what}; {fix}"


def disk_problem(exc: BaseException, target=None) -> DiskProblem | None:
    """The ``DiskProblem`` behind ``exc`` when it is a write the file system
    refused (no space, quota, read-only, permission), else None. A
    non-OSError (a library's own error class) counts when the target's file
    system is nearly full."""
    found = disk_error(exc)
    where = Path(target) if target is not None else (Path(found.filename) if found and found.filename else None)
    if found is None:
        if where is None or not nearly_full(where):
            return None
        reason = DISK_ERRNOS[errno.ENOSPC]
    else:
        reason = DISK_ERRNOS[found.errno]
    space = found is None or found.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if where is None:
        return DiskProblem(f"{reason} while writing", None, space)
    directory = nearest_directory(where.parent if not where.is_dir() else where)
    what = f"cannot write {where}: " if where != directory else ""
    return DiskProblem(f"{what}{reason} in {directory}", directory, space)


def write_problem(exc: BaseException, target=None, fix: str = "choose another --out") -> str | None:
    """One line for a write that failed because of the file system (what
    could not be written, the directory, the reason, then ``fix``); None when
    ``exc`` is not such a failure (``disk_problem``)."""
    problem = disk_problem(exc, target)
    return None if problem is None else problem.line(fix)


def refuse_clashing_paths(outputs: dict, inputs: dict | None = None) -> None:
    """One CapprofError line, before any work, when two of a command's outputs
    name the same file, or an output would replace one of its inputs or land
    inside an input directory (a run's dataset, read again later).
    ``outputs``/``inputs``: option name -> path (None or a URL: not checked)."""
    from capprof.errors import CapprofError

    def resolved(path):
        text = str(path)
        return None if not text or "://" in text else Path(text).expanduser().resolve()

    sources = {name: (path, resolved(path)) for name, path in (inputs or {}).items() if path}
    seen: dict[Path, str] = {}
    for name, path in outputs.items():
        target = resolved(path) if path else None
        if target is None:
            continue
        if target in seen:
            raise CapprofError(f"{seen[target]} and {name} both name {path}; give each output its own path")
        for source_name, (source_text, source) in sources.items():
            if source is not None and (target == source or (source.is_dir() and source in target.parents)):
                where = "is" if target == source else "is inside"
                raise CapprofError(f"{name} {path} {where} {source_name} {source_text}, which this command reads; "
                                   "write it elsewhere")
        seen[target] = name
