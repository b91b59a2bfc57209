"""Predictors share one interface and each does what its docstring says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capprof.errors import CapprofError
from capprof.profiling.evaluate import mean_interval, mse, split_cells
from capprof.profiling.predictors import (
    AdditiveTeamScenario,
    AggMean,
    Assessor,
    DemandRidge,
    cell_means,
)


def _toy(seed=0, n_teams=4, n_scenarios=40):
    """Scores where team t is good exactly on scenarios demanding "a" (team
    0 and 1) or "b" (teams 2, 3): a team x demand interaction that AggMean
    cannot see and demand-aware models can."""
    rng = np.random.default_rng(seed)
    scen = [f"s{i:02d}" for i in range(n_scenarios)]
    demands = pd.DataFrame(
        {"a": [float(i % 2 == 0) for i in range(n_scenarios)], "b": [float(i % 2 == 1) for i in range(n_scenarios)],
         "c": rng.integers(0, 2, n_scenarios).astype(float)},
        index=pd.Index(scen, name="scenario"),
    )
    rows = []
    for t in range(n_teams):
        good = "a" if t < 2 else "b"
        for s in scen:
            for r in range(3):
                mean = 0.8 if demands.loc[s, good] else 0.2
                rows.append((f"team_{t}", s, s[:2], r, float(np.clip(mean + rng.normal(0, 0.05), 0, 1))))
    scores = pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score"])
    return scores, demands


def test_cell_means_average_replicates():
    scores, _ = _toy()
    cells = cell_means(scores)
    assert len(cells) == 4 * 40 and set(cells["n"]) == {3}
    one = scores[(scores.team == "team_0") & (scores.scenario == "s00")]["score"].mean()
    assert cells.query("team == 'team_0' and scenario == 's00'")["score"].item() == pytest.approx(one)


def test_aggmean_is_each_teams_training_mean():
    scores, demands = _toy()
    model = AggMean().fit(scores, demands)
    out = model.predict(["team_0", "team_3"], ["s00", "s01"])
    assert list(out.columns) == ["team", "scenario", "predicted", "low", "high"]
    expected = cell_means(scores).groupby("team")["score"].mean()
    assert out["predicted"].tolist() == pytest.approx([expected["team_0"], expected["team_3"]])
    assert out["low"].isna().all()


@pytest.mark.parametrize("cls", [DemandRidge, Assessor])
def test_demand_models_learn_team_by_demand_interaction(cls):
    scores, demands = _toy()
    train = scores[~scores["scenario"].isin(["s38", "s39"])]
    model = cls().fit(train, demands)
    # unseen scenarios, described only by their demands
    out = model.predict(["team_0", "team_0", "team_3", "team_3"], ["s38", "s39", "s38", "s39"])
    p = out["predicted"].to_numpy()
    assert p[0] > 0.6 and p[1] < 0.4 and p[2] < 0.4 and p[3] > 0.6
    baseline = AggMean().fit(train, demands).predict(out["team"], out["scenario"])["predicted"]
    truth = np.array([0.8, 0.2, 0.2, 0.8])
    assert mse(p, truth) < 0.25 * mse(baseline, truth)


def test_assessor_exposes_importances_naming_the_informative_demands():
    scores, demands = _toy()
    model = Assessor().fit(scores, demands)
    imp = model.feature_importances_
    assert list(imp.columns) == ["feature", "importance"]
    assert set(imp["feature"]) == {"team=team_0", "team=team_1", "team=team_2", "team=team_3", "a", "b", "c"}
    by_name = imp.set_index("feature")["importance"]
    # "b" is the complement of "a", so the trees need only one of them; the
    # noise demand "c" must matter far less than the informative one
    assert max(by_name["a"], by_name["b"]) > 20 * by_name["c"], imp
    assert by_name.sum() == pytest.approx(1.0)


def test_additive_model_uses_scenario_effects_for_seen_scenarios():
    rng = np.random.default_rng(3)
    rows = [(f"t{t}", f"s{s}", "x", 0, 0.1 * t + 0.05 * s + rng.normal(0, 0.01)) for t in range(4) for s in range(10)]
    scores = pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score"])
    train = scores.drop(index=5)  # (t0, s5) held out
    model = AdditiveTeamScenario(alpha=1e-3).fit(train)
    assert model.predict(["t0"], ["s5"])["predicted"].item() == pytest.approx(0.25, abs=0.03)


def test_predict_rejects_unknown_team_and_undescribed_scenario():
    scores, demands = _toy()
    model = DemandRidge().fit(scores, demands)
    with pytest.raises(CapprofError, match='team "team_9" was not in the training scores'):
        model.predict(["team_9"], ["s00"])
    with pytest.raises(CapprofError, match='scenario "zz" has no demands'):
        model.predict(["team_0"], ["zz"])
    new = pd.DataFrame({"a": [1.0], "brand_new": [2.0]}, index=pd.Index(["zz"], name="scenario"))
    with pytest.raises(CapprofError, match='demand "brand_new" was not part of the fitted model'):
        model.predict(["team_0"], ["zz"], demands=new)
    ok = model.predict(["team_0"], ["zz"], demands=new[["a"]])
    assert ok["predicted"].item() > 0.6


def test_splits_are_seeded_and_shaped():
    scores, _ = _toy()
    cells = cell_means(scores).assign(substrate=lambda c: c["scenario"].str[:2])
    a = [m for _, m, _ in split_cells(cells, "random", 3, 0.1, seed=1)]
    b = [m for _, m, _ in split_cells(cells, "random", 3, 0.1, seed=1)]
    assert all((x == y).all() for x, y in zip(a, b))
    assert all(m.sum() == 16 for m in a) and not (a[0] == a[1]).all()
    for _, mask, _ in split_cells(cells, "scenario", 2, 0.25, seed=0):
        held = set(cells.loc[mask, "scenario"])
        assert len(held) == 10 and not held & set(cells.loc[~mask, "scenario"])
    for _, mask, label in split_cells(cells, "substrate", 2, 0.1, seed=0):
        assert set(cells.loc[mask, "substrate"]) == {label}
    with pytest.raises(CapprofError, match="--test-frac"):
        list(split_cells(cells, "random", 1, 1.5, seed=0))


def test_mean_interval_is_a_t_interval():
    m, lo, hi = mean_interval(np.array([1.0, 2.0, 3.0]))
    assert m == 2.0 and lo == pytest.approx(2 - 4.302653 / np.sqrt(3), rel=1e-5) and hi == pytest.approx(4 - lo)
    assert np.isnan(mean_interval(np.array([1.0]))[1])


def test_mse_interval_never_goes_below_zero():
    """Three noisy repeats: the t interval reaches below 0, an impossible
    MSE; bounded below, it starts at 0 and keeps its upper end."""
    values = np.array([0.01, 0.02, 0.40])
    _, raw_low, raw_high = mean_interval(values)
    m, low, high = mean_interval(values, lower=0.0)
    assert raw_low < 0 and low == 0.0 and high == raw_high and m == pytest.approx(values.mean())
