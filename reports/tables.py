"""Tidy tables behind the report: small pure functions over DataFrames.

Nothing here knows about HTML; every function takes tables and returns a
table (or a small frozen record), so each is testable on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from capprof.profiling.constants import POOLED_TEAM, RHAT_MAX
from capprof.inequality import gini
from capprof.tagging.constants import DEMAND_GROUPS, SETTING_GROUPS

PROFILE_COLUMNS = ("team", "ability", "mean", "hdi_low", "hdi_high")
TIMESERIES_COLUMNS = ("team", "scenario", "episode", "step", "player", "cumulative_return")
PREDICTIVE_COLUMNS = ("split", "team", "model", "repeats", "mse", "ci_low", "ci_high", "fit_s", "flag")
GINI_KEYS = ("team", "scenario", "episode", "step")  # one sample of one episode
ESS_MIN = 400  # bulk effective sample size below which a fit is flagged (Vehtari et al. 2021)


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


def unobserved_abilities(abilities: pd.DataFrame) -> list[str]:
    """Abilities (index) of one team whose ``cells`` count is 0, sorted;
    empty when the table has no ``cells`` column (older profiles)."""
    if "cells" not in abilities.columns:
        return []
    cells = pd.to_numeric(abilities["cells"], errors="coerce")
    return sorted(str(a) for a in abilities.index[cells == 0])


def ability_groups(abilities: Iterable[str]) -> dict[str, list[str]]:
    """Abilities by demand group (substrate, family, mode, behaviour, in that order),
    each sorted; empty groups are left out (tagging.demands.demand_groups)."""
    from capprof.tagging.demands import demand_groups

    groups: dict[str, list[str]] = {g: [] for g in DEMAND_GROUPS}
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
    """Flag max_rhat > rhat_max, min_ess_bulk < ess_min, divergences > 0 and
    ppc_disagreements > 0 where those columns exist."""
    checks = {
        "max_rhat": (lambda v: v > rhat_max, f"R-hat above {rhat_max}"),
        "min_ess_bulk": (lambda v: v < ess_min, f"bulk ESS below {ess_min}"),
        "divergences": (lambda v: v > 0, "divergent transitions"),
        "ppc_disagreements": (lambda v: v > 0, "posterior predictive checks that disagree"),
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


@dataclass(frozen=True)
class PredictiveChecks:
    """Posterior predictive checks (capprof.profiling.checks.ppc_table) split
    for display: ``shares`` (floor and ceiling share: check, observed,
    replicated, low, high, agrees), ``ks`` (the PIT's KS distance and
    p-value: check, observed, agrees), ``bins`` (PIT histogram: lo, hi,
    observed, expected, low, high, agrees)."""

    shares: pd.DataFrame
    ks: pd.DataFrame
    bins: pd.DataFrame


def predictive_checks(table: pd.DataFrame) -> PredictiveChecks:
    """``ppc_table`` output -> PredictiveChecks (PIT bins are the rows named
    "PIT bin [lo, hi)")."""
    checks = table["check"].astype(str)
    shares = table[checks.isin(["floor share", "ceiling share"])].reset_index(drop=True)
    ks = table[checks.str.startswith("PIT KS")][["check", "observed", "agrees"]].reset_index(drop=True)
    bins = table[checks.str.startswith("PIT bin")]
    edges = bins["check"].str.extract(r"\[\s*([-\d.]+)\s*,\s*([-\d.]+)\s*\)").astype(float)
    bins = pd.DataFrame({"lo": edges[0].to_numpy(), "hi": edges[1].to_numpy(),
                         "observed": bins["observed"].to_numpy(), "expected": bins["replicated"].to_numpy(),
                         "low": bins["low"].to_numpy(), "high": bins["high"].to_numpy(),
                         "agrees": bins["agrees"].to_numpy(dtype=bool)})
    return PredictiveChecks(shares, ks, bins)


# ------------------------------------------------------------ predictive comparison


def predictive_table(evaluate: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The predictive comparison (rows teams, columns models) in tidy form.

    Columns PREDICTIVE_COLUMNS: split, team, model, repeats, mse, ci_low,
    ci_high, fit_s, flag (why a cell has no MSE: evaluate leaves per-team
    rows with too few test cells without one). ``evaluate`` is a per-repeat
    table (``capprof evaluate --out``) or an already summarised one (with
    mse_low, mse_high: ``--summary``, or a saved evaluation's summary), shown
    as it is. A per-repeat table is pooled per repeat
    (``pool_repeats``) and summarised as ``profiling.evaluate.summarise``
    does: ``mse`` the mean over repeats and (ci_low, ci_high) its Student-t
    interval bounded below by 0, NaN with a single repeat. ``fit_s`` is the
    model's mean fit time over the whole table.
    """
    if "repeat" not in evaluate.columns and {"mse_low", "mse_high"} <= set(evaluate.columns):
        return _summarised_predictive(evaluate)
    from capprof.profiling.evaluate import summarise

    pooled = pool_repeats(evaluate)
    summary = summarise(pooled, level)
    summary["fit_s"] = summary["model"].map(pooled.groupby("model")["fit_s"].mean())
    return _summarised_predictive(summary, order=pooled)


