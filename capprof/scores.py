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
``mapla`` column), CSV (comma, semicolon or tab delimited; ``.csv.gz``),
Parquet or Feather files in this schema, and Parquet datasets (directories)
written by ``capprof run`` (``capprof.readers``). Validation names every
problem in one line each: missing, non-numeric, NaN, infinite or huge
(beyond +-``MAX_ABS_SCORE``) scores by their rows, bad replicates,
duplicates, and scenarios on another substrate than the catalog or a custom
demands file says.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, did_you_mean, note
from capprof.io import atomic_write, write_problem
from capprof.readers import read_table

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

    def fetch(out) -> None:
        with urllib.request.urlopen(url, timeout=30) as response:
            while chunk := response.read(1 << 16):
                out.write(chunk)

    try:
        atomic_write(target, fetch)  # a killed or failed download never leaves a truncated file
    except (urllib.error.URLError, OSError) as exc:
        problem = write_problem(exc, target, fix="pass a local copy of the file instead")
        if problem is not None:  # the cache's disk, not the network
            raise CapprofError(problem) from None
        reason = getattr(exc, "reason", exc)
        raise CapprofError(
            f"could not download {url} ({reason}); pass a local copy of the file instead"
        ) from None
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


def failed_episodes(raw: pd.DataFrame) -> int:
    """How many episode records (``capprof run`` output) failed and carry no
    score: every record whose ``status`` is not ``ok``."""
    if "status" not in raw.columns:
        return 0
    return int((raw["status"] != "ok").sum())


