"""Score tables simulated from the measurement layout itself, with known
abilities: the ground truth that checks the layout recovers what it should
(tests/test_profiling_layout.py) and a way to try the commands without data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capprof.profiling.layout import DemandIndex, expected_score, unsqueeze


def simulate_layout_scores(demands: pd.DataFrame, n_teams: int, replicates: int = 1, seed: int = 0,
                           ability_mean: float = 2.0, ability_sd: float = 1.5, noise: float = 0.05,
                           precision: float = 30.0, scale: float = 1.0, chance: float = 0.0,
                           substrate_of: dict | None = None,
                           squeeze: float = 0.01) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw abilities theta_td ~ Normal(ability_mean, ability_sd) for teams
    "team_0", ..., and scores y ~ Beta(mu phi, (1 - mu) phi) with the layout's
    mu (``expected_score``) for every (team, scenario, replicate).

    Returns (scores in the capprof.scores schema, true abilities as a tidy
    frame team, ability, value). ``substrate_of`` maps scenario -> substrate
    (default: the scenario's name before "_" or the scenario itself)."""
    rng = np.random.default_rng(seed)
    teams = [f"team_{i}" for i in range(n_teams)]
    index = DemandIndex.from_matrix(demands)
    theta = rng.normal(ability_mean, ability_sd, size=(n_teams, demands.shape[1]))
    rows = []
    for t, team in enumerate(teams):
        mu = expected_score(theta[t], np.float64(noise), index.index, index.level, scale, chance)
        for r in range(replicates):
            y = np.clip(unsqueeze(rng.beta(mu * precision, (1 - mu) * precision), squeeze), 0.0, 1.0)
            for s, scenario in enumerate(index.scenarios):
                substrate = (substrate_of or {}).get(scenario, scenario.rsplit("_", 1)[0])
                rows.append((team, scenario, substrate, r, float(y[s]), np.nan, "simulated"))
    scores = pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score",
                                         "background_score", "source"])
    truth = pd.DataFrame(theta, index=pd.Index(teams, name="team"),
                         columns=pd.Index(demands.columns, name="ability")).stack().rename("value").reset_index()
    return scores, truth
