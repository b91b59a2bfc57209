"""Reading a table file of any format the CLI accepts: CSV (comma,
semicolon or tab delimited, optionally .csv.gz), Parquet (a file or a
directory such as ``capprof run --out``) and Feather.

A file whose content is not what its name says (gzip or Parquet named .csv,
UTF-16, binary, empty) is named for what it is in one CapprofError line,
never a codec error or "missing columns". CSV cells are kept as text (the
score schema's validation parses numbers and names bad cells by line); the
spreadsheet guard capprof's CSV writers add (``capprof.output``) is taken
off again, so a table capprof wrote reads back as it was.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from capprof.errors import CapprofError, note
from capprof.output import unguard_text
from capprof.sniff import file_kind as _kind, is_text

_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_BYTES = 1 << 16


def _csv_kind_fix(kind: str) -> str:
    if kind == "gzip-compressed":
        return "name it .csv.gz (or gunzip it)"
    if kind == "UTF-16 text":
        return "save it as UTF-8 CSV"
    if kind.startswith("a Parquet"):
        return "name it .parquet"
    if kind.startswith("a Feather"):
        return "name it .feather"
    return "export the table as CSV (UTF-8, comma-separated) or Parquet"


def csv_delimiter(header: str) -> str:
    """The delimiter of a CSV header line: the most frequent of comma,
    semicolon, tab and pipe (comma when none appears)."""
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _sniff(path: Path, compression: str | None) -> bytes:
    """Returns the file's first _SNIFF_BYTES bytes (decompressed for gzip);
    an unreadable file or a broken gzip is one CapprofError line."""
    import gzip

    opener = gzip.open if compression == "gzip" else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(_SNIFF_BYTES)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        if compression == "gzip" and not isinstance(exc, PermissionError):
            raise CapprofError(f"{path}: not a readable gzip file ({exc}); gunzip it to check, or name it .csv") from None
        raise CapprofError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc}); check the path and its permissions") from None


def _header_line(path: Path, head: bytes) -> str:
    """Returns the header line of the sniffed bytes ``head`` (byte-order mark
    removed); an empty file, another format or non-UTF-8 text is one
    CapprofError line naming what the file is."""
    if not head.strip():
        raise CapprofError(f"{path}: the file is empty; a score table needs a header line and rows (docs/schema.md)")
    kind = _kind(head)
    if kind:
        raise CapprofError(f"{path}: this is {kind}, not a plain-text CSV; {_csv_kind_fix(kind)}")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sniffing boundary
            raise CapprofError(
                f"{path}: not UTF-8 text (byte 0x{head[exc.start]:02x} at offset {exc.start}); "
                "save it as UTF-8 CSV"
            ) from None
        text = head[: exc.start].decode("utf-8")
    return text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""


def _parse_cells(path: Path, sep: str, compression: str | None) -> pd.DataFrame:
    """Returns every line of the CSV as text cells, the header as row 0 and
    blank lines kept (so row numbers stay line numbers); a parse failure is
    one CapprofError line, naming the line whose field count is off."""
    import re

    try:
        return pd.read_csv(
            path, sep=sep, header=None, dtype=str, keep_default_na=False, compression=compression,
            encoding="utf-8-sig", skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError:
        raise CapprofError(f"{path}: the file is empty; a score table needs a header line and rows (docs/schema.md)") from None
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found:
            expected, line, saw = found.groups()
            raise CapprofError(
                f"{path}: line {line} has {saw} fields but the header has {expected}; quote values that "
                f"contain a {_DELIMITERS[sep]} or fix that line"
            ) from None
        raise CapprofError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError as exc:
        raise CapprofError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV") from None


def _named_rows(path: Path, raw: pd.DataFrame) -> pd.DataFrame:
    """Returns the rows of ``raw`` under the header's column names, guard
    removed, blank lines dropped, indexed by file line number; a repeated
    column name is one CapprofError line."""
    names = [unguard_text(str(c).strip()) for c in raw.iloc[0]]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise CapprofError(f"{path}: column `{repeated[0]}` appears more than once in the header; keep one")
    table = raw.iloc[1:].map(unguard_text)
    table.columns = names
    table = table[(table != "").any(axis=1)]  # blank lines carry nothing
    table.index = table.index + 1  # the file's line number of each row
    return table


def _decimal_commas_to_points(table: pd.DataFrame) -> pd.DataFrame:
    """Returns ``table`` with the score columns' decimal commas made points,
    for a column whose every comma is a decimal comma (a semicolon- or
    tab-delimited export from a comma-decimal locale)."""
    import re

    decimal_comma = re.compile(r"^\s*[+-]?\d*,\d+\s*$")
    for col in ("score", "background_score", "focal_per_capita_return", "background_per_capita_return"):
        if col in table.columns:
            values = table[col][table[col].str.strip() != ""]
            if len(values) and values.str.contains(",").any() and values.map(
                    lambda v: bool(decimal_comma.match(v)) or "," not in v).all():
                table[col] = table[col].str.replace(",", ".", regex=False)
    return table


def _read_csv(path: Path, compression: str | None) -> pd.DataFrame:
    """Returns the CSV at ``path`` as text cells indexed by line number
    (docs/schema.md); what is wrong with the file is one CapprofError line."""
    # sniff first, so a file that is not CSV text is named for what it is
    # rather than failing inside the parser
    head = _sniff(path, compression)
    sep = csv_delimiter(_header_line(path, head))
    table = _named_rows(path, _parse_cells(path, sep, compression))
    if sep != ",":
        note(f"{path.name}: read as {_DELIMITERS[sep]}-delimited")
        # with a comma free as decimal mark, a score may carry one
        table = _decimal_commas_to_points(table)
    return table


def _parquet_files(directory: Path) -> list[Path]:
    """The Parquet files of a dataset directory (as pyarrow reads them: names
    starting with ``.`` or ``_`` are skipped)."""
    return sorted(
        p for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(directory).parts)
    )


def _read_parquet_dir(path: Path) -> pd.DataFrame:
    files = _parquet_files(path)
    parquet = [p for p in files if p.suffix.lower() in (".parquet", ".pq")]
    if not parquet:
        hint = ""
        if (path / "_demands.yaml").exists() or any(path.glob(".*.tmp")):
            hint = " (an interrupted `capprof run`? finish it with the same command and --resume)"
        elif files:
            others = sorted({p.suffix or p.name for p in files})
            hint = f" (it holds {', '.join(others[:3])} files; pass one of them instead)"
        raise CapprofError(
            f"{path}: no Parquet files in this directory{hint}; a score directory is what `capprof run --out` writes"
        )
    nested = any(p.parent != path for p in parquet)  # hive partitions (team=a/...) carry columns
    try:
        return pd.read_parquet(path if nested and len(parquet) == len(files) else parquet)
    except (OSError, ValueError, TypeError):  # name the file that breaks it
        pass
    import pyarrow.parquet as pq

    for file in parquet:
        try:
            pq.read_metadata(file)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for corrupt files
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CapprofError(f"{file}: not a readable Parquet file ({first}); delete it or re-run that episode") from None
    frames = [pd.read_parquet(file) for file in parquet]  # schemas differ: combine file by file
    return pd.concat(frames, ignore_index=True)


def _binary_kind(path: Path) -> str | None:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        return "empty"
    kind = _kind(head)
    if kind is None and is_text(head):
        return "text (a CSV?)"
    return kind


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (optionally .csv.gz; comma, semicolon or tab delimited),
    Parquet (file or directory) or Feather table; an unreadable file raises
    CapprofError naming the file, what it is, and the fix."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    suffix = path.suffix.lower()
    if path.is_dir():
        return _read_parquet_dir(path)
    if suffix in (".csv", ".txt"):
        return _read_csv(path, None)
    if suffixes == [".csv", ".gz"]:
        return _read_csv(path, "gzip")
    if suffix not in (".parquet", ".pq", ".feather"):
        raise CapprofError(
            f"{path}: unknown file type; use .csv, .csv.gz, .parquet, .feather or a Parquet directory"
        )
    kind = _binary_kind(path)
    expected = "Parquet" if suffix != ".feather" else "Feather"
    if kind == "empty":
        raise CapprofError(f"{path}: the file is empty; write the {expected} table again")
    try:
        if suffix == ".feather":
            return pd.read_feather(path)
        return pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on bad files
        if kind and kind != "a binary file":
            fix = "name it .csv" if kind.startswith("text") else f"write the table again as {expected} or CSV"
            raise CapprofError(f"{path}: this is {kind}, not a {expected} file; {fix}") from None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CapprofError(
            f"{path}: not a readable {expected} file ({first}); write the table again as {expected} or CSV"
        ) from None


def read_json(path, fix: str, missing: str | None = None) -> dict:
    """A JSON object from ``path``, or one CapprofError line naming the file
    and ``fix`` (``missing``: the whole line for an absent file instead)."""
    import json

    path = Path(path)
    if not path.is_file():
        raise CapprofError(missing or f"{path} is missing; {fix}")
    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CapprofError(f"{path} is truncated or not JSON; {fix}") from None
    if not isinstance(document, dict):
        raise CapprofError(f"{path} is not a JSON object; {fix}")
    return document
