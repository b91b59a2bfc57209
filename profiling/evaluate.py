"""One evaluation loop for every predictor (docs/evaluation.md).

The unit of evaluation is a cell: one (team, scenario) pair, whose target is
the team's mean normalised score on that scenario over its replicates. A
split assigns cells to train or test; predictors are fitted on every
replicate row of the training cells and predict the test cells. Every
predictor sees the same splits (they depend only on the seed).

Result table (``evaluate``), one row per (model, split, repeat, team):

=======  =====  ===========================================================
column   type   meaning
=======  =====  ===========================================================
model    str    predictor name (``MODEL_NAMES``)
split    str    random | scenario | substrate
repeat   int    0, 1, ... (for ``substrate``: which substrate was left out
                is in ``held_out``)
team     str    the team, or ``ALL`` for all test cells pooled
n_test   int    number of test cells
mse      float  mean over test cells of (predicted - observed)^2
fit_s    float  wall seconds to fit the predictor in this repeat
=======  =====  ===========================================================
"""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import pandas as pd

from capprof.errors import CapprofError
from capprof.profiling.predictors import cell_means, make_predictor, predictor_names

SPLITS = ("random", "scenario", "substrate")
POOLED = "ALL"
RESULT_COLUMNS = ("model", "split", "repeat", "team", "n_test", "mse", "fit_s")


# the registered predictor names (kept for callers of the old constant)
MODEL_NAMES = tuple(predictor_names())


# ------------------------------------------------------------------ splits


def split_cells(cells: pd.DataFrame, split: str, repeats: int, test_frac: float,
                seed: int) -> Iterator[tuple[int, np.ndarray, str]]:
    """Yield (repeat, test_mask over ``cells`` rows, held_out label).

    * ``random``: a uniformly random ``test_frac`` of cells (at least one);
    * ``scenario``: a random ``test_frac`` of scenarios, all their cells;
    * ``substrate``: one substrate's scenarios per repeat, substrates taken in
      a seeded random order (repeats beyond the number of substrates wrap).
    """
    if split not in SPLITS:
        raise CapprofError(f'unknown split "{split}"; use one of {", ".join(SPLITS)}')
    if not 0.0 < test_frac < 1.0:
        raise CapprofError(f"--test-frac must be between 0 and 1 (got {test_frac})")
    if repeats < 1:
        raise CapprofError(f"--repeats must be at least 1 (got {repeats})")
    rng = np.random.default_rng(seed)
    if split == "substrate":
        substrates = sorted(cells["substrate"].unique())
        if len(substrates) < 2:
            raise CapprofError("a substrate split needs scores on at least two substrates")
        order = rng.permutation(substrates)
    for repeat in range(repeats):
        if split == "random":
            n_test = max(1, int(round(test_frac * len(cells))))
            mask = np.zeros(len(cells), dtype=bool)
            mask[rng.choice(len(cells), n_test, replace=False)] = True
            label = "cells"
        elif split == "scenario":
            scenarios = np.array(sorted(cells["scenario"].unique()))
            if len(scenarios) < 2:
                raise CapprofError("a scenario split needs scores on at least two scenarios")
            n_test = min(len(scenarios) - 1, max(1, int(round(test_frac * len(scenarios)))))
            held = rng.choice(scenarios, n_test, replace=False)
            mask = cells["scenario"].isin(held).to_numpy()
            label = f"{n_test} scenarios"
        else:
            held = order[repeat % len(order)]
            mask = (cells["substrate"] == held).to_numpy()
            label = str(held)
        yield repeat, mask, label


# ------------------------------------------------------------------ statistics


