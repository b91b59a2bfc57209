"""Tidy tables behind the report: small pure functions over DataFrames.

Nothing here knows about HTML; every function takes tables and returns a
table (or a small frozen record), so each is testable on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from capprof.profiling.evaluate import mean_interval

PROFILE_COLUMNS = ("team", "ability", "mean", "hdi_low", "hdi_high")
TIMESERIES_COLUMNS = ("team", "scenario", "episode", "step", "player", "cumulative_return")
POOLED_TEAM = "ALL"
RHAT_MAX, ESS_MIN = 1.01, 400
DEMAND_GROUP_ORDER = ("substrate", "mode", "behaviour")


# ------------------------------------------------------------ profiles


def profile_frame(profiles: pd.DataFrame) -> pd.DataFrame:
    """The abilities table with team and ability as strings."""
    return profiles.assign(team=profiles["team"].astype(str), ability=profiles["ability"].astype(str))


def hdi_level(profiles: pd.DataFrame) -> float | None:
    """The HDI probability the abilities table states (``hdi_prob``), when it
    states exactly one; None otherwise."""
    if "hdi_prob" not in profiles.columns:
        return None
    values = pd.to_numeric(profiles["hdi_prob"], errors="coerce")
    return float(values.iloc[0]) if values.nunique() == 1 else None


def ability_groups(abilities: Iterable[str]) -> dict[str, list[str]]:
    """Abilities by demand group (substrate, mode, behaviour, in that order),
    each sorted; empty groups are left out (tagging.demands.demand_groups)."""
    from capprof.tagging.demands import demand_groups

    groups: dict[str, list[str]] = {g: [] for g in DEMAND_GROUP_ORDER}
    for ability, group in demand_groups(sorted(set(abilities))).items():
        groups.setdefault(group, []).append(ability)
    return {g: a for g, a in groups.items() if a}


# ------------------------------------------------------------ diagnostics


@dataclass(frozen=True)
class DiagnosticFlags:
    """Which cells of a diagnostics table fail a check: ``cells`` holds
    (row position, column) pairs, ``problems`` one phrase per failed check
    ("2 model(s) with R-hat above 1.01")."""

    cells: frozenset[tuple[int, str]]
    problems: tuple[str, ...]


def diagnostic_flags(diagnostics: pd.DataFrame, rhat_max: float = RHAT_MAX, ess_min: float = ESS_MIN
                     ) -> DiagnosticFlags:
    """Flag max_rhat > rhat_max, min_ess_bulk < ess_min and divergences > 0
    where those columns exist."""
    checks = {
        "max_rhat": (lambda v: v > rhat_max, f"R-hat above {rhat_max}"),
        "min_ess_bulk": (lambda v: v < ess_min, f"bulk ESS below {ess_min}"),
        "divergences": (lambda v: v > 0, "divergent transitions"),
    }
    cells, problems = set(), []
    for column, (bad, what) in checks.items():
        if column not in diagnostics.columns:
            continue
        failed = bad(pd.to_numeric(diagnostics[column], errors="coerce")).to_numpy()
        cells |= {(int(i), column) for i in np.flatnonzero(failed)}
        if failed.any():
            problems.append(f"{int(failed.sum())} model(s) with {what}")
    return DiagnosticFlags(frozenset(cells), tuple(problems))


# ------------------------------------------------------------ predictive comparison


def predictive_table(evaluate: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The predictive comparison (rows teams, columns models) in tidy form.

    Columns: split, team, model, repeats, mse, ci_low, ci_high, fit_s.
    Within a repeat, rows of the same (model, split, team) (e.g. folds) pool
    into one MSE weighted by test size: sum_f n_f mse_f / sum_f n_f. Across
    repeats, ``mse`` is the mean and (ci_low, ci_high) its Student-t interval
    bounded below by 0 (profiling.evaluate.mean_interval), NaN with a single
    repeat.
    """
    if "repeat" not in evaluate.columns and {"mse_low", "mse_high"} <= set(evaluate.columns):
        return _summarised_predictive(evaluate)
    frame = evaluate.copy()
    frame["team"] = frame["team"].astype(str)
    frame["split"] = frame["split"].astype(str)
    frame["model"] = frame["model"].astype(str)
    weight = pd.to_numeric(frame["n_test"], errors="coerce") if "n_test" in frame else pd.Series(1.0, index=frame.index)
    frame["_w"] = weight.fillna(1.0).clip(lower=1e-12)
    frame["_wmse"] = frame["_w"] * pd.to_numeric(frame["mse"], errors="coerce")
    per_repeat = frame.groupby(["split", "team", "model", "repeat"], sort=False).agg(
        wmse=("_wmse", "sum"), w=("_w", "sum"))
    per_repeat["mse"] = per_repeat["wmse"] / per_repeat["w"]
    records = []
    for (split, team, model), group in per_repeat.groupby(level=["split", "team", "model"], sort=False):
        mean, low, high = mean_interval(group["mse"].to_numpy(), level, lower=0.0)
        records.append((split, team, model, len(group), mean, low, high))
    out = pd.DataFrame.from_records(records, columns=["split", "team", "model", "repeats", "mse", "ci_low", "ci_high"])
    if "fit_s" in frame:
        fit = frame.groupby("model")["fit_s"].mean()
        out["fit_s"] = out["model"].map(fit)
    else:
        out["fit_s"] = np.nan
    return _predictive_order(out, frame)


