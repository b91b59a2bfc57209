"""AggMean: each team's mean training score (the contest report's baseline)."""

from __future__ import annotations

import pandas as pd

from capprof.profiling.predictors.base import Predictor, prediction_frame


class AggMean(Predictor):
    """Each team's mean training score over cells:
    predicted_ts = mean_{s in train} y_ts."""

    name = "aggmean"
    needs_demands = False

    def _fit(self, cells):
        self.team_mean_ = cells.groupby("team")["score"].mean()

    def _predict(self, teams, scenarios, demands):
        return prediction_frame(teams, scenarios, self.team_mean_.loc[teams].to_numpy())

    def _state(self):
        return {"team_mean": {str(k): float(v) for k, v in self.team_mean_.items()}}

    def _restore(self, state):
        self.team_mean_ = pd.Series(state["team_mean"], dtype=float)
