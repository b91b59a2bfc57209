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
model      str    predictor name (``predictor_names()``), or
                  ``NAME(KEY=VALUE,...)`` for one given parameters
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

``Evaluation.save(dir)`` (``capprof evaluate --save``) writes every table
and the protocol to one directory (EVALUATION_FILES), atomically;
``Evaluation.load(dir)`` reads it back equal, and ``capprof report`` shows
its summary as it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from capprof.arguments import SEED_MAX
from capprof.errors import CapprofError, note
from capprof.io import atomic_directory, atomic_path, foreign_entries
from capprof.profiling.cellstats import clustered_interval, coverage, mean_interval, mean_width, paired_difference
from capprof.profiling.constants import POOLED_TEAM
from capprof.profiling.files import write_json_atomic
from capprof.profiling.folds import RANGE_FLOOR, default_anchors, fold_targets, kfold_assignments
from capprof.profiling.normalise import NORMALISATIONS, degenerate, safe_mean, scale_constants
from capprof.profiling.predictors import ModelSpec, parse_model_spec
from capprof.readers import read_json

SPLITS = ("random", "scenario", "substrate")
# what a split holds out together (None: each cell on its own)
HELD_OUT_COLUMN = {"random": None, "scenario": "scenario", "substrate": "substrate"}
POOLED = POOLED_TEAM
DEFAULT_FOLDS = 10
DEFAULT_REFERENCE = "aggmean"
# A per-team estimate needs at least this many test cells (issue 9: rows
# resting on 1-10 cells drew conclusions they could not carry).
MIN_TEAM_CELLS = 20
RESULT_COLUMNS = ("model", "split", "repeat", "team", "n_test", "mse", "fit_s", "coverage", "width", "flag")
CELL_COLUMNS = ("model", "split", "repeat", "fold", "team", "scenario", "substrate", "cluster", "observed",
                "predicted", "low", "high", "sq_error", "covered")
SUMMARY_COLUMNS = ("model", "split", "team", "n_cells", "repeats", "mse", "se", "mse_low", "mse_high", "clusters",
                   "coverage", "width", "interval_level", "fit_s", "flag")
DIFFERENCE_COLUMNS = ("model", "split", "reference", "n_cells", "diff", "se", "diff_low", "diff_high", "clusters")

