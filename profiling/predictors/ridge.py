"""A compensatory linear model of team x demand (ridge regression)."""

from __future__ import annotations

import numpy as np

from capprof.profiling.predictors.base import Predictor, prediction_frame, team_demand_design


class DemandRidge(Predictor):
    """Compensatory linear model: y_ts = a_t + sum_d (b_d + c_td) L_sd, fitted by
    ridge (penalty ``alpha``) on team one-hot, demands and team x demand
    interactions. Demands add up, so a strength can make up for a weakness:
    the opposite assumption to the measurement layout's product."""

    name = "ridge"

    param_minimums = {"alpha": 0.0}

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _fit(self, cells):
        from sklearn.linear_model import Ridge

        x = team_demand_design(cells["team"], self.teams_, self._demands_for(cells["scenario"], None), True)
        model = Ridge(alpha=self.alpha).fit(x, cells["score"].to_numpy())
        self.coef_, self.intercept_ = model.coef_.astype(float), float(model.intercept_)

    def _predict(self, teams, scenarios, demands):
        x = team_demand_design(teams, self.teams_, self._demands_for(scenarios, demands), True)
        return prediction_frame(teams, scenarios, x @ self.coef_ + self.intercept_)

    def _state(self):
        return {"coef": self.coef_.tolist(), "intercept": self.intercept_}

    def _restore(self, state):
        self.coef_, self.intercept_ = np.asarray(state["coef"], float), float(state["intercept"])
