"""A low-rank factorisation of the team x scenario table with demand side
information.

    logit(mu_ts) = m + a_t + (L_s beta + d_s) + u_t . v_s,   v_s = L_s W + e_s

u_t: team t's k latent factors; v_s: scenario s's factors, predicted from
its demand row L_s through W (D x k) plus a residual e_s; a_t, L_s beta +
d_s: team and scenario levels (the scenario's again from its demands plus
a residual). Ridge penalties on every block keep the fit stable with few
teams; the residuals d_s and e_s shrink towards 0, their prior mean, which
is what an unseen scenario gets, so it is placed by its demands alone.

The loss is quasi-binomial, -[y log mu + (1 - y) log(1 - mu)], defined for
exact 0 and 1. L-BFGS on the exact gradient from a small seeded random
start: about a second on the published data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capprof.profiling.predictors.base import Predictor, prediction_frame


class LowRankDemand(Predictor):
    """Logistic low-rank factorisation with demand side information.

    Parameters: ``rank`` (k), ``factor_penalty`` (u and W), ``residual_penalty``
    (the scenario residuals d and e), ``level_penalty`` (a and beta),
    ``seed`` (the random start), ``max_iter`` for L-BFGS. Learned:
    ``team_factors_`` (T x k), ``demand_loadings_`` (D x k),
    ``scenario_residuals_`` (S x k), ``team_level_``, ``demand_level_``,
    ``scenario_level_`` (the residual d), ``intercept_``.
    """

    name = "lowrank"

    param_minimums = {"rank": 1, "factor_penalty": 0.0, "residual_penalty": 0.0, "level_penalty": 0.0,
                      "max_iter": 1}

    def __init__(self, rank: int = 2, factor_penalty: float = 1.0, residual_penalty: float = 1.0,
                 level_penalty: float = 0.1, seed: int = 0, max_iter: int = 1000):
        self.rank = rank
        self.factor_penalty = factor_penalty
        self.residual_penalty = residual_penalty
        self.level_penalty = level_penalty
        self.seed = seed
        self.max_iter = max_iter

    def _fit(self, cells):
        from scipy.optimize import minimize

        levels, team, scen, y = self._cell_arrays(cells)  # levels: (S, D)
        n_t, n_s, n_d, k = len(self.teams_), len(self.scenarios_), levels.shape[1], int(self.rank)
        team_onehot = np.eye(n_t)[team]  # (n, T)
        scen_onehot = np.eye(n_s)[scen]  # (n, S)
        # blocks: m, a (T), beta (D), d (S), U (T k), W (D k), E (S k)
        sizes = (1, n_t, n_d, n_s, n_t * k, n_d * k, n_s * k)
        cuts = np.cumsum(sizes)[:-1]
        penalty = np.concatenate([
            np.zeros(1), np.full(n_t, self.level_penalty), np.full(n_d, self.level_penalty),
            np.full(n_s, self.residual_penalty), np.full(n_t * k, self.factor_penalty),
            np.full(n_d * k, self.factor_penalty), np.full(n_s * k, self.residual_penalty),
        ])

        def objective(w):
            m, a, beta, d, u, wl, e = np.split(w, cuts)
            u, wl, e = u.reshape(n_t, k), wl.reshape(n_d, k), e.reshape(n_s, k)
            v = levels @ wl + e  # (S, k)
            eta = m + a[team] + (levels @ beta + d)[scen] + np.einsum("nk,nk->n", u[team], v[scen])
            loss = np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * np.sum(penalty * w * w)
            g = 1.0 / (1.0 + np.exp(-eta)) - y  # d loss / d eta
            g_scen = scen_onehot.T @ g  # (S,)
            grad_u = team_onehot.T @ (g[:, None] * v[scen])  # (T, k)
            grad_v = scen_onehot.T @ (g[:, None] * u[team])  # (S, k)
            grad = np.concatenate([[g.sum()], team_onehot.T @ g, levels.T @ g_scen, g_scen,
                                   grad_u.ravel(), (levels.T @ grad_v).ravel(), grad_v.ravel()])
            return loss, grad + penalty * w

        start = np.random.default_rng(self.seed).normal(0.0, 0.1, sum(sizes))
        start[0] = np.log((y.mean() + 1e-3) / (1.0 - y.mean() + 1e-3))
        result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter})
        m, a, beta, d, u, wl, e = np.split(result.x, cuts)
        self.intercept_ = float(m[0])
        self.team_level_ = pd.Series(a, index=self.teams_)
        self.demand_level_ = pd.Series(beta, index=list(self.demands_.columns))
        self.scenario_level_ = pd.Series(d, index=self.scenarios_)
        self.team_factors_ = pd.DataFrame(u.reshape(n_t, k), index=self.teams_)
        self.demand_loadings_ = pd.DataFrame(wl.reshape(n_d, k), index=list(self.demands_.columns))
        self.scenario_residuals_ = pd.DataFrame(e.reshape(n_s, k), index=self.scenarios_)
        self.converged_ = bool(result.success)

    def _predict(self, teams, scenarios, demands):
        levels = self._demands_for(scenarios, demands).to_numpy(dtype=float)
        k = self.team_factors_.shape[1]
        # an unseen scenario's residuals are their prior mean, 0
        residual = self.scenario_residuals_.reindex(scenarios).fillna(0.0).to_numpy().reshape(-1, k)
        v = levels @ self.demand_loadings_.to_numpy() + residual
        eta = (self.intercept_ + self.team_level_.loc[teams].to_numpy()
               + levels @ self.demand_level_.to_numpy() + self.scenario_level_.reindex(scenarios).fillna(0.0).to_numpy()
               + np.sum(self.team_factors_.loc[teams].to_numpy() * v, axis=1))
        return prediction_frame(teams, scenarios, 1.0 / (1.0 + np.exp(-eta)))

    def _state(self):
        return {"intercept": self.intercept_, "team_level": self.team_level_.tolist(),
                "demand_level": self.demand_level_.tolist(), "scenarios": list(self.scenarios_),
                "scenario_level": self.scenario_level_.tolist(),
                "team_factors": self.team_factors_.to_numpy().tolist(),
                "demand_loadings": self.demand_loadings_.to_numpy().tolist(),
                "scenario_residuals": self.scenario_residuals_.to_numpy().tolist(), "converged": self.converged_}

    def _restore(self, state):
        columns = list(self.demands_.columns)
        self.intercept_ = float(state["intercept"])
        self.scenarios_ = list(state["scenarios"])
        self.team_level_ = pd.Series(state["team_level"], index=self.teams_, dtype=float)
        self.demand_level_ = pd.Series(state["demand_level"], index=columns, dtype=float)
        self.scenario_level_ = pd.Series(state["scenario_level"], index=self.scenarios_, dtype=float)
        self.team_factors_ = pd.DataFrame(state["team_factors"], index=self.teams_, dtype=float)
        self.demand_loadings_ = pd.DataFrame(state["demand_loadings"], index=columns, dtype=float)
        self.scenario_residuals_ = pd.DataFrame(state["scenario_residuals"], index=self.scenarios_, dtype=float)
        self.converged_ = bool(state["converged"])