# The directory ``Evaluation.save`` writes (docs/evaluation.md, "Output"): one
# Parquet file per table (exact floats and dtypes, read back equal) and
# evaluation.json, written last, with the protocol and "complete": true.
EVALUATION_FILES = {
    "results": "results.parquet",
    "summary": "summary.parquet",
    "differences": "differences.parquet",
    "cells": "cells.parquet",
    "fits": "fits.parquet",
    "diagnostics": "diagnostics.parquet",
    "meta": "evaluation.json",
}
EVALUATION_FORMAT = 1
# the tables whose columns are fixed (fits and diagnostics follow the fits)
TABLE_COLUMNS = {"results": RESULT_COLUMNS, "summary": SUMMARY_COLUMNS, "differences": DIFFERENCE_COLUMNS,
                 "cells": CELL_COLUMNS}


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` returns; the tables are described in the module
    docstring. ``protocol`` records the settings (split, folds, repeats,
    normalisation, anchors, range_floor, reference, seed, dropped scenarios,
    unscored cells). ``save(dir)`` writes it to a directory
    (EVALUATION_FILES) that ``Evaluation.load(dir)`` and ``capprof report``
    read back."""

    cells: pd.DataFrame
    results: pd.DataFrame
    summary: pd.DataFrame
    differences: pd.DataFrame
    fits: pd.DataFrame
    diagnostics: pd.DataFrame
    protocol: dict = field(default_factory=dict)

    def save(self, directory) -> Path:
        """Write every table and the protocol to ``directory`` atomically: the
        files are written into a temporary directory beside it, evaluation.json
        last, which then replaces ``directory`` whole
        (``capprof.io.atomic_directory``), so a reader finds the old
        evaluation or the new one, never a mixture. A directory holding
        anything but a saved evaluation is refused (``check_save_target``)."""
        target = check_save_target(directory)
        meta = {"format": EVALUATION_FORMAT, "protocol": _json_ready(self.protocol),
                "files": sorted(EVALUATION_FILES.values()), "complete": True}
        with atomic_directory(target) as tmp:
            for key, name in EVALUATION_FILES.items():
                if key != "meta":
                    with atomic_path(tmp / name) as path:
                        getattr(self, key).to_parquet(path)
            write_json_atomic(tmp / EVALUATION_FILES["meta"], meta)
        return target

    @classmethod
    def load(cls, directory) -> "Evaluation":
        """The evaluation saved in ``directory``, equal to the one saved; a
        missing, incomplete or damaged file is one CapprofError line naming it
        and the fix."""
        directory = Path(directory)
        fix = f"run `capprof evaluate SCORES --save {directory}` again"
        meta_path = directory / EVALUATION_FILES["meta"]
        meta = read_json(meta_path, fix, missing=f"{meta_path} is missing, so {directory} holds no saved evaluation; "
                                                 f"write one with `capprof evaluate SCORES --save {directory}`")
        if meta.get("complete") is not True:
            raise CapprofError(f"{meta_path} is not marked complete; {fix}")
        if meta.get("format") != EVALUATION_FORMAT:
            raise CapprofError(f"{meta_path} is format {meta.get('format')!r}; this capprof reads format "
                               f"{EVALUATION_FORMAT}; {fix}")
        if not isinstance(meta.get("protocol"), dict):
            raise CapprofError(f"{meta_path} lacks the protocol; {fix}")
        tables = {key: _read_saved_table(directory / name, TABLE_COLUMNS.get(key, ()), fix)
                  for key, name in EVALUATION_FILES.items() if key != "meta"}
        return cls(**tables, protocol=meta["protocol"])


def is_saved_evaluation(path) -> bool:
    """``path`` is a directory ``Evaluation.save`` wrote, or one that holds
    any of its files (a damaged one: ``Evaluation.load`` says what is
    wrong, where reading it as a Parquet directory would mix its tables)."""
    path = Path(path)
    return path.is_dir() and any((path / name).exists() for name in EVALUATION_FILES.values())


def check_save_target(directory) -> Path:
    """Refuse, before any work, a save target that is a file or a non-empty
    directory other than a saved evaluation (saving replaces it whole)."""
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise CapprofError(f"{target} is a file; give a directory for the evaluation")
    if target.is_dir() and not is_saved_evaluation(target) and any(target.iterdir()):
        raise CapprofError(f"{target} holds files but no saved evaluation, and saving replaces the directory "
                           "whole; give a new directory (e.g. PROFILE_DIR/evaluation)")
    foreign = foreign_entries(target, set(EVALUATION_FILES.values()).__contains__) \
        if is_saved_evaluation(target) else []
    if foreign:
        raise CapprofError(f"{target} holds a saved evaluation and {len(foreign)} other file(s) (e.g. {foreign[0]}), "
                           "and saving replaces the directory whole; move them or give a new directory")
    return target


def _json_ready(value):
    """``value`` with NumPy scalars and tuples as plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_saved_table(path: Path, columns: Sequence[str], fix: str) -> pd.DataFrame:
    if not path.is_file():
        raise CapprofError(f"{path} is missing; {fix}")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CapprofError(f"{path} is not a readable Parquet file ({reason}); {fix}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CapprofError(f"{path} lacks column(s) {', '.join(missing)}; {fix}")
    return frame


# ------------------------------------------------------------------ statistics (formulas: cellstats)


def team_flag(n_cells: int, minimum: int = MIN_TEAM_CELLS) -> str:
    """Why a per-team row has no estimate ('' when it has one)."""
    if n_cells < minimum:
        return f"{n_cells} test cells < {minimum}: too few for a per-team estimate"
    return ""


# ------------------------------------------------------------------ the loop


def _cell_table(scores: pd.DataFrame) -> pd.DataFrame:
    cells = scores.drop_duplicates(["team", "scenario"])[["team", "scenario", "substrate"]]
    return cells.sort_values(["team", "scenario"]).reset_index(drop=True)


def evaluate(scores: pd.DataFrame, demands: pd.DataFrame, models: Sequence[str], split: str = "random",
             folds: int = DEFAULT_FOLDS, repeats: int = 1, seed: int = 0, normalisation: str = "minmax",
             anchors: Sequence[str] | None = None, range_floor: float = RANGE_FLOOR,
             reference: "str | ModelSpec" = DEFAULT_REFERENCE, draws: int = 1000, tune: int = 500,
             progress: bool = True, level: float = 0.95) -> Evaluation:
    """Cross-validate each named model on RAW ``scores`` (normalised per fold,
    see the module docstring) and return an ``Evaluation``.

    ``anchors``: teams whose cells set the scale without being scored; default
    none for the random split and ``default_anchors`` for the scenario and
    substrate splits (required there unless ``normalisation="none"``).
    ``reference`` (default aggmean) is the model every other is compared to
    cell by cell; it is added to ``models`` when missing. A model is a
    registered name or ``NAME(KEY=VALUE,...)`` (``parse_model_spec``: the
    predictor's ``__init__`` parameters; they override ``draws``/``tune``/
    the per-fold seed), and the tables call it by its ``ModelSpec.label``."""
    _check_settings(split, normalisation, seed, range_floor)
    specs, reference = _model_specs(models, reference)
    _anchor_teams(scores, split, normalisation, anchors)  # a bad --anchors: one line, before the note below
    scores, constant = _informative_scores(scores)
    anchors = _anchor_teams(scores, split, normalisation, anchors)
    plan = _plan(_anchored_scores(scores, anchors), anchors, split, folds, repeats, seed, normalisation,
                 range_floor)
    cell_parts, fits, diagnostics = _cross_validate(plan, specs, demands, seed, draws, tune, progress)
    cells, levels = _cell_results(cell_parts, plan.cluster_column)
    unscored = _unscored_cells(fits)
    protocol = {"split": split, "folds": plan.k, "repeats": repeats, "seed": seed, "normalisation": normalisation,
                "anchors": anchors, "range_floor": range_floor, "reference": reference,
                "dropped_scenarios": constant, "unscored_cells": unscored, "cluster": plan.cluster_column,
                "level": level, "min_team_cells": MIN_TEAM_CELLS}
    return Evaluation(cells=cells, results=per_repeat(cells, fits), summary=summarise_cells(cells, fits, levels, level),
                      differences=differences(cells, reference, level), fits=fits, diagnostics=diagnostics,
                      protocol=protocol)


def _check_settings(split: str, normalisation: str, seed, range_floor: float) -> None:
    if split not in SPLITS:
        raise CapprofError(f'unknown split "{split}"; use one of {", ".join(SPLITS)}')
    if normalisation not in NORMALISATIONS:
        raise CapprofError(f'unknown normalisation "{normalisation}"; use one of {", ".join(NORMALISATIONS)}')
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise CapprofError(f"--seed must be a whole number >= 0 (got {seed})")
    if not range_floor >= 0:
        raise CapprofError(f"--range-floor must be >= 0 (got {range_floor})")


def _model_specs(models: Sequence, reference) -> tuple[dict[str, ModelSpec], str]:
    """Label -> ModelSpec of every model to fit, the reference first when it
    was not asked for, and the reference's label."""
    specs = {}
    for model in models:  # a name, NAME(KEY=VALUE,...) or a ModelSpec; tables use the spec's label
        spec = model if isinstance(model, ModelSpec) else parse_model_spec(str(model))
        specs.setdefault(spec.label, spec)
    if not specs:
        raise CapprofError("--models is empty; name at least one model")
    reference_spec = reference if isinstance(reference, ModelSpec) else parse_model_spec(str(reference))
    if reference_spec.label not in specs:
        specs = {reference_spec.label: reference_spec, **specs}
    return specs, reference_spec.label


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


def _informative_scores(scores: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The scores without scenarios where every score is equal (they carry
    no information about any team), and those scenarios."""
    if "score" not in scores.columns or scores.empty:
        raise CapprofError("no scores to evaluate; check the score table")
    scores = scores.reset_index(drop=True)
    constant = degenerate(scale_constants(scores, "minmax"))
    if len(constant) == scores["scenario"].nunique():
        raise CapprofError("every scenario scores the same for every row, so there is nothing to predict; "
                           "check the score column")
    if constant:
        note(f"{len(constant)} scenario(s) score the same for every row and are left out: {_shown(constant)}")
        scores = scores[~scores["scenario"].isin(constant)].reset_index(drop=True)
    return scores, constant


def _anchor_teams(scores: pd.DataFrame, split: str, normalisation: str, anchors: Sequence[str] | None) -> list[str]:
    """The anchor teams asked for, or the default for ``split``; each must be
    scored and at least one team must be left to score."""
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
    return anchors


def _anchored_scores(scores: pd.DataFrame, anchors: list[str]) -> pd.DataFrame:
    """With anchors, only the scenarios some anchor team scored (the others
    have nothing to set their scale)."""
    if not anchors:
        return scores
    anchored = set(scores.loc[scores["team"].isin(anchors), "scenario"])
    lacking = sorted(set(scores["scenario"]) - anchored)
    if lacking:
        note(f"{len(lacking)} scenario(s) have no anchor-team scores to set their scale and are left out: "
             f"{_shown(lacking)}")
        scores = scores[scores["scenario"].isin(anchored)].reset_index(drop=True)
    return scores


@dataclass(frozen=True)
class _Plan:
    """What the folds are cut from: the scores, the scored (non-anchor)
    cells and, per repeat, the fold of each scored cell (``assignments``,
    K = ``k`` folds), with the per-fold normalisation settings."""

    split: str
    scores: pd.DataFrame
    scored: pd.DataFrame
    anchors: list[str]
    assignments: list[np.ndarray]
    k: int
    normalisation: str
    range_floor: float

    @property
    def group_column(self) -> str | None:
        """The column whose values are held out together (None: each cell)."""
        return HELD_OUT_COLUMN[self.split]

    @property
    def cluster_column(self) -> str:
        return "scenario" if self.split != "substrate" else "substrate"


def _plan(scores: pd.DataFrame, anchors: list[str], split: str, folds: int, repeats: int, seed: int,
          normalisation: str, range_floor: float) -> _Plan:
    scored = _cell_table(scores)
    scored = scored[~scored["team"].isin(anchors)].reset_index(drop=True)
    group_column = HELD_OUT_COLUMN[split]
    groups = (scored["team"] + "\x1f" + scored["scenario"]).to_numpy() if group_column is None \
        else scored[group_column].to_numpy()
    assignments = kfold_assignments(groups, folds, repeats, seed, group_column or "cell")
    k = int(max(a.max() for a in assignments)) + 1
    return _Plan(split, scores, scored, anchors, assignments, k, normalisation, range_floor)


@dataclass(frozen=True)
class _Fold:
    """One fold of one repeat: the normalised training rows, the test cells
    that can be scored (team, scenario, observed, substrate), how many
    could not, and what was held out."""

    repeat: int
    fold: int
    train: pd.DataFrame
    targets: pd.DataFrame
    n_unscored: int
    held_out: str


def _folds(plan: _Plan) -> Iterator[_Fold]:
    """Every fold of every repeat, its targets scaled by constants from rows
    that hold none of its test cells (module docstring)."""
    scores = plan.scores
    substrate_of = scores.drop_duplicates("scenario").set_index("scenario")["substrate"]
    row_key = pd.MultiIndex.from_frame(scores[["team", "scenario"]])
    anchor_rows = scores[scores["team"].isin(plan.anchors)]
    for repeat, fold_of in enumerate(plan.assignments):
        for fold in range(plan.k):
            test_cells = plan.scored[fold_of == fold]
            is_test = row_key.isin(pd.MultiIndex.from_frame(test_cells[["team", "scenario"]]))
            # a held-out scenario contributes nothing to training, anchors included
            train_rows = scores[~is_test] if plan.split == "random" else \
                scores[~scores["scenario"].isin(set(test_cells["scenario"]))]
            reference_rows = anchor_rows if plan.anchors else train_rows
            train, test = fold_targets(train_rows, scores[is_test], reference_rows, plan.normalisation,
                                       substrate_of, plan.range_floor)
            targets = safe_mean(test["score"], [test["team"], test["scenario"]]).rename("observed").reset_index()
            targets = targets.merge(test_cells, on=["team", "scenario"], how="left")
            # a team with no training cell in this fold cannot be predicted (small tables only)
            targets = targets[targets["team"].isin(set(train["team"]))].reset_index(drop=True)
            held_out = ", ".join(sorted(test_cells[plan.group_column].unique())) if plan.group_column else \
                f"{len(test_cells)} cells"
            yield _Fold(repeat, fold, train, targets, len(test_cells) - len(targets), held_out)


def _cross_validate(plan: _Plan, specs: dict[str, ModelSpec], demands: pd.DataFrame, seed: int, draws: int,
                    tune: int, progress: bool) -> tuple[list[pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Fit and score every model on every fold: the scored cells (one frame
    per fit), the ``fits`` table and the Bayesian fits' diagnostics."""
    from tqdm.auto import tqdm

    names = list(specs)
    cell_parts, fit_rows, diag_rows = [], [], []
    bar = tqdm(total=len(plan.assignments) * plan.k * len(names), desc=f"evaluate ({plan.split}, {plan.k}-fold)",
               unit="fit", disable=not progress, leave=False)
    for fold in _folds(plan):
        if fold.targets.empty:
            fit_rows.extend(_fit_row(name, plan.split, fold, 0, np.nan, held_out="") for name in names)
            bar.update(len(names))
            continue
        for name in names:
            bar.set_postfix_str(f"{name}, repeat {fold.repeat} fold {fold.fold}")
            # each fold's own seed, folded back into the range seeds take
            fold_seed = (seed + fold.repeat * plan.k + fold.fold) % (SEED_MAX + 1)
            predictor = specs[name].make(seed=fold_seed, draws=draws, tune=tune)
            part, fit_s = _fit_and_predict(predictor, fold, demands)
            cell_parts.append(part.assign(model=name, split=plan.split, repeat=fold.repeat, fold=fold.fold))
            n_train = int(fold.train[["team", "scenario"]].drop_duplicates().shape[0])
            fit_rows.append(_fit_row(name, plan.split, fold, n_train, fit_s, held_out=fold.held_out))
            if predictor.is_bayesian:
                diag_rows.append({"model": name, "split": plan.split, "repeat": fold.repeat, "fold": fold.fold,
                                  **predictor.diagnostics_})
            bar.update()
    bar.close()
    return cell_parts, pd.DataFrame(fit_rows), pd.DataFrame(diag_rows)


def _fit_and_predict(predictor, fold: _Fold, demands: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """``predictor`` fitted on the fold's training rows: its predictions for
    the fold's targets and the wall seconds of the fit."""
    start = time.perf_counter()
    predictor.fit(fold.train, demands)
    fit_s = time.perf_counter() - start
    frame = predictor.predict(fold.targets["team"].tolist(), fold.targets["scenario"].tolist())
    part = fold.targets.assign(predicted=frame["predicted"].to_numpy(float), low=frame["low"].to_numpy(float),
                               high=frame["high"].to_numpy(float),
                               interval_level=predictor.interval_level if predictor.has_intervals else np.nan)
    return part, fit_s


def _fit_row(name: str, split: str, fold: _Fold, n_train_cells: int, fit_s: float, held_out: str) -> dict:
    return {"model": name, "split": split, "repeat": fold.repeat, "fold": fold.fold, "n_train_cells": n_train_cells,
            "n_test_cells": len(fold.targets), "n_unscored": fold.n_unscored, "fit_s": fit_s, "held_out": held_out}


def _cell_results(parts: list[pd.DataFrame], cluster_column: str) -> tuple[pd.DataFrame, pd.Series]:
    """The ``cells`` table (CELL_COLUMNS) and each model's interval level."""
    if not parts:
        raise CapprofError(
            "no test cell could be scored: in every fold the held-out cells' scenarios had no training or anchor "
            "rows with a non-zero range to set their scale, or their teams no training cell; use more teams, "
            "scenarios or replicates, or --normalise none"
        )
    cells = pd.concat(parts, ignore_index=True)
    cells["cluster"] = cells[cluster_column]
    cells["sq_error"] = (cells["predicted"] - cells["observed"]) ** 2
    inside = (cells["low"] <= cells["observed"]) & (cells["observed"] <= cells["high"])
    cells["covered"] = inside.astype(float).where(cells["low"].notna() & cells["high"].notna())
    levels = cells.groupby("model")["interval_level"].first()
    return cells[list(CELL_COLUMNS)], levels


def _unscored_cells(fits: pd.DataFrame) -> int:
    """Test cells no model could score (counted once per fold), with a note."""
    unscored = int(fits.drop_duplicates(["repeat", "fold"])["n_unscored"].sum())
    if unscored:
        note(f"{unscored} test cell(s) could not be scored: in their fold their scenario had no usable "
             "normalising constants (no training or anchor rows, or a zero range) or their team no training cell")
    return unscored


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
