"""The two-way additive model y = m + a_team + b_scenario (no demands)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capprof.profiling.predictors.base import Predictor, prediction_frame


class AdditiveTeamScenario(Predictor):
    """y_ts = m + a_t + b_s, fitted by ridge least squares on one-hot team and
    scenario indicators (penalty ``alpha``). An unseen scenario gets b_s = 0,
    so this model only helps on random-cell splits; it is the statistician's
    two-way ANOVA baseline without demands."""

    name = "additive"
    needs_demands = False

    param_minimums = {"alpha": 0.0}

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _fit(self, cells):
        from sklearn.linear_model import Ridge

        self.scenarios_ = sorted(cells["scenario"].unique())
        model = Ridge(alpha=self.alpha).fit(self._design(cells["team"], cells["scenario"]), cells["score"].to_numpy())
        self.coef_, self.intercept_ = model.coef_.astype(float), float(model.intercept_)

    def _design(self, teams, scenarios):
        team_codes = pd.Index(self.teams_).get_indexer(list(teams))
        scen_codes = pd.Index(self.scenarios_).get_indexer(list(scenarios))  # -1: unseen
        x = np.zeros((len(team_codes), len(self.teams_) + len(self.scenarios_)))
        x[np.arange(len(x)), team_codes] = 1.0
        seen = scen_codes >= 0  # unseen scenario: no indicator, b_s = 0
        x[np.flatnonzero(seen), len(self.teams_) + scen_codes[seen]] = 1.0
        return x

    def _predict(self, teams, scenarios, demands):
        return prediction_frame(teams, scenarios, self._design(teams, scenarios) @ self.coef_ + self.intercept_)

    def _state(self):
        return {"scenarios": list(self.scenarios_), "coef": self.coef_.tolist(), "intercept": self.intercept_}

    def _restore(self, state):
        self.scenarios_ = list(state["scenarios"])
        self.coef_, self.intercept_ = np.asarray(state["coef"], float), float(state["intercept"])
