"""Score normalisations and the contest aggregate.

Pure functions over score tables (capprof.scores schema). A normalisation
is two steps, each its own function, so that ``capprof evaluate`` can take
the constants from some rows (a fold's training rows, or anchor teams) and
apply them to others (docs/evaluation.md, "Normalisation without leakage"):

1. ``scale_constants(rows, method)``: per-scenario constants ``low`` and
   ``high`` from the rows given;
2. ``apply_constants(scores, constants)``: s' = (s - low) / (high - low).

``normalise(scores, method)`` does both on the same (whole) table, as the
contest report did; the normalised ``score`` replaces the raw one, which is
kept in ``raw_score``.

Degenerate scenarios: where a recipe's range is zero (every score equal, or
random and exploiter means equal) there is nothing to scale. Those scenarios
are **left out**: ``dropped_scenarios(scores, method)`` names them and
``normalise`` emits one ``capprof.errors.note`` saying so. A constant score
carries no information about any team, and inventing a value (0, 0.5, 1)
would bias every model fitted or evaluated on it. On the published Melting
Pot 2.0 results this drops the three collaborative_cooking ``_2`` scenarios
that score 0.0 everywhere. A table in which *every* scenario is degenerate is
a ``CapprofError`` (one line).

Huge scores (up to the largest double, +-1.8e308) are handled: differences
and means are computed on halved / rescaled values, which cannot overflow,
so no row becomes NaN.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, note

NORMALISATIONS = ("none", "minmax", "random-exploiter", "team-minmax")
# A range counts as zero below this share of the scenario's magnitude
# (max(1, |low|, |high|)): rounding noise, not a difference between teams.
ZERO_RANGE = 1e-12


# ------------------------------------------------------------------ safe arithmetic


def safe_mean(values: pd.Series, by) -> pd.Series:
    """Group means that cannot overflow: mean(x) = c * mean(x / c) with
    c = max |x| over the whole series (c = 1 when every value is within
    1e300), so sums of values near the largest double stay finite."""
    magnitude = float(np.nanmax(np.abs(values.to_numpy(float)))) if len(values) else 0.0
    c = magnitude if magnitude > 1e300 else 1.0
    return (values / c).groupby(by, sort=True).mean() * c


def team_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean score per (team, scenario) over replicates, as a scenario x team
    table (``safe_mean``, so it cannot overflow)."""
    means = safe_mean(scores["score"], [scores["scenario"], scores["team"]])
    return means.unstack("team")


def _span(low: pd.Series, high: pd.Series) -> pd.Series:
    """high - low, or +inf where that difference overflows (reported as
    such, never NaN): computed as 2 * (high/2 - low/2), exact for doubles."""
    return 2.0 * (high / 2.0 - low / 2.0)


# ------------------------------------------------------------------ constants


def _anchor_teams(teams: set, random_team: str, exploiter_teams: Sequence[str] | None) -> list[str]:
    if exploiter_teams is None:
        exploiter_teams = sorted(t for t in teams if str(t).startswith("exploiter"))
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
    return list(exploiter_teams)


