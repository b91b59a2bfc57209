"""The measurement layout: abilities compared with demands, in PyMC.

The model, its priors and the reasons for them are written down in
docs/layout.md. In short, for team t and scenario s with demand levels
L_sd (0 = not demanded, 1 = demanded, up to 5 for graded annotations):

    p_ts  = prod_{d : L_sd > 0} sigmoid(scale * (theta_td - L_sd))
    mu_ts = eps * chance + (1 - eps) * p_ts
    y_ts  ~ Beta(mu_ts * phi_t, (1 - mu_ts) * phi_t)

where y_ts is the team's mean normalised score on the scenario (over
replicates), squeezed into (0, 1), and chance = 0 (on a normalised scale a
policy at chance scores like the worst team). A demand the scenario does not have
contributes a factor of exactly 1, so it cannot hold the score down.

Two modes share this likelihood:

* ``per-team``: theta_td = g_t + s_t z_td, nothing shared between teams
  except the noise share eps. The ability posterior factorises over teams,
  so one run of the sampler over all teams gives the paper's separate
  per-team models (and is faster than compiling one model per team).
* ``joint``: theta_td = mu_d + g_t + tau_g(d) * z_td with z_td ~ Normal(0, 1)
  and g zero-sum over teams: each demand has a population mean over teams and
  abilities are partially pooled towards it, with one spread per demand group
  (substrate, mode, behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from capprof.errors import CapprofError

LAYOUT_MODES = ("joint", "per-team")
DEMAND_GROUPS = ("substrate", "mode", "behaviour")


# ------------------------------------------------------------------ data


def squeeze(y: np.ndarray, eps: float) -> np.ndarray:
    """Map scores in [0, 1] into (0, 1) for a Beta likelihood:
    y' = eps + (1 - 2 eps) y. Exact 0 and 1 (min-max normalisation puts one
    team at each per scenario) would otherwise have zero density."""
    return eps + (1.0 - 2.0 * eps) * np.clip(y, 0.0, 1.0)


def unsqueeze(y: np.ndarray, eps: float) -> np.ndarray:
    """Inverse of ``squeeze``: y = (y' - eps) / (1 - 2 eps)."""
    return (np.asarray(y) - eps) / (1.0 - 2.0 * eps)


def check_unit_range(score: pd.Series, slack: float = 0.5) -> None:
    """The layout predicts scores in [0, 1]. Cell means a little outside (as
    team-minmax or random-exploiter normalisation produce) are clipped with a
    notice; far outside means the scores were not normalised."""
    import sys

    low, high = float(score.min()), float(score.max())
    if low < -slack or high > 1 + slack:
        raise CapprofError(
            f"the measurement layout needs scores on a 0..1 scale (these span {low:.3g}..{high:.3g}); "
            "use --normalise minmax"
        )
    outside = int(((score < 0) | (score > 1)).sum())
    if outside:
        print(f"capprof: note: {outside} mean score(s) outside [0, 1] are clipped for the measurement layout",
              file=sys.stderr)


@dataclass
class DemandIndex:
    """Sparse view of a scenario x demand matrix: for each scenario the indices
    and levels of its non-zero demands, padded to the widest scenario with
    level 0 (a level-0 slot contributes factor 1)."""

    columns: list[str]
    scenarios: list[str]
    index: np.ndarray  # (n_scenarios, width) int: demand column of each slot
    level: np.ndarray  # (n_scenarios, width) float: its level, 0 for padding

    @classmethod
    def from_matrix(cls, demands: pd.DataFrame) -> "DemandIndex":
        levels = demands.to_numpy(dtype=float)
        if (levels < 0).any():
            raise CapprofError("demand levels must be >= 0; check the demands file")
        width = max(1, int((levels > 0).sum(axis=1).max(initial=0)))
        index = np.zeros((len(levels), width), dtype=int)
        level = np.zeros((len(levels), width))
        for row, values in enumerate(levels):
            nonzero = np.flatnonzero(values > 0)
            index[row, : len(nonzero)] = nonzero
            level[row, : len(nonzero)] = values[nonzero]
        return cls(list(demands.columns), list(demands.index), index, level)


def expected_score(theta: np.ndarray, eps: np.ndarray, index: np.ndarray, level: np.ndarray,
                   scale: float, chance: float) -> np.ndarray:
    """mu = eps * chance + (1 - eps) * prod_{slots with level > 0} sigmoid(scale (theta[index] - level)).

    ``theta`` (..., n_demands) and ``eps`` (...) for one team (any leading
    draw dimensions); ``index``/``level`` (n_scenarios, width). Returns
    (..., n_scenarios): the model's mean squeezed score, in numpy so that
    predictions for new scenarios need no recompilation."""
    gathered = theta[..., index]  # (..., n_scenarios, width)
    log_factor = -np.logaddexp(0.0, -scale * (gathered - level))  # log sigmoid
    log_p = np.where(level > 0, log_factor, 0.0).sum(axis=-1)
    eps = np.asarray(eps)[..., None]
    return eps * chance + (1.0 - eps) * np.exp(log_p)


# ------------------------------------------------------------------ model


def build_layout_model(
    team_of_cell: np.ndarray,
    scenario_of_cell: np.ndarray,
    y: np.ndarray,
    demand_index: DemandIndex,
    teams: list[str],
    mode: str = "joint",
    demand_groups: list[str] | None = None,
    scale: float = 1.0,
    chance: float = 0.0,
    prior_mean: float = 2.0,
    prior_sd: float = 1.5,
):
    """The measurement layout as a ``pm.Model`` (a plain function of data).

    ``team_of_cell``/``scenario_of_cell``: integer codes of each observed
    (team, scenario) cell into ``teams`` / ``demand_index.scenarios``; ``y``:
    squeezed mean scores in (0, 1). ``demand_groups`` names the group of each
    demand column (joint mode pools with one spread per group).
    """
    import pymc as pm
    import pytensor.tensor as pt

    if mode not in LAYOUT_MODES:
        raise CapprofError(f'unknown layout mode "{mode}"; use {" or ".join(LAYOUT_MODES)}')
    n_teams, n_demands = len(teams), len(demand_index.columns)
    groups = demand_groups or ["behaviour"] * n_demands
    group_names = sorted(set(groups))
    group_of_demand = np.array([group_names.index(g) for g in groups])
    coords = {"team": list(teams), "demand": list(demand_index.columns), "group": group_names}

    # Gather each cell's demanded slots (padded to the widest scenario); padding
    # slots are masked out, so their factor is exactly 1. Cost grows with
    # cells x width, not cells x demands.
    slot_index = demand_index.index[scenario_of_cell]
    slot_level = demand_index.level[scenario_of_cell]
    active = (slot_level > 0).astype(float)
    flat_ability = team_of_cell[:, None] * n_demands + slot_index

    with pm.Model(coords=coords) as model:
        z = pm.Normal("ability_z", 0.0, 1.0, dims=("team", "demand"))
        if mode == "joint":
            # demand mean over teams + team's general level (zero-sum over teams,
            # so it cannot trade off against the demand means) + pooled deviation
            mu_d = pm.Normal("demand_mean", prior_mean, prior_sd, dims="demand")
            general = pm.ZeroSumNormal("team_level", prior_sd, dims="team")
            tau = pm.HalfNormal("ability_spread", 1.0, dims="group")
            theta = pm.Deterministic(
                "ability", mu_d + general[:, None] + tau[group_of_demand] * z, dims=("team", "demand")
            )
        else:
            # each team alone: its general level + its own deviations per demand
            general = pm.Normal("team_level", prior_mean, prior_sd, dims="team")
            tau = pm.HalfNormal("ability_spread", 1.0, dims="team")
            theta = pm.Deterministic("ability", general[:, None] + tau[:, None] * z, dims=("team", "demand"))
        # one noise share for all teams: per-team noise and low abilities explain a
        # team at chance everywhere equally well (a ridge; docs/layout.md)
        eps = pm.Beta("noise", 1.0, 9.0)
        phi = pm.LogNormal("precision", np.log(10.0), 1.0, dims="team")

        log_factor = -pt.softplus(-scale * (theta.reshape((-1,))[flat_ability] - slot_level))
        log_p = (log_factor * active).sum(axis=1)
        mu = eps * chance + (1.0 - eps) * pt.exp(log_p)
        phi_cell = phi[team_of_cell]
        pm.Beta("score", alpha=mu * phi_cell, beta=(1.0 - mu) * phi_cell, observed=y)
    return model


def sample_layout(model, draws: int = 1000, tune: int = 500, chains: int = 2, seed: int = 0,
                  sampler: str = "nutpie", progressbar: bool = False):
    """NUTS on the layout; returns InferenceData (posterior + sample_stats)."""
    import pymc as pm

    kwargs = dict(draws=draws, tune=tune, chains=chains, cores=min(chains, 2), random_seed=seed,
                  progressbar=progressbar, model=model)
    if sampler == "nutpie":
        return pm.sample(nuts_sampler="nutpie", **kwargs)
    return pm.sample(target_accept=0.9, **kwargs)


def diagnostics(idata, var_names=("ability", "noise", "precision")) -> dict:
    """Convergence summary from ArviZ: max R-hat and min bulk/tail ESS over
    the named variables, and the number of divergent transitions."""
    import arviz as az

    names = [v for v in var_names if v in idata.posterior]
    rhat = az.rhat(idata, var_names=names)
    ess_bulk = az.ess(idata, var_names=names, method="bulk")
    ess_tail = az.ess(idata, var_names=names, method="tail")
    return {
        "max_rhat": float(max(float(rhat[v].max()) for v in names)),
        "min_ess_bulk": float(min(float(ess_bulk[v].min()) for v in names)),
        "min_ess_tail": float(min(float(ess_tail[v].min()) for v in names)),
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "chains": int(idata.posterior.sizes["chain"]),
        "draws": int(idata.posterior.sizes["draw"]),
    }


def ability_summary(idata, hdi_prob: float = 0.9) -> pd.DataFrame:
    """Tidy per-(team, ability) posterior: columns team, ability, mean, sd,
    hdi_low, hdi_high (ArviZ highest density interval) and hdi_prob."""
    import arviz as az

    ability = idata.posterior["ability"]
    hdi = az.hdi(idata, var_names=["ability"], hdi_prob=hdi_prob)["ability"]
    frame = pd.DataFrame({
        "mean": ability.mean(("chain", "draw")).to_series(),
        "sd": ability.std(("chain", "draw")).to_series(),
        "hdi_low": hdi.sel(hdi="lower").to_series(),
        "hdi_high": hdi.sel(hdi="higher").to_series(),
    })
    frame = frame.reset_index().rename(columns={"demand": "ability"})
    frame["hdi_prob"] = hdi_prob
    return frame[["team", "ability", "mean", "sd", "hdi_low", "hdi_high", "hdi_prob"]]


# ------------------------------------------------------------------ prediction


def predict_scores(idata, team_codes, demand_matrix, hdi_prob: float = 0.9, *, scale: float = 1.0,
                   chance: float = 0.0, squeeze_eps: float = 0.01, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior predictive per (team, scenario) pair.

    ``team_codes`` (n,): each pair's team as its position in the posterior's
    ``team`` coordinate; ``demand_matrix`` (n, n_demands): each pair's demand
    levels in the posterior's ``demand`` order. Returns (predicted, low,
    high), each (n,) and clipped to [0, 1]: ``predicted`` is the posterior
    mean of mu (unsqueezed), low/high the central ``hdi_prob`` quantiles of
    y ~ Beta(mu phi, (1 - mu) phi) over the draws (``seed`` seeds them).
    """
    team_codes = np.asarray(team_codes, dtype=int)
    index = DemandIndex.from_matrix(pd.DataFrame(np.asarray(demand_matrix, dtype=float)))
    post = idata.posterior
    theta = post["ability"].stack(sample=("chain", "draw")).transpose("sample", "team", "demand").to_numpy()
    eps = post["noise"].stack(sample=("chain", "draw")).to_numpy()
    phi = post["precision"].stack(sample=("chain", "draw")).transpose("sample", "team").to_numpy()
    rng = np.random.default_rng(seed)
    tail = (1.0 - hdi_prob) / 2.0
    predicted = np.empty(len(team_codes))
    low = np.empty(len(team_codes))
    high = np.empty(len(team_codes))
    for t in dict.fromkeys(team_codes.tolist()):
        rows = np.flatnonzero(team_codes == t)
        mu = expected_score(theta[:, t, :], eps, index.index[rows], index.level[rows], scale, chance)
        mu = np.clip(mu, 1e-9, 1 - 1e-9)
        draws = rng.beta(mu * phi[:, t, None], (1.0 - mu) * phi[:, t, None])
        predicted[rows] = unsqueeze(mu.mean(axis=0), squeeze_eps)
        low[rows] = unsqueeze(np.quantile(draws, tail, axis=0), squeeze_eps)
        high[rows] = unsqueeze(np.quantile(draws, 1.0 - tail, axis=0), squeeze_eps)
    return np.clip(predicted, 0.0, 1.0), np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)


def __getattr__(name):
    # MeasurementLayout moved to capprof.profiling.predictors.layout; old
    # imports keep working until their callers move (imported lazily: that
    # module imports this one)
    if name == "MeasurementLayout":
        from capprof.profiling.predictors.layout import MeasurementLayout

        return MeasurementLayout
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
