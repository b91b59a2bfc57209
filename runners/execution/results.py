"""The results dataset: one Parquet file per episode in OUT_DIR.

Each file is written by ``capprof.io.atomic_write`` under a temporary name
(``.NAME.PID-TOKEN.tmp``, which Parquet readers skip) and renamed into place,
so a killed run leaves only complete episodes; ``remove_partial_files``
deletes a killed run's temporaries when the next run takes the directory. ``capprof scores OUT_DIR`` and ``pandas.read_parquet(OUT_DIR)`` read
the directory directly. The schema is derived from
``capprof.runners.episode.records.EpisodeRecord`` (``EPISODE_SCHEMA``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
import zlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from capprof.io import atomic_write
from capprof.runners.episode.records import EpisodeRecord

_SCALARS = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def arrow_type(hint) -> pa.DataType:
    """The Arrow type of a record field's Python type: scalars, ``X | None``
    (nullable X) and ``tuple[X, ...]`` (a list of X)."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        return pa.list_(arrow_type(typing.get_args(hint)[0]))
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return arrow_type(inner)
    return _SCALARS[hint]


def arrow_schema(record_type) -> pa.Schema:
    hints = typing.get_type_hints(record_type)
    return pa.schema([(f.name, arrow_type(hints[f.name])) for f in dataclasses.fields(record_type)])


EPISODE_SCHEMA = arrow_schema(EpisodeRecord)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def episode_file(out_dir: Path, team: str, scenario: str, episode: int) -> Path:
    # The team is also stored inside the file; the name only has to be unique
    # and stable, so teams whose names sanitise alike get a short hash.
    tag = f"{_safe(team)[:60]}-{zlib.crc32(team.encode()):08x}"
    return Path(out_dir) / f"{tag}__{_safe(scenario)}__ep{episode:05d}.parquet"


def write_record(out_dir: Path, record: EpisodeRecord) -> Path:
    """Write one episode atomically (temporary file, fsync, rename)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = episode_file(out_dir, record.team, record.scenario, record.episode)
    table = pa.Table.from_pylist([record.as_row()], schema=EPISODE_SCHEMA)
    return atomic_write(target, lambda handle: pq.write_table(table, handle))


def finished_keys(out_dir: Path) -> set[tuple[str, str, int]]:
    """(team, scenario, episode) of every complete episode file in ``out_dir``."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return set()
    keys = set()
    for path in out_dir.glob("*.parquet"):
        try:
            row = pq.read_table(path, columns=["team", "scenario", "episode"]).to_pylist()[0]
        except Exception:  # unreadable (should not happen: files are renamed complete)
            continue
        keys.add((row["team"], row["scenario"], int(row["episode"])))
    return keys


def remove_partial_files(out_dir: Path) -> int:
    """Delete temporary files left by a killed run; returns how many. Called
    under the run's lock (``runners.lock.RunLock``), so no live writer owns
    any of them."""
    count = 0
    for path in Path(out_dir).glob(".*.tmp"):
        path.unlink(missing_ok=True)
        count += 1
    return count


def read_results(out_dir: Path) -> pd.DataFrame:
    """All episodes in ``out_dir`` as a DataFrame (EPISODE_SCHEMA columns)."""
    return pd.read_parquet(out_dir, schema=EPISODE_SCHEMA)
