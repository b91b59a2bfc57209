"""The measurement layout: abilities compared with demands, in PyMC.

The model, its priors and the reasons for them are written down in
docs/layout.md. In short, for team t and scenario s with demand levels
L_sd (0 = not demanded, 1 = demanded, up to 5 for graded annotations):

    p_ts  = prod_{d : L_sd > 0} sigmoid(k * (theta_td - L_sd - delta_s))
    with probability eps:      y_ts = 0                      (chance: the floor)
    otherwise:                 y*_ts ~ Beta(p_ts phi_t, (1 - p_ts) phi_t)
                               y_ts = clip((y*_ts - e) / (1 - 2 e), 0, 1)

where y_ts is the team's mean normalised score on the scenario (over
replicates). Scores of exactly 0 or 1 are *censored*: a floored cell is
scored by P(y* <= e) (plus the chance share eps), a cell at the ceiling by
P(y* >= 1 - e), both the regularised incomplete beta function computed by
16-point Gauss-Legendre quadrature (``likelihood.log_beta_cdf``); interior cells by the
Beta density at y* = e + (1 - 2 e) y. ``delta_s`` (an optional scenario
residual difficulty) is 0 unless asked for; ``k`` = 1 unless the slope is
left free. A demand the scenario does not have contributes a factor of
exactly 1, so it cannot hold the score down.

Two modes share this likelihood:

* ``per-team``: theta_td = g_t + s_t z_td, nothing shared between teams
  except the noise share eps. The ability posterior factorises over teams,
  so one run of the sampler over all teams gives the paper's separate
  per-team models (and is faster than compiling one model per team).
* ``joint``: theta_td = mu_d + g_t + tau_g(d) * z_td with z_td ~ Normal(0, 1)
  and g zero-sum over teams: each demand has a population mean over teams and
  abilities are partially pooled towards it, with one spread per demand group
  (substrate, mode, behaviour).

The likelihood's maths (success probability, censored Beta, incomplete beta
quadrature) are in ``capprof.profiling.likelihood``; the convergence
summary and the posterior predictive checks (``diagnostics``, ``ppc_table``,
``ppc_disagreements``), which compare the observed share of cells at the
floor and at the ceiling with data replicated from the posterior and
summarise the probability integral transform (PIT) of every cell, are in
``capprof.profiling.checks``.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, note
from capprof.profiling.likelihood import (CELL_PARTS, beta_shape, cell_log_density, cell_parts,
                                          expected_observed_score, simulate_observed, success_probability, unsqueeze)
from capprof.profiling.posterior import draws_of, has_cells, scalar

LAYOUT_MODES = ("joint", "per-team")


# ------------------------------------------------------------------ data


def check_unit_range(score: pd.Series, slack: float = 0.5) -> None:
    """The layout predicts scores in [0, 1]. Cell means a little outside (as
    team-minmax or random-exploiter normalisation produce) are clipped with a
    note (they then count as floored or at the ceiling); far outside means the
    scores were not normalised."""
    low, high = float(score.min()), float(score.max())
    if low < -slack or high > 1 + slack:
        raise CapprofError(
            f"the measurement layout needs scores on a 0..1 scale (these span {low:.3g}..{high:.3g}); "
            "use --normalise minmax"
        )
    outside = int(((score < 0) | (score > 1)).sum())
    if outside:
        note(f"{outside} mean score(s) outside [0, 1] are clipped for the measurement layout "
             "(they count as at the floor or the ceiling)")


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

    @property
    def graded(self) -> bool:
        """True when some demand has a level other than 0 or 1."""
        return bool(((self.level > 0) & (self.level != 1)).any())


# ------------------------------------------------------------------ model


def build_layout_model(
    team_of_cell: np.ndarray,
    scenario_of_cell: np.ndarray,
    y: np.ndarray,
    demand_index: DemandIndex,
    teams: list[str],
    mode: str = "joint",
    demand_groups: list[str] | None = None,
    scale: float | None = 1.0,
    chance: float = 0.0,
    prior_mean: float = 2.0,
    prior_sd: float = 1.5,
    squeeze: float = 0.01,
    noise: bool = True,
    scenario_effect: bool = False,
    scenario_mean: bool = True,
    quadrature: int = 16,
):
    """The measurement layout as a ``pm.Model`` (a plain function of data).

    ``team_of_cell``/``scenario_of_cell``: integer codes of each observed
    (team, scenario) cell into ``teams`` / ``demand_index.scenarios``; ``y``:
    mean scores squeezed into [e, 1 - e] with e = ``squeeze`` (``squeeze()``),
    so a cell at e is at the floor and one at 1 - e at the ceiling.
    ``demand_groups`` names the group of each demand column (joint mode
    pools with one spread per group).

    Cells at the floor and at the ceiling are censored, the rest scored by
    the Beta density (``likelihood.cell_log_density``). ``noise``: mix in a
    chance component (with probability ``noise`` the cell scores 0).
    ``scale``: the logistic slope (None: free, ``slope ~ LogNormal(0, 0.5)``,
    sensible only with graded levels). ``scenario_effect``: a residual
    difficulty per scenario, with ``scenario_mean`` its hierarchical mean
    over the scenario's tags and mode (``_scenario_residual``). ``chance``
    must be 0 (the noise component is the floor). ``quadrature``:
    Gauss-Legendre points of the censored cells' incomplete beta (16; 8 is
    cheaper at a larger error, ``likelihood.log_beta_cdf``).

    Built in steps, in this order (the order of the free variables, and so a
    seeded fit, depends on it): the data (``_model_data``: ``pm.Data``, so the
    compiled graph depends only on the structure, ``_structure_key``), the
    abilities, noise, precision and slope, the scenario residual, then the
    cells' likelihood.
    """
    import pymc as pm

    _check_options(mode, chance, squeeze)
    groups = demand_groups or ["behaviour"] * len(demand_index.columns)
    group_names = sorted(set(groups))
    coords = {"team": list(teams), "demand": list(demand_index.columns), "group": group_names,
              "scenario": list(demand_index.scenarios), "cell": np.arange(len(y)),
              "slot": np.arange(demand_index.index.shape[1])}
    with pm.Model(coords=coords) as model:
        data = _model_data(team_of_cell, scenario_of_cell, y, demand_index, squeeze, scale, quadrature)
        theta = _abilities(mode, groups, group_names, prior_mean, prior_sd)
        eps = pm.Beta("noise", 1.0, 9.0) if noise else None
        phi = pm.LogNormal("precision", np.log(10.0), 1.0, dims="team")
        slope = pm.LogNormal("slope", 0.0, 0.5) if scale is None else scale
        delta = _scenario_residual(demand_index, groups, scenario_mean) if scenario_effect else None
        _score_cells(data, theta, delta, eps, phi, slope, demand_index, squeeze, quadrature)
    _KEYS[model] = _structure_key(mode, noise, scenario_effect, scenario_mean, quadrature, scale,
                                  squeeze, prior_mean, prior_sd, teams, groups, demand_index)
    return model


def _check_options(mode: str, chance: float, squeeze: float) -> None:
    if mode not in LAYOUT_MODES:
        raise CapprofError(f'unknown layout mode "{mode}"; use {" or ".join(LAYOUT_MODES)}')
    if chance != 0.0:
        raise CapprofError("the layout's chance component is the floor (chance = 0); "
                           "normalise scores so that chance performance scores 0")
    if not 0.0 < squeeze < 0.5:
        raise CapprofError(f"squeeze must be in (0, 0.5), got {squeeze}")


def _model_data(team_of_cell, scenario_of_cell, y, demand_index: DemandIndex, squeeze: float,
                scale: float | None, quadrature: int) -> dict:
    """The model's ``pm.Data``; returns the likelihood's handles to it.

    Every array that changes with the training cells is model data, never a
    constant of the graph: a fit on other cells of the same teams, scenarios
    and demands then reuses the compiled model (``sample_layout``). The
    cells, scores and demand index also travel with the posterior for the
    predictive checks."""
    import pymc as pm

    y = np.asarray(y, dtype=float)
    score = np.clip(unsqueeze(y, squeeze), 0.0, 1.0)
    data = {"team": pm.Data("cell_team", np.asarray(team_of_cell, dtype=int), dims="cell"),
            "scenario": pm.Data("cell_scenario", np.asarray(scenario_of_cell, dtype=int), dims="cell")}
    pm.Data("cell_score", score, dims="cell")
    pm.Data("scenario_demand", demand_index.index, dims=("scenario", "slot"))
    pm.Data("scenario_level", demand_index.level, dims=("scenario", "slot"))
    pm.Data("censor_point", np.float64(squeeze))
    pm.Data("fixed_slope", np.float64(scale if scale is not None else np.nan))
    pm.Data("quadrature", np.int64(quadrature))
    # the likelihood's own view of the cells (not saved with the posterior: LIKELIHOOD_DATA)
    data["squeezed"] = pm.Data("cell_squeezed", y)
    data["parts"] = {part: pm.Data(f"{part}_cells", np.flatnonzero(mask))
                     for part, mask in cell_parts(score).items()}
    return data


def _abilities(mode: str, groups: list[str], group_names: list[str], prior_mean: float, prior_sd: float):
    """theta (team x demand), as a ``pm.Deterministic`` named ``ability``."""
    import pymc as pm

    z = pm.Normal("ability_z", 0.0, 1.0, dims=("team", "demand"))
    if mode == "per-team":
        # each team alone: its general level + its own deviations per demand
        general = pm.Normal("team_level", prior_mean, prior_sd, dims="team")
        tau = pm.HalfNormal("ability_spread", 1.0, dims="team")
        return pm.Deterministic("ability", general[:, None] + tau[:, None] * z, dims=("team", "demand"))
    # demand mean over teams + team's general level (zero-sum over teams, so it
    # cannot trade off against the demand means) + pooled deviation per group
    group_of_demand = np.array([group_names.index(g) for g in groups])
    mu_d = pm.Normal("demand_mean", prior_mean, prior_sd, dims="demand")
    general = pm.ZeroSumNormal("team_level", prior_sd, dims="team")
    tau = pm.HalfNormal("ability_spread", 1.0, dims="group")
    return pm.Deterministic("ability", mu_d + general[:, None] + tau[group_of_demand] * z,
                            dims=("team", "demand"))


def _scenario_residual(demand_index: DemandIndex, groups: list[str], scenario_mean: bool):
    """delta_s (per scenario), as a ``pm.Deterministic`` named ``scenario_difficulty``.

    A residual difficulty subtracted in every factor of the scenario:
    ``delta_s = m_s + sigma * z_s`` with ``z`` centred within each substrate
    (a substrate-wide shift is that substrate's ability) and, with
    ``scenario_mean``, a hierarchical mean ``m_s = sum_d w_d L_sd`` over the
    scenario's non-substrate demands (its tags and mode), ``w_d = sigma_w *
    u_d``, ``u_d ~ Normal(0, 1)``, ``sigma_w ~ HalfNormal(0.5)``: a scenario
    the fit has not seen borrows the residual difficulty of scenarios that
    share its tags (``m_s``) and its substrate (through the substrate's
    ability) instead of a bare prior (without ``scenario_mean``, ``m_s = 0``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    sigma_s = pm.HalfNormal("scenario_spread", 0.5)
    delta_z = pm.Normal("scenario_difficulty_z", 0.0, 1.0, dims="scenario")
    # centred within each substrate: a shift shared by all of a substrate's
    # scenarios is its substrate demand's ability, not a residual (else a ridge)
    family = _substrate_of_scenario(demand_index, groups)
    if family is not None:
        one_hot = (family[:, None] == np.unique(family)[None, :]).astype(float)
        centre = one_hot @ np.linalg.pinv(one_hot)  # per-substrate mean
        delta_z = delta_z - pt.dot(pt.as_tensor_variable(centre), delta_z)
    delta = sigma_s * delta_z
    if scenario_mean:
        # what is known about a scenario beyond its substrate (tags, mode) sets
        # the mean of its residual, so an unseen scenario borrows it
        is_substrate = np.array([g == "substrate" for g in groups])
        mean_slots = demand_index.level * ~is_substrate[demand_index.index]
        sigma_w = pm.HalfNormal("scenario_mean_spread", 0.5)
        w = pm.Deterministic("scenario_demand_effect",
                             sigma_w * pm.Normal("scenario_demand_effect_z", 0.0, 1.0, dims="demand")
                             * (~is_substrate).astype(float), dims="demand")
        delta = delta + (w[demand_index.index] * mean_slots).sum(axis=1)
    return pm.Deterministic("scenario_difficulty", delta, dims="scenario")


def _score_cells(data: dict, theta, delta, eps, phi, slope, demand_index: DemandIndex,
                 squeeze: float, quadrature: int) -> None:
    """The cells' log density as the ``pm.Potential`` named ``score``."""
    import pymc as pm
    import pytensor.tensor as pt

    cell_team, cell_scenario = data["team"], data["scenario"]
    # each cell's demanded slots (padded to the widest scenario); padding slots
    # are masked out, so their factor is exactly 1. Cost grows with cells x
    # width, not cells x demands.
    slot_index = pt.as_tensor_variable(demand_index.index)[cell_scenario]
    slot_level = pt.as_tensor_variable(demand_index.level)[cell_scenario]
    active = pt.gt(slot_level, 0.0)
    n_demands = len(demand_index.columns)
    diff = theta.reshape((-1,))[cell_team[:, None] * n_demands + slot_index] - slot_level
    if delta is not None:
        diff = diff - delta[cell_scenario][:, None]
    log_factor = -pt.softplus(-slope * diff)
    p = pt.exp(pt.switch(active, log_factor, 0.0).sum(axis=1))
    a, b = beta_shape(p, phi[cell_team])
    # Each part is scored on its own cells (the incomplete beta only where it
    # is needed). Every part is in the graph even when it has no cells (its
    # sum is 0), so the compiled model does not depend on which cells are which.
    terms = []
    for part in CELL_PARTS:
        i = data["parts"][part]
        terms.append(cell_log_density(part, data["squeezed"][i], a[i], b[i], eps, squeeze, quadrature).sum())
    pm.Potential("score", pt.add(*terms))


def _substrate_of_scenario(demand_index: DemandIndex, groups: list[str]) -> np.ndarray | None:
    """The substrate demand column of each scenario (its first demanded
    column in the ``substrate`` group), or None when no demand is a substrate
    (e.g. simulated or custom demands without one)."""
    is_substrate = np.array([g == "substrate" for g in groups])
    if not is_substrate.any():
        return None
    slot_is = is_substrate[demand_index.index] & (demand_index.level > 0)
    first = np.where(slot_is.any(axis=1), demand_index.index[np.arange(len(slot_is)), slot_is.argmax(axis=1)], -1)
    return first


MASS_MATRICES = ("diag", "low-rank")
BACKENDS = ("numba", "jax")

# the likelihood's own copies of the cell data (not saved with the posterior)
LIKELIHOOD_DATA = ("cell_squeezed", "inner_cells", "floor_cells", "ceiling_cells")
# the structure key of each model built here (``_structure_key``)
_KEYS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# nutpie's compiled models by structure key, most recent last (numba backend).
_COMPILED: "OrderedDict[str, object]" = OrderedDict()
COMPILED_KEEP = 4
# how often sample_layout compiled, its seconds compiling, how often it reused a compiled model
compile_counts = {"compiled": 0, "compile_seconds": 0.0, "reused": 0}


def _structure_key(*parts) -> str:
    """A digest of everything a layout model's compiled graph depends on
    besides its cell data: options, priors, teams, demand groups and the
    demand index (scenarios, slots and levels)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, DemandIndex):
            digest.update(repr((part.columns, part.scenarios, part.index.shape)).encode())
            digest.update(np.ascontiguousarray(part.index, dtype=np.int64).tobytes())
            digest.update(np.ascontiguousarray(part.level, dtype=np.float64).tobytes())
        else:
            digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def clear_compiled() -> None:
    """Forget the compiled layout models kept for reuse, and the counts."""
    _COMPILED.clear()
    compile_counts.update(compiled=0, compile_seconds=0.0, reused=0)


def _compiled_for(model, backend: str):
    """nutpie's compiled model for ``model``: with the numba backend, the one
    compiled for an earlier model of the same structure (``_structure_key``)
    given this model's cell data by ``with_data`` (no compilation), else a
    fresh compile, kept for the next fit. The JAX backend bakes the data into
    its graph, so it compiles every time."""
    import nutpie

    key = _KEYS.get(model)
    compiled = _COMPILED.get(key) if backend == "numba" and key is not None else None
    if compiled is not None:
        # every shared value of the compiled graph from this model (its data and
        # dimension lengths); one it lacks means another structure: compile
        values = {var.name: var.get_value() for var in model.data_vars}
        values.update({name: length.get_value() for name, length in model.dim_lengths.items()
                       if hasattr(length, "get_value")})
        if set(compiled.shared_data) <= set(values):
            _COMPILED.move_to_end(key)
            compile_counts["reused"] += 1
            return compiled.with_data(**{name: values[name] for name in compiled.shared_data})
    start = time.perf_counter()
    if backend == "numba":
        compiled = nutpie.compile_pymc_model(model)
    else:
        compiled = nutpie.compile_pymc_model(model, backend=backend, gradient_backend=backend)
    compile_counts["compiled"] += 1
    compile_counts["compile_seconds"] += time.perf_counter() - start
    if backend == "numba" and key is not None:
        _COMPILED[key] = compiled
        while len(_COMPILED) > COMPILED_KEEP:
            _COMPILED.popitem(last=False)
    return compiled


def _constant_data(model):
    """The model's data as an InferenceData group (what ``pm.sample`` adds):
    the posterior predictive checks read it. Built from the arrays the model
    was built with, which a reused compiled model does not know."""
    import pymc as pm
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants
    from arviz.data.base import dict_to_dataset

    coords, dims = coords_and_dims_for_inferencedata(model)
    constants = {name: value for name, value in find_constants(model).items() if name not in LIKELIHOOD_DATA}
    return dict_to_dataset(constants, library=pm, coords=coords, dims=dims, default_dims=[])


def sample_layout(model, draws: int = 1000, tune: int = 500, chains: int = 2, seed: int = 0,
                  sampler: str = "nutpie", progressbar: bool = False, mass_matrix: str = "diag",
                  backend: str = "numba", target_accept: float | None = None):
    """NUTS on the layout; returns InferenceData (posterior, sample_stats and
    the model's data in constant_data). ``mass_matrix``: nutpie's diagonal
    adaptation, or ``low-rank`` (its low-rank modified mass matrix, which
    also learns the posterior's strongest correlations; nutpie only).
    ``backend``: what nutpie compiles the model's log density with, numba
    or jax. Compiling is most of one fit's wall time (docs/evaluation.md,
    "Speed"), so with numba a model of the same structure as an earlier one
    in this process (same options, teams and demands; other cells) samples
    with that one's compiled log density and its own data
    (``compile_counts`` counts both cases). ``target_accept``: NUTS's target
    acceptance rate (None: nutpie's 0.8, or 0.9 with ``sampler="pymc"``);
    a higher one takes smaller steps and longer trajectories."""
    import pymc as pm

    if target_accept is not None and not 0.0 < target_accept < 1.0:
        raise CapprofError(f"target_accept must be in (0, 1), got {target_accept}")
    if mass_matrix not in MASS_MATRICES:
        raise CapprofError(f'unknown mass matrix "{mass_matrix}"; use {" or ".join(MASS_MATRICES)}')
    if sampler == "nutpie":
        import nutpie

        if backend not in BACKENDS:
            raise CapprofError(f'unknown backend "{backend}"; use {" or ".join(BACKENDS)}')
        compiled = _compiled_for(model, backend)
        from pymc.util import _get_seeds_per_chain

        options = {"low_rank_modified_mass_matrix": True} if mass_matrix == "low-rank" else {}
        if target_accept is not None:
            options["target_accept"] = target_accept
        start = time.time()
        # the seed pm.sample(nuts_sampler="nutpie", random_seed=seed) gives nutpie
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=_get_seeds_per_chain(seed, 1)[0],
                              progress_bar=progressbar, **options)
        idata.posterior.attrs.update(sampling_time=time.time() - start, tuning_steps=tune)
        idata.add_groups({"constant_data": _constant_data(model)})
        return idata
    if mass_matrix != "diag":
        raise CapprofError("the low-rank mass matrix needs sampler=nutpie")
    idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=min(chains, 2), random_seed=seed,
                      progressbar=progressbar, model=model,
                      target_accept=0.9 if target_accept is None else target_accept)
    del idata.constant_data
    idata.add_groups({"constant_data": _constant_data(model)})
    return idata


def evidence_cells(idata) -> pd.Series | None:
    """Per (team, ability): how many of the team's observed cells are
    scenarios that make that demand (level > 0). An ability with 0 cells is
    the prior alone (e.g. a team that never played the substrate). None when
    the posterior does not carry the model's data."""
    if not has_cells(idata):
        return None
    data = idata.constant_data
    ability = idata.posterior["ability"]
    counts = np.zeros((ability.sizes["team"], ability.sizes["demand"]), dtype=int)
    index, level = np.asarray(data["scenario_demand"]), np.asarray(data["scenario_level"])
    for team, scenario in zip(np.asarray(data["cell_team"]), np.asarray(data["cell_scenario"])):
        counts[team, np.unique(index[scenario][level[scenario] > 0])] += 1
    frame = pd.DataFrame(counts, index=ability.coords["team"].values, columns=ability.coords["demand"].values)
    return frame.rename_axis(index="team", columns="ability").stack().rename("cells")


def ability_summary(idata, hdi_prob: float = 0.9) -> pd.DataFrame:
    """Tidy per-(team, ability) posterior: columns team, ability, mean, sd,
    hdi_low, hdi_high (ArviZ highest density interval), hdi_prob and cells
    (``evidence_cells``: the team's observed cells that make the demand;
    missing when the posterior does not carry the model's data)."""
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
    columns = ["team", "ability", "mean", "sd", "hdi_low", "hdi_high", "hdi_prob"]
    cells = evidence_cells(idata)
    if cells is not None:
        frame = frame.merge(cells.reset_index(), on=["team", "ability"], how="left")
        columns.append("cells")
    return frame[columns]


# ------------------------------------------------------------------ prediction


def _scenario_shift(idata, scenarios, n_samples, rng, index: DemandIndex | None = None):
    """Scenario residual difficulty per (draw, pair): the posterior's for
    scenarios it was fitted on; for a scenario it has not seen, its
    hierarchical mean from its demands (``scenario_demand_effect`` over the
    pair's slots in ``index``, when the fit has one) plus a draw of
    Normal(0, sigma) (sigma from the posterior). None without a scenario
    effect."""
    delta = draws_of(idata, "scenario_difficulty", ("scenario",))
    if delta is None:
        return None
    known = {str(s): i for i, s in enumerate(idata.posterior["scenario"].values)}
    spread = draws_of(idata, "scenario_spread")
    effect = draws_of(idata, "scenario_demand_effect", ("demand",))
    names = [None] * n_samples if scenarios is None else [str(s) for s in scenarios]
    fresh = {}
    shift = np.empty((delta.shape[0], len(names)))
    for j, name in enumerate(names):
        if name in known:
            shift[:, j] = delta[:, known[name]]
            continue
        if name not in fresh or name is None:  # one prior draw per new scenario, shared by its pairs
            mean = 0.0
            if effect is not None and index is not None:
                mean = (effect[:, index.index[j]] * index.level[j]).sum(axis=1)
            fresh[name] = mean + rng.normal(0.0, 1.0, delta.shape[0]) * spread
        shift[:, j] = fresh[name]
    return shift


def predict_scores(idata, team_codes, demand_matrix, hdi_prob: float = 0.9, *, scale: float = 1.0,
                   chance: float = 0.0, squeeze_eps: float = 0.01, seed: int = 0, scenarios=None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior predictive per (team, scenario) pair.

    ``team_codes`` (n,): each pair's team as its position in the posterior's
    ``team`` coordinate; ``demand_matrix`` (n, n_demands): each pair's demand
    levels in the posterior's ``demand`` order (a DataFrame indexed by
    scenario name also tells which scenarios the fit has seen; or pass
    ``scenarios``). Returns (predicted, low, high), each (n,) in [0, 1]:

    * ``predicted``: the posterior mean of the *observed* score E[y], with
      y = 0 with probability eps and otherwise the clipped Beta draw
      (``expected_observed_score``): the mean of a min-max score, floors and
      ceilings included;
    * low/high: central ``hdi_prob`` quantiles of one replicated score per
      posterior draw (``simulate_observed``; ``seed`` seeds them).

    With a scenario effect, a fitted scenario uses its posterior residual
    difficulty and a new one, per posterior draw, its hierarchical mean from
    its demands plus a draw of the residual spread. The
    slope and censoring point come from the posterior's constant data
    (``scale``/``squeeze_eps`` only for posteriors saved without it);
    ``chance`` must be 0.
    """
    if chance != 0.0:
        raise CapprofError("the layout's chance component is the floor (chance = 0)")
    if scenarios is None and isinstance(demand_matrix, pd.DataFrame):
        scenarios = list(demand_matrix.index)
    team_codes = np.asarray(team_codes, dtype=int)
    index = DemandIndex.from_matrix(pd.DataFrame(np.asarray(demand_matrix, dtype=float)))
    data = idata.constant_data if has_cells(idata) else None
    censor = scalar(data["censor_point"]) if data is not None else squeeze_eps
    theta = draws_of(idata, "ability", ("team", "demand"))
    phi = draws_of(idata, "precision", ("team",))
    noise = draws_of(idata, "noise")
    eps = np.zeros((theta.shape[0], 1)) if noise is None else noise[:, None]
    slope = draws_of(idata, "slope")
    if slope is None:
        slope = scalar(data["fixed_slope"]) if data is not None else scale
    rng = np.random.default_rng(seed)
    shift = _scenario_shift(idata, scenarios, len(team_codes), rng, index)
    tail = (1.0 - hdi_prob) / 2.0
    predicted = np.empty(len(team_codes))
    low = np.empty(len(team_codes))
    high = np.empty(len(team_codes))
    for t in dict.fromkeys(team_codes.tolist()):
        rows = np.flatnonzero(team_codes == t)
        p = success_probability(theta[:, t, :], index.index[rows], index.level[rows], slope,
                                None if shift is None else shift[:, rows])
        predicted[rows] = expected_observed_score(p, phi[:, t, None], eps, censor).mean(axis=0)
        draws = simulate_observed(p, phi[:, t, None], eps, censor, rng)
        low[rows] = np.quantile(draws, tail, axis=0)
        high[rows] = np.quantile(draws, 1.0 - tail, axis=0)
    return np.clip(predicted, 0.0, 1.0), np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
