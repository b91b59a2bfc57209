"""Comparing submissions with interval estimates (``capprof compare``).

``compare_teams`` returns a ``Comparison`` record whose ``table`` is tidy,
one row per (team, metric):

===========  =====  ==========================================================
column       type   meaning
===========  =====  ==========================================================
team         str    the team the row is about
metric       str    ``mean``, ``median``, ``iqm``, ``rank`` or ``p_improve:B``
value        float  point estimate on the observed scores
ci_low       float  lower end of the stratified-bootstrap percentile interval
ci_high      float  upper end of that interval
===========  =====  ==========================================================

* ``mean``: mean over scenarios of the per-scenario mean over replicates.
* ``median``: median over scenarios of those per-scenario means.
* ``iqm``: interquartile mean of every replicate score.
* ``rank``: 1 = best by ``rank_by`` (default iqm); the interval is the
  percentile interval of the team's rank across bootstrap resamples.
* ``p_improve:B``: probability that a run of this team beats a run of team B
  on a random scenario (``reports.stats.probability_of_improvement``).

Every team is compared on the scenarios **all** chosen teams have; the others
are left out with a note (a team missing a scenario would
otherwise be judged on a different, possibly easier, set).

The bootstrap resamples replicates within each scenario, independently per
team, from a generator seeded by (seed, team name): a team's intervals do not
change when other teams are added or reordered, and equal seeds give equal
tables.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, did_you_mean, note
from capprof.reports import stats

COMPARE_COLUMNS = ("team", "metric", "value", "ci_low", "ci_high")
METRICS = ("mean", "median", "iqm")
DEFAULT_REPS = 2000
CHUNK = 250  # at most this many resamples at once
RANK_DECIMALS = 12
CHUNK_ELEMENTS = 4_000_000  # resamples x rows held at once (memory stays ~100 MB at any table size)


@dataclass(frozen=True)
class Comparison:
    """What ``compare_teams`` found: ``table`` (COMPARE_COLUMNS, one row per
    team and metric), the ``teams`` compared (in the order given, else by
    name) on ``n_scenarios`` shared scenarios, and how: ``reps`` resamples,
    ``seed``, interval ``level``, ranks by ``rank_by``."""

    table: pd.DataFrame
    teams: tuple[str, ...]
    n_scenarios: int
    reps: int
    seed: int
    level: float
    rank_by: str


def _team_rng(seed: int, team: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(team.encode("utf-8"))])


def select_common(scores: pd.DataFrame, teams: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """Keep the chosen teams (all by default) on the scenarios every one of
    them has; returns (rows, teams in the order given or sorted)."""
    known = sorted(scores["team"].unique())
    if teams:
        unknown = [t for t in teams if t not in known]
        if unknown:
            raise CapprofError(
                f'no scores for team "{unknown[0]}"{did_you_mean(unknown[0], known)}; '
                f"teams in this table: {', '.join(known)}"
            )
        teams = list(dict.fromkeys(teams))
    else:
        teams = known
    if len(teams) < 2:
        raise CapprofError(f'compare needs at least two teams; only "{teams[0]}" was given')
    rows = scores[scores["team"].isin(teams)]
    per_team = rows.groupby("team")["scenario"].agg(set)
    common = set.intersection(*per_team.tolist())
    all_scenarios = set(rows["scenario"])
    if not common:
        raise CapprofError(
            "the chosen teams share no scenario, so there is nothing to compare on; "
            "pick teams evaluated on the same scenarios with --teams"
        )
    if len(common) < len(all_scenarios):
        fewest = min(teams, key=lambda t: len(per_team[t]))
        note(f"comparing on the {len(common)} scenario(s) every chosen team has; "
             f"{len(all_scenarios) - len(common)} left out (\"{fewest}\" has only {len(per_team[fewest])})")
    rows = rows[rows["scenario"].isin(common)]
    return rows.sort_values(["team", "scenario", "replicate"]).reset_index(drop=True), teams


def team_arrays(rows: pd.DataFrame, teams: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per team the flat (values, sizes) layout of reports.stats, scenarios
    in sorted order (identical for every team); ``rows`` sorted by team and
    scenario (``select_common``). One pass over the rows."""
    out = {}
    for team, own in rows.groupby("team", sort=False):
        sizes = own.groupby("scenario", sort=True).size().to_numpy()
        out[team] = (own["score"].to_numpy(dtype=float), sizes)
    return {team: out[team] for team in teams}


