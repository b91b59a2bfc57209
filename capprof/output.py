"""Writing result tables in the CLI's formats: to stdout (``write_table``)
and to CSV files on disk (``write_csv``), both spreadsheet-safe.

The guard (docs/schema.md, "CSV and spreadsheets"): a text cell, column
name or index label that begins with ``= + - @``, a tab or a CR, or with
``'`` itself, gets a leading ``'`` (the OWASP CSV-injection rule); numbers
and texts that are plain numbers (``-1.5``) are unchanged. ``unguard`` (used
by ``capprof.readers`` for every CSV capprof reads) strips exactly that
quote back: an unguarded text can never begin with ``'`` followed by a
guarded character (it would have been guarded), so a table written and read
again equals the original.
"""

from __future__ import annotations

import re
import sys

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet runs as a formula (OWASP)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_GUARDED = (*FORMULA_START, "'")


def guard_text(value):
    """``value`` as a spreadsheet may read it: a text starting with a
    formula character or ``'`` (and not a plain number) gets a leading ``'``."""
    if isinstance(value, str) and value[:1] in _GUARDED and not _NUMBER.match(value):
        return "'" + value
    return value


def unguard_text(value):
    """The inverse of ``guard_text``."""
    if isinstance(value, str) and value[:1] == "'" and value[1:2] in _GUARDED and not _NUMBER.match(value[1:]):
        return value[1:]
    return value


def _is_text(series) -> bool:
    return series.dtype == object or str(series.dtype).startswith(("string", "str", "category"))


def _map_frame(frame, function):
    out = frame.copy()
    for column in out.columns:
        if _is_text(out[column]):
            out[column] = out[column].astype(object).map(function)
    out.columns = [function(c) for c in out.columns]
    if _is_text(out.index.to_series()):
        out.index = out.index.map(function)
    out.index.name = function(frame.index.name)
    return out


def spreadsheet_safe(frame):
    """A copy of ``frame`` whose text cells, column names and index labels
    cannot run as a spreadsheet formula (``guard_text`` on each)."""
    return _map_frame(frame, guard_text)


def unguard(frame):
    """A copy of ``frame`` with ``spreadsheet_safe``'s quotes taken off."""
    return _map_frame(frame, unguard_text)


def _quoting(frame) -> int:
    """csv.QUOTE_MINIMAL, or QUOTE_NONNUMERIC when a text holds a CR: pandas
    leaves such a cell unquoted under a "\\n" line ending, and a reader
    would split the row there."""
    import csv

    texts = [*map(str, frame.columns), *(str(v) for c in frame.columns if _is_text(frame[c]) for v in frame[c]),
             *(str(v) for v in frame.index if isinstance(v, str))]
    return csv.QUOTE_NONNUMERIC if any("\r" in t for t in texts) else csv.QUOTE_MINIMAL


def write_csv(frame, path, index: bool = False, float_format: str | None = "%.6g"):
    """Write ``frame`` to the CSV file ``path``, spreadsheet-safe and
    atomically (the old file or the new one at every instant, nothing left
    behind by a full disk); returns the path."""
    return write_csvs([(frame, path)], index=index, float_format=float_format)[0]


def write_csvs(pairs, index: bool = False, float_format: str | None = "%.6g"):
    """``write_csv`` for several (frame, path) pairs that belong together:
    all are renamed into place once every one is written, so a full disk
    changes none of them (``capprof.io.atomic_paths``); returns the paths."""
    from pathlib import Path

    from capprof.io import atomic_paths

    paths = [Path(path) for _, path in pairs]
    with atomic_paths(paths) as temporaries:
        for (frame, _), tmp in zip(pairs, temporaries):
            safe = spreadsheet_safe(frame)
            safe.to_csv(tmp, index=index, float_format=float_format, lineterminator="\n", quoting=_quoting(safe))
    return paths


def write_table(frame, fmt: str, max_colwidth: int = 50) -> None:
    """``csv`` (floats as %.6g), ``json`` (records) or an aligned ``table``
    (floats to 4 decimals, every row shown)."""
    if fmt == "csv":
        safe = spreadsheet_safe(frame)
        safe.to_csv(sys.stdout, index=False, float_format="%.6g", lineterminator="\n", quoting=_quoting(safe))
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", max_colwidth):
            sys.stdout.write(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}") + "\n")