def mse(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Mean squared error: (1/n) sum_i (predicted_i - observed_i)^2."""
    predicted, observed = np.asarray(predicted, float), np.asarray(observed, float)
    return float(np.mean((predicted - observed) ** 2))


def mean_interval(values: np.ndarray, level: float = 0.95, lower: float | None = None
                  ) -> tuple[float, float, float]:
    """Mean and Student-t interval for the mean over repeats:
    m +- t_{(1+level)/2, R-1} * sd / sqrt(R), sd with R-1 in the denominator.
    With ``lower`` (the smallest value the mean can take, 0 for an MSE) the
    interval is intersected with [lower, inf): the true mean lies there, so
    coverage is kept, and a few noisy repeats no longer give a negative MSE
    bound. NaN bounds when R < 2."""
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


# ------------------------------------------------------------------ the loop


def evaluate(scores: pd.DataFrame, demands: pd.DataFrame, models: list[str], split: str = "random",
             repeats: int = 3, test_frac: float = 0.1, seed: int = 0, draws: int = 1000, tune: int = 500,
             progress: bool = True) -> pd.DataFrame:
    """Fit each named model on each split's training cells and score its
    test cells. Returns the result table described in the module docstring
    (plus ``held_out``); ``attrs["diagnostics"]`` lists the layouts' R-hat,
    ESS and divergences per repeat."""
    from tqdm.auto import tqdm

    for name in models:
        make_predictor(name)  # fail on a bad name before any fitting
    cells = cell_means(scores).merge(
        scores.drop_duplicates("scenario")[["scenario", "substrate"]], on="scenario", how="left"
    )
    replicate_cell = pd.MultiIndex.from_frame(scores[["team", "scenario"]])
    cell_index = pd.MultiIndex.from_frame(cells[["team", "scenario"]])
    splits = list(split_cells(cells, split, repeats, test_frac, seed))
    rows, diag_rows = [], []
    progress_bar = tqdm(total=len(splits) * len(models), desc=f"evaluate ({split})", unit="fit",
                        disable=not progress, leave=False)
    for repeat, test_mask, held_out in splits:
        test = cells[test_mask]
        train_scores = scores[~replicate_cell.isin(cell_index[test_mask])]
        for name in models:
            progress_bar.set_postfix_str(f"{name}, repeat {repeat}")
            predictor = make_predictor(name, seed=seed + repeat, draws=draws, tune=tune)
            start = time.perf_counter()
            predictor.fit(train_scores, demands)
            fit_s = time.perf_counter() - start
            predicted = predictor.predict(test["team"], test["scenario"])["predicted"].to_numpy()
            errors = (predicted - test["score"].to_numpy()) ** 2
            rows.append((name, split, repeat, POOLED, len(test), float(errors.mean()), fit_s, held_out))
            for team, team_errors in pd.Series(errors, index=test["team"].to_numpy()).groupby(level=0):
                rows.append((name, split, repeat, team, len(team_errors), float(team_errors.mean()), fit_s,
                             held_out))
            if predictor.is_bayesian:
                diag_rows.append({"model": name, "split": split, "repeat": repeat, **predictor.diagnostics_})
            progress_bar.update()
    progress_bar.close()
    result = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "held_out"])
    result.attrs["diagnostics"] = pd.DataFrame(diag_rows)
    return result


def summarise(result: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Table 2 shape: one row per (model, split, team) with mse (mean over
    repeats), mse_low / mse_high (``mean_interval``, bounded below by 0),
    repeats, n_test (mean) and fit_s (mean)."""
    out = []
    for (model, split, team), group in result.groupby(["model", "split", "team"], sort=False):
        m, lo, hi = mean_interval(group["mse"].to_numpy(), level, lower=0.0)
        out.append({"model": model, "split": split, "team": team, "mse": m, "mse_low": lo, "mse_high": hi,
                    "repeats": len(group), "n_test": float(group["n_test"].mean()),
                    "fit_s": float(group["fit_s"].mean())})
    table = pd.DataFrame(out)
    # pooled row first within each model
    table["_order"] = (table["team"] != POOLED).astype(int)
    return table.sort_values(["split", "_order", "team"], kind="stable").drop(columns="_order").reset_index(drop=True)
