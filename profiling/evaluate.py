"""One cross-validation loop for every predictor (docs/evaluation.md).

The unit of evaluation is a cell: one (team, scenario) pair, whose target is
the team's mean normalised score on that scenario over its replicates.

Protocol (``evaluate``):

* **K-fold cross-validation.** The split's groups (cells for ``random``,
  scenarios for ``scenario``, substrates for ``substrate``) are shuffled and
  dealt into K = min(folds, groups) folds; every group, hence every cell, is
  held out exactly once per repeat. ``repeats`` > 1 reshuffles (repeated
  K-fold); repeats that cannot differ (fewer distinct partitions than
  repeats, e.g. leave-one-substrate-out) are refused.
* **Normalisation without leakage.** Raw scores go in. In each fold the
  per-scenario constants (``normalise.scale_constants``) come from
  *reference rows* that contain no test cell: the fold's training rows
  (random split), or the rows of anchor teams (``anchors``; scenario and
  substrate splits, where a held-out scenario has no training rows). Anchor
  cells are calibration: never scored, and on held-out scenarios never
  trained on. Ranges are floored at ``range_floor`` x the median range of
  the scenario's substrate (``normalise.floor_spans``) and every target is
  clipped to [0, 1]. A held-out cell's value never sets its own scale.
* Every predictor sees the same folds and targets (they depend on the seed
  and the data only).

Tidy outputs, in the frozen record ``Evaluation``:

``cells`` (one row per model, repeat and scored test cell):
model, split, repeat, fold, team, scenario, substrate, cluster (the
clustering unit of the standard errors), observed, predicted, low, high
(NaN without intervals), sq_error = (predicted - observed)^2, covered
(observed in [low, high]; NaN without intervals).

``results`` (one row per model, split, repeat, team; ``ALL`` pools every
cell), the per-repeat table ``capprof evaluate --format csv`` prints:

=========  =====  =========================================================
column     type   meaning
=========  =====  =========================================================
model      str    predictor name (``predictor_names()``)
split      str    random | scenario | substrate
repeat     int    0, 1, ...
team       str    the team, or ``ALL`` for every test cell pooled
n_test     int    number of test cells scored in this repeat
mse        float  mean over them of (predicted - observed)^2; NaN when the
                  row is flagged
fit_s      float  mean wall seconds of one fit (one fold) in this repeat
coverage   float  share of cells inside the predictive interval (NaN
                  without intervals)
width      float  mean interval width high - low (NaN without intervals)
flag       str    empty, or why the row has no estimate (a team with fewer
                  than ``MIN_TEAM_CELLS`` test cells)
=========  =====  =========================================================

``summary`` (one row per model, split, team): n_cells, repeats, mse, se,
mse_low, mse_high (95% interval, standard error clustered by ``cluster``),
clusters, coverage, width, interval_level, fit_s, flag.

``differences`` (one row per model, split): the paired per-cell difference
in squared error against the reference model: reference, n_cells, diff, se,
diff_low, diff_high, clusters.

``fits`` (one row per model, repeat, fold): n_train_cells, n_test_cells,
n_unscored, fit_s, held_out. ``diagnostics`` (one row per Bayesian fit):
model, split, repeat, fold and the predictor's ``diagnostics_``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, note
from capprof.profiling.constants import POOLED_TEAM
from capprof.profiling.normalise import (
    NORMALISATIONS,
    apply_constants,
    degenerate,
    floor_spans,
    safe_mean,
    scale_constants,
)
from capprof.profiling.predictors import canonical_name, make_predictor, predictor_names

SPLITS = ("random", "scenario", "substrate")
POOLED = POOLED_TEAM
DEFAULT_FOLDS = 10
DEFAULT_REFERENCE = "aggmean"
# A per-team estimate needs at least this many test cells (issue 9: rows
# resting on 1-10 cells drew conclusions they could not carry).
MIN_TEAM_CELLS = 20
# Ranges below this share of the median range of the scenario's substrate
# are raised to it (normalise.floor_spans).
RANGE_FLOOR = 0.1
RESULT_COLUMNS = ("model", "split", "repeat", "team", "n_test", "mse", "fit_s", "coverage", "width", "flag")
CELL_COLUMNS = ("model", "split", "repeat", "fold", "team", "scenario", "substrate", "cluster", "observed",
                "predicted", "low", "high", "sq_error", "covered")
SUMMARY_COLUMNS = ("model", "split", "team", "n_cells", "repeats", "mse", "se", "mse_low", "mse_high", "clusters",
                   "coverage", "width", "interval_level", "fit_s", "flag")
DIFFERENCE_COLUMNS = ("model", "split", "reference", "n_cells", "diff", "se", "diff_low", "diff_high", "clusters")

# the registered predictor names (kept for callers of the old constant)
MODEL_NAMES = tuple(predictor_names())


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` returns; the tables are described in the module
    docstring. ``protocol`` records the settings (split, folds, repeats,
    normalisation, anchors, range_floor, reference, seed, dropped scenarios,
    unscored cells)."""

    cells: pd.DataFrame
    results: pd.DataFrame
    summary: pd.DataFrame
    differences: pd.DataFrame
    fits: pd.DataFrame
    diagnostics: pd.DataFrame
    protocol: dict = field(default_factory=dict)


