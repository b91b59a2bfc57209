"""Score tables: the tidy format that crosses every boundary after tagging.

Schema (docs/schema.md), one row per (team, scenario, replicate):

================  ======  =====================================================
column            type    meaning
================  ======  =====================================================
team              str     the focal population / MAPLA / submission
scenario          str     scenario name (catalog or custom demands)
substrate         str     the scenario's substrate
replicate         int     episode number or training run, >= 0
score             float   focal per-capita return (finite)
background_score  float   background per-capita return; NaN when not measured
source            str     where the row came from (file name, run id)
================  ======  =====================================================

Loaders accept the published Melting Pot 2.0 results (a feather file with a
``mapla`` column), CSV or Parquet files in this schema, and Parquet datasets
(directories) written by ``capprof run``.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, did_you_mean

SCORE_COLUMNS = ("team", "scenario", "substrate", "replicate", "score", "background_score", "source")
REQUIRED_COLUMNS = ("team", "scenario", "substrate", "replicate", "score")
KEY_COLUMNS = ("team", "scenario", "replicate")

PUBLISHED_URL = "https://storage.googleapis.com/dm-meltingpot/meltingpot-results-2.1.1.feather"
PUBLISHED_NAME = "meltingpot-results-2.1.1.feather"
PUBLISHED_COLUMNS = ("scenario", "substrate", "mapla", "training_run", "focal_per_capita_return")


def cache_dir() -> Path:
    """Where downloads are cached: $CAPPROF_CACHE or ~/.cache/capprof."""
    return Path(os.environ.get("CAPPROF_CACHE", Path.home() / ".cache" / "capprof"))


def _download(url: str) -> Path:
    target = cache_dir() / url.rstrip("/").rsplit("/", 1)[-1]
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 16):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise CapprofError(
            f"could not download {url} ({reason}); pass a local copy of the file instead"
        ) from None
    partial.replace(target)  # atomic: a killed download never leaves a truncated file
    return target


def from_published(raw: pd.DataFrame, source: str = PUBLISHED_NAME) -> pd.DataFrame:
    """Published Melting Pot results -> score schema (team = mapla,
    replicate = training_run, score = focal_per_capita_return)."""
    missing = [c for c in PUBLISHED_COLUMNS if c not in raw.columns]
    if missing:
        raise CapprofError(f"{source}: published results lack column(s) {', '.join(missing)}")
    return pd.DataFrame(
        {
            "team": raw["mapla"].astype(str),
            "scenario": raw["scenario"].astype(str),
            "substrate": raw["substrate"].astype(str),
            "replicate": raw["training_run"],
            "score": raw["focal_per_capita_return"],
            "background_score": np.nan,
            "source": source,
        }
    )


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, Parquet (file or directory) or Feather table; unreadable
    files raise CapprofError naming the file."""
    suffix = path.suffix.lower()
    try:
        if path.is_dir() or suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".feather":
            return pd.read_feather(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CapprofError(f"{path}: not a readable table ({str(exc).splitlines()[0]})") from None
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on bad files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CapprofError(f"{path}: not a readable table ({first})") from None
    raise CapprofError(f"{path}: unknown file type; use .csv, .parquet, .feather or a Parquet directory")


def from_runs(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Episode records written by ``capprof run`` -> score schema.

    Failed episodes carry no score: they are left out with a notice on stderr
    (never silently), and the count is kept in ``attrs['failed_episodes']``.
    """
    table = raw
    failed = 0
    if "status" in raw.columns:
        ok = raw["status"] == "ok"
        failed = int((~ok).sum())
        table = raw[ok]
        if failed:
            print(
                f"capprof: note: {failed} failed episode(s) in {source} have no score and are left out "
                "(see their `status` and `error` columns)",
                file=sys.stderr,
            )
    out = pd.DataFrame(
        {
            "team": table["team"].astype(str),
            "scenario": table["scenario"].astype(str),
            "substrate": table["substrate"].astype(str),
            "replicate": table["episode"],
            "score": table["focal_per_capita_return"],
            "background_score": table.get("background_per_capita_return", np.nan),
            "source": table.get("run_id", source),
        }
    )
    out.attrs["failed_episodes"] = failed
    return out


def load_scores(path_or_url: str | os.PathLike, validate: bool = True, **validate_kwargs) -> pd.DataFrame:
    """Read a score table from a path or URL into the score schema."""
    text = str(path_or_url)
    if text.startswith(("http://", "https://")):
        path = _download(text)
    else:
        path = Path(text)
        if not path.exists():
            raise CapprofError(
                f"score file {path} does not exist; check the path (the published Melting Pot results "
                f"also load from their URL, {PUBLISHED_URL})"
            )
    raw = read_table(path)
    source = path.name
    if "mapla" in raw.columns:
        table = from_published(raw, source)
    elif "focal_per_capita_return" in raw.columns and "episode" in raw.columns:
        table = from_runs(raw, source)
    else:
        table = raw.copy()
        if "source" not in table.columns:
            table["source"] = source
        if "background_score" not in table.columns:
            table["background_score"] = np.nan
    if validate:
        table = validate_scores(table, where=str(path), **validate_kwargs)
    return table


def validate_scores(
    table: pd.DataFrame,
    known_scenarios=None,
    min_teams: int = 1,
    where: str = "scores",
) -> pd.DataFrame:
    """Check a table against the score schema and return it with clean dtypes.

    Raises CapprofError with one line per problem. ``known_scenarios`` (catalog
    plus custom demands) makes unknown scenario names an error.
    """
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise CapprofError(
            f"{where}: missing column(s) {', '.join(missing)}; a score table needs "
            f"{', '.join(REQUIRED_COLUMNS)} (docs/schema.md)"
        )
    if len(table) == 0:
        raise CapprofError(f"{where}: the score table has no rows; run some episodes or pick another file")
    table = table.copy()
    for col in ("team", "scenario", "substrate"):
        if table[col].isna().any():
            n = int(table[col].isna().sum())
            problems.append(f"{where}: {n} row(s) have an empty `{col}`; fill it in")
        table[col] = table[col].astype(str)
    score = pd.to_numeric(table["score"], errors="coerce")
    bad_type = score.isna() & table["score"].notna()
    if bad_type.any():
        example = table.loc[bad_type, "score"].iloc[0]
        problems.append(
            f"{where}: {int(bad_type.sum())} `score` value(s) are not numbers (e.g. \"{example}\"); "
            "scores must be numeric"
        )
    nonfinite = (~np.isfinite(score)) & ~bad_type
    if nonfinite.any():
        row = table.loc[nonfinite].iloc[0]
        problems.append(
            f"{where}: {int(nonfinite.sum())} score(s) are NaN or infinite (e.g. team \"{row['team']}\" "
            f"on \"{row['scenario']}\"); drop or fix those rows"
        )
    table["score"] = score.astype(float)
    replicate = pd.to_numeric(table["replicate"], errors="coerce")
    bad_rep = replicate.isna() | (replicate < 0) | (replicate != replicate.round())
    if bad_rep.any():
        example = table.loc[bad_rep, "replicate"].iloc[0]
        problems.append(
            f"{where}: {int(bad_rep.sum())} `replicate` value(s) are not non-negative integers "
            f"(e.g. \"{example}\"); number episodes or training runs 0, 1, 2, ..."
        )
    else:
        table["replicate"] = replicate.astype(int)
    if "background_score" in table.columns:
        bg = pd.to_numeric(table["background_score"], errors="coerce")
        if (bg.isna() & table["background_score"].notna()).any():
            problems.append(f"{where}: `background_score` has non-numeric values; leave it empty or give numbers")
        table["background_score"] = bg.astype(float)
    else:
        table["background_score"] = np.nan
    if "source" not in table.columns:
        table["source"] = where
    if not bad_rep.any():
        dupes = table.duplicated(list(KEY_COLUMNS), keep=False)
        if dupes.any():
            row = table.loc[dupes].iloc[0]
            problems.append(
                f"{where}: {int(dupes.sum())} rows repeat a (team, scenario, replicate), e.g. "
                f"(\"{row['team']}\", \"{row['scenario']}\", {row['replicate']}); keep one row per replicate"
            )
    per_scenario = table.groupby("scenario")["substrate"].nunique()
    if (per_scenario > 1).any():
        s = per_scenario[per_scenario > 1].index[0]
        problems.append(f"{where}: scenario \"{s}\" is listed under more than one substrate; fix the `substrate` column")
    if known_scenarios is not None:
        known = set(known_scenarios)
        unknown = sorted(set(table["scenario"]) - known)
        if unknown:
            problems.append(
                f"{where}: {len(unknown)} scenario(s) are not in the catalog, e.g. \"{unknown[0]}\""
                f"{did_you_mean(unknown[0], known)}; describe them with --demands FILE (docs/demands.md)"
            )
    n_teams = table["team"].nunique()
    if n_teams < min_teams:
        problems.append(
            f"{where}: only {n_teams} team(s) (\"{table['team'].iloc[0]}\"); comparing and profiling need "
            f"at least {min_teams}: add another team's scores"
        )
    if problems:
        raise CapprofError("\n".join(problems))
    return table[list(SCORE_COLUMNS)].reset_index(drop=True)