def pool_repeats(evaluate: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, split, repeat, team) of a per-repeat evaluate
    table whose repeats may span several rows (e.g. folds): their MSEs pool
    weighted by test size, sum_f n_f mse_f / sum_f n_f (a row without an MSE
    weighs nothing; none at all gives NaN); n_test is summed, fit_s averaged,
    flag the first one given. Columns model, split, repeat, team, n_test,
    mse, fit_s, flag; names as text."""
    frame = evaluate.copy()
    for column in ("team", "split", "model"):
        frame[column] = frame[column].astype(str)
    mse = pd.to_numeric(frame["mse"], errors="coerce")
    n_test = pd.to_numeric(frame["n_test"], errors="coerce") if "n_test" in frame else pd.Series(1.0, index=frame.index)
    frame["_n"] = n_test.fillna(1.0)
    frame["_w"] = frame["_n"].clip(lower=1e-12).where(mse.notna(), 0.0)
    frame["_wmse"] = frame["_w"] * mse
    frame["fit_s"] = pd.to_numeric(frame["fit_s"], errors="coerce") if "fit_s" in frame else np.nan
    frame["flag"] = frame["flag"].fillna("").astype(str) if "flag" in frame else ""
    grouped = frame.groupby(["model", "split", "repeat", "team"], sort=False)
    sums = grouped[["_wmse", "_w", "_n"]].sum(min_count=1)
    out = pd.DataFrame({"n_test": sums["_n"], "mse": sums["_wmse"] / sums["_w"], "fit_s": grouped["fit_s"].mean(),
                        "flag": grouped["flag"].agg(lambda flags: next((f for f in flags if f), ""))})
    return out.reset_index()


def _summarised_predictive(summary: pd.DataFrame, order: pd.DataFrame | None = None) -> pd.DataFrame:
    """The same table from an already summarised evaluation (one row per
    model, split, team with mse, mse_low, mse_high, repeats); splits and
    models in their order in ``order`` (default: ``summary``)."""
    out = summary.rename(columns={"mse_low": "ci_low", "mse_high": "ci_high"}).copy()
    for column in ("team", "split", "model"):
        out[column] = out[column].astype(str)
    if "repeats" not in out:
        out["repeats"] = np.nan
    if "fit_s" not in out:
        out["fit_s"] = np.nan
    out["flag"] = _flags(summary, out)
    out = out[list(PREDICTIVE_COLUMNS)]
    return _predictive_order(out, out if order is None else order)


def _flags(source: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """Per row of ``table`` the first non-empty ``flag`` of ``source`` for
    its (split, team, model): why that cell has no estimate ('' if none)."""
    if "flag" not in source.columns:
        return [""] * len(table)
    flags = source.assign(flag=source["flag"].fillna("").astype(str))
    flags = flags[flags["flag"] != ""]
    first = {(str(s), str(t), str(m)): f for s, t, m, f in
             flags[["split", "team", "model", "flag"]].itertuples(index=False)}
    return [first.get(key, "") for key in table[["split", "team", "model"]].itertuples(index=False, name=None)]


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
            present = [m for m in models if (team, m) in cells.index and np.isfinite(cells.loc[(team, m), "mse"])]
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
    TIMESERIES_COLUMNS form; what ``step`` counts: ``"step"`` (environment
    steps) or ``"sample"`` (sample number, when the records do not say how
    many steps apart the samples are); and ``gini``, the Gini coefficient the
    runner stored for each sample (columns team, scenario, episode, step,
    gini), or None when the records do not carry it for every sample."""

    table: pd.DataFrame
    unit: str
    gini: pd.DataFrame | None = None