def _statistics(arrays, counts, codes) -> dict:
    """Per metric and team (and per pair under "poi") one value per row of
    the multiplicity matrices ``counts[team]`` (k, N_team)."""
    found = {m: {} for m in METRICS}
    for t, (values, sizes) in arrays.items():
        means = stats.weighted_scenario_means(counts[t], values, sizes)
        found["mean"][t] = means.mean(axis=1)
        found["median"][t] = np.median(means, axis=1)
        found["iqm"][t] = stats.weighted_iqm(counts[t], values)
    found["poi"] = {(a, b): stats.weighted_probability_of_improvement(counts[a], counts[b], pair)
                    for (a, b), pair in codes.items()}
    return found


def check_options(reps: int, rank_by: str) -> None:
    """Raise CapprofError when ``reps`` is too small for an interval or
    ``rank_by`` is not one of METRICS; returns nothing."""
    if reps < 10:
        raise CapprofError(f"--reps {reps} is too few for a 95% interval; use at least 10 (default {DEFAULT_REPS})")
    if rank_by not in METRICS:
        raise CapprofError(f'cannot rank by "{rank_by}"; use one of {", ".join(METRICS)}')


def _note_single_replicates(arrays, teams: Sequence[str]) -> None:
    """Note the teams with one replicate per scenario (their intervals come
    out too narrow); returns nothing."""
    single = [t for t in teams if arrays[t][1].max() == 1]
    if single:
        note(f"{', '.join(single)} ha{'s' if len(single) == 1 else 've'} one replicate per "
             "scenario, so the bootstrap sees no run-to-run spread there: intervals are narrower than the truth")


def _point_estimates(arrays, teams: Sequence[str], pairs, codes) -> tuple[dict, dict]:
    """Returns (point[metric][team], point_poi[pair]) on the observed scores."""
    # the observed scores are the resample that draws every row once
    ones = {t: np.ones((1, len(v))) for t, (v, _) in arrays.items()}
    point_draws = _statistics(arrays, ones, codes)
    point = {m: {t: float(point_draws[m][t][0]) for t in teams} for m in METRICS}
    point_poi = {p: float(point_draws["poi"][p][0]) for p in pairs}
    return point, point_poi


