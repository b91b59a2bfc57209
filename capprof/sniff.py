"""What a file is, from its first bytes: so a file whose name lies (a gzip or
Parquet file named .csv, a UTF-16 export, a binary) is named for what it is
in one error line instead of a codec error or 'missing columns'."""

from __future__ import annotations

from pathlib import Path

from capprof.errors import CapprofError

_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed"),
    (b"PAR1", "a Parquet file"),
    (b"ARROW1", "a Feather (Arrow) file"),
    (b"PK\x03\x04", "a zip archive (e.g. an .xlsx workbook)"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)


def file_kind(head: bytes) -> str | None:
    """What the first bytes of a file say it is, or None for plain text
    (which may still not be UTF-8)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if b"\x00" in head:
        # UTF-16 without a byte-order mark: a NUL beside every ASCII letter
        for codec in ("utf-16-le", "utf-16-be"):
            try:
                text = head[: len(head) // 2 * 2].decode(codec)
            except UnicodeDecodeError:
                continue
            if text and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text):
                return "UTF-16 text"
        return "a binary file"
    return None


def is_text(head: bytes) -> bool:
    """Whether ``head`` is UTF-8 text (a character cut at the end is fine)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4 and exc.reason.startswith("unexpected end")
    return True


def read_text(path: Path, what: str, fix: str) -> str:
    """The UTF-8 text of a small file (a demands file, a scenario list), or
    one CapprofError line naming what is wrong with it: a directory, empty,
    compressed, UTF-16, binary or not UTF-8. ``what`` names the file's role
    ("demands file"), ``fix`` says what a good one looks like."""
    path = Path(path)
    if path.is_dir():
        raise CapprofError(f"{what} {path} is a directory, not a file; pass the file itself ({fix})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CapprofError(f"{what} {path} cannot be read ({exc.strerror or exc}); check the path and permissions") from None
    if not data.strip():
        raise CapprofError(f"{what} {path} is empty; {fix}")
    kind = file_kind(data[:4096])
    if kind is not None:
        raise CapprofError(f"{what} {path} is {kind}, not UTF-8 text; {fix}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CapprofError(
            f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"save it as UTF-8; {fix}"
        ) from None
    return text.lstrip("\ufeff")
