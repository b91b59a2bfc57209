"""Writing result tables to stdout in the CLI's formats."""

from __future__ import annotations

import sys


def write_table(frame, fmt: str, max_colwidth: int = 50) -> None:
    """``csv`` (floats as %.6g), ``json`` (records) or an aligned ``table``
    (floats to 4 decimals, every row shown)."""
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False, float_format="%.6g", lineterminator="\n")
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", max_colwidth):
            sys.stdout.write(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}") + "\n")
