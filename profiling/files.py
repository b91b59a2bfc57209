"""Reading and writing the profiling stage's files so that a reader never
sees half a file or half a directory, and a damaged one is one clear line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from capprof.errors import CapprofError
from capprof.output import unguard
from capprof.io import atomic_write_text


def write_json_atomic(path: Path, document: dict) -> None:
    """Write JSON to ``path`` atomically (capprof.io.atomic_write_text)."""
    atomic_write_text(path, json.dumps(document, indent=1) + "\n")


def read_csv(path: Path, fix: str, **kwargs) -> pd.DataFrame:
    """A CSV as capprof wrote it: the spreadsheet guard quote taken off
    (``capprof.output.unguard``), so team and scenario names are as fitted."""
    try:
        return unguard(pd.read_csv(path, **kwargs))
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CapprofError(f"{path} is not a readable CSV ({reason}); {fix}") from None


def check_writable(target: Path) -> None:
    """Refuse before any work an output whose nearest existing ancestor
    cannot be written (one line naming it)."""
    probe = target.parent if not target.exists() else target
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise CapprofError(f"cannot write {target}: {probe} is a file; choose another --out")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise CapprofError(f"cannot write {target}: {probe} is not writable; choose another --out")


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
