"""Score predictors with one interface (docs/evaluation.md).

Every predictor is shaped like a scikit-learn estimator:

* parameters in ``__init__``;
* ``fit(scores, demands)``: ``scores`` is a normalised score table
  (capprof.scores schema, one row per replicate); ``demands`` is a demand
  matrix (capprof.tagging.demands.demand_matrix) covering at least the
  scenarios in ``scores`` and, for predictions on unseen scenarios, those too;
* ``predict(teams, scenarios, demands=None)``: teams and scenarios are
  equal-length sequences naming (team, scenario) pairs; returns a DataFrame
  with columns team, scenario, predicted (the expected mean normalised score
  of that cell), low, high (a 90% predictive interval; NaN for models
  without one). ``demands`` describes scenarios not given at fit time;
* learned state lives in attributes ending in ``_``.

All predictors model the per-(team, scenario) mean over replicates: that
is what evaluation scores (docs/evaluation.md), and it gives every model
the same unit of data.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, did_you_mean

PREDICTION_COLUMNS = ("team", "scenario", "predicted", "low", "high")


def cell_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean score per (team, scenario): columns team, scenario, score, n
    (number of replicates averaged)."""
    grouped = scores.groupby(["team", "scenario"], sort=True)["score"]
    out = grouped.agg(score="mean", n="size").reset_index()
    return out


def _prediction_frame(teams, scenarios, predicted, low=None, high=None) -> pd.DataFrame:
    n = len(predicted)
    return pd.DataFrame({
        "team": list(teams),
        "scenario": list(scenarios),
        "predicted": np.asarray(predicted, dtype=float),
        "low": np.full(n, np.nan) if low is None else np.asarray(low, dtype=float),
        "high": np.full(n, np.nan) if high is None else np.asarray(high, dtype=float),
    })


class Predictor:
    """Shared checks; subclasses implement ``_fit`` and ``_predict``."""

    name = "predictor"

    def fit(self, scores: pd.DataFrame, demands: pd.DataFrame | None = None):
        if len(scores) == 0:
            raise CapprofError("no training scores to fit; check the split or the score table")
        self.teams_ = sorted(scores["team"].unique())
        if demands is not None:
            missing = sorted(set(scores["scenario"]) - set(demands.index))
            if missing:
                raise CapprofError(
                    f'{len(missing)} scored scenario(s) have no demands, e.g. "{missing[0]}"; '
                    "describe them with --demands FILE (docs/demands.md)"
                )
            self.demands_ = demands.astype(float)
        else:
            self.demands_ = None
        start = time.perf_counter()
        self._fit(cell_means(scores))
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def predict(self, teams: Sequence[str], scenarios: Sequence[str],
                demands: pd.DataFrame | None = None) -> pd.DataFrame:
        if not hasattr(self, "teams_"):
            raise CapprofError(f"{self.name}: call fit before predict")
        teams, scenarios = list(teams), list(scenarios)
        if len(teams) != len(scenarios):
            raise CapprofError("predict needs one team per scenario (equal-length lists)")
        unknown = sorted(set(teams) - set(self.teams_))
        if unknown:
            raise CapprofError(
                f'team "{unknown[0]}" was not in the training scores{did_you_mean(unknown[0], self.teams_)}; '
                "predictions exist only for fitted teams"
            )
        return self._predict(teams, scenarios, demands)

    def _demands_for(self, scenarios: Sequence[str], demands: pd.DataFrame | None) -> pd.DataFrame:
        """Demand rows of ``scenarios`` in the fitted column order. Columns the
        fitted model never saw must be zero: it has nothing to say about them."""
        table = self.demands_ if demands is None else demands
        if table is None:
            raise CapprofError(f"{self.name}: needs demands; pass a demand matrix to fit")
        if demands is not None and self.demands_ is not None:
            known = self.demands_.drop(index=[s for s in demands.index if s in self.demands_.index])
            table = pd.concat([known, demands.reindex(columns=self.demands_.columns.union(demands.columns))])
        missing = [s for s in dict.fromkeys(scenarios) if s not in table.index]
        if missing:
            raise CapprofError(
                f'scenario "{missing[0]}" has no demands ({len(missing)} such); describe it in a demands file'
            )
        rows = table.loc[list(scenarios)].fillna(0.0)
        extra = [c for c in rows.columns if c not in self.demands_.columns and (rows[c] != 0).any()]
        if extra:
            raise CapprofError(
                f'demand "{extra[0]}" was not part of the fitted model ({len(extra)} such); '
                "refit with it, or drop it from the scenarios to predict"
            )
        return rows.reindex(columns=self.demands_.columns, fill_value=0.0)


class AggMean(Predictor):
    """Each team's mean training score over cells (the contest report's
    AggMean baseline): predicted_ts = mean_{s in train} y_ts."""

    name = "aggmean"

    def _fit(self, cells):
        self.team_mean_ = cells.groupby("team")["score"].mean()

    def _predict(self, teams, scenarios, demands):
        return _prediction_frame(teams, scenarios, self.team_mean_.loc[teams].to_numpy())