def series_from_episodes(episodes: pd.DataFrame) -> SampledReturns:
    """Runner episode records with a ``return_series`` column (one list of
    every player's cumulative return per sample) -> the long TIMESERIES_COLUMNS
    table. Sample k (0-based) is at step (k + 1) * series_every when the
    records carry ``series_every``; otherwise ``step`` is the sample number
    k + 1 and the unit says so. The records' ``gini_series`` (one Gini per
    sample) comes along when every record has one value per sample."""
    has_every = "series_every" in episodes.columns
    has_gini = "gini_series" in episodes.columns
    rows, ginis = [], []
    for record in episodes.itertuples(index=False):
        series = getattr(record, "return_series")
        if series is None or len(series) == 0:
            continue
        every = getattr(record, "series_every") if has_every else 1
        every = 1 if every is None or not np.isfinite(every) else int(every)
        stored = getattr(record, "gini_series") if has_gini else None
        if stored is None or len(stored) != len(series):
            has_gini = False
        for k, returns in enumerate(series):
            step = (k + 1) * every
            rows.extend((record.team, record.scenario, record.episode, step, p, float(v))
                        for p, v in enumerate(returns))
            if has_gini:
                ginis.append((record.team, record.scenario, record.episode, step, float(stored[k])))
    per_sample = pd.DataFrame(ginis, columns=[*GINI_KEYS, "gini"]) if has_gini and ginis else None
    return SampledReturns(pd.DataFrame(rows, columns=list(TIMESERIES_COLUMNS)), "step" if has_every else "sample",
                          per_sample)


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


def timeseries_curves(timeseries: pd.DataFrame, gini_per_sample: pd.DataFrame | None = None) -> pd.DataFrame:
    """From per-player cumulative returns sampled every few steps to curves
    per (team, scenario, step), averaged over episodes:

    * ``collective``: sum over players of cumulative return;
    * ``rate``: collective return earned per step since the previous sample,
      (C_t - C_{t'}) / (t - t'); it falls towards 0 as a shared resource is
      depleted;
    * ``gini``: Gini coefficient of the players' cumulative returns at t:
      ``gini_per_sample`` (GINI_KEYS + gini, as the runner stored it) when
      given, else computed here with the runner's own function
      (capprof.inequality.gini: 0 when every player has the same).
    """
    samples = timeseries.groupby(list(GINI_KEYS), sort=True)["cumulative_return"]
    per_episode = samples.agg(collective="sum").reset_index()
    if gini_per_sample is None:
        per_episode["gini"] = samples.agg(gini).to_numpy()
    else:
        per_episode = per_episode.merge(gini_per_sample, on=list(GINI_KEYS), how="left")
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


# ------------------------------------------------------------ the summary


STANDOUT_COLUMNS = ("team", "ability", "group", "mean", "hdi_low", "hdi_high", "others", "n_others", "lead",
                    "lead_low", "lead_high", "clear")


