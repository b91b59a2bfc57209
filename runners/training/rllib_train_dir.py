"""The files of a ``capprof train`` output directory: ``train.json`` (the
run's record), ``learning_curve.csv`` (one row per iteration, built from
RLlib's result dict) and the completed checkpoints under ``checkpoints/``
(found, validated for ``--resume``). Saving a checkpoint needs the algorithm
and lives with the training loop in ``capprof.runners.training.rllib_train``.

Part of the library behind ``capprof train``; it never prints.
"""

from __future__ import annotations

import csv
import io
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from capprof.errors import CapprofError
from capprof.io import atomic_write_text, require_space
from capprof.runners.populations.rllib_obs import TRAIN_FILE

CURVE_FILE = "learning_curve.csv"
CHECKPOINTS = "checkpoints"
CHECKPOINT_MARKER = "capprof_checkpoint.json"  # written last: a checkpoint without it is incomplete
# What a run needs free in --out before it starts: KEEP_CHECKPOINTS checkpoints
# plus the one being written and the playable export, each a few MiB for
# capprof's CNN (the shipped populations' modules are 0.2 MiB), with margin.
TRAIN_SPACE_BYTES = 64 << 20
CURVE_COLUMNS = ("iteration", "env_steps", "agent_steps", "episodes", "episode_return_mean",
                 "per_capita_return_mean", "episode_len_mean", "entropy", "policy_loss", "vf_loss",
                 "iteration_seconds", "steps_per_second", "wall_seconds")


# ------------------------------------------------------------ the directory


@dataclass
class Progress:
    """Where a run stands (saved with each checkpoint)."""

    iteration: int = 0
    env_steps: int = 0
    wall_seconds: float = 0.0


def checkpoints(out: Path) -> list[tuple[Progress, Path]]:
    """Complete checkpoints in ``out``, oldest first."""
    found = []
    root = Path(out) / CHECKPOINTS
    if not root.is_dir():
        return found
    for path in root.iterdir():
        marker = path / CHECKPOINT_MARKER
        if path.is_dir() and marker.exists():
            try:
                data = json.loads(marker.read_text())
                found.append((Progress(int(data["iteration"]), int(data["env_steps"]),
                                       float(data["wall_seconds"])), path))
            except (ValueError, KeyError, TypeError):
                continue
    return sorted(found, key=lambda item: (item[0].env_steps, item[0].iteration))


def last_checkpoint(out: Path) -> tuple[Progress, Path] | None:
    found = checkpoints(out)
    return found[-1] if found else None


def check_out(out: Path, resume: bool) -> tuple[Progress, Path] | None:
    """The checkpoint to resume from (None for a fresh run); one-line
    CapprofError for a non-empty ``out`` without ``resume`` or for ``resume``
    where there is nothing to resume."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CapprofError(f"--out {out} is a file; give a directory")
    if not resume:
        # a run that stopped before its first checkpoint left only its record:
        # nothing to resume or to lose, so a new run may start there
        if out.exists() and {p.name for p in out.iterdir()} - {"train.json"}:
            raise CapprofError(f"--out {out} is not empty; choose a new directory, or add --resume to continue "
                               "the training saved in it")
        require_space(out, TRAIN_SPACE_BYTES, "capprof train")
        return None
    found = last_checkpoint(out)
    if found is None:
        raise CapprofError(f"--resume: {out} holds no capprof train checkpoint (no {CHECKPOINTS}/*/{CHECKPOINT_MARKER}); "
                           "drop --resume to start a new run")
    require_space(out, TRAIN_SPACE_BYTES, "capprof train")
    return found


def versions() -> dict:
    from importlib import metadata

    found = {"python": platform.python_version()}
    for dist in ("capprof", "ray", "torch", "dm-meltingpot", "dmlab2d", "numpy"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _read_curve(out: Path, up_to_iteration: int) -> list[dict]:
    path = Path(out) / CURVE_FILE
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [row for row in csv.DictReader(fh) if int(row["iteration"]) <= up_to_iteration]


def _curve_text(rows: list[dict], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CURVE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _write_curve(out: Path, rows: list[dict]) -> None:
    atomic_write_text(Path(out) / CURVE_FILE, _curve_text(rows, header=True))


def _append_curve(out: Path, row: dict) -> None:
    """Add one row; the file is rewritten whole (atomically), so a full disk
    or a kill leaves the curve as it was, never a half row."""
    path = Path(out) / CURVE_FILE
    old = path.read_text() if path.exists() else ""
    atomic_write_text(path, old + _curve_text([row], header=not old))


def read_curve(out: Path):
    """The learning curve of a training directory as a DataFrame."""
    import pandas as pd

    return pd.read_csv(Path(out) / CURVE_FILE)


# ------------------------------------------------------------ results


def _mean(values) -> float:
    values = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _curve_row(result: dict, progress: Progress, n_players: int, seconds: float, steps: int,
               modules: list[str], return_per_player: bool = False) -> dict:
    """One learning-curve row. ``return_per_player``: RLlib's episodes were
    single players' (the vectorised sampler), so the episode return (the sum
    over players, as the multi-agent sampler reports it) is the mean x players."""
    runners = result.get("env_runners", {}) or {}
    learners = result.get("learners", {}) or {}
    ret = float(runners.get("episode_return_mean", float("nan")))
    if return_per_player:
        ret *= n_players
    return {
        "iteration": progress.iteration,
        "env_steps": progress.env_steps,
        "agent_steps": progress.env_steps * n_players,  # every player acts at every step
        "episodes": int(runners.get("num_episodes", 0) or 0) // (n_players if return_per_player else 1),
        "episode_return_mean": round(ret, 4),
        "per_capita_return_mean": round(ret / n_players, 4),
        "episode_len_mean": round(float(runners.get("episode_len_mean", float("nan"))), 1),
        "entropy": round(_mean(learners.get(m, {}).get("entropy") for m in modules), 4),
        "policy_loss": round(_mean(learners.get(m, {}).get("policy_loss") for m in modules), 5),
        "vf_loss": round(_mean(learners.get(m, {}).get("vf_loss") for m in modules), 5),
        "iteration_seconds": round(seconds, 2),
        "steps_per_second": round(steps / seconds, 1) if seconds > 0 else float("nan"),
        "wall_seconds": round(progress.wall_seconds, 1),
    }