# ------------------------------------------------------------------ folds


def distinct_partitions(n: int, k: int) -> int:
    """How many different ways ``n`` labelled groups can be dealt into ``k``
    unlabelled folds whose sizes differ by at most one:
    n! / (prod_f size_f! * prod_s m_s!), where m_s counts the folds of size s
    (folds of equal size are interchangeable). 1 when k >= n (leave one out)."""
    k = min(k, n)
    if k <= 1 or k >= n:
        return 1
    small, extra = divmod(n, k)
    sizes = {small + 1: extra, small: k - extra}
    denominator = 1
    for size, count in sizes.items():
        if count:
            denominator *= math.factorial(size) ** count * math.factorial(count)
    return math.factorial(n) // denominator


def kfold_assignments(groups: Sequence, folds: int, repeats: int, seed: int, unit: str = "group"
                      ) -> list[np.ndarray]:
    """Per repeat, the fold (0..K-1) of every element of ``groups``, with
    K = min(folds, distinct groups): the distinct groups are shuffled with a
    generator seeded by ``seed`` and dealt round-robin into the K folds, so
    every group is held out exactly once per repeat. Repeats get different
    shuffles and, where possible, different partitions; asking for more
    repeats than there are distinct partitions is a CapprofError naming the
    number of distinct groups (``unit`` names them in the message)."""
    labels = pd.Index(pd.unique(np.asarray(groups, dtype=object)))
    n = len(labels)
    if n < 2:
        raise CapprofError(f"cross-validation needs at least two {unit}s to hold out; these scores have {n}")
    if folds < 2:
        raise CapprofError(f"--folds must be at least 2 (got {folds})")
    if repeats < 1:
        raise CapprofError(f"--repeats must be at least 1 (got {repeats})")
    k = min(folds, n)
    possible = distinct_partitions(n, k)
    if repeats > possible:
        what = (f"{k}-fold cross-validation over {n} {unit}s is leave-one-{unit}-out: every repeat holds out "
                f"the same {n} folds" if k == n else
                f"{n} {unit}s have only {possible} distinct {k}-fold partitions")
        raise CapprofError(f"--repeats {repeats} cannot give different repeats: {what}; "
                           f"use --repeats {possible}" + ("" if k < 3 else " or fewer --folds"))
    codes = labels.get_indexer(np.asarray(groups, dtype=object))
    rng = np.random.default_rng(seed)
    seen: set = set()
    out = []
    while len(out) < repeats:
        order = rng.permutation(n)
        fold_of_group = np.empty(n, dtype=int)
        fold_of_group[order] = np.arange(n) % k
        if possible < 10**6:  # small spaces: make sure the repeats differ
            key = frozenset(frozenset(np.flatnonzero(fold_of_group == f)) for f in range(k))
            if key in seen:
                continue
            seen.add(key)
        out.append(fold_of_group[codes])
    return out


# ------------------------------------------------------------------ statistics


