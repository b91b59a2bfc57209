"""Checks of a fitted measurement layout: convergence and posterior predictive.

``diagnostics`` summarises convergence (R-hat, ESS, divergences) together
with the posterior predictive checks. Those compare the observed share of
cells at the floor and at the ceiling with data replicated from the
posterior, and summarise the probability integral transform (PIT) of every
cell (``ppc_table``; the failed checks as sentences: ``ppc_disagreements``).
They read the cell data that ``capprof.profiling.layout.build_layout_model``
stores in the posterior's ``constant_data`` (docs/layout.md).

``with_log_likelihood`` gives the posterior ArviZ's ``observed_data`` and
``log_likelihood`` groups (each cell's log density per draw, from the same
``likelihood.cell_log_density`` the model sums), so ``az.loo``, ``az.waic``
and ``az.compare`` work on a layout posterior; ``diagnostics`` reports the
PSIS-LOO estimate and its Pareto k warnings beside R-hat.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capprof.errors import CapprofError
from capprof.profiling.likelihood import (CELL_PARTS, MU_FLOOR, beta_shape, cell_log_density, cell_parts,
                                          simulate_observed, squeeze, success_probability)
from capprof.profiling.posterior import draws_of, has_cells, scalar


# a PPC disagrees when the observed share lies outside this central interval
# of the replicated shares, or when the PIT's KS test has a p-value below PPC_P
PPC_INTERVAL = 0.95
PPC_P = 0.01

DISAGREEMENT_CHECKS = ("floor share", "ceiling share", "PIT KS p-value")
# PSIS-LOO is unreliable for cells whose Pareto k exceeds this (ArviZ's threshold)
PARETO_K_BAD = 0.7


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
    if ppc and has_cells(idata):
        table = ppc_table(idata, seed=seed).set_index("check")
        for check, key in (("floor share", "floor"), ("ceiling share", "ceiling")):
            row = table.loc[check]
            out.update({f"{key}_observed": float(row["observed"]), f"{key}_replicated": float(row["replicated"]),
                        f"{key}_replicated_low": float(row["low"]), f"{key}_replicated_high": float(row["high"])})
        out["pit_ks"] = float(table.loc["PIT KS distance", "observed"])
        out["pit_p"] = float(table.loc["PIT KS p-value", "observed"])
        out["ppc_disagreements"] = int((~table["agrees"]).loc[list(DISAGREEMENT_CHECKS)].sum())
        # every draw's success probabilities, computed once for both groups
        cells = posterior_cells(idata, n_draws=None)
        with_log_likelihood(idata, cells)
        out.update(loo_summary(with_posterior_predictive(idata, seed=seed, cells=cells)))
    return out


def describe_fit(d: dict, seconds: float) -> str:
    """One line on a layout fit from its ``diagnostics``: convergence, the
    PSIS-LOO estimate with its standard error and Pareto k warnings, time."""
    line = (f"sampling: max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
            f"{d['divergences']} divergence(s)")
    if "loo_elpd" in d and np.isfinite(d["loo_elpd"]):
        line += (f"; PSIS-LOO elpd {d['loo_elpd']:.1f} (se {d['loo_se']:.1f}, p_loo {d['loo_p']:.1f}, "
                 f"{d['loo_bad_k']} of {d['loo_cells']} cells with Pareto k > {PARETO_K_BAD})")
    return f"{line}; {seconds:.1f} s"


def loo_summary(idata) -> dict:
    """PSIS-LOO from ArviZ (``az.loo``) of a posterior with a
    ``log_likelihood`` group: ``loo_elpd`` (expected log pointwise predictive
    density, sum over cells), ``loo_se`` (its standard error), ``loo_p``
    (effective number of parameters), ``loo_bad_k`` (cells with Pareto
    k > 0.7, where the estimate is unreliable) and ``loo_cells``."""
    import warnings

    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the count of bad k is reported instead of ArviZ's warning
        loo = az.loo(idata, pointwise=True)
    return {"loo_elpd": float(loo["elpd_loo"]), "loo_se": float(loo["se"]), "loo_p": float(loo["p_loo"]),
            "loo_bad_k": int((np.asarray(loo["pareto_k"]) > PARETO_K_BAD).sum()),
            "loo_cells": int(np.asarray(loo["pareto_k"]).size)}


def pointwise_log_likelihood(idata, cells: dict | None = None) -> np.ndarray:
    """log p(y_c | draw) for every posterior draw and fitted cell, shape
    (chain, draw, cell): ``likelihood.cell_log_density`` of the cell's part
    (floor, ceiling, inner) at the draw's Beta parameters, the density the
    model was fitted with (its censoring point and quadrature). ``cells``:
    ``posterior_cells(idata, n_draws=None)`` when already computed."""
    import pytensor
    import pytensor.tensor as pt

    cells = posterior_cells(idata, n_draws=None) if cells is None else cells
    data = idata.constant_data
    quadrature = int(scalar(data["quadrature"])) if "quadrature" in data else 16
    a, b = beta_shape(cells["p"], cells["phi"])
    noise = "noise" in idata.posterior
    y, censor = cells["y"], cells["censor"]
    parts = cell_parts(y)
    out = np.empty_like(a)
    y_in, a_in, b_in, eps_in = pt.dvector("y"), pt.dmatrix("a"), pt.dmatrix("b"), pt.dcol("eps")
    for part in CELL_PARTS:
        cols = np.flatnonzero(parts[part])
        if not len(cols):
            continue
        density = cell_log_density(part, y_in[None, :], a_in, b_in, eps_in if noise else None, censor, quadrature)
        inputs = [y_in, a_in, b_in] + ([eps_in] if noise else [])
        f = pytensor.function(inputs, density, on_unused_input="ignore")
        args = [squeeze(y[cols], censor), a[:, cols], b[:, cols]] + ([cells["eps"]] if noise else [])
        out[:, cols] = f(*args)
    return out.reshape(idata.posterior.sizes["chain"], idata.posterior.sizes["draw"], len(y))


def _per_draw_and_cell(idata, values: np.ndarray):
    """``values`` (draws stacked chain-major x cells, or chain x draw x cell)
    as a Dataset of one variable ``score`` over (chain, draw, cell)."""
    import xarray as xr

    chain, draw = idata.posterior["chain"].values, idata.posterior["draw"].values
    values = np.asarray(values, dtype=np.float32).reshape(len(chain), len(draw), -1)
    coords = {"chain": chain, "draw": draw, "cell": np.arange(values.shape[-1])}
    return xr.Dataset({"score": (("chain", "draw", "cell"), values)}, coords=coords)


def with_log_likelihood(idata, cells: dict | None = None):
    """``idata`` with ArviZ's ``observed_data`` (each fitted cell's score)
    and ``log_likelihood`` (``pointwise_log_likelihood``, float32) groups,
    both under the name ``score`` with dimension ``cell``; unchanged when it
    has them."""
    import xarray as xr

    if "log_likelihood" in idata.groups():
        return idata
    log_likelihood = _per_draw_and_cell(idata, pointwise_log_likelihood(idata, cells))
    observed = idata.constant_data["cell_score"].to_numpy()
    idata.add_groups({
        "log_likelihood": log_likelihood,
        "observed_data": xr.Dataset({"score": (("cell",), observed)}, coords={"cell": log_likelihood["cell"].values}),
    })
    return idata


def with_posterior_predictive(idata, seed: int = 0, cells: dict | None = None):
    """``idata`` with ArviZ's ``posterior_predictive`` group: one replicated
    score per posterior draw and fitted cell (``likelihood.simulate_observed``,
    the model's generative process: the chance floor, the Beta, the clipping),
    float32, under the name ``score`` with dimension ``cell``, as
    ``observed_data``; so ``az.plot_ppc`` and ``az.loo_pit`` read the fit.
    Unchanged when it has the group. ``cells``: as ``pointwise_log_likelihood``."""
    if "posterior_predictive" in idata.groups():
        return idata
    cells = posterior_cells(idata, n_draws=None) if cells is None else cells
    replicated = simulate_observed(cells["p"], cells["phi"], cells["eps"], cells["censor"],
                                   np.random.default_rng(seed))
    idata.add_groups({"posterior_predictive": _per_draw_and_cell(idata, replicated)})
    return idata


def posterior_cells(idata, n_draws: int | None = 400, seed: int = 0) -> dict:
    """Per posterior draw and fitted cell: success probability ``p``,
    precision ``phi``, noise share ``eps`` (draws x 1), plus the observed
    score ``y`` and the censoring point ``censor``. Uses up to ``n_draws``
    draws (a seeded subsample; None = all)."""
    if not has_cells(idata):
        raise CapprofError("this posterior carries no cell data (fitted before posterior predictive checks "
                           "were added); refit the profile")
    data = idata.constant_data
    rng = np.random.default_rng(seed)
    theta = draws_of(idata, "ability", ("team", "demand"))
    n_total = theta.shape[0]
    keep = np.arange(n_total)
    if n_draws is not None and n_total > n_draws:
        keep = np.sort(rng.choice(n_total, n_draws, replace=False))
    theta = theta[keep]
    phi = draws_of(idata, "precision", ("team",))[keep]
    noise = draws_of(idata, "noise")
    eps = np.zeros((len(keep), 1)) if noise is None else noise[keep][:, None]
    slope = draws_of(idata, "slope")
    slope = scalar(data["fixed_slope"]) if slope is None else slope[keep]
    delta = draws_of(idata, "scenario_difficulty", ("scenario",))
    team = data["cell_team"].to_numpy().astype(int)
    scen = data["cell_scenario"].to_numpy().astype(int)
    index = data["scenario_demand"].to_numpy().astype(int)[scen]
    level = data["scenario_level"].to_numpy()[scen]
    p = np.empty((len(keep), len(team)))
    for t in np.unique(team):
        rows = np.flatnonzero(team == t)
        shift = None if delta is None else delta[keep][:, scen[rows]]
        p[:, rows] = success_probability(theta[:, t, :], index[rows], level[rows], slope, shift)
    return {"p": p, "phi": phi[:, team], "eps": eps, "y": data["cell_score"].to_numpy(),
            "censor": scalar(data["censor_point"])}


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
    parts = cell_parts(y)
    floor, ceiling = parts["floor"], parts["ceiling"]
    # F(y) = P(Y <= y) and F(y-) = P(Y < y) for the observed score's law
    # (the same mixture at the latent score; the atoms differ only in which side is 0 or 1)
    mixture = eps + (1 - eps) * betainc(a, b, latent)
    cdf = np.where(ceiling, 1.0, mixture).mean(axis=0)
    below = np.where(floor, 0.0, mixture).mean(axis=0)
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
    observed_parts, replicated_parts = cell_parts(y), cell_parts(replicated)
    for check, part in (("floor share", "floor"), ("ceiling share", "ceiling")):
        observed_at, replicated_at = observed_parts[part], replicated_parts[part]
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