def _summarised_predictive(summary: pd.DataFrame) -> pd.DataFrame:
    """The same table from an already summarised evaluation (one row per
    model, split, team with mse, mse_low, mse_high, repeats)."""
    out = summary.rename(columns={"mse_low": "ci_low", "mse_high": "ci_high"}).copy()
    for column in ("team", "split", "model"):
        out[column] = out[column].astype(str)
    if "repeats" not in out:
        out["repeats"] = np.nan
    if "fit_s" not in out:
        out["fit_s"] = np.nan
    out = out[["split", "team", "model", "repeats", "mse", "ci_low", "ci_high", "fit_s"]]
    return _predictive_order(out, out)


def _predictive_order(table: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """Splits and models keep the evaluate table's (``source``) order; the
    pooled row comes first, then teams by name."""
    split_order = {s: i for i, s in enumerate(dict.fromkeys(source["split"]))}
    model_order = {m: i for i, m in enumerate(dict.fromkeys(source["model"]))}
    keys = pd.DataFrame({"s": table["split"].map(split_order), "p": (table["team"] != POOLED_TEAM).astype(int),
                         "t": table["team"], "m": table["model"].map(model_order)})
    return table.loc[keys.sort_values(["s", "p", "t", "m"]).index].reset_index(drop=True)


@dataclass(frozen=True)
class PredictiveBlock:
    """One split of the predictive comparison laid out for display: models
    (columns) and teams (rows) in order, ``cells`` the tidy rows indexed by
    (team, model), ``best`` the lowest-MSE model per team, ``fit_s`` the mean
    fit time per model (NaN where unknown), ``repeats`` the most repeats of
    any cell (NaN when the evaluation did not say)."""

    split: str
    models: tuple[str, ...]
    teams: tuple[str, ...]
    cells: pd.DataFrame
    best: dict[str, str]
    fit_s: pd.Series
    repeats: float


def predictive_blocks(tidy: pd.DataFrame) -> list[PredictiveBlock]:
    """``predictive_table`` output split per split, in its order."""
    blocks = []
    for split, block in tidy.groupby("split", sort=False):
        models = tuple(dict.fromkeys(block["model"]))
        teams = tuple(dict.fromkeys(block["team"]))
        cells = block.set_index(["team", "model"])
        best = {}
        for team in teams:
            present = [m for m in models if (team, m) in cells.index]
            if present:
                best[team] = min(present, key=lambda m: cells.loc[(team, m), "mse"])
        fit = block.groupby("model", sort=False)["fit_s"].first()
        blocks.append(PredictiveBlock(str(split), models, teams, cells, best, fit, float(block["repeats"].max())))
    return blocks


# ------------------------------------------------------------ runner records


def ok_episodes(episodes: pd.DataFrame) -> pd.DataFrame:
    """The episodes that finished (``status == "ok"``; all when no status)."""
    return episodes[episodes["status"] == "ok"] if "status" in episodes.columns else episodes


def gini_summary(episodes: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The finished episodes with team as str and the stored Gini ``columns``
    as numbers, and per team their mean and median (columns team,
    "<column> mean", "<column> median", ...)."""
    episodes = ok_episodes(episodes).copy()
    episodes["team"] = episodes["team"].astype(str)
    for c in columns:
        episodes[c] = pd.to_numeric(episodes[c], errors="coerce")
    summary = episodes.groupby("team", as_index=False)[list(columns)].agg(["mean", "median"])
    summary.columns = ["team"] + [f"{c} {s}" for c in columns for s in ("mean", "median")]
    return episodes, summary


def depletion_summary(episodes: pd.DataFrame) -> pd.DataFrame:
    """Per (team, scenario) with at least one depleted episode: episodes,
    share depleted, mean ``depleted_at_step`` of those that were."""
    episodes = ok_episodes(episodes)
    depleted = pd.to_numeric(episodes["depleted_at_step"], errors="coerce")
    summary = (
        episodes.assign(team=episodes["team"].astype(str), depleted=depleted.notna(), at=depleted)
        .groupby(["team", "scenario"], as_index=False)
        .agg(episodes=("depleted", "size"), depleted=("depleted", "mean"), depleted_at_step=("at", "mean"))
    )
    return summary[summary["depleted"] > 0]


@dataclass(frozen=True)
class SampledReturns:
    """Players' cumulative returns over episodes in the long
    TIMESERIES_COLUMNS form, and what ``step`` counts: ``"step"`` (environment
    steps) or ``"sample"`` (sample number, when the records do not say how
    many steps apart the samples are)."""

    table: pd.DataFrame
    unit: str


def series_from_episodes(episodes: pd.DataFrame) -> SampledReturns:
    """Runner episode records with a ``return_series`` column (one list of
    every player's cumulative return per sample) -> the long TIMESERIES_COLUMNS
    table. Sample k (0-based) is at step (k + 1) * series_every when the
    records carry ``series_every``; otherwise ``step`` is the sample number
    k + 1 and the unit says so."""
    has_every = "series_every" in episodes.columns
    rows = []
    for record in episodes.itertuples(index=False):
        series = getattr(record, "return_series")
        if series is None or len(series) == 0:
            continue
        every = getattr(record, "series_every") if has_every else 1
        every = 1 if every is None or not np.isfinite(every) else int(every)
        for k, returns in enumerate(series):
            step = (k + 1) * every
            rows.extend((record.team, record.scenario, record.episode, step, p, float(v))
                        for p, v in enumerate(returns))
    return SampledReturns(pd.DataFrame(rows, columns=list(TIMESERIES_COLUMNS)), "step" if has_every else "sample")


def focal_background_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (team, scenario) mean focal and background per-capita return over
    replicates, for rows where the background return was measured.
    Columns: team, scenario, substrate, focal, background, episodes."""
    measured = scores[scores["background_score"].notna()]
    return (
        measured.groupby(["team", "scenario", "substrate"], as_index=False)
        .agg(focal=("score", "mean"), background=("background_score", "mean"), episodes=("score", "size"))
        .sort_values(["team", "scenario"])
        .reset_index(drop=True)
    )


def focal_background_summary(means: pd.DataFrame) -> pd.DataFrame:
    """Per team: scenarios, mean focal and background return over scenarios,
    and ``focal_ahead``, the share of scenarios where focal > background
    (who wins at whose expense). Columns: team, scenarios, focal, background,
    focal_ahead."""
    return (
        means.assign(ahead=means["focal"] > means["background"])
        .groupby("team", as_index=False, sort=False)
        .agg(scenarios=("scenario", "size"), focal=("focal", "mean"), background=("background", "mean"),
             focal_ahead=("ahead", "mean"))
    )


def gini(values: np.ndarray) -> float:
    """Gini coefficient: G = sum_i sum_j |x_i - x_j| / (2 n^2 x_bar).
    0 when everyone has the same, (n-1)/n when one player has everything.
    NaN when the mean is not positive (G is undefined for such returns)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0 or values.mean() <= 0:
        return float("nan")
    return float(np.abs(values[:, None] - values[None, :]).sum() / (2 * n * n * values.mean()))


def timeseries_curves(timeseries: pd.DataFrame) -> pd.DataFrame:
    """From per-player cumulative returns sampled every few steps to curves
    per (team, scenario, step), averaged over episodes:

    * ``collective``: sum over players of cumulative return;
    * ``rate``: collective return earned per step since the previous sample,
      (C_t - C_{t'}) / (t - t'); it falls towards 0 as a shared resource is
      depleted;
    * ``gini``: Gini coefficient of the players' cumulative returns at t.
    """
    per_episode = (
        timeseries.groupby(["team", "scenario", "episode", "step"], sort=True)["cumulative_return"]
        .agg(collective="sum", gini=gini)
        .reset_index()
    )
    keys = ["team", "scenario", "episode"]
    per_episode["rate"] = (
        per_episode.groupby(keys)["collective"].diff() / per_episode.groupby(keys)["step"].diff()
    )
    first = per_episode.groupby(keys)["step"].transform("min")
    at_first = (per_episode["step"] == first) & (per_episode["step"] > 0)
    per_episode.loc[at_first, "rate"] = per_episode.loc[at_first, "collective"] / per_episode.loc[at_first, "step"]
    return (
        per_episode.groupby(["team", "scenario", "step"], as_index=False, sort=False)[["collective", "rate", "gini"]]
        .mean()
    )
