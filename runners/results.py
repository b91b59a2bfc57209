"""The results dataset: one Parquet file per episode in OUT_DIR.

Each file is written under a temporary name (``.*.tmp``, which Parquet
readers skip) and renamed into place, so a killed run leaves only complete
episodes. ``capprof scores OUT_DIR`` and ``pandas.read_parquet(OUT_DIR)`` read
the directory directly. Schema: ``EPISODE_SCHEMA`` and docs/runners.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

EPISODE_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("team", pa.string()),
    ("population", pa.string()),
    ("scenario", pa.string()),
    ("substrate", pa.string()),
    ("suite", pa.string()),
    ("episode", pa.int64()),
    ("seed", pa.int64()),
    ("focal_per_capita_return", pa.float64()),
    ("background_per_capita_return", pa.float64()),
    ("player_returns", pa.list_(pa.float64())),
    ("is_focal", pa.list_(pa.bool_())),
    ("focal_members", pa.list_(pa.string())),
    ("background_members", pa.list_(pa.string())),
    ("steps", pa.int64()),
    ("wall_seconds", pa.float64()),
    ("build_seconds", pa.float64()),
    ("steps_per_second", pa.float64()),
    ("social_welfare", pa.float64()),
    ("gini_focal", pa.float64()),
    ("gini_all", pa.float64()),
    ("depleted_at_step", pa.float64()),
    ("return_series", pa.list_(pa.list_(pa.float64()))),
    ("gini_series", pa.list_(pa.float64())),
    ("series_every", pa.int64()),  # null when no series was recorded
    ("status", pa.string()),
    ("error", pa.string()),
])


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def episode_file(out_dir: Path, team: str, scenario: str, episode: int) -> Path:
    # The team is also stored inside the file; the name only has to be unique
    # and stable, so teams whose names sanitise alike get a short hash.
    import zlib

    tag = f"{_safe(team)[:60]}-{zlib.crc32(team.encode()):08x}"
    return Path(out_dir) / f"{tag}__{_safe(scenario)}__ep{episode:05d}.parquet"


def write_record(out_dir: Path, record: dict) -> Path:
    """Write one episode atomically (temporary file, fsync, rename)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = episode_file(out_dir, record["team"], record["scenario"], record["episode"])
    table = pa.Table.from_pylist([record], schema=EPISODE_SCHEMA)
    tmp = out_dir / f".{target.name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as handle:
        pq.write_table(table, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return target


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
    """Delete temporary files left by a killed run; returns how many."""
    count = 0
    for path in Path(out_dir).glob(".*.tmp"):
        path.unlink(missing_ok=True)
        count += 1
    return count


def read_results(out_dir: Path) -> pd.DataFrame:
    """All episodes in ``out_dir`` as a DataFrame (EPISODE_SCHEMA columns)."""
    return pd.read_parquet(out_dir, schema=EPISODE_SCHEMA)
