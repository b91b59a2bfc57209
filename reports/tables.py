"""Tidy tables behind the report: small pure functions over DataFrames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capprof.profiling.evaluate import mean_interval

EVALUATE_COLUMNS = ("model", "split", "repeat", "team", "mse")
PROFILE_COLUMNS = ("team", "ability", "mean", "hdi_low", "hdi_high")
TIMESERIES_COLUMNS = ("team", "scenario", "episode", "step", "player", "cumulative_return")
POOLED_TEAM = "ALL"


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
    # Splits and models keep the evaluate table's order; the pooled row comes
    # first, then teams by name.
    split_order = {s: i for i, s in enumerate(dict.fromkeys(frame["split"]))}
    model_order = {m: i for i, m in enumerate(dict.fromkeys(frame["model"]))}
    out["_split"], out["_model"] = out["split"].map(split_order), out["model"].map(model_order)
    out["_pooled"] = (out["team"] != POOLED_TEAM).astype(int)
    keys = ["_split", "_pooled", "team", "_model"]
    return out.sort_values(keys).drop(columns=["_split", "_model", "_pooled"]).reset_index(drop=True)


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
    split_order = {s: i for i, s in enumerate(dict.fromkeys(out["split"]))}
    model_order = {m: i for i, m in enumerate(dict.fromkeys(out["model"]))}
    keys = pd.DataFrame({"s": out["split"].map(split_order), "p": (out["team"] != POOLED_TEAM).astype(int),
                         "t": out["team"], "m": out["model"].map(model_order)})
    return out.loc[keys.sort_values(["s", "p", "t", "m"]).index].reset_index(drop=True)


def series_from_episodes(episodes: pd.DataFrame) -> pd.DataFrame:
    """Runner episode records with a ``return_series`` column (one list of
    every player's cumulative return per sample) -> the long TIMESERIES_COLUMNS
    table. Sample k (0-based) is at step (k + 1) * series_every when the
    records carry ``series_every``; otherwise ``step`` is the sample number
    k + 1 and ``attrs["step_unit"]`` says so."""
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
    out = pd.DataFrame(rows, columns=list(TIMESERIES_COLUMNS))
    out.attrs["step_unit"] = "step" if has_every else "sample"
    return out


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
