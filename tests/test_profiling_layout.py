"""The measurement layout: its formula, its censored likelihood, posterior
predictive checks, the simulator, and recovery of known abilities.

The multi-seed calibration study lives in bench/bench_recovery.py; the slow
tests here are one short fit per setting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capprof.errors import CapprofError
from capprof.profiling import checks, layout, likelihood
from capprof.profiling.checks import ppc_disagreements, ppc_table
from capprof.profiling.layout import DemandIndex, predict_scores
from capprof.profiling.likelihood import (expected_observed_score, expected_score, simulate_observed, squeeze,
                                          success_probability, unsqueeze)
from capprof.profiling.simulate import simulate_layout_scores


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_expected_score_is_noisy_product_over_demanded_levels_only():
    demands = pd.DataFrame({"a": [1.0, 0.0, 3.0], "b": [0.0, 0.0, 1.0]}, index=["s0", "s1", "s2"])
    index = DemandIndex.from_matrix(demands)
    theta = np.array([2.0, -5.0])  # very weak on "b"
    mu = expected_score(theta, np.float64(0.1), index.index, index.level, scale=1.0)
    # s0 demands only "a" at level 1: b's weakness must not hold it down
    assert mu[0] == pytest.approx(0.9 * _sigmoid(2.0 - 1.0))
    # s1 demands nothing: the product is empty (1)
    assert mu[1] == pytest.approx(0.9)
    # s2 demands a at level 3 and b at level 1
    assert mu[2] == pytest.approx(0.9 * _sigmoid(2.0 - 3.0) * _sigmoid(-5.0 - 1.0))


def test_higher_demand_level_or_scenario_difficulty_lowers_success():
    demands = pd.DataFrame({"a": [1.0, 2.0, 5.0]}, index=["s0", "s1", "s2"])
    index = DemandIndex.from_matrix(demands)
    p = success_probability(np.array([3.0]), index.index, index.level)
    assert p[0] > p[1] > p[2]
    harder = success_probability(np.array([3.0]), index.index, index.level, shift=np.array([1.0, 1.0, 1.0]))
    assert harder == pytest.approx(_sigmoid(3.0 - np.array([1.0, 2.0, 5.0]) - 1.0))


def test_squeeze_round_trips_and_keeps_bounds_inside():
    y = np.array([0.0, 0.3, 1.0])
    s = squeeze(y, 0.01)
    assert s.min() > 0 and s.max() < 1
    assert unsqueeze(s, 0.01) == pytest.approx(y)


def test_log_incomplete_beta_by_quadrature_matches_scipy():
    import pytensor
    import pytensor.tensor as pt
    from scipy.special import betainc

    a, b = pt.dvector("a"), pt.dvector("b")
    log_cdf = pytensor.function([a, b], likelihood.log_beta_cdf(0.01, a, b))
    rng = np.random.default_rng(0)
    # the range a fitted layout visits: mean 0.001..0.999, precision 1..300
    mean, precision = rng.uniform(0.001, 0.999, 2000), np.exp(rng.uniform(0.0, np.log(300), 2000))
    av, bv = mean * precision, (1 - mean) * precision
    with np.errstate(divide="ignore"):
        expected = np.log(betainc(av, bv, 0.01))
    finite = expected > -700
    assert np.abs(log_cdf(av, bv) - expected)[finite] == pytest.approx(0.0, abs=5e-3)


def test_observed_score_mean_and_simulation_agree_with_floors_and_ceilings():
    rng = np.random.default_rng(1)
    p = np.array([0.02, 0.3, 0.97])
    draws = simulate_observed(np.repeat(p[None], 40000, axis=0), 20.0, 0.1, 0.01, rng)
    # clipping makes exact 0s and 1s; the noise share adds 0s
    assert (draws[:, 0] == 0).mean() > 0.5 and (draws[:, 2] == 1).mean() > 0.3
    assert ((draws >= 0) & (draws <= 1)).all()
    assert expected_observed_score(p, 20.0, 0.1, 0.01) == pytest.approx(draws.mean(axis=0), abs=0.006)


def test_simulator_floors_low_abilities_against_high_levels():
    demands = pd.DataFrame({"a": [1.0, 5.0] * 10}, index=[f"s_{i}" for i in range(20)])
    scores, truth = simulate_layout_scores(demands, n_teams=2, abilities=np.array([[6.0], [0.0]]), noise=0.0,
                                           precision=30.0, seed=3)
    strong = scores[scores["team"] == "team_0"]
    weak_hard = scores[(scores["team"] == "team_1") & scores["scenario"].isin(demands.index[1::2])]
    assert (weak_hard["score"] == 0).mean() >= 0.7  # theta 0 vs level 5: clipped at the floor
    assert (strong["score"] == 1).sum() >= 3  # theta 6 vs level 1: at the ceiling
    assert sorted(truth["value"]) == [0.0, 6.0]
    assert list(scores.columns) == ["team", "scenario", "substrate", "replicate", "score", "background_score",
                                    "source"]


def _graded_demands(n_scenarios, n_demands, seed, max_level=5):
    rng = np.random.default_rng(seed)
    levels = np.where(rng.random((n_scenarios, n_demands)) < 0.4,
                      rng.integers(1, max_level + 1, (n_scenarios, n_demands)), 0)
    levels[levels.sum(axis=1) == 0, 0] = 1
    return pd.DataFrame(levels.astype(float), index=pd.Index([f"s{i:03d}" for i in range(n_scenarios)], name="scenario"),
                        columns=[f"d{k}" for k in range(n_demands)])


def _posterior(theta, observed, demands, team_of_cell, scenario_of_cell, precision=30.0, noise=0.05,
               delta=None, spread=None, demand_effect=None):
    """A hand-made InferenceData shaped like a fitted layout's: ``theta``
    (draws, teams, demands) and the constant data PPCs and predictions read."""
    import arviz as az

    index = DemandIndex.from_matrix(demands)
    n_draws, n_teams, _ = theta.shape
    posterior = {"ability": theta[None], "precision": np.full((1, n_draws, n_teams), precision),
                 "noise": np.full((1, n_draws), noise)}
    dims = {"ability": ["team", "demand"], "precision": ["team"], "cell_team": ["cell"],
            "cell_scenario": ["cell"], "cell_score": ["cell"], "scenario_demand": ["scenario", "slot"],
            "scenario_level": ["scenario", "slot"]}
    if delta is not None:
        posterior["scenario_difficulty"] = delta[None]
        posterior["scenario_spread"] = spread[None]
        dims["scenario_difficulty"] = ["scenario"]
    if demand_effect is not None:
        posterior["scenario_demand_effect"] = demand_effect[None]
        dims["scenario_demand_effect"] = ["demand"]
    constant = {"cell_team": team_of_cell, "cell_scenario": scenario_of_cell, "cell_score": observed,
                "scenario_demand": index.index, "scenario_level": index.level, "censor_point": np.float64(0.01),
                "fixed_slope": np.float64(1.0)}
    coords = {"team": [f"team_{t}" for t in range(n_teams)], "demand": list(demands.columns),
              "scenario": list(demands.index), "cell": np.arange(len(observed)),
              "slot": np.arange(index.index.shape[1])}
    return az.from_dict(posterior=posterior, constant_data=constant, coords=coords, dims=dims)


def _ppc_case(seed, flip_floor_to=None):
    demands = _graded_demands(60, 3, seed=seed)
    rng = np.random.default_rng(seed)
    truth = rng.normal(2.0, 1.5, (6, 3))
    scores, _ = simulate_layout_scores(demands, n_teams=6, abilities=truth, seed=seed, noise=0.05)
    team = scores["team"].str.slice(5).astype(int).to_numpy()
    scen = pd.Index(demands.index).get_indexer(scores["scenario"])
    observed = scores["score"].to_numpy().copy()
    if flip_floor_to is not None:  # the data hold far more zeros than the model makes
        observed[: int(flip_floor_to * len(observed))] = 0.0
    theta = truth[None] + rng.normal(0, 0.1, (200, 6, 3))
    return _posterior(theta, observed, demands, team, scen)


def test_ppc_agrees_when_data_come_from_the_posterior():
    table = ppc_table(_ppc_case(seed=4), seed=0)
    assert list(table.columns) == ["check", "observed", "replicated", "low", "high", "agrees"]
    assert {"floor share", "ceiling share", "PIT KS distance", "PIT KS p-value"} <= set(table["check"])
    assert (table["check"].str.startswith("PIT bin").sum()) == 10
    floor = table.set_index("check").loc["floor share"]
    assert floor["low"] <= floor["observed"] <= floor["high"]
    assert ppc_disagreements(table) == []


def test_ppc_names_a_floor_the_model_does_not_make():
    idata = _ppc_case(seed=4, flip_floor_to=0.6)
    problems = ppc_disagreements(idata)
    assert any(p.startswith("observed ") and "of cells at the floor (score 0), replicated from the posterior" in p
               for p in problems), problems
    assert any("PIT" in p for p in problems), problems


def test_predict_scores_new_scenario_uses_the_residual_prior():
    demands = pd.DataFrame({"a": [1.0, 1.0]}, index=["seen", "other"])
    theta = np.full((400, 1, 1), 3.0)
    delta = np.tile([[0.0, 0.0]], (400, 1))
    idata = _posterior(theta, np.array([0.8, 0.8]), demands, np.array([0, 0]), np.array([0, 1]), noise=0.0,
                       delta=delta, spread=np.full(400, 2.0))
    rows = pd.DataFrame({"a": [1.0, 1.0]}, index=["seen", "brand_new"])
    predicted, low, high = predict_scores(idata, [0, 0], rows, 0.9)
    # same demands, but the unseen scenario's difficulty is unknown: wider interval
    assert (high - low)[1] > (high - low)[0] + 0.05
    assert ((low <= predicted) & (predicted <= high)).all()


def test_unseen_scenario_borrows_the_residual_mean_of_its_tags():
    """With the hierarchical residual mean, a new scenario carrying a tag whose
    scenarios were harder (w_tag > 0) is predicted lower than one without it,
    even at equal demands otherwise; without the mean both would be equal
    in expectation."""
    demands = pd.DataFrame({"sub": [1.0, 1.0], "hard_tag": [1.0, 0.0]}, index=["seen", "plain"])
    n = 2000
    theta = np.full((n, 1, 2), 4.0)
    delta = np.tile([[1.5, 0.0]], (n, 1))
    effect = np.tile([[0.0, 1.5]], (n, 1))  # scenarios with hard_tag are 1.5 harder
    idata = _posterior(theta, np.array([0.5, 0.9]), demands, np.array([0, 0]), np.array([0, 1]), noise=0.0,
                       delta=delta, spread=np.full(n, 0.1), demand_effect=effect)
    rows = pd.DataFrame({"sub": [1.0, 1.0], "hard_tag": [1.0, 0.0]}, index=["new_tagged", "new_plain"])
    predicted, _, _ = predict_scores(idata, [0, 0], rows, 0.9)
    assert predicted[0] < predicted[1] - 0.1
    # the tagged new scenario is predicted like the seen tagged one (same demands, same mean difficulty)
    seen, _, _ = predict_scores(idata, [0], demands.loc[["seen"]], 0.9)
    assert predicted[0] == pytest.approx(seen[0], abs=0.03)


def test_hierarchical_residual_mean_is_built_over_non_substrate_demands_only():
    demands = pd.DataFrame({"clean_up": [1.0, 1.0, 0.0], "territory__rooms": [0.0, 0.0, 1.0],
                            "visitor": [1.0, 0.0, 1.0]}, index=["c0", "c1", "t0"])
    index = DemandIndex.from_matrix(demands)
    groups = ["substrate", "substrate", "mode"]
    model = layout.build_layout_model(np.array([0, 0, 0]), np.arange(3), np.array([0.5, 0.5, 0.5]), index, ["t"],
                                      demand_groups=groups, scenario_effect=True)
    assert {"scenario_mean_spread", "scenario_demand_effect_z"} <= {v.name for v in model.free_RVs}
    point = model.initial_point()
    point["scenario_demand_effect_z"] = np.array([1.0, 1.0, 1.0])
    point["scenario_mean_spread_log__"] = np.array(0.0)
    point["scenario_difficulty_z"] = np.zeros(3)
    effect, delta = model.compile_fn(model.replace_rvs_by_values(
        [model["scenario_demand_effect"], model["scenario_difficulty"]]), inputs=model.value_vars,
        on_unused_input="ignore")(point)
    assert list(effect) == [0.0, 0.0, 1.0]  # a substrate's shared shift is its ability, not a residual
    assert list(delta) == pytest.approx([1.0, 0.0, 1.0])  # the visitor scenarios share the visitor mean
    plain = layout.build_layout_model(np.array([0, 0, 0]), np.arange(3), np.array([0.5, 0.5, 0.5]), index, ["t"],
                                      demand_groups=groups, scenario_effect=True, scenario_mean=False)
    assert "scenario_mean_spread" not in {v.name for v in plain.free_RVs}


def test_scenario_residual_is_on_by_default_in_joint_mode_only():
    from capprof.profiling.predictors import MeasurementLayout

    assert MeasurementLayout(mode="joint").uses_scenario_effect
    assert not MeasurementLayout(mode="per-team").uses_scenario_effect
    assert not MeasurementLayout(mode="joint", scenario_effect=False).uses_scenario_effect


def test_eight_point_quadrature_stays_close_to_scipy():
    import pytensor
    import pytensor.tensor as pt
    from scipy.special import betainc

    a, b = pt.dvector("a"), pt.dvector("b")
    rng = np.random.default_rng(1)
    mean, precision = rng.uniform(0.001, 0.999, 2000), np.exp(rng.uniform(0.0, np.log(300), 2000))
    av, bv = mean * precision, (1 - mean) * precision
    expected = betainc(av, bv, 0.01)
    for nodes, tolerance in ((8, 3e-3), (16, 1e-3)):
        cdf = np.exp(pytensor.function([a, b], likelihood.log_beta_cdf(0.01, a, b, nodes))(av, bv))
        assert np.abs(cdf - expected).max() < tolerance, nodes


def test_censored_likelihood_scores_floor_ceiling_and_interior_cells_by_their_probability():
    from scipy import stats
    from scipy.special import betainc

    demands = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=["s0", "s1", "s2"])
    y = np.array([1.0, 0.4, 0.0])  # ceiling, interior, floor
    model = layout.build_layout_model(np.zeros(3, dtype=int), np.arange(3), squeeze(y, 0.01),
                                      DemandIndex.from_matrix(demands), ["t"], mode="per-team", scale=None)
    point = model.initial_point()
    point["ability_z"] = np.array([[0.7]])
    point["noise_logodds__"] = np.array(-2.0)
    point["slope_log__"] = np.array(0.3)
    outputs = model.replace_rvs_by_values(
        [model["ability"], model["noise"], model["precision"], model["slope"], model.potentials[0]])
    theta, eps, phi, slope, potential = model.compile_fn(outputs, inputs=model.value_vars,
                                                         on_unused_input="ignore")(point)
    p = _sigmoid(float(slope) * (theta[0, 0] - np.array([1.0, 2.0, 3.0])))
    a, b = p * phi[0], (1 - p) * phi[0]
    expected = (np.log(1 - eps) + np.log(betainc(b[0], a[0], 0.01))  # P(y* >= 0.99)
                + np.log(1 - eps) + stats.beta.logpdf(0.01 + 0.98 * 0.4, a[1], b[1])
                + np.log(eps + (1 - eps) * betainc(a[2], b[2], 0.01)))  # chance or P(y* <= 0.01)
    assert float(potential) == pytest.approx(expected, rel=1e-3)


def test_layout_rejects_bad_mode_and_chance():
    demands = _graded_demands(5, 2, seed=0)
    index = DemandIndex.from_matrix(demands)
    args = (np.array([0, 0]), np.array([0, 1]), np.array([0.5, 0.5]), index, ["t"])
    with pytest.raises(CapprofError, match='unknown layout mode "pooled"'):
        layout.build_layout_model(*args, mode="pooled")
    with pytest.raises(CapprofError, match="chance component is the floor"):
        layout.build_layout_model(*args, chance=0.5)
    model = layout.build_layout_model(*args)
    with pytest.raises(CapprofError, match=r"target_accept must be in \(0, 1\), got 1.5"):
        layout.sample_layout(model, draws=10, tune=10, target_accept=1.5)


def _fit(scores, demands, mode="joint", draws=150, tune=150, **options):
    cells = scores.groupby(["team", "scenario"], sort=True)["score"].mean().reset_index()
    teams = sorted(cells["team"].unique())
    index = DemandIndex.from_matrix(demands)
    model = layout.build_layout_model(
        pd.Categorical(cells["team"], categories=teams).codes.astype(int),
        pd.Categorical(cells["scenario"], categories=index.scenarios).codes.astype(int),
        squeeze(cells["score"].to_numpy(), 0.01), index, teams, mode=mode, **options)
    idata = layout.sample_layout(model, draws=draws, tune=tune, seed=0)
    return idata, checks.diagnostics(idata)


def _calibration(idata, truth):
    summary = layout.ability_summary(idata, hdi_prob=0.9).merge(truth, on=["team", "ability"])
    inside = (summary["value"] >= summary["hdi_low"]) & (summary["value"] <= summary["hdi_high"])
    lowest = summary["value"] <= summary["value"].quantile(1 / 3)
    return inside.mean(), inside[lowest].mean(), np.corrcoef(summary["mean"], summary["value"])[0, 1]


def test_short_fit_reports_convergence_and_posterior_predictive_checks():
    demands = _graded_demands(30, 3, seed=0)
    scores, truth = simulate_layout_scores(demands, n_teams=3, seed=1, ability_mean=2.5)
    idata, diag = _fit(scores, demands, draws=100, tune=100)
    assert {"max_rhat", "min_ess_bulk", "divergences", "floor_observed", "floor_replicated",
            "ceiling_observed", "pit_ks", "pit_p", "ppc_disagreements"} <= set(diag)
    assert diag["floor_observed"] == pytest.approx((scores["score"] == 0).mean())
    assert idata.posterior["ability"].dims == ("chain", "draw", "team", "demand")
    # even a short run ranks abilities roughly right
    assert _calibration(idata, truth)[2] > 0.6


def test_pointwise_log_likelihood_is_the_fitted_density_and_arviz_loo_reads_it():
    import arviz as az
    import pytensor

    demands = _graded_demands(20, 3, seed=2)
    scores, _ = simulate_layout_scores(demands, n_teams=3, seed=3, ability_mean=2.0)
    idata, diag = _fit(scores, demands, draws=60, tune=60, scenario_effect=True)
    assert {"log_likelihood", "observed_data"} <= set(idata.groups())
    cells = scores.groupby(["team", "scenario"], sort=True)["score"].mean()
    assert idata.log_likelihood["score"].shape == (2, 60, len(cells))
    np.testing.assert_allclose(idata.observed_data["score"], cells.clip(0, 1).to_numpy())
    # summed over cells, each draw's pointwise values are the model's own log density there
    teams = sorted(scores["team"].unique())
    index = DemandIndex.from_matrix(demands)
    cell_frame = cells.reset_index()
    model = layout.build_layout_model(
        pd.Categorical(cell_frame["team"], categories=teams).codes.astype(int),
        pd.Categorical(cell_frame["scenario"], categories=index.scenarios).codes.astype(int),
        squeeze(cell_frame["score"].to_numpy(), 0.01), index, teams, scenario_effect=True)
    inputs = [model["ability"], model["precision"], model["noise"], model["scenario_difficulty"]]
    density = pytensor.function(inputs, model.potentials[0], on_unused_input="ignore")
    post = idata.posterior
    for chain, draw in ((0, 0), (1, 59)):
        values = [post[v.name].isel(chain=chain, draw=draw).to_numpy() for v in inputs]
        expected = float(density(*values))
        assert float(idata.log_likelihood["score"].isel(chain=chain, draw=draw).sum()) == pytest.approx(
            expected, rel=1e-4)
    loo = az.loo(idata)
    assert diag["loo_elpd"] == pytest.approx(float(loo["elpd_loo"]))
    assert diag["loo_cells"] == len(cells) and 0 <= diag["loo_bad_k"] <= len(cells)
    # replicated scores from the generative model: ArviZ's LOO-PIT reads them,
    # and they put cells at the floor as the model does
    replicated = idata.posterior_predictive["score"]
    assert replicated.shape == (2, 60, len(cells))
    assert float(replicated.min()) >= 0.0 and float(replicated.max()) <= 1.0
    assert float((replicated == 0).mean()) == pytest.approx(diag["floor_replicated"], abs=0.03)
    pit = az.loo_pit(idata, y="score")
    assert pit.shape == (len(cells),) and np.all((pit >= 0) & (pit <= 1))


def test_model_structure_key_ignores_the_cells_but_not_the_options_or_demands():
    demands = _graded_demands(6, 2, seed=0)
    index = DemandIndex.from_matrix(demands)

    def key(cells, index=index, **options):
        model = layout.build_layout_model(np.zeros(len(cells), dtype=int), np.asarray(cells),
                                          np.full(len(cells), 0.5), index, ["t0", "t1"], **options)
        return layout._KEYS[model]

    assert key([0, 1, 2]) == key([3, 4, 5, 0])
    assert key([0, 1, 2]) != key([0, 1, 2], quadrature=8)
    assert key([0, 1, 2]) != key([0, 1, 2], scenario_effect=True)
    assert key([0, 1, 2]) != key([0, 1, 2], index=DemandIndex.from_matrix(demands * 2))


def test_a_refit_on_other_cells_reuses_the_compiled_model_and_matches_a_fresh_compile():
    from capprof.profiling.predictors import make_predictor

    demands = _graded_demands(30, 3, seed=0)
    scores, _ = simulate_layout_scores(demands, n_teams=3, seed=1, ability_mean=2.5)
    # two folds: other training cells (and another number of them), same teams and scenarios
    first, second = scores.drop(index=scores.index[::5]), scores.drop(index=scores.index[1::4])

    def fit(train):
        # the structure of test_short_fit's model, so that its compile can serve here too
        return make_predictor("layout-joint", scenario_effect=False, draws=60, tune=60, seed=2).fit(train, demands)

    first_fit = fit(first)
    before = dict(layout.compile_counts)
    fitted = [first_fit, fit(second)]
    assert layout.compile_counts["compiled"] == before["compiled"]  # no compile for the second fold
    assert layout.compile_counts["reused"] == before["reused"] + 1
    layout.clear_compiled()
    fresh = fit(second)
    assert (layout.compile_counts["compiled"], layout.compile_counts["reused"]) == (1, 0)
    reused = fitted[1]
    np.testing.assert_array_equal(reused.posterior_.posterior["ability"].values,
                                  fresh.posterior_.posterior["ability"].values)
    assert repr(reused.diagnostics_) == repr(fresh.diagnostics_)  # repr: NaN equals NaN
    # the second fold's own cells, not the first fold's, in the fit and in the saved data
    assert not np.allclose(fitted[0].posterior_.posterior["ability"].values,
                           reused.posterior_.posterior["ability"].values)
    assert reused.posterior_.constant_data["cell_score"].size == len(second)
    pairs = (["team_0", "team_1"], ["s000", "s001"])
    pd.testing.assert_frame_equal(reused.predict(*pairs), fresh.predict(*pairs))


def test_misspecified_generators_depart_from_the_layouts_own_world():
    demands = pd.DataFrame({"a": [1.0] * 40, "b": [1.0] * 40}, index=[f"s_{i}" for i in range(40)])
    strong_and_weak = np.array([[9.0, -5.0]])  # master of a, hopeless at b
    mean = {}
    for generator in ("layout", "compensatory", "team-slope", "heavy-tails"):
        scores, truth = simulate_layout_scores(demands, n_teams=1, seed=4, noise=0.0, abilities=strong_and_weak,
                                               generator=generator)
        mean[generator] = scores["score"].mean()
        assert list(truth["value"]) == [9.0, -5.0]
    # non-compensatory: the weakness holds the product down; averaged, the strength makes up for it
    assert mean["layout"] < 0.05 and mean["compensatory"] > 0.7
    with pytest.raises(ValueError, match="unknown generator 'additive'; one of layout, compensatory"):
        simulate_layout_scores(demands, n_teams=1, generator="additive")


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["graded", "binary", "per-team"])
def test_layout_recovers_known_abilities_with_calibrated_intervals(setting):
    """One short fit per setting (bench/bench_recovery.py runs several seeds
    at a larger size): graded levels 0..5 with many floored cells, binary
    demands, and the per-team mode. 90% HDIs cover about 90% of the true
    abilities, also for the lowest third, whose cells sit mostly at the floor."""
    max_level, mode, n_teams = {"graded": (5, "joint", 10), "binary": (1, "joint", 10),
                                "per-team": (5, "per-team", 6)}[setting]
    demands = _graded_demands(60, 5, seed=1, max_level=max_level)
    scores, truth = simulate_layout_scores(demands, n_teams=n_teams, seed=2,
                                           ability_mean=2.0 if max_level > 1 else 1.5)
    if max_level > 1:
        assert (scores["score"] == 0).mean() > 0.3  # many floored cells
    idata, diag = _fit(scores, demands, mode=mode, draws=300, tune=300)
    coverage, coverage_low, corr = _calibration(idata, truth)
    assert 0.8 <= coverage <= 0.99, coverage
    assert coverage_low >= 0.7, coverage_low
    assert corr >= 0.8, corr
    assert diag["divergences"] <= 2


def test_a_scenario_without_training_cells_is_predicted_the_same_whether_or_not_its_demands_came_with_the_fit():
    """The demand rows of scenarios the fit has no cells for (a held-out
    scenario in cross-validation) must not enter the model: there the
    residual's centring within the substrate would make the held-out
    scenario's residual minus the sum of its substrate's and move every
    prediction for it. Fitted with or without those rows, the posterior and
    the predictions for the held-out scenario are the same."""
    from capprof.profiling.predictors import make_predictor

    names = [f"clean_up_{i}" for i in range(6)] + [f"territory__rooms_{i}" for i in range(6)]
    rng = np.random.default_rng(4)
    demands = pd.DataFrame({"clean_up": [1.0] * 6 + [0.0] * 6, "territory__rooms": [0.0] * 6 + [1.0] * 6,
                            "visitor": rng.integers(0, 2, 12).astype(float)},
                           index=pd.Index(names, name="scenario"))
    scores, _ = simulate_layout_scores(demands, n_teams=3, seed=3, ability_mean=2.0, scenario_sd=0.8)
    held_out = ["clean_up_0", "territory__rooms_5"]
    train = scores[~scores["scenario"].isin(held_out)]

    def fit(rows):
        return make_predictor("layout-joint", draws=60, tune=60, seed=1).fit(train, rows)

    with_rows, without_rows = fit(demands), fit(demands.drop(index=held_out))
    assert set(map(str, with_rows.posterior_.posterior["scenario"].values)).isdisjoint(held_out)
    np.testing.assert_array_equal(with_rows.posterior_.posterior["ability"].values,
                                  without_rows.posterior_.posterior["ability"].values)
    pairs = (["team_0", "team_1", "team_2"], ["clean_up_0", "territory__rooms_5", "clean_up_0"])
    pd.testing.assert_frame_equal(with_rows.predict(*pairs), without_rows.predict(*pairs, demands=demands))