def scale_constants(scores: pd.DataFrame, method: str, random_team: str = "random",
                    exploiter_teams: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-scenario normalising constants from the rows given: a DataFrame
    indexed by scenario with columns ``low`` and ``high``.

    * ``minmax``: low = min_r s_r, high = max_r s_r over every row (all teams,
      all replicates) of the scenario (contest report appendix A.4);
    * ``team-minmax``: low = min_t mean_t, high = max_t mean_t over per-team
      means (the contest's later recipe, anchored on team means);
    * ``random-exploiter``: low = mean_random, high = max_e mean_e over the
      exploiter teams (default: every team whose name starts with
      "exploiter"); the contest starter kit's first recipe;
    * ``none``: low = 0, high = 1 (the identity).
    """
    if method not in NORMALISATIONS:
        raise CapprofError(f'unknown normalisation "{method}"; use one of {", ".join(NORMALISATIONS)}')
    scenarios = sorted(scores["scenario"].unique())
    if method == "none":
        return pd.DataFrame({"low": 0.0, "high": 1.0}, index=pd.Index(scenarios, name="scenario"))
    if method == "minmax":
        grouped = scores.groupby("scenario")["score"]
        low, high = grouped.min(), grouped.max()
    elif method == "team-minmax":
        means = team_means(scores)
        low, high = means.min(axis=1), means.max(axis=1)
    else:
        exploiters = _anchor_teams(set(scores["team"]), random_team, exploiter_teams)
        means = team_means(scores)
        low, high = means[random_team], means[exploiters].max(axis=1)
        missing = sorted(set(low[low.isna()].index) | set(high[high.isna()].index))
        if missing:
            raise CapprofError(
                f'scenario "{missing[0]}" lacks random or exploiter scores ({len(missing)} such); '
                "random-exploiter normalisation needs both on every scenario"
            )
    out = pd.DataFrame({"low": low.astype(float), "high": high.astype(float)})
    out.index.name = "scenario"
    return out


def floor_spans(constants: pd.DataFrame, substrate_of: pd.Series, share: float) -> pd.DataFrame:
    """Raise small ranges: high' = low + max(high - low, share * median_S),
    where median_S is the median range (high - low) over the scenarios of the
    same substrate in ``constants`` (``substrate_of``: scenario -> substrate).
    A scenario whose range is near zero among many with real ranges (e.g. every
    training team scores ~0 on clean_up_1, one held-out team 93) then has a
    range on its substrate's scale, instead of one that turns a held-out value
    into 1.5e5 (issue 9). ``share = 0`` leaves the constants unchanged."""
    out = constants.copy()
    span = _span(out["low"], out["high"])
    substrate = out.index.to_series().map(substrate_of)
    median = span.groupby(substrate).transform("median")
    floored = np.maximum(span, share * median)
    out["high"] = out["low"] + floored
    return out


def degenerate(constants: pd.DataFrame) -> list[str]:
    """Scenarios whose range is zero: high - low <= ZERO_RANGE * max(1, |low|, |high|)."""
    span = _span(constants["low"], constants["high"])
    magnitude = np.maximum(1.0, np.maximum(constants["low"].abs(), constants["high"].abs()))
    return sorted(constants.index[~(span > ZERO_RANGE * magnitude)])


def apply_constants(scores: pd.DataFrame, constants: pd.DataFrame, clip: bool = False) -> pd.DataFrame:
    """s' = (s - low[scenario]) / (high[scenario] - low[scenario]) for every
    row whose scenario has constants and a non-zero range (``degenerate``);
    other rows are left out. With ``clip``, s' is then clipped to [0, 1].
    Computed as (s/2 - low/2) / (high/2 - low/2), which cannot overflow for
    finite scores. The raw value is kept in ``raw_score``."""
    usable = constants.drop(index=degenerate(constants))
    out = scores[scores["scenario"].isin(usable.index)].copy()
    low = out["scenario"].map(usable["low"]).astype(float)
    high = out["scenario"].map(usable["high"]).astype(float)
    raw = out["score"].astype(float)
    value = (raw / 2.0 - low / 2.0) / (high / 2.0 - low / 2.0)
    if clip:
        value = value.clip(0.0, 1.0)
    if "raw_score" not in out.columns:
        out["raw_score"] = raw
    out["score"] = value
    return out.reset_index(drop=True)


# ------------------------------------------------------------------ whole-table recipes


def dropped_scenarios(scores: pd.DataFrame, method: str) -> list[str]:
    """Scenarios ``normalise(scores, method)`` leaves out: those whose range
    under the recipe is zero (``degenerate(scale_constants(scores, method))``);
    none for ``none``."""
    if method == "none":
        return []
    return degenerate(scale_constants(scores, method))


def _scale_whole(scores: pd.DataFrame, method: str, **kwargs) -> pd.DataFrame:
    constants = scale_constants(scores, method, **kwargs)
    dropped = degenerate(constants)
    if len(dropped) == len(constants):
        raise CapprofError(
            f"every scenario has a zero {method} range (each scores the same for every row), so nothing "
            "can be normalised; check the score column, or use --normalise none"
        )
    if dropped:
        shown = ", ".join(dropped[:5]) + (" ..." if len(dropped) > 5 else "")
        why = "random and best exploiter means equal" if method == "random-exploiter" else "every score equal"
        note(f"{len(dropped)} scenario(s) have a zero {method} range and are left out ({why}): {shown}",
             stacklevel=3)
    return apply_constants(scores, constants)


def minmax(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-scenario min-max over all rows (all teams, all replicates):
    s' = (s - min_s) / (max_s - min_s), so each scenario spans exactly [0, 1].
    Contest report appendix A.4 ("we min-max scale these scores ... between 0 and 1")."""
    return _scale_whole(scores, "minmax")


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
    return _scale_whole(scores, "random-exploiter", random_team=random_team, exploiter_teams=exploiter_teams)


def team_minmax(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-scenario min-max over per-team means:
    s' = (s - min_t mean_t,s) / (max_t mean_t,s - min_t mean_t,s),
    so the worst team's mean maps to 0 and the best team's mean to 1 (the
    contest's later recipe, anchored on baseline means). Replicates can leave [0, 1]."""
    return _scale_whole(scores, "team-minmax")


def normalise(scores: pd.DataFrame, method: str) -> pd.DataFrame:
    """Apply the named normalisation (one of NORMALISATIONS) to the whole
    table: constants and scaled rows come from the same rows. ``none`` keeps
    the scores (and copies them to ``raw_score``). Sets no DataFrame.attrs:
    left-out scenarios are a note and ``dropped_scenarios(scores, method)``."""
    if method not in NORMALISATIONS:
        raise CapprofError(f'unknown normalisation "{method}"; use one of {", ".join(NORMALISATIONS)}')
    if method == "none":
        out = scores.copy()
        out["raw_score"] = out["score"]
        return out
    recipes = {"minmax": minmax, "random-exploiter": random_exploiter, "team-minmax": team_minmax}
    return recipes[method](scores)


def aggregate(scores: pd.DataFrame, by: str = "overall") -> pd.DataFrame:
    """Per-team aggregates, returned as columns team, level, score.

    * ``scenario``: mean over replicates, per (team, scenario).
    * ``substrate``: mean over that substrate's scenario means.
    * ``overall``: the contest aggregate, the equal-weight mean of the
      substrate means: CI(f) = 1/|S| sum_S 1/|C_S| sum_{c in C_S} mean_r s_{f,c,r},
      so substrates with many scenarios do not dominate.

    Means are ``safe_mean`` (no overflow on scores near the largest double).
    """
    if by not in ("scenario", "substrate", "overall"):
        raise CapprofError(f'unknown level "{by}"; use scenario, substrate or overall')
    per_scenario = safe_mean(scores["score"], [scores["team"], scores["substrate"], scores["scenario"]]
                             ).rename("score").reset_index()
    if by == "scenario":
        out = per_scenario.rename(columns={"scenario": "level"})[["team", "level", "score"]]
    else:
        per_substrate = safe_mean(per_scenario["score"], [per_scenario["team"], per_scenario["substrate"]]
                                  ).rename("score").reset_index()
        if by == "substrate":
            out = per_substrate.rename(columns={"substrate": "level"})[["team", "level", "score"]]
        else:
            out = safe_mean(per_substrate["score"], per_substrate["team"]).rename("score").reset_index()
            out.insert(1, "level", "overall")
    return out.sort_values(["team", "level"]).reset_index(drop=True)
