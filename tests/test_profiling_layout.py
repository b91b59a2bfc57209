"""The measurement layout: its formula, its fit, and recovery of known abilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capprof.errors import CapprofError
from capprof.profiling.layout import DemandIndex, MeasurementLayout, expected_score, squeeze, unsqueeze
from capprof.profiling.simulate import simulate_layout_scores


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_expected_score_is_noisy_product_over_demanded_levels_only():
    demands = pd.DataFrame({"a": [1.0, 0.0, 3.0], "b": [0.0, 0.0, 1.0]}, index=["s0", "s1", "s2"])
    index = DemandIndex.from_matrix(demands)
    theta = np.array([2.0, -5.0])  # very weak on "b"
    mu = expected_score(theta, np.float64(0.1), index.index, index.level, scale=1.0, chance=0.5)
    # s0 demands only "a" at level 1: b's weakness must not hold it down
    assert mu[0] == pytest.approx(0.05 + 0.9 * _sigmoid(2.0 - 1.0))
    # s1 demands nothing: the product is empty (1)
    assert mu[1] == pytest.approx(0.05 + 0.9)
    # s2 demands a at level 3 and b at level 1
    assert mu[2] == pytest.approx(0.05 + 0.9 * _sigmoid(2.0 - 3.0) * _sigmoid(-5.0 - 1.0))


def test_higher_demand_level_lowers_expected_score():
    demands = pd.DataFrame({"a": [1.0, 2.0, 5.0]}, index=["s0", "s1", "s2"])
    index = DemandIndex.from_matrix(demands)
    mu = expected_score(np.array([3.0]), np.float64(0.0), index.index, index.level, 1.0, 0.5)
    assert mu[0] > mu[1] > mu[2]


def test_squeeze_round_trips_and_keeps_bounds_inside():
    y = np.array([0.0, 0.3, 1.0])
    s = squeeze(y, 0.01)
    assert s.min() > 0 and s.max() < 1
    assert unsqueeze(s, 0.01) == pytest.approx(y)


def _graded_demands(n_scenarios, n_demands, seed, max_level=5):
    rng = np.random.default_rng(seed)
    levels = np.where(rng.random((n_scenarios, n_demands)) < 0.4,
                      rng.integers(1, max_level + 1, (n_scenarios, n_demands)), 0)
    levels[levels.sum(axis=1) == 0, 0] = 1
    return pd.DataFrame(levels.astype(float), index=pd.Index([f"s{i:03d}" for i in range(n_scenarios)], name="scenario"),
                        columns=[f"d{k}" for k in range(n_demands)])


@pytest.mark.parametrize("mode", ["joint", "per-team"])
def test_layout_fits_predicts_and_reports_diagnostics(mode):
    demands = _graded_demands(40, 3, seed=0)
    scores, truth = simulate_layout_scores(demands, n_teams=3, seed=1, ability_mean=3.0, ability_sd=1.5)
    train = scores[scores["scenario"] != "s039"]
    layout = MeasurementLayout(mode=mode, draws=150, tune=150, seed=0).fit(train, demands)

    assert set(layout.diagnostics_) >= {"max_rhat", "min_ess_bulk", "divergences"}
    assert layout.idata_.posterior["ability"].dims == ("chain", "draw", "team", "demand")
    profile = layout.abilities()
    assert list(profile.columns) == ["team", "ability", "mean", "sd", "hdi_low", "hdi_high", "hdi_prob"]
    assert len(profile) == 3 * 3 and (profile["hdi_low"] < profile["hdi_high"]).all()
    # even a short run ranks abilities roughly right
    merged = profile.merge(truth, on=["team", "ability"])
    assert np.corrcoef(merged["mean"], merged["value"])[0, 1] > 0.6

    out = layout.predict(["team_0", "team_1"], ["s039", "s039"])  # an unseen scenario
    assert ((out["low"] <= out["predicted"]) & (out["predicted"] <= out["high"])).all()
    assert ((out[["low", "high", "predicted"]] >= 0) & (out[["low", "high", "predicted"]] <= 1)).all().all()
    fitted_cells = train.groupby(["team", "scenario"])["score"].mean().reset_index()
    in_sample = layout.predict(fitted_cells["team"], fitted_cells["scenario"])
    team_mean = fitted_cells.groupby("team")["score"].transform("mean")
    assert np.mean((in_sample["predicted"] - fitted_cells["score"]) ** 2) < 0.5 * np.mean(
        (team_mean - fitted_cells["score"]) ** 2)


def test_layout_rejects_bad_mode_and_missing_demands():
    demands = _graded_demands(5, 2, seed=0)
    scores, _ = simulate_layout_scores(demands, n_teams=2)
    with pytest.raises(CapprofError, match="unknown layout mode"):
        MeasurementLayout(mode="pooled").fit(scores, demands)
    with pytest.raises(CapprofError, match="have no demands"):
        MeasurementLayout().fit(scores, demands.iloc[:3])


@pytest.mark.slow
def test_layout_recovers_known_abilities():
    """20 teams x 100 scenarios x 8 graded demands simulated from the layout:
    posterior means track the true abilities and the 90% HDIs cover ~90%."""
    # levels 1..3 and abilities around 3: most scores are away from 0, where a
    # product of logistics says little about which ability is the weak one
    demands = _graded_demands(100, 8, seed=1, max_level=3)
    scores, truth = simulate_layout_scores(demands, n_teams=20, seed=2, ability_mean=3.0, ability_sd=1.2)
    layout = MeasurementLayout(mode="joint", draws=300, tune=300, seed=0).fit(scores, demands)
    merged = layout.abilities(hdi_prob=0.9).merge(truth, on=["team", "ability"])
    corr = np.corrcoef(merged["mean"], merged["value"])[0, 1]
    coverage = ((merged["value"] >= merged["hdi_low"]) & (merged["value"] <= merged["hdi_high"])).mean()
    assert corr >= 0.9, corr
    assert 0.8 <= coverage <= 0.98, coverage
    assert layout.diagnostics_["divergences"] == 0