def from_runs(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Episode records written by ``capprof run`` -> score schema.

    Failed episodes carry no score: they are left out with a note (never
    silently); ``failed_episodes(raw)`` counts them.
    """
    table = raw
    failed = failed_episodes(raw)
    if "status" in raw.columns:
        table = raw[raw["status"] == "ok"]
        if failed:
            note(
                f"{failed} failed episode(s) in {source} have no score and are left out "
                "(see their `status` and `error` columns)"
            )
    if failed and table.empty:
        raise CapprofError(
            f"{source}: every one of the {failed} episode(s) failed, so there are no scores; "
            "see their `error` column (pandas.read_parquet) and fix the policy or scenario"
        )
    missing = [c for c in ("team", "scenario", "substrate") if c not in table.columns]
    if missing:
        raise CapprofError(
            f"{source}: episode records lack column(s) {', '.join(missing)}; "
            "this directory was not written by `capprof run`"
        )
    return pd.DataFrame(
        {
            "team": table["team"],
            "scenario": table["scenario"],
            "substrate": table["substrate"],
            "replicate": table["episode"],
            "score": table["focal_per_capita_return"],
            "background_score": table.get("background_per_capita_return", np.nan),
            "source": table.get("run_id", source),
        }
    )


def load_scores(path_or_url: str | os.PathLike, validate: bool = True, **validate_kwargs) -> pd.DataFrame:
    """Read a score table from a path or URL into the score schema."""
    text = str(path_or_url)
    if not text.strip():
        raise CapprofError("the score table path is empty; give a file, a `capprof run` directory or a URL")
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
    lines = not path.is_dir() and path.suffix.lower() in (".csv", ".txt", ".gz")
    if "mapla" in raw.columns:
        table = from_published(raw, source)
    elif "focal_per_capita_return" in raw.columns and "episode" in raw.columns:
        table = from_runs(raw, source)
        lines = False
    else:
        table = raw.copy()
        if "source" not in table.columns:
            table["source"] = source
        if "background_score" not in table.columns:
            table["background_score"] = np.nan
    if validate:
        validate_kwargs.setdefault("row_names", "line" if lines else None)
        table = validate_scores(table, where=str(path), **validate_kwargs)
    return table


# No Melting Pot return comes near this; a larger score is a unit or export
# error, and sums and ranges of numbers near the float limit overflow to inf.
MAX_ABS_SCORE = 1e15
# Replicates beyond this cannot be held exactly as numbers.
MAX_REPLICATE = 2**53


def _row_names(table: pd.DataFrame, mask, row_names: str | None, limit: int = 3) -> str:
    """'line 4: team "a" on "clean_up_0"; line 9: ...; and 3 more' for the rows in ``mask``."""
    rows = table.loc[mask]
    parts = []
    for label, row in rows.head(limit).iterrows():
        who = f'team "{row["team"]}" on "{row["scenario"]}"'
        parts.append(f"{row_names} {label}: {who}" if row_names else who)
    more = len(rows) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(numbers as float with NaN for missing, mask of values that are not
    numbers). Text is parsed; empty text is missing; true/false, dates and
    other non-numeric types are not numbers."""
    kind = values.dtype.kind
    if kind in "iuf":
        return values.astype(float), pd.Series(False, index=values.index)
    if kind in "bmMc" or isinstance(values.dtype, pd.CategoricalDtype) and values.cat.categories.dtype.kind not in "OUT":
        return pd.Series(np.nan, index=values.index), values.notna()
    text = values.astype(object)
    is_bool = text.map(lambda v: isinstance(v, (bool, np.bool_)))
    blank = text.map(lambda v: isinstance(v, str) and not v.strip())
    spelled_nan = text.map(lambda v: isinstance(v, str) and v.strip().lower() in ("nan", "+nan", "-nan"))
    text = text.where(~blank & ~is_bool & ~spelled_nan, None)
    numbers = pd.to_numeric(text, errors="coerce").astype(float)
    not_numbers = (numbers.isna() & text.notna()) | is_bool
    # "nan" and "inf" spelled out are numbers to pandas; they are kept as NaN / inf
    return numbers.where(~not_numbers), not_numbers


def validate_scores(
    table: pd.DataFrame,
    known_scenarios=None,
    min_teams: int = 1,
    where: str = "scores",
    row_names: str | None = None,
) -> pd.DataFrame:
    """Check a table against the score schema and return it with clean dtypes.

    Raises CapprofError with one line per problem. ``known_scenarios`` (catalog
    plus custom demands: names, or a mapping scenario -> substrate) makes
    unknown scenario names an error. A scenario the catalog (or the mapping)
    places on another substrate is always an error. ``row_names`` (e.g.
    ``"line"``) names problem rows by their index; otherwise by team and
    scenario.
    """
    checked = _Checked(table.copy(), where, row_names, known_scenarios, min_teams)
    problems = [problem for check in _SCORE_CHECKS for problem in check(checked)]
    if problems:
        raise CapprofError("\n".join(problems))
    return checked.table[list(SCORE_COLUMNS)].reset_index(drop=True)


@dataclass
class _Checked:
    """A score table under validation: a copy whose columns the checks clean
    in turn (names to text, scores and replicates to numbers), and what a
    later check needs to know from an earlier one."""

    table: pd.DataFrame
    where: str
    row_names: str | None
    known_scenarios: object = None
    min_teams: int = 1
    # rows with an empty name: reported once, then left out of the scenario checks
    blank: pd.Series | None = None
    # repeated keys mean nothing until every replicate is a whole number
    replicates_ok: bool = False

    def rows(self, mask, limit: int = 3, table: pd.DataFrame | None = None) -> str:
        return _row_names(self.table if table is None else table, mask, self.row_names, limit)


def _check_columns(checked: _Checked) -> list[str]:
    """Every required column, by its exact name; nothing else can be checked without them."""
    table = checked.table
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        spelled = {str(c).strip().lower().replace(" ", "_").replace("-", "_"): str(c) for c in table.columns}
        renames = [f'"{spelled[c]}" to "{c}"' for c in missing if c in spelled]
        hint = f" (column names are exact: rename {', '.join(renames)})" if renames else ""
        raise CapprofError(
            f"{checked.where}: missing column(s) {', '.join(missing)}{hint}; a score table needs "
            f"{', '.join(REQUIRED_COLUMNS)} (docs/schema.md)"
        )
    return []


def _check_rows(checked: _Checked) -> list[str]:
    if len(checked.table) == 0:
        raise CapprofError(f"{checked.where}: the score table has no rows; run some episodes or pick another file")
    return []


def _check_names(checked: _Checked) -> list[str]:
    """No empty team, scenario or substrate; all three become text."""
    table, problems = checked.table, []
    checked.blank = pd.Series(False, index=table.index)
    for col in ("team", "scenario", "substrate"):
        empty = table[col].isna() | table[col].astype(str).str.strip().eq("")
        checked.blank |= empty
        if empty.any():
            problems.append(
                f"{checked.where}: {int(empty.sum())} row(s) have an empty `{col}` "
                f"({checked.rows(empty, table=table.assign(**{col: '?'}))}); fill it in"
            )
        table[col] = table[col].astype(str)
    return problems


def _check_scores(checked: _Checked) -> list[str]:
    """Every score a finite number of sensible size; the column becomes float."""
    table, where, problems = checked.table, checked.where, []
    score, bad_type = _numbers(table["score"])
    if bad_type.any():
        example = table.loc[bad_type, "score"].iloc[0]
        problems.append(
            f"{where}: {int(bad_type.sum())} `score` value(s) are not numbers (e.g. \"{example}\" in "
            f"{checked.rows(bad_type, 1)}); scores must be numeric"
        )
    missing_score = score.isna() & ~bad_type
    if missing_score.any():
        problems.append(
            f"{where}: {int(missing_score.sum())} score(s) are empty or NaN "
            f"({checked.rows(missing_score)}); drop or fix those rows"
        )
    nonfinite = np.isinf(score)
    if nonfinite.any():
        problems.append(
            f"{where}: {int(nonfinite.sum())} score(s) are infinite ({checked.rows(nonfinite)}); "
            "drop or fix those rows"
        )
    huge = np.isfinite(score) & (score.abs() > MAX_ABS_SCORE)
    if huge.any():
        problems.append(
            f"{where}: {int(huge.sum())} score(s) are beyond +-{MAX_ABS_SCORE:.0e} "
            f"({checked.rows(huge)}); such numbers overflow means and ranges: "
            "fix the rows or rescale the scores"
        )
    table["score"] = score
    return problems


def _check_replicates(checked: _Checked) -> list[str]:
    """Replicates are whole numbers from 0 to MAX_REPLICATE; the column becomes int64."""
    table = checked.table
    replicate, bad_type = _numbers(table["replicate"])
    bad = bad_type | replicate.isna() | (replicate < 0) | (replicate != replicate.round()) | (replicate > MAX_REPLICATE)
    checked.replicates_ok = not bad.any()
    if checked.replicates_ok:
        table["replicate"] = replicate.astype("int64")
        return []
    example = table.loc[bad, "replicate"].iloc[0]
    return [
        f"{checked.where}: {int(bad.sum())} `replicate` value(s) are not non-negative integers "
        f"(e.g. \"{example}\" in {checked.rows(bad, 1)}); "
        "number episodes or training runs 0, 1, 2, ..."
    ]


def _check_optional_columns(checked: _Checked) -> list[str]:
    """``background_score``: numbers of sensible size or NaN (all NaN when
    absent); ``source``: text (the table's name when absent)."""
    table, where, problems = checked.table, checked.where, []
    if "background_score" in table.columns:
        bg, bad_bg = _numbers(table["background_score"])
        if bad_bg.any():
            problems.append(f"{where}: `background_score` has non-numeric values; leave it empty or give numbers")
        bad_bg_value = np.isinf(bg) | (bg.abs() > MAX_ABS_SCORE)
        if bad_bg_value.any():
            problems.append(
                f"{where}: {int(bad_bg_value.sum())} `background_score` value(s) are infinite or beyond "
                f"+-{MAX_ABS_SCORE:.0e} ({checked.rows(bad_bg_value)}); leave them empty or fix them"
            )
        table["background_score"] = bg
    else:
        table["background_score"] = np.nan
    if "source" not in table.columns:
        table["source"] = where
    table["source"] = table["source"].astype(str)
    return problems


def _check_duplicates(checked: _Checked) -> list[str]:
    """One row per (team, scenario, replicate)."""
    if not checked.replicates_ok:
        return []
    table = checked.table
    dupes = table.duplicated(list(KEY_COLUMNS), keep=False)
    if not dupes.any():
        return []
    row = table.loc[dupes].iloc[0]
    return [
        f"{checked.where}: {int(dupes.sum())} rows repeat a (team, scenario, replicate), e.g. "
        f"(\"{row['team']}\", \"{row['scenario']}\", {row['replicate']}); keep one row per replicate"
    ]


def _check_substrates(checked: _Checked) -> list[str]:
    """Each scenario on one substrate, the one the catalog or the custom
    demands give it."""
    named = checked.table[~checked.blank]  # an empty name is reported once, not again here
    expected = _expected_substrates(checked.known_scenarios)
    problems = []
    per_scenario = named.groupby("scenario")["substrate"].unique()
    several = per_scenario[(per_scenario.map(len) > 1) & ~per_scenario.index.isin(list(expected))]
    if len(several):
        s = several.index[0]
        listed = ", ".join(f'"{x}"' for x in sorted(several.iloc[0]))
        problems.append(
            f"{checked.where}: scenario \"{s}\" is listed under more than one substrate ({listed}); "
            "fix the `substrate` column"
        )
    return problems + _substrate_contradictions(named, expected, checked.where)


def _check_known_scenarios(checked: _Checked) -> list[str]:
    """Every scenario in ``known_scenarios``, when it is given."""
    if checked.known_scenarios is None:
        return []
    known = set(checked.known_scenarios)
    unknown = sorted(set(checked.table[~checked.blank]["scenario"]) - known)
    if not unknown:
        return []
    return [
        f"{checked.where}: {len(unknown)} scenario(s) are not in the catalog, e.g. \"{unknown[0]}\""
        f"{did_you_mean(unknown[0], known)}; describe them with --demands FILE (docs/demands.md)"
    ]


def _check_team_count(checked: _Checked) -> list[str]:
    """At least ``min_teams`` teams (comparing needs two)."""
    table = checked.table
    n_teams = table["team"].nunique()
    if n_teams >= checked.min_teams:
        return []
    return [
        f"{checked.where}: only {n_teams} team(s) (\"{table['team'].iloc[0]}\"); comparing and profiling need "
        f"at least {checked.min_teams}: add another team's scores"
    ]


# The checks validate_scores runs, in order. The first two raise (nothing
# else can be checked without them); the rest each return their problems,
# and a later check relies on the columns an earlier one cleaned.
_SCORE_CHECKS = (
    _check_columns,
    _check_rows,
    _check_names,
    _check_scores,
    _check_replicates,
    _check_optional_columns,
    _check_duplicates,
    _check_substrates,
    _check_known_scenarios,
    _check_team_count,
)


def _expected_substrates(known_scenarios) -> dict[str, str]:
    """Scenario -> substrate: the catalog's, updated by ``known_scenarios``
    when it is a mapping (custom demands)."""
    from collections.abc import Mapping

    from capprof.tagging.catalog import load_catalog

    catalog = load_catalog()
    expected = dict(zip(catalog["scenario"], catalog["substrate"]))
    if isinstance(known_scenarios, Mapping):
        expected.update({str(k): str(v) for k, v in known_scenarios.items()})
    return expected


def _substrate_contradictions(table: pd.DataFrame, expected: dict[str, str], where: str) -> list[str]:
    """One line if a scenario runs on another substrate than the table says
    (per the catalog or a custom demands file): the per-substrate aggregates
    would silently be wrong."""
    pairs = table[["scenario", "substrate"]].drop_duplicates()
    wrong = pairs[[expected.get(sc, sub) != sub for sc, sub in zip(pairs["scenario"], pairs["substrate"])]]
    if wrong.empty:
        return []
    scenario, given = wrong.iloc[0]["scenario"], wrong.iloc[0]["substrate"]
    more = f" ({len(wrong)} scenario(s) in all)" if len(wrong) > 1 else ""
    return [
        f'{where}: scenario "{scenario}" runs on "{expected[scenario]}" (catalog or demands file), but the table '
        f'says "{given}"{more}; fix the `substrate` column, or, if it really is another scenario, give it a new '
        "name and describe it in a custom demands file (--demands, docs/demands.md)"
    ]