def _bootstrap_draws(arrays, teams: Sequence[str], pairs, codes, reps: int, seed: int,
                     progress: bool | None) -> tuple[dict, dict]:
    """Returns (draws[metric][team], draws_poi[pair]), each an array of
    ``reps`` stratified-bootstrap values, computed ``chunk`` resamples at a time."""
    from tqdm import tqdm

    draws = {m: {t: np.empty(reps) for t in teams} for m in METRICS}
    draws_poi = {p: np.empty(reps) for p in pairs}
    # one generator per team, so a team's draws do not depend on the others
    rngs = {t: _team_rng(seed, t) for t in teams}
    total = sum(len(v) for v, _ in arrays.values())
    chunk = max(1, min(CHUNK, CHUNK_ELEMENTS // max(1, total)))
    with tqdm(total=reps, desc="bootstrap", unit="rep", disable=(None if progress is None else not progress),
              file=sys.stderr) as bar:
        for start in range(0, reps, chunk):
            k = min(chunk, reps - start)
            counts = {t: stats.multiplicities(stats.stratified_indices(sizes, k, rngs[t]), len(values))
                      for t, (values, sizes) in arrays.items()}
            found = _statistics(arrays, counts, codes)
            for m in METRICS:
                for t in teams:
                    draws[m][t][start:start + k] = found[m][t]
            for p in pairs:
                draws_poi[p][start:start + k] = found["poi"][p]
            bar.update(k)
    return draws, draws_poi


def _ranks(point: dict, draws: dict, teams: Sequence[str], rank_by: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns (rank per team on the observed scores, (reps, teams) ranks per
    resample), 1 = best by ``rank_by``."""
    # aggregates equal to 12 decimals tie (summation order differs by ~1e-16)
    rank_point = stats.rank_descending(np.round(np.array([point[rank_by][t] for t in teams]), RANK_DECIMALS))
    rank_draws = stats.rank_descending(np.round(np.stack([draws[rank_by][t] for t in teams], axis=1), RANK_DECIMALS))
    return rank_point, rank_draws


def _improvement(t: str, other: str, point_poi: dict, draws_poi: dict) -> tuple[float, np.ndarray]:
    """Returns (point, resamples) of P(a run of ``t`` beats a run of ``other``)."""
    if (t, other) in point_poi:
        return point_poi[(t, other)], draws_poi[(t, other)]
    # P(B > A) = 1 - P(A > B): ties count half to each side
    return 1.0 - point_poi[(other, t)], 1.0 - draws_poi[(other, t)]


def _records(teams: Sequence[str], point, draws, ranks, point_poi, draws_poi, level: float) -> list[tuple]:
    """Returns the COMPARE_COLUMNS rows: per team its metrics, its rank,
    then its probability of improvement over every other team."""
    rank_point, rank_draws = ranks
    records = []
    for i, t in enumerate(teams):
        for m in METRICS:
            records.append((t, m, point[m][t], *stats.percentile_interval(draws[m][t], level)))
        records.append((t, "rank", float(rank_point[i]), *stats.percentile_interval(rank_draws[:, i], level)))
        for other in teams:
            if other == t:
                continue
            value, sample = _improvement(t, other, point_poi, draws_poi)
            records.append((t, f"p_improve:{other}", value, *stats.percentile_interval(sample, level)))
    return records


def compare_teams(
    scores: pd.DataFrame,
    teams: Sequence[str] | None = None,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    level: float = 0.95,
    rank_by: str = "iqm",
    progress: bool | None = None,
) -> Comparison:
    """Aggregates, ranks and pairwise probabilities of improvement with
    stratified-bootstrap intervals (``Comparison.table`` has COMPARE_COLUMNS).

    ``scores`` is a (normalised) score table; ``progress=None`` shows a
    progress bar only on a terminal.
    """
    check_options(reps, rank_by)
    rows, teams = select_common(scores, teams)
    arrays = team_arrays(rows, teams)
    _note_single_replicates(arrays, teams)

    # Every statistic is computed from multiplicities (how often each
    # observation was drawn; reports.stats "weighted form"): linear in rows,
    # and equal to resampling the scores themselves (same generator stream).
    pairs = list(combinations(teams, 2))
    codes = {(a, b): stats.pair_codes(*arrays[a], *arrays[b]) for a, b in pairs}
    point, point_poi = _point_estimates(arrays, teams, pairs, codes)
    draws, draws_poi = _bootstrap_draws(arrays, teams, pairs, codes, reps, seed, progress)
    ranks = _ranks(point, draws, teams, rank_by)

    records = _records(teams, point, draws, ranks, point_poi, draws_poi, level)
    table = pd.DataFrame.from_records(records, columns=list(COMPARE_COLUMNS))
    return Comparison(table, tuple(teams), int(rows["scenario"].nunique()), reps, seed, level, rank_by)


def _cell(value: float, low: float, high: float, digits: int = 3) -> str:
    if not np.isfinite(value):
        return "—"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def summary_tables(comparison: Comparison) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two display tables of ``compare_teams`` output: per team the aggregates
    and rank (cells "value [low, high]"), and the probability-of-improvement
    matrix (row team beats column team); teams best-ranked first."""
    result = comparison.table
    keyed = result.set_index(["team", "metric"])
    # Best first: the order a reader scans for.
    ranks = result[result["metric"] == "rank"].set_index("team")["value"]
    teams = sorted(dict.fromkeys(result["team"]), key=lambda t: (ranks.get(t, np.inf), t))
    digits = {"rank": 1}
    aggregates = pd.DataFrame(
        {
            "team": teams,
            **{
                m if m != "rank" else f"rank (by {comparison.rank_by})": [
                    _cell(*keyed.loc[(t, m), ["value", "ci_low", "ci_high"]], digits=digits.get(m, 3)) for t in teams
                ]
                for m in (*METRICS, "rank")
            },
        }
    )
    poi = pd.DataFrame(
        {
            "P(row > column)": teams,
            **{
                other: [
                    "" if other == t else _cell(*keyed.loc[(t, f"p_improve:{other}"), ["value", "ci_low", "ci_high"]], digits=2)
                    for t in teams
                ]
                for other in teams
            },
        }
    )
    return aggregates, poi