class AdditiveTeamScenario(Predictor):
    """y_ts = m + a_t + b_s, fitted by ridge least squares on one-hot team and
    scenario indicators (penalty ``alpha``). An unseen scenario gets b_s = 0,
    so this model only helps on random-cell splits; it is the statistician's
    two-way ANOVA baseline without demands."""

    name = "additive"

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _fit(self, cells):
        from sklearn.linear_model import Ridge

        self.scenarios_ = sorted(cells["scenario"].unique())
        x = self._design(cells["team"], cells["scenario"])
        self.model_ = Ridge(alpha=self.alpha).fit(x, cells["score"].to_numpy())

    def _design(self, teams, scenarios):
        team_codes = pd.Index(self.teams_).get_indexer(list(teams))
        scen_codes = pd.Index(self.scenarios_).get_indexer(list(scenarios))  # -1: unseen
        x = np.zeros((len(team_codes), len(self.teams_) + len(self.scenarios_)))
        x[np.arange(len(x)), team_codes] = 1.0
        seen = scen_codes >= 0  # unseen scenario: no indicator, b_s = 0
        x[np.flatnonzero(seen), len(self.teams_) + scen_codes[seen]] = 1.0
        return x

    def _predict(self, teams, scenarios, demands):
        return _prediction_frame(teams, scenarios, self.model_.predict(self._design(teams, scenarios)))


def team_demand_design(teams: Sequence[str], all_teams: Sequence[str], demand_rows: pd.DataFrame,
                       interactions: bool) -> np.ndarray:
    """Feature matrix: team one-hot, scenario demands, and (with
    ``interactions``) team one-hot x demands, so each team gets its own slope
    per demand."""
    codes = pd.Index(list(all_teams)).get_indexer(list(teams))
    onehot = np.zeros((len(codes), len(all_teams)))
    onehot[np.arange(len(codes)), codes] = 1.0
    levels = demand_rows.to_numpy(dtype=float)
    parts = [onehot, levels]
    if interactions:
        parts.append((onehot[:, :, None] * levels[:, None, :]).reshape(len(codes), -1))
    return np.hstack(parts)


class DemandRidge(Predictor):
    """Compensatory linear model: y_ts = a_t + sum_d (b_d + c_td) L_sd, fitted by
    ridge (penalty ``alpha``) on team one-hot, demands and team x demand
    interactions. Demands add up, so a strength can make up for a weakness:
    the opposite assumption to the measurement layout's product."""

    name = "ridge"

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _fit(self, cells):
        from sklearn.linear_model import Ridge

        x = team_demand_design(cells["team"], self.teams_, self._demands_for(cells["scenario"], None), True)
        self.model_ = Ridge(alpha=self.alpha).fit(x, cells["score"].to_numpy())

    def _predict(self, teams, scenarios, demands):
        x = team_demand_design(teams, self.teams_, self._demands_for(scenarios, demands), True)
        return _prediction_frame(teams, scenarios, self.model_.predict(x))


class Assessor(Predictor):
    """XGBoost regression of the cell mean score on team identity (one-hot)
    and the scenario's demands (substrate one-hot, mode, tags, graded levels),
    as in the contest report's assessor. ``feature_importances_`` is a
    DataFrame (feature, importance) of XGBoost's gain importances."""

    name = "assessor"

    def __init__(self, n_estimators: int = 300, max_depth: int = 4, learning_rate: float = 0.05,
                 subsample: float = 0.9, seed: int = 0, n_jobs: int = 2):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.seed = seed
        self.n_jobs = n_jobs

    def _fit(self, cells):
        from xgboost import XGBRegressor

        demand_rows = self._demands_for(cells["scenario"], None)
        self.feature_names_ = [f"team={t}" for t in self.teams_] + list(demand_rows.columns)
        x = team_demand_design(cells["team"], self.teams_, demand_rows, False)
        self.model_ = XGBRegressor(
            n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
            subsample=self.subsample, random_state=self.seed, n_jobs=self.n_jobs,
            importance_type="gain",
        ).fit(x, cells["score"].to_numpy())
        self.feature_importances_ = pd.DataFrame({
            "feature": self.feature_names_,
            "importance": self.model_.feature_importances_.astype(float),
        }).sort_values("importance", ascending=False, ignore_index=True)

    def _predict(self, teams, scenarios, demands):
        x = team_demand_design(teams, self.teams_, self._demands_for(scenarios, demands), False)
        return _prediction_frame(teams, scenarios, self.model_.predict(x))

    def save(self, path) -> None:
        """XGBoost's own JSON model format (portable, no pickle)."""
        self.model_.save_model(str(path))

    def load_booster(self, path, teams, demand_columns) -> "Assessor":
        """Restore a saved model for prediction (teams and demand columns as fitted)."""
        from xgboost import XGBRegressor

        self.model_ = XGBRegressor()
        self.model_.load_model(str(path))
        self.teams_ = list(teams)
        self.demands_ = pd.DataFrame(columns=list(demand_columns), dtype=float)
        self.feature_names_ = [f"team={t}" for t in self.teams_] + list(demand_columns)
        return self
