"""The assessor: XGBoost on team identity and scenario demands."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from capprof.errors import CapprofError
from capprof.profiling.predictors.base import Predictor, prediction_frame, team_demand_design

BOOSTER_FILE = "booster.json"


class Assessor(Predictor):
    """XGBoost regression of the cell mean score on team identity (one-hot)
    and the scenario's demands (substrate one-hot, mode, tags, graded levels),
    as in the contest report's assessor. ``feature_importances_`` is a
    DataFrame (feature, importance) of XGBoost's gain importances."""

    name = "assessor"

    param_minimums = {"n_estimators": 1, "max_depth": 1, "n_jobs": 1}
    param_above = {"learning_rate": 0.0, "subsample": 0.0}
    param_maximums = {"subsample": 1.0}

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
        x = team_demand_design(cells["team"], self.teams_, demand_rows, False)
        self.model_ = XGBRegressor(
            n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
            subsample=self.subsample, random_state=self.seed, n_jobs=self.n_jobs,
            importance_type="gain",
        ).fit(x, cells["score"].to_numpy())
        self._set_importances()

    def _set_importances(self) -> None:
        self.feature_names_ = [f"team={t}" for t in self.teams_] + list(self.demands_.columns)
        self.feature_importances_ = pd.DataFrame({
            "feature": self.feature_names_,
            "importance": self.model_.feature_importances_.astype(float),
        }).sort_values("importance", ascending=False, ignore_index=True)

    def _predict(self, teams, scenarios, demands):
        x = team_demand_design(teams, self.teams_, self._demands_for(scenarios, demands), False)
        return prediction_frame(teams, scenarios, self.model_.predict(x))

    # ------------------------------------------------------------ persistence

    def save_booster(self, path) -> None:
        """The trees in XGBoost's own JSON model format (portable, no pickle)."""
        self.model_.save_model(str(path))

    @classmethod
    def from_booster(cls, path, teams, demands: pd.DataFrame, fix: str = "fit and save the assessor again",
                     **params) -> "Assessor":
        """A fitted assessor from a booster file written by ``save_booster``,
        with the teams and demand rows (or just the columns) it was fitted
        on; a missing or damaged file is one CapprofError line ending in ``fix``."""
        predictor = cls(**params)
        predictor._restore_fitted(teams, demands)
        predictor._read_booster(Path(path), fix)
        return predictor

    def _read_booster(self, path: Path, fix: str = "fit and save the assessor again") -> None:
        from xgboost import XGBRegressor
        from xgboost.core import XGBoostError

        if not path.is_file():
            raise CapprofError(f"{path} is missing; {fix}")
        model = XGBRegressor(importance_type="gain")
        try:
            model.load_model(str(path))
        except (XGBoostError, ValueError, UnicodeDecodeError):
            raise CapprofError(f"{path} is not a readable XGBoost model (truncated?); {fix}") from None
        expected = len(self.teams_) + len(self.demands_.columns)
        if model.n_features_in_ != expected:
            raise CapprofError(f"{path} was fitted on {model.n_features_in_} features, not the {expected} "
                               f"teams and demands saved beside it; {fix}")
        self.model_ = model
        self._set_importances()

    def _save_files(self, directory: Path) -> None:
        self.save_booster(directory / BOOSTER_FILE)

    def _load_files(self, directory: Path) -> None:
        self._read_booster(directory / BOOSTER_FILE)
