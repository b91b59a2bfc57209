"""Score normalisations and the contest aggregate.

Every function takes and returns a score table (capprof.scores schema); the
normalised ``score`` replaces the raw one and the raw value is kept in
``raw_score``. Each states its formula.

Degenerate scenarios: where a recipe's range is zero (every score equal, or
random and exploiter means equal) there is nothing to scale. Those scenarios
are **left out**, named in a notice on stderr and listed in
``result.attrs["dropped_scenarios"]``: a constant score carries no information
about any team, and inventing a value (0, 0.5, 1) would bias every model that
is fitted or evaluated on it. On the published Melting Pot 2.0 results this
drops the three collaborative_cooking ``_2`` scenarios that score 0.0 everywhere.
"""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np
import pandas as pd

from capprof.errors import CapprofError

NORMALISATIONS = ("none", "minmax", "random-exploiter", "team-minmax")


def _scale(scores: pd.DataFrame, low: pd.Series, high: pd.Series, recipe: str) -> pd.DataFrame:
    """score' = (score - low[scenario]) / (high[scenario] - low[scenario]),
    leaving out scenarios where high == low."""
    span = high - low
    degenerate = sorted(span.index[~(np.abs(span) > 1e-12)])
    out = scores[~scores["scenario"].isin(degenerate)].copy()
    out["raw_score"] = out["score"]
    lo = out["scenario"].map(low)
    out["score"] = (out["score"] - lo) / out["scenario"].map(span)
    out = out.reset_index(drop=True)
    out.attrs["dropped_scenarios"] = degenerate
    out.attrs["normalisation"] = recipe
    if degenerate:
        shown = ", ".join(degenerate[:5]) + (" ..." if len(degenerate) > 5 else "")
        print(
            f"capprof: note: {len(degenerate)} scenario(s) have a zero {recipe} range and are left out "
            f"(every score equal): {shown}",
            file=sys.stderr,
        )
    return out


def minmax(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-scenario min-max over all rows (all teams, all replicates):
    s' = (s - min_s) / (max_s - min_s), so each scenario spans exactly [0, 1].
    Contest report appendix A.4 ("we min-max scale these scores ... between 0 and 1")."""
    grouped = scores.groupby("scenario")["score"]
    return _scale(scores, grouped.min(), grouped.max(), "minmax")


def team_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean score per (team, scenario) over replicates, as a scenario x team table."""
    return scores.groupby(["scenario", "team"])["score"].mean().unstack("team")


def random_exploiter(
    scores: pd.DataFrame,
    random_team: str = "random",
    exploiter_teams: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Random -> 0, exploiter -> 1, per scenario, from means over replicates:
    s' = (s - mean_random_s) / (max_e mean_e,s - mean_random_s),
    where e ranges over the exploiter teams (default: every team whose name
    starts with "exploiter"; the best one is the upper anchor). The Melting Pot
    contest starter kit's first recipe. Scores can leave [0, 1]."""
    teams = set(scores["team"])
    if exploiter_teams is None:
        exploiter_teams = sorted(t for t in teams if t.startswith("exploiter"))
    if random_team not in teams:
        raise CapprofError(
            f'random-exploiter normalisation needs a "{random_team}" team in the scores; '
            "add random-policy episodes or use --normalise minmax"
        )
    if not exploiter_teams or not set(exploiter_teams) <= teams:
        raise CapprofError(
            "random-exploiter normalisation needs exploiter team(s) (names starting with "
            '"exploiter"); add them or use --normalise minmax'
        )
    means = team_means(scores)
    low = means[random_team]
    high = means[list(exploiter_teams)].max(axis=1)
    missing = sorted(set(scores["scenario"]) - set(low.dropna().index) | set(scores["scenario"]) - set(high.dropna().index))
    if missing:
        raise CapprofError(
            f'scenario "{missing[0]}" lacks random or exploiter scores ({len(missing)} such); '
            "random-exploiter normalisation needs both on every scenario"
        )
    return _scale(scores, low, high, "random-exploiter")


def team_minmax(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-scenario min-max over per-team means:
    s' = (s - min_t mean_t,s) / (max_t mean_t,s - min_t mean_t,s),
    so the worst team's mean maps to 0 and the best team's mean to 1 (the
    contest's later recipe, anchored on baseline means). Replicates can leave [0, 1]."""
    means = team_means(scores)
    return _scale(scores, means.min(axis=1), means.max(axis=1), "team-minmax")


def normalise(scores: pd.DataFrame, method: str) -> pd.DataFrame:
    """Apply the named normalisation (one of NORMALISATIONS)."""
    if method == "none":
        out = scores.copy()
        out["raw_score"] = out["score"]
        out.attrs["dropped_scenarios"] = []
        out.attrs["normalisation"] = "none"
        return out
    recipes = {"minmax": minmax, "random-exploiter": random_exploiter, "team-minmax": team_minmax}
    if method not in recipes:
        raise CapprofError(f'unknown normalisation "{method}"; use one of {", ".join(NORMALISATIONS)}')
    return recipes[method](scores)


def aggregate(scores: pd.DataFrame, by: str = "overall") -> pd.DataFrame:
    """Per-team aggregates, returned as columns team, level, score.

    * ``scenario``: mean over replicates, per (team, scenario).
    * ``substrate``: mean over that substrate's scenario means.
    * ``overall``: the contest aggregate, the equal-weight mean of the
      substrate means: CI(f) = 1/|S| sum_S 1/|C_S| sum_{c in C_S} mean_r s_{f,c,r},
      so substrates with many scenarios do not dominate.
    """
    if by not in ("scenario", "substrate", "overall"):
        raise CapprofError(f'unknown level "{by}"; use scenario, substrate or overall')
    per_scenario = scores.groupby(["team", "substrate", "scenario"], as_index=False)["score"].mean()
    if by == "scenario":
        out = per_scenario.rename(columns={"scenario": "level"})[["team", "level", "score"]]
    else:
        per_substrate = per_scenario.groupby(["team", "substrate"], as_index=False)["score"].mean()
        if by == "substrate":
            out = per_substrate.rename(columns={"substrate": "level"})[["team", "level", "score"]]
        else:
            out = per_substrate.groupby("team", as_index=False)["score"].mean()
            out.insert(1, "level", "overall")
    return out.sort_values(["team", "level"]).reset_index(drop=True)
