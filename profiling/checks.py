"""Checks of a fitted measurement layout: convergence and posterior predictive.

``diagnostics`` summarises convergence (R-hat, ESS, divergences) together
with the posterior predictive checks. Those compare the observed share of
cells at the floor and at the ceiling with data replicated from the
posterior, and summarise the probability integral transform (PIT) of every
cell (``ppc_table``; the failed checks as sentences: ``ppc_disagreements``).
They read the cell data that ``capprof.profiling.layout.build_layout_model``
stores in the posterior's ``constant_data`` (docs/layout.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capprof.errors import CapprofError
from capprof.profiling.likelihood import MU_FLOOR, simulate_observed, squeeze, success_probability


# a PPC disagrees when the observed share lies outside this central interval
# of the replicated shares, or when the PIT's KS test has a p-value below PPC_P
PPC_INTERVAL = 0.95
PPC_P = 0.01

DISAGREEMENT_CHECKS = ("floor share", "ceiling share", "PIT KS p-value")


def diagnostics(idata, var_names=("ability", "noise", "precision", "slope", "scenario_spread",
                                  "scenario_mean_spread"),
                ppc: bool = True, seed: int = 0) -> dict:
    """Convergence summary from ArviZ (max R-hat, min bulk/tail ESS over the
    named variables, divergent transitions) and, when the posterior carries
    the model's data (``build_layout_model`` stores it), the posterior
    predictive checks of ``ppc_table``: observed and replicated share of
    cells at the floor and at the ceiling (mean and central 95% interval),
    and the KS distance and p-value of the PIT against uniform."""
    import arviz as az

    names = [v for v in var_names if v in idata.posterior]
    rhat = az.rhat(idata, var_names=names)
    ess_bulk = az.ess(idata, var_names=names, method="bulk")
    ess_tail = az.ess(idata, var_names=names, method="tail")
    out = {
        "max_rhat": float(max(float(rhat[v].max()) for v in names)),
        "min_ess_bulk": float(min(float(ess_bulk[v].min()) for v in names)),
        "min_ess_tail": float(min(float(ess_tail[v].min()) for v in names)),
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "chains": int(idata.posterior.sizes["chain"]),
        "draws": int(idata.posterior.sizes["draw"]),
    }
    if ppc and _has_cells(idata):
        table = ppc_table(idata, seed=seed).set_index("check")
        for check, key in (("floor share", "floor"), ("ceiling share", "ceiling")):
            row = table.loc[check]
            out.update({f"{key}_observed": float(row["observed"]), f"{key}_replicated": float(row["replicated"]),
                        f"{key}_replicated_low": float(row["low"]), f"{key}_replicated_high": float(row["high"])})
        out["pit_ks"] = float(table.loc["PIT KS distance", "observed"])
        out["pit_p"] = float(table.loc["PIT KS p-value", "observed"])
        out["ppc_disagreements"] = int((~table["agrees"]).loc[list(DISAGREEMENT_CHECKS)].sum())
    return out


def _has_cells(idata) -> bool:
    return hasattr(idata, "constant_data") and "cell_score" in idata.constant_data


def _scalar(value) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def _draws(idata, name, dims=()):
    """Posterior draws of ``name`` stacked over (chain, draw) first, or None."""
    if name not in idata.posterior:
        return None
    values = idata.posterior[name].stack(sample=("chain", "draw"))
    return values.transpose("sample", *dims).to_numpy()


def posterior_cells(idata, n_draws: int | None = 400, seed: int = 0) -> dict:
    """Per posterior draw and fitted cell: success probability ``p``,
    precision ``phi``, noise share ``eps`` (draws x 1), plus the observed
    score ``y`` and the censoring point ``censor``. Uses up to ``n_draws``
    draws (a seeded subsample; None = all)."""
    if not _has_cells(idata):
        raise CapprofError("this posterior carries no cell data (fitted before posterior predictive checks "
                           "were added); refit the profile")
    data = idata.constant_data
    rng = np.random.default_rng(seed)
    theta = _draws(idata, "ability", ("team", "demand"))
    n_total = theta.shape[0]
    keep = np.arange(n_total)
    if n_draws is not None and n_total > n_draws:
        keep = np.sort(rng.choice(n_total, n_draws, replace=False))
    theta = theta[keep]
    phi = _draws(idata, "precision", ("team",))[keep]
    noise = _draws(idata, "noise")
    eps = np.zeros((len(keep), 1)) if noise is None else noise[keep][:, None]
    slope = _draws(idata, "slope")
    slope = _scalar(data["fixed_slope"]) if slope is None else slope[keep]
    delta = _draws(idata, "scenario_difficulty", ("scenario",))
    team = data["cell_team"].to_numpy().astype(int)
    scen = data["cell_scenario"].to_numpy().astype(int)
    index = data["scenario_demand"].to_numpy().astype(int)[scen]
    level = data["scenario_level"].to_numpy()[scen]
    p = np.empty((len(keep), len(team)))
    for t in np.unique(team):
        rows = np.flatnonzero(team == t)
        shift = None if delta is None else delta[keep][:, scen[rows]]
        p[:, rows] = success_probability(theta[:, t, :], index[rows], level[rows], slope, shift)
    if "censored" in data and not _scalar(data["censored"]):
        # the uncensored Beta model (likelihood="beta"): the noise caps the mean
        # and replicated scores are its squeezed Beta draws, unsqueezed and clipped
        p, eps = (1.0 - eps) * p, np.zeros_like(eps)
    return {"p": p, "phi": phi[:, team], "eps": eps, "y": data["cell_score"].to_numpy(),
            "censor": _scalar(data["censor_point"])}


def pit_values(cells: dict, seed: int = 0) -> np.ndarray:
    """Randomised probability integral transform of each observed cell under
    the posterior predictive (a mixture over draws): F(y-) + U (F(y) - F(y-)),
    so floor and ceiling cells (atoms) get a uniform spread over their mass.
    Uniform on [0, 1] when the model describes the data (in-sample, slightly
    concentrated towards 0.5)."""
    from scipy.special import betainc

    p = np.clip(cells["p"], MU_FLOOR, 1 - MU_FLOOR)
    a, b = p * cells["phi"], (1.0 - p) * cells["phi"]
    eps, e, y = cells["eps"], cells["censor"], cells["y"]
    latent = squeeze(y, e)
    tol = 1e-9
    floor, ceiling = y <= tol, y >= 1 - tol
    # F(y) = P(Y <= y) and F(y-) = P(Y < y) for the observed score's law
    cdf = eps + (1 - eps) * betainc(a, b, latent)
    cdf = np.where(ceiling, 1.0, cdf).mean(axis=0)
    below = eps + (1 - eps) * betainc(a, b, latent)
    below = np.where(floor, 0.0, below).mean(axis=0)
    u = np.random.default_rng(seed).random(len(y))
    return below + u * (cdf - below)


def ppc_table(idata, seed: int = 0, n_draws: int = 400, bins: int = 10,
              interval: float = PPC_INTERVAL) -> pd.DataFrame:
    """Posterior predictive checks as a tidy frame with columns check,
    observed, replicated, low, high, agrees:

    * ``floor share`` / ``ceiling share``: share of cells at exactly 0 / 1,
      observed vs replicated from the posterior (mean and central
      ``interval`` of the replicated shares); agrees when observed is inside;
    * ``PIT KS distance`` and ``PIT KS p-value``: Kolmogorov-Smirnov test of
      the cells' PIT against uniform (agrees when p >= 0.01);
    * ``PIT bin [lo, hi)``: share of cells whose PIT falls in the bin, with
      the expected share 1 / bins and its binomial ``interval``.
    """
    from scipy import stats

    cells = posterior_cells(idata, n_draws=n_draws, seed=seed)
    rng = np.random.default_rng(seed)
    replicated = simulate_observed(cells["p"], cells["phi"], cells["eps"], cells["censor"], rng)
    y = cells["y"]
    tail = (1 - interval) / 2
    rows = []
    for check, observed_at, replicated_at in (("floor share", y <= 1e-9, replicated <= 1e-9),
                                              ("ceiling share", y >= 1 - 1e-9, replicated >= 1 - 1e-9)):
        shares = replicated_at.mean(axis=1)
        low, high = np.quantile(shares, [tail, 1 - tail])
        observed = float(observed_at.mean())
        # a share is a multiple of 1/n: compare with half a cell of slack
        slack = 0.5 / len(y)
        rows.append((check, observed, float(shares.mean()), float(low), float(high),
                     bool(low - slack <= observed <= high + slack)))
    pit = pit_values(cells, seed=seed)
    ks = stats.kstest(pit, "uniform")
    rows.append(("PIT KS distance", float(ks.statistic), np.nan, np.nan, np.nan, bool(ks.pvalue >= PPC_P)))
    rows.append(("PIT KS p-value", float(ks.pvalue), np.nan, PPC_P, 1.0, bool(ks.pvalue >= PPC_P)))
    counts, edges = np.histogram(pit, bins=bins, range=(0.0, 1.0))
    n = len(pit)
    low_count, high_count = stats.binom.ppf([tail, 1 - tail], n, 1.0 / bins)
    for count, lo, hi in zip(counts, edges[:-1], edges[1:]):
        share = count / n
        rows.append((f"PIT bin [{lo:.1f}, {hi:.1f})", float(share), 1.0 / bins, low_count / n, high_count / n,
                     bool(low_count <= count <= high_count)))
    return pd.DataFrame(rows, columns=["check", "observed", "replicated", "low", "high", "agrees"])


def ppc_disagreements(checks) -> list[str]:
    """The posterior predictive checks that fail, as plain sentences (for
    notes and reports), e.g. "observed 21% of cells at the floor, replicated
    5% [3%, 8%]". ``checks``: a ``ppc_table`` frame or an InferenceData (the
    table is computed). Floor share, ceiling share and the PIT's KS test
    count; the PIT bins are for display."""
    table = checks if isinstance(checks, pd.DataFrame) else ppc_table(checks)
    table = table.set_index("check")
    out = []
    for check, where in (("floor share", "at the floor (score 0)"), ("ceiling share", "at the ceiling (score 1)")):
        if check in table.index and not table.loc[check, "agrees"]:
            row = table.loc[check]
            out.append(f"observed {row['observed']:.0%} of cells {where}, replicated from the posterior "
                       f"{row['replicated']:.0%} [{row['low']:.0%}, {row['high']:.0%}]")
    if "PIT KS p-value" in table.index and not table.loc["PIT KS p-value", "agrees"]:
        distance = table.loc["PIT KS distance", "observed"]
        bins = table[table.index.str.startswith("PIT bin")]
        worst = bins.iloc[int(np.argmax(np.abs(bins["observed"] - bins["replicated"])))]
        out.append(f"cell scores are not distributed as the model predicts (PIT KS distance {distance:.3f}, "
                   f"p = {table.loc['PIT KS p-value', 'observed']:.2g}; the {worst.name} holds "
                   f"{worst['observed']:.0%} of cells, uniform {worst['replicated']:.0%})")
    return out