def standouts(profiles: pd.DataFrame, contrasts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every (team, ability) measured for the team and for at least one other
    team, with ``others`` (the other measured teams' mean of posterior
    means; ``n_others`` of them), ``lead`` = mean - others and ``clear`` (the team's HDI lies
    wholly above or below ``others``); sorted by team, then lead descending.
    Substrate and family abilities are left out when other groups exist
    (``SETTING_GROUPS``): what a team is good at is read from behaviour and
    mode demands (a substrate ability mostly says how that substrate is
    scored). An ability whose ``cells`` is 0
    for a team is its prior, not a finding: left out for that team.
    With ``contrasts`` (``Profile.contrasts()``: the lead as a posterior
    contrast, draw by draw, with its HDI) ``lead``, ``lead_low``,
    ``lead_high`` and ``clear`` (the contrast's HDI excludes 0) come from
    it; without, ``lead_low``/``lead_high`` are NaN and ``clear`` is the
    rougher test above. Columns STANDOUT_COLUMNS."""
    from capprof.tagging.demands import demand_groups

    frame = profile_frame(profiles).drop_duplicates(["team", "ability"]).copy()
    frame["group"] = frame["ability"].map(demand_groups(sorted(frame["ability"].unique())))
    setting = frame["group"].isin(SETTING_GROUPS)
    if (~setting).any():
        frame = frame[~setting]
    if "cells" in frame.columns:
        frame = frame[~(pd.to_numeric(frame["cells"], errors="coerce") == 0)]
    totals = frame.groupby("ability")["mean"].agg(["sum", "count"])
    count = frame["ability"].map(totals["count"])
    frame = frame[count > 1].copy()
    count = count[count > 1]
    frame["others"] = (frame["ability"].map(totals["sum"]) - frame["mean"]) / (count - 1)
    frame["n_others"] = (count - 1).astype(int)
    frame["lead"] = frame["mean"] - frame["others"]
    frame["clear"] = (frame["hdi_low"] > frame["others"]) | (frame["hdi_high"] < frame["others"])
    frame["lead_low"] = frame["lead_high"] = np.nan
    if contrasts is not None and not contrasts.empty:
        # the posterior contrast replaces the difference of means where it has the (team, ability)
        frame = frame.set_index(["team", "ability"])
        frame.update(contrasts.set_index(["team", "ability"])[["lead", "lead_low", "lead_high", "clear"]])
        frame = frame.reset_index().astype({"clear": bool})
    frame = frame.sort_values(["team", "lead"], ascending=[True, False])
    return frame[list(STANDOUT_COLUMNS)].reset_index(drop=True)


@dataclass(frozen=True)
class Calibration:
    """Coverage of one model's predictive intervals on held-out cells:
    ``coverage`` the share of ``n_cells`` cells inside their ``level``
    interval, (``low``, ``high``) its 95% Wilson interval, ``verdict``
    "calibrated" (``level`` inside it), "too narrow" or "too wide"."""

    model: str
    split: str
    level: float
    coverage: float
    n_cells: int
    low: float
    high: float
    verdict: str


def wilson_interval(share: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial share from ``n`` trials."""
    from scipy.stats import norm

    if n <= 0:
        return (np.nan, np.nan)
    z = float(norm.ppf(0.5 + level / 2))
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def calibrations(evaluate: pd.DataFrame, default_level: float) -> list[Calibration]:
    """Per (model, split) with a ``coverage`` on the pooled rows of an
    evaluate table (per-repeat: pooled over folds weighted by ``n_test`` and
    averaged over repeats; summarised: as given), its Calibration. The
    nominal level is ``interval_level`` where the table has it, else
    ``default_level`` (the predictors' INTERVAL_LEVEL). Empty when the
    table has no coverage."""
    if "coverage" not in evaluate.columns:
        return []
    frame = evaluate[evaluate["team"].astype(str) == POOLED_TEAM].copy()
    frame["coverage"] = pd.to_numeric(frame["coverage"], errors="coerce")
    frame = frame[frame["coverage"].notna()]
    n_column = "n_test" if "n_test" in frame.columns else ("n_cells" if "n_cells" in frame.columns else None)
    frame["_n"] = pd.to_numeric(frame[n_column], errors="coerce").fillna(0.0) if n_column else 0.0
    found = []
    for (model, split), rows in frame.groupby(["model", "split"], sort=False):
        level = (pd.to_numeric(rows["interval_level"], errors="coerce").dropna()
                 if "interval_level" in rows.columns else pd.Series(dtype=float))
        level = float(level.iloc[0]) if len(level) else default_level
        if "repeat" in rows.columns:
            per_repeat = rows.groupby("repeat").apply(
                lambda r: pd.Series({"covered": (r["coverage"] * r["_n"]).sum(), "n": r["_n"].sum()}),
                include_groups=False)
            n_cells = int(round(per_repeat["n"].mean()))
            coverage = float(per_repeat["covered"].sum() / per_repeat["n"].sum()) if per_repeat["n"].sum() else \
                float(rows["coverage"].mean())
        else:
            n_cells, coverage = int(rows["_n"].sum()), float(rows["coverage"].mean())
        low, high = wilson_interval(coverage, n_cells)
        verdict = ("calibrated" if not np.isfinite(low) or low <= level <= high
                   else ("too narrow" if high < level else "too wide"))
        found.append(Calibration(str(model), str(split), level, coverage, n_cells, low, high, verdict))
    return found


@dataclass(frozen=True)
class BestPredictor:
    """The lowest pooled held-out MSE of one split: ``model`` with ``mse``
    [``low``, ``high``]; ``runner_up`` the next model and its MSE; ``clear``
    when the best model's interval lies below every other model's mean."""

    split: str
    model: str
    mse: float
    low: float
    high: float
    runner_up: str | None
    runner_up_mse: float
    clear: bool


def best_predictors(tidy: pd.DataFrame) -> list[BestPredictor]:
    """Per split of ``predictive_table`` output, the BestPredictor on the
    pooled rows."""
    found = []
    for split, block in tidy[tidy["team"] == POOLED_TEAM].groupby("split", sort=False):
        block = block[np.isfinite(block["mse"].to_numpy(dtype=float))].sort_values("mse")
        if block.empty:
            continue
        best = block.iloc[0]
        rest = block.iloc[1:]
        high = float(best["ci_high"])
        clear = bool(len(rest)) and np.isfinite(high) and bool((high < rest["mse"]).all())
        found.append(BestPredictor(str(split), str(best["model"]), float(best["mse"]), float(best["ci_low"]), high,
                                   str(rest.iloc[0]["model"]) if len(rest) else None,
                                   float(rest.iloc[0]["mse"]) if len(rest) else np.nan, clear))
    return found


@dataclass(frozen=True)
class Trust:
    """What the diagnostics and the profile say about how far to trust it:
    worst R-hat, least bulk ESS, total divergences and predictive checks
    that disagree over the diagnostics rows (NaN where not reported), and
    the cells behind each measured ability (min, median, max over teams and
    abilities with at least one cell; NaN without a ``cells`` column) and
    how many (team, ability) pairs rest on none."""

    max_rhat: float
    min_ess: float
    divergences: float
    ppc_disagreements: float
    fits: int
    cells_min: float
    cells_median: float
    cells_max: float
    unmeasured: int


def trust(diagnostics: pd.DataFrame | None, profiles: pd.DataFrame | None) -> Trust:
    def column(name, how):
        if diagnostics is None or name not in diagnostics.columns:
            return np.nan
        values = pd.to_numeric(diagnostics[name], errors="coerce").dropna()
        return float(how(values)) if len(values) else np.nan

    cells = (pd.to_numeric(profiles["cells"], errors="coerce").dropna()
             if profiles is not None and "cells" in profiles.columns else pd.Series(dtype=float))
    measured = cells[cells > 0]
    return Trust(column("max_rhat", np.max), column("min_ess_bulk", np.min), column("divergences", np.sum),
                 column("ppc_disagreements", np.sum), 0 if diagnostics is None else len(diagnostics),
                 float(measured.min()) if len(measured) else np.nan,
                 float(measured.median()) if len(measured) else np.nan,
                 float(measured.max()) if len(measured) else np.nan, int((cells == 0).sum()))


PREDICTIONS_COLUMNS = ("team", "scenario", "predicted", "low", "high")


def predictions_frame(predictions: pd.DataFrame) -> pd.DataFrame:
    """``capprof predict --format csv`` output with names as text and the
    numbers as floats (model "" when the file has no model column)."""
    out = predictions.copy()
    for name in ("team", "scenario"):
        out[name] = out[name].astype(str)
    out["model"] = out["model"].astype(str) if "model" in out.columns else ""
    for name in ("predicted", "low", "high"):
        out[name] = pd.to_numeric(out[name], errors="coerce")
    return out[["team", "scenario", "model", "predicted", "low", "high"]]