def mse(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Mean squared error: (1/n) sum_i (predicted_i - observed_i)^2."""
    predicted, observed = np.asarray(predicted, float), np.asarray(observed, float)
    return float(np.mean((predicted - observed) ** 2))


def clustered_se(values: np.ndarray, clusters: np.ndarray) -> float:
    """Standard error of the mean of ``values`` whose errors are correlated
    within clusters (cells of one scenario share its difficulty):

        m = (1/n) sum_i v_i,
        SE = (1/n) sqrt( G/(G-1) * sum_g ( sum_{i in g} (v_i - m) )^2 ),

    the cluster-robust (CR1) sandwich for a mean over n values in G clusters
    (Cameron & Miller 2015). With one value per cluster it is the usual
    sd/sqrt(n) up to the factor n/(n-1) vs (n-1) in the denominator. NaN
    with fewer than two clusters."""
    values = np.asarray(values, float)
    clusters = np.asarray(clusters)
    n = len(values)
    if n == 0:
        return float("nan")
    codes, _ = pd.factorize(clusters)
    g = int(codes.max()) + 1
    if g < 2:
        return float("nan")
    residual_sums = np.bincount(codes, weights=values - values.mean(), minlength=g)
    return float(np.sqrt(g / (g - 1) * np.sum(residual_sums ** 2)) / n)


def clustered_interval(values: np.ndarray, clusters: np.ndarray, level: float = 0.95
                       ) -> tuple[float, float, float, float, int]:
    """(mean, se, low, high, G): the mean with a Student-t interval on G - 1
    degrees of freedom, m +- t_{(1+level)/2, G-1} * clustered_se."""
    from scipy import stats

    values = np.asarray(values, float)
    g = len(pd.unique(np.asarray(clusters)))
    m = float(values.mean()) if len(values) else float("nan")
    se = clustered_se(values, clusters)
    if not np.isfinite(se):
        return m, se, float("nan"), float("nan"), g
    half = float(stats.t.ppf((1 + level) / 2, g - 1) * se)
    return m, se, m - half, m + half, g


def paired_difference(errors: np.ndarray, reference_errors: np.ndarray, clusters: np.ndarray,
                      level: float = 0.95) -> tuple[float, float, float, float, int]:
    """The paired per-cell difference d_i = e_i - r_i between a model's and
    the reference's squared errors on the same cells: mean, clustered SE and
    t interval (``clustered_interval`` of d). Negative: the model is better."""
    d = np.asarray(errors, float) - np.asarray(reference_errors, float)
    return clustered_interval(d, clusters, level)


def coverage(observed: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of observed values inside their interval: (1/n) sum_i 1[low_i <= y_i <= high_i];
    NaN when no interval is given."""
    observed, low, high = (np.asarray(a, float) for a in (observed, low, high))
    valid = np.isfinite(low) & np.isfinite(high)
    if not valid.any():
        return float("nan")
    return float(np.mean((low[valid] <= observed[valid]) & (observed[valid] <= high[valid])))


def mean_width(low: np.ndarray, high: np.ndarray) -> float:
    """Mean interval width (1/n) sum_i (high_i - low_i); NaN without intervals."""
    width = np.asarray(high, float) - np.asarray(low, float)
    width = width[np.isfinite(width)]
    return float(width.mean()) if len(width) else float("nan")


def mean_interval(values: np.ndarray, level: float = 0.95, lower: float | None = None
                  ) -> tuple[float, float, float]:
    """Mean and Student-t interval for the mean of independent values:
    m +- t_{(1+level)/2, R-1} * sd / sqrt(R), sd with R-1 in the denominator.
    With ``lower`` (the smallest value the mean can take, 0 for an MSE) the
    interval is intersected with [lower, inf). NaN bounds when R < 2. (Kept
    for tables that only have per-repeat values; cross-validation repeats
    share training data, so ``clustered_interval`` on cells is the honest
    interval for ``evaluate``.)"""
    from scipy import stats

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(values.mean())
    if len(values) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    low = m - half if lower is None else max(lower, m - half)
    return m, low, m + half


def team_flag(n_cells: int, minimum: int = MIN_TEAM_CELLS) -> str:
    """Why a per-team row has no estimate ('' when it has one)."""
    if n_cells < minimum:
        return f"{n_cells} test cells < {minimum}: too few for a per-team estimate"
    return ""


# ------------------------------------------------------------------ normalisation per fold


def default_anchors(teams: Sequence[str]) -> list[str]:
    """The anchor teams found among ``teams``: ``random`` and every team whose
    name starts with ``exploiter`` (the Melting Pot reference policies)."""
    return sorted(t for t in set(teams) if t == "random" or str(t).startswith("exploiter"))


def fold_targets(train_rows: pd.DataFrame, test_rows: pd.DataFrame, reference_rows: pd.DataFrame,
                 method: str, substrate_of: pd.Series, range_floor: float = RANGE_FLOOR
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalised training rows and test rows of one fold, with constants
    computed from ``reference_rows`` only (which must hold no test row):
    constants = floor_spans(scale_constants(reference_rows, method)), then
    s' = clip((s - low) / (high - low), 0, 1) for training and test rows
    (no clipping and no scaling for ``none``). Rows of scenarios without
    usable constants are left out of both."""
    if method == "none":
        return train_rows.assign(raw_score=train_rows["score"]), test_rows.assign(raw_score=test_rows["score"])
    constants = floor_spans(scale_constants(reference_rows, method), substrate_of, range_floor)
    return apply_constants(train_rows, constants, clip=True), apply_constants(test_rows, constants, clip=True)


# ------------------------------------------------------------------ the loop


def _cell_table(scores: pd.DataFrame) -> pd.DataFrame:
    cells = scores.drop_duplicates(["team", "scenario"])[["team", "scenario", "substrate"]]
    return cells.sort_values(["team", "scenario"]).reset_index(drop=True)


def evaluate(scores: pd.DataFrame, demands: pd.DataFrame, models: Sequence[str], split: str = "random",
             folds: int = DEFAULT_FOLDS, repeats: int = 1, seed: int = 0, normalisation: str = "minmax",
             anchors: Sequence[str] | None = None, range_floor: float = RANGE_FLOOR,
             reference: str = DEFAULT_REFERENCE, draws: int = 1000, tune: int = 500,
             progress: bool = True, level: float = 0.95) -> Evaluation:
    """Cross-validate each named model on RAW ``scores`` (normalised per fold,
    see the module docstring) and return an ``Evaluation``.

    ``anchors``: teams whose cells set the scale without being scored; default
    none for the random split and ``default_anchors`` for the scenario and
    substrate splits (required there unless ``normalisation="none"``).
    ``reference`` (default aggmean) is the model every other is compared to
    cell by cell; it is added to ``models`` when missing."""
    from tqdm.auto import tqdm

    if split not in SPLITS:
        raise CapprofError(f'unknown split "{split}"; use one of {", ".join(SPLITS)}')
    if normalisation not in NORMALISATIONS:
        raise CapprofError(f'unknown normalisation "{normalisation}"; use one of {", ".join(NORMALISATIONS)}')
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise CapprofError(f"--seed must be a whole number >= 0 (got {seed})")
    if not range_floor >= 0:
        raise CapprofError(f"--range-floor must be >= 0 (got {range_floor})")
    names = list(dict.fromkeys(canonical_name(m) for m in models))
    if not names:
        raise CapprofError("--models is empty; name at least one model")
    reference = canonical_name(reference)
    if reference not in names:
        names.insert(0, reference)
    if "score" not in scores.columns or scores.empty:
        raise CapprofError("no scores to evaluate; check the score table")

    scores = scores.reset_index(drop=True)
    # scenarios where every score is equal carry no information about any team
    constant = degenerate(scale_constants(scores, "minmax"))
    if len(constant) == scores["scenario"].nunique():
        raise CapprofError("every scenario scores the same for every row, so there is nothing to predict; "
                           "check the score column")
    if constant:
        shown = ", ".join(constant[:5]) + (" ..." if len(constant) > 5 else "")
        note(f"{len(constant)} scenario(s) score the same for every row and are left out: {shown}")
        scores = scores[~scores["scenario"].isin(constant)].reset_index(drop=True)

    teams = sorted(scores["team"].unique())
    if anchors is None:
        anchors = default_anchors(teams) if split != "random" and normalisation != "none" else []
        if split != "random" and normalisation != "none" and not anchors:
            raise CapprofError(
                f"a {split} split must scale each held-out scenario without its own test scores, by anchor teams "
                "(default: random and exploiter*), and these scores have none; name reference teams with "
                "--anchors TEAM,TEAM or use --normalise none"
            )
    anchors = list(dict.fromkeys(anchors))
    unknown = [a for a in anchors if a not in teams]
    if unknown:
        raise CapprofError(f'anchor team "{unknown[0]}" is not in the scores; use any of {", ".join(teams)}')
    if anchors and len(anchors) == len(teams):
        raise CapprofError("every team is an anchor, so no cell is left to score; name fewer --anchors")
    if anchors:
        anchored = set(scores.loc[scores["team"].isin(anchors), "scenario"])
        lacking = sorted(set(scores["scenario"]) - anchored)
        if lacking:
            note(f"{len(lacking)} scenario(s) have no anchor-team scores to set their scale and are left out: "
                 f"{', '.join(lacking[:5])}{' ...' if len(lacking) > 5 else ''}")
            scores = scores[scores["scenario"].isin(anchored)].reset_index(drop=True)

    substrate_of = scores.drop_duplicates("scenario").set_index("scenario")["substrate"]
    cells = _cell_table(scores)
    scored = cells[~cells["team"].isin(anchors)].reset_index(drop=True)
    unit = {"random": "cell", "scenario": "scenario", "substrate": "substrate"}[split]
    group_column = {"random": None, "scenario": "scenario", "substrate": "substrate"}[split]
    groups = (scored["team"] + "\x1f" + scored["scenario"]).to_numpy() if group_column is None \
        else scored[group_column].to_numpy()
    assignments = kfold_assignments(groups, folds, repeats, seed, unit)
    k = int(max(a.max() for a in assignments)) + 1
    cluster_column = "scenario" if split != "substrate" else "substrate"

    row_key = pd.MultiIndex.from_frame(scores[["team", "scenario"]])
    anchor_rows = scores[scores["team"].isin(anchors)]
    cell_rows, fit_rows, diag_rows = [], [], []
    bar = tqdm(total=repeats * k * len(names), desc=f"evaluate ({split}, {k}-fold)", unit="fit",
               disable=not progress, leave=False)
    for repeat, fold_of in enumerate(assignments):
        for fold in range(k):
            test_cells = scored[fold_of == fold]
            test_key = pd.MultiIndex.from_frame(test_cells[["team", "scenario"]])
            is_test = row_key.isin(test_key)
            if split == "random":
                train_rows = scores[~is_test]
            else:
                # a held-out scenario contributes nothing to training, anchors included
                held = set(test_cells["scenario"])
                train_rows = scores[~scores["scenario"].isin(held)]
            reference_rows = anchor_rows if anchors else train_rows
            train, test = fold_targets(train_rows, scores[is_test], reference_rows, normalisation, substrate_of,
                                       range_floor)
            targets = safe_mean(test["score"], [test["team"], test["scenario"]]).rename("observed").reset_index()
            targets = targets.merge(test_cells, on=["team", "scenario"], how="left")
            # a team with no training cell in this fold cannot be predicted (small tables only)
            targets = targets[targets["team"].isin(set(train["team"]))].reset_index(drop=True)
            n_unscored = len(test_cells) - len(targets)
            if targets.empty:
                fit_rows.extend({"model": name, "split": split, "repeat": repeat, "fold": fold, "n_train_cells": 0,
                                 "n_test_cells": 0, "n_unscored": n_unscored, "fit_s": np.nan, "held_out": ""}
                                for name in names)
                bar.update(len(names))
                continue
            held_out = ", ".join(sorted(test_cells[group_column].unique())) if group_column else \
                f"{len(test_cells)} cells"
            for name in names:
                bar.set_postfix_str(f"{name}, repeat {repeat} fold {fold}")
                predictor = make_predictor(name, seed=seed + repeat * k + fold, draws=draws, tune=tune)
                start = time.perf_counter()
                predictor.fit(train, demands)
                fit_s = time.perf_counter() - start
                frame = predictor.predict(targets["team"].tolist(), targets["scenario"].tolist())
                part = targets.assign(model=name, split=split, repeat=repeat, fold=fold,
                                      predicted=frame["predicted"].to_numpy(float),
                                      low=frame["low"].to_numpy(float), high=frame["high"].to_numpy(float),
                                      interval_level=(predictor.interval_level if predictor.has_intervals
                                                      else np.nan))
                cell_rows.append(part)
                fit_rows.append({"model": name, "split": split, "repeat": repeat, "fold": fold,
                                 "n_train_cells": int(train[["team", "scenario"]].drop_duplicates().shape[0]),
                                 "n_test_cells": len(targets), "n_unscored": n_unscored, "fit_s": fit_s,
                                 "held_out": held_out})
                if predictor.is_bayesian:
                    diag_rows.append({"model": name, "split": split, "repeat": repeat, "fold": fold,
                                      **predictor.diagnostics_})
                bar.update()
    bar.close()

    if not cell_rows:
        raise CapprofError(
            "no test cell could be scored: in every fold the held-out cells' scenarios had no training or anchor "
            "rows with a non-zero range to set their scale, or their teams no training cell; use more teams, "
            "scenarios or replicates, or --normalise none"
        )
    cells_out = pd.concat(cell_rows, ignore_index=True)
    cells_out["cluster"] = cells_out[cluster_column]
    cells_out["sq_error"] = (cells_out["predicted"] - cells_out["observed"]) ** 2
    inside = (cells_out["low"] <= cells_out["observed"]) & (cells_out["observed"] <= cells_out["high"])
    cells_out["covered"] = inside.astype(float).where(cells_out["low"].notna() & cells_out["high"].notna())
    levels = cells_out.groupby("model")["interval_level"].first()
    cells_out = cells_out[list(CELL_COLUMNS)]
    fits = pd.DataFrame(fit_rows)
    unscored = int(fits.drop_duplicates(["repeat", "fold"])["n_unscored"].sum())
    if unscored:
        note(f"{unscored} test cell(s) could not be scored: in their fold their scenario had no usable "
             "normalising constants (no training or anchor rows, or a zero range) or their team no training cell")
    protocol = {"split": split, "folds": k, "repeats": repeats, "seed": seed, "normalisation": normalisation,
                "anchors": anchors, "range_floor": range_floor, "reference": reference,
                "dropped_scenarios": constant, "unscored_cells": unscored, "cluster": cluster_column,
                "level": level, "min_team_cells": MIN_TEAM_CELLS}
    return Evaluation(
        cells=cells_out,
        results=per_repeat(cells_out, fits),
        summary=summarise_cells(cells_out, fits, levels, level),
        differences=differences(cells_out, reference, level),
        fits=fits,
        diagnostics=pd.DataFrame(diag_rows),
        protocol=protocol,
    )


# ------------------------------------------------------------------ tables


def per_repeat(cells: pd.DataFrame, fits: pd.DataFrame) -> pd.DataFrame:
    """The per-repeat table (RESULT_COLUMNS): every test cell of a repeat
    pooled (team ALL) and per team; per-team rows with fewer than
    MIN_TEAM_CELLS cells keep n_test but have mse NaN and a flag."""
    fit_s = fits.groupby(["model", "repeat"])["fit_s"].mean()
    rows = []
    for (model, split, repeat), group in cells.groupby(["model", "split", "repeat"], sort=False):
        parts = [(POOLED, group)] + list(group.groupby("team", sort=True))
        for team, part in parts:
            flag = "" if team == POOLED else team_flag(len(part))
            rows.append({"model": model, "split": split, "repeat": repeat, "team": team, "n_test": len(part),
                         "mse": float(part["sq_error"].mean()) if not flag else np.nan,
                         "fit_s": float(fit_s.loc[(model, repeat)]),
                         "coverage": coverage(part["observed"], part["low"], part["high"]) if not flag else np.nan,
                         "width": mean_width(part["low"], part["high"]) if not flag else np.nan,
                         "flag": flag})
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _per_cell(part: pd.DataFrame) -> pd.DataFrame:
    """Average a model's rows over repeats: one row per cell."""
    return part.groupby(["team", "scenario"], sort=True).agg(
        sq_error=("sq_error", "mean"), covered=("covered", "mean"), low=("low", "mean"), high=("high", "mean"),
        cluster=("cluster", "first"))


def summarise_cells(cells: pd.DataFrame, fits: pd.DataFrame | None = None, levels: pd.Series | None = None,
                    level: float = 0.95) -> pd.DataFrame:
    """One row per (model, split, team) (SUMMARY_COLUMNS). Squared errors are
    first averaged over repeats per cell (repeats share training data, so
    they are not independent replications), then
    mse = mean over cells, se = clustered_se over the cells' clusters,
    [mse_low, mse_high] = clustered_interval (t on G - 1 df, lower end at
    least 0); coverage = share of (cell, repeat) pairs inside the interval,
    width = mean interval width. Per-team rows with fewer than MIN_TEAM_CELLS
    cells carry a flag and no estimate."""
    fit_s = fits.groupby("model")["fit_s"].mean() if fits is not None else pd.Series(dtype=float)
    out = []
    for (model, split), group in cells.groupby(["model", "split"], sort=False):
        parts = [(POOLED, group)] + list(group.groupby("team", sort=True))
        for team, part in parts:
            per_cell = _per_cell(part)
            flag = "" if team == POOLED else team_flag(len(per_cell))
            m, se, lo, hi, g = clustered_interval(per_cell["sq_error"].to_numpy(), per_cell["cluster"].to_numpy(),
                                                  level)
            row = {"model": model, "split": split, "team": team, "n_cells": len(per_cell),
                   "repeats": int(part["repeat"].nunique()), "mse": m, "se": se,
                   "mse_low": max(0.0, lo) if np.isfinite(lo) else lo, "mse_high": hi, "clusters": g,
                   "coverage": coverage(part["observed"], part["low"], part["high"]),
                   "width": mean_width(part["low"], part["high"]),
                   "interval_level": float(levels.get(model, np.nan)) if levels is not None else np.nan,
                   "fit_s": float(fit_s.get(model, np.nan)), "flag": flag}
            if flag:
                for key in ("mse", "se", "mse_low", "mse_high", "coverage", "width"):
                    row[key] = np.nan
            out.append(row)
    return pd.DataFrame(out, columns=list(SUMMARY_COLUMNS))


def differences(cells: pd.DataFrame, reference: str, level: float = 0.95) -> pd.DataFrame:
    """Paired per-cell differences against ``reference`` (DIFFERENCE_COLUMNS),
    one row per (model, split) other than the reference: per cell, each
    model's squared error averaged over repeats minus the reference's on the
    same cell, then ``paired_difference`` clustered by the cells' cluster."""
    out = []
    for split, by_split in cells.groupby("split", sort=False):
        if reference not in set(by_split["model"]):
            continue
        ref = _per_cell(by_split[by_split["model"] == reference])
        for model, part in by_split.groupby("model", sort=False):
            if model == reference:
                continue
            mine = _per_cell(part)
            common = mine.index.intersection(ref.index)
            m, se, lo, hi, g = paired_difference(mine.loc[common, "sq_error"].to_numpy(),
                                                 ref.loc[common, "sq_error"].to_numpy(),
                                                 mine.loc[common, "cluster"].to_numpy(), level)
            out.append({"model": model, "split": split, "reference": reference, "n_cells": len(common),
                        "diff": m, "se": se, "diff_low": lo, "diff_high": hi, "clusters": g})
    return pd.DataFrame(out, columns=list(DIFFERENCE_COLUMNS))


def summarise(result: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Summary of a per-repeat table read back from CSV (RESULT_COLUMNS; e.g.
    ``capprof evaluate --out``): one row per (model, split, team) with mse
    (mean over repeats), mse_low / mse_high (``mean_interval`` over repeats,
    bounded below by 0; NaN with one repeat: use ``Evaluation.summary`` for
    the clustered interval), repeats, n_test (mean), fit_s (mean) and flag."""
    out = []
    for (model, split, team), group in result.groupby(["model", "split", "team"], sort=False):
        m, lo, hi = mean_interval(group["mse"].to_numpy(), level, lower=0.0)
        flags = group["flag"].fillna("") if "flag" in group else pd.Series([""])
        out.append({"model": model, "split": split, "team": team, "mse": m, "mse_low": lo, "mse_high": hi,
                    "repeats": len(group), "n_test": float(group["n_test"].mean()),
                    "fit_s": float(group["fit_s"].mean()), "flag": next((f for f in flags if f), "")})
    table = pd.DataFrame(out)
    table["_order"] = (table["team"] != POOLED).astype(int)
    return table.sort_values(["split", "_order", "team"], kind="stable").drop(columns="_order").reset_index(drop=True)
