"""Writing result tables to stdout in the CLI's formats."""

from __future__ import annotations

import re
import sys

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet runs as a formula (OWASP)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def spreadsheet_safe(frame):
    """A copy of ``frame`` whose text cells and column names cannot run as a
    spreadsheet formula: a text beginning with = + - @ tab or CR (or with a
    quote, so the quote stays reversible) gets a leading ' (the OWASP rule);
    numbers, and texts that are plain numbers such as -1.5, are unchanged."""
    def safe(value):
        if isinstance(value, str) and value[:1] in (*FORMULA_START, "'") and not _NUMBER.match(value):
            return "'" + value
        return value

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype).startswith(("string", "str", "category")):
            out[column] = out[column].astype(object).map(safe)
    out.columns = [safe(c) for c in out.columns]
    return out


def write_table(frame, fmt: str, max_colwidth: int = 50) -> None:
    """``csv`` (floats as %.6g), ``json`` (records) or an aligned ``table``
    (floats to 4 decimals, every row shown)."""
    if fmt == "csv":
        spreadsheet_safe(frame).to_csv(sys.stdout, index=False, float_format="%.6g", lineterminator="\n")
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", max_colwidth):
            sys.stdout.write(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}") + "\n")
