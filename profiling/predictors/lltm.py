"""A team x demand logistic model with a scenario effect (LLTM-like).

    logit(mu_ts) = a_t + sum_d (b_d + c_td) L_sd + r_s

a_t: team level; b_d: how much demand d moves every team's score; c_td:
team t's own ability on demand d (its departure from b_d); r_s: scenario
s's residual difficulty beyond its demands. This is the linear logistic
test model's idea (item difficulty decomposed into demand weights, plus a
residual per item), with an ability per team and demand.

Fitted by penalised maximum likelihood with a quasi-binomial loss,
-[y log mu + (1 - y) log(1 - mu)], which is defined for exact 0 and 1 (21%
of min-max normalised cells) and whose minimum over mu is at mu = y. The
ridge penalties shrink c towards 0 (teams towards the common demand
effect) and r towards 0; r's prior mean, 0, is what an unseen scenario
gets, so a new scenario is predicted from its demands alone. L-BFGS on the
exact gradient: about a second on the published data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capprof.profiling.predictors.base import Predictor, prediction_frame


class DemandLogistic(Predictor):
    """Team x demand logistic model with a shrunken scenario residual.

    Parameters: penalties ``team_penalty`` (a), ``demand_penalty`` (b),
    ``ability_penalty`` (c, team x demand), ``scenario_penalty`` (r), and
    ``max_iter`` for L-BFGS (defaults chosen on four random 10% splits of
    the published results, seeds 10-13, apart from the seeds reported in
    docs/evaluation.md). Learned: ``team_level_`` (Series by team),
    ``demand_effect_`` (Series by demand), ``ability_`` (DataFrame team x
    demand, b_d + c_td on the logit scale), ``scenario_effect_`` (Series by
    fitted scenario), ``intercept_``.
    """

    name = "lltm"

    param_minimums = {"team_penalty": 0.0, "demand_penalty": 0.0, "ability_penalty": 0.0,
                      "scenario_penalty": 0.0, "max_iter": 1}

    def __init__(self, team_penalty: float = 0.1, demand_penalty: float = 0.1, ability_penalty: float = 0.1,
                 scenario_penalty: float = 0.3, max_iter: int = 1000):
        self.team_penalty = team_penalty
        self.demand_penalty = demand_penalty
        self.ability_penalty = ability_penalty
        self.scenario_penalty = scenario_penalty
        self.max_iter = max_iter

    def _fit(self, cells):
        from scipy.optimize import minimize

        levels, team, scen, y = self._cell_arrays(cells)  # levels: (S, D)
        n_t, n_s, n_d = len(self.teams_), len(self.scenarios_), levels.shape[1]
        sizes = (1, n_t, n_d, n_t * n_d, n_s)
        cuts = np.cumsum(sizes)[:-1]
        penalty = np.concatenate([np.zeros(1), np.full(n_t, self.team_penalty), np.full(n_d, self.demand_penalty),
                                  np.full(n_t * n_d, self.ability_penalty), np.full(n_s, self.scenario_penalty)])
        cell_levels = levels[scen]  # (n, D)
        team_onehot = np.eye(n_t)[team]  # (n, T)

        def objective(w):
            w0, a, b, c, r = np.split(w, cuts)
            theta = b + c.reshape(n_t, n_d)  # (T, D)
            eta = w0 + a[team] + np.einsum("nd,nd->n", cell_levels, theta[team]) + r[scen]
            loss = np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * np.sum(penalty * w * w)
            g = 1.0 / (1.0 + np.exp(-eta)) - y  # d loss / d eta
            grad_theta = team_onehot.T @ (g[:, None] * cell_levels)  # (T, D)
            grad = np.concatenate([[g.sum()], np.bincount(team, g, n_t), grad_theta.sum(axis=0),
                                   grad_theta.ravel(), np.bincount(scen, g, n_s)])
            return loss, grad + penalty * w

        start = np.zeros(sum(sizes))
        start[0] = np.log((y.mean() + 1e-3) / (1.0 - y.mean() + 1e-3))
        result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter})
        w0, a, b, c, r = np.split(result.x, cuts)
        columns = list(self.demands_.columns)
        self.intercept_ = float(w0[0])
        self.team_level_ = pd.Series(a, index=self.teams_)
        self.demand_effect_ = pd.Series(b, index=columns)
        self.ability_ = pd.DataFrame(b + c.reshape(n_t, n_d), index=self.teams_, columns=columns)
        self.scenario_effect_ = pd.Series(r, index=self.scenarios_)
        self.converged_ = bool(result.success)

    def _predict(self, teams, scenarios, demands):
        levels = self._demands_for(scenarios, demands).to_numpy(dtype=float)
        theta = self.ability_.loc[teams].to_numpy()
        residual = self.scenario_effect_.reindex(scenarios).fillna(0.0).to_numpy()  # unseen: prior mean 0
        eta = self.intercept_ + self.team_level_.loc[teams].to_numpy() + np.sum(levels * theta, axis=1) + residual
        return prediction_frame(teams, scenarios, 1.0 / (1.0 + np.exp(-eta)))

    def _state(self):
        return {"intercept": self.intercept_, "team_level": self.team_level_.tolist(),
                "ability": self.ability_.to_numpy().tolist(), "demand_effect": self.demand_effect_.tolist(),
                "scenarios": list(self.scenarios_), "scenario_effect": self.scenario_effect_.tolist(),
                "converged": self.converged_}

    def _restore(self, state):
        columns = list(self.demands_.columns)
        self.intercept_ = float(state["intercept"])
        self.team_level_ = pd.Series(state["team_level"], index=self.teams_, dtype=float)
        self.demand_effect_ = pd.Series(state["demand_effect"], index=columns, dtype=float)
        self.ability_ = pd.DataFrame(state["ability"], index=self.teams_, columns=columns, dtype=float)
        self.scenarios_ = list(state["scenarios"])
        self.scenario_effect_ = pd.Series(state["scenario_effect"], index=self.scenarios_, dtype=float)
        self.converged_ = bool(state["converged"])
