"""Score tables simulated from the measurement layout itself, with known
abilities: the ground truth that checks the layout recovers what it should
(tests/test_profiling_layout.py, bench/bench_recovery.py) and a way to try
the commands without data.

The generative model is the layout's own (profiling/layout.py,
docs/layout.md): with probability ``noise`` a replicate scores 0 (chance);
otherwise a latent y* ~ Beta(p phi, (1 - p) phi) is unsqueezed and clipped,
y = clip((y* - e) / (1 - 2 e), 0, 1), so low abilities against high demands
give scores of exactly 0 and strong teams on easy scenarios exactly 1, as
min-max normalised scores do.

``generator`` departs from that model on purpose, to check how far the
layout can be trusted when the world is not its own (bench/bench_recovery.py):
``compensatory`` (p = sigmoid of the *mean* of theta - L over the demanded
slots: strength on one demand makes up for weakness on another),
``team-slope`` (each team's own logistic slope, k_t ~ LogNormal(0, 0.5),
where the layout assumes one) and ``heavy-tails`` (the latent score is
sigmoid(logit p + 0.3 t_2) with Student-t noise of 2 degrees of freedom
instead of the Beta)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capprof.profiling.layout import DemandIndex
from capprof.profiling.likelihood import simulate_observed, success_probability, unsqueeze


GENERATORS = ("layout", "compensatory", "team-slope", "heavy-tails")


def simulate_layout_scores(demands: pd.DataFrame, n_teams: int, replicates: int = 1, seed: int = 0,
                           ability_mean: float = 2.0, ability_sd: float = 1.5, noise: float = 0.05,
                           precision: float = 30.0, scale: float = 1.0, chance: float = 0.0,
                           substrate_of: dict | None = None, squeeze: float = 0.01,
                           scenario_sd: float = 0.0, abilities: np.ndarray | None = None,
                           generator: str = "layout") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw abilities theta_td ~ Normal(ability_mean, ability_sd) for teams
    "team_0", ... (or take ``abilities``, n_teams x n_demands), scenario
    residual difficulties delta_s ~ Normal(0, scenario_sd), and one score per
    (team, scenario, replicate) from the layout's generative model
    (``likelihood.simulate_observed`` with p = ``likelihood.success_probability``).

    ``chance`` must be 0 (the noise component is the floor). Returns (scores
    in the capprof.scores schema, true abilities as a tidy frame team,
    ability, value). ``substrate_of`` maps scenario -> substrate (default:
    the scenario's name before the last "_")."""
    if chance != 0.0:
        raise ValueError("the layout's chance component is the floor: chance must be 0")
    if generator not in GENERATORS:
        raise ValueError(f"unknown generator {generator!r}; one of {', '.join(GENERATORS)}")
    rng = np.random.default_rng(seed)
    teams = [f"team_{i}" for i in range(n_teams)]
    index = DemandIndex.from_matrix(demands)
    if abilities is None:
        theta = rng.normal(ability_mean, ability_sd, size=(n_teams, demands.shape[1]))
    else:
        theta = np.asarray(abilities, dtype=float).reshape(n_teams, demands.shape[1])
    shift = rng.normal(0.0, scenario_sd, size=len(index.scenarios)) if scenario_sd > 0 else None
    if generator == "compensatory":
        diff = theta[:, index.index] - index.level - (0.0 if shift is None else shift[:, None])
        demanded = index.level > 0
        mean_diff = (np.where(demanded, diff, 0.0).sum(axis=-1) / np.maximum(demanded.sum(axis=1), 1))
        p = 1.0 / (1.0 + np.exp(-scale * mean_diff))
    else:
        slopes = rng.lognormal(0.0, 0.5, n_teams) if generator == "team-slope" else np.full(n_teams, scale)
        p = np.stack([success_probability(theta[t], index.index, index.level, slopes[t], shift)
                      for t in range(n_teams)])
    p = np.repeat(p[:, None, :], replicates, axis=1)
    if generator == "heavy-tails":
        q = np.clip(p, 1e-6, 1 - 1e-6)
        latent = 1.0 / (1.0 + np.exp(-(np.log(q / (1 - q)) + 0.3 * rng.standard_t(2, p.shape))))
        y = np.where(rng.random(p.shape) < noise, 0.0, np.clip(unsqueeze(latent, squeeze), 0.0, 1.0))
    else:
        y = simulate_observed(p, precision, noise, squeeze, rng)
    substrate = [(substrate_of or {}).get(s, s.rsplit("_", 1)[0]) for s in index.scenarios]
    n_s = len(index.scenarios)
    scores = pd.DataFrame({
        "team": np.repeat(teams, replicates * n_s),
        "scenario": np.tile(index.scenarios, n_teams * replicates),
        "substrate": np.tile(substrate, n_teams * replicates),
        "replicate": np.tile(np.repeat(np.arange(replicates), n_s), n_teams),
        "score": y.reshape(-1),
        "background_score": np.nan,
        "source": "simulated",
    })
    truth = pd.DataFrame(theta, index=pd.Index(teams, name="team"),
                         columns=pd.Index(demands.columns, name="ability")).stack().rename("value").reset_index()
    return scores, truth
