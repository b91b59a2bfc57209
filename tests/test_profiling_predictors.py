"""Predictors share one interface and each does what its docstring says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capprof.errors import CapprofError
from capprof.profiling.predictors import (
    PREDICTORS,
    AdditiveTeamScenario,
    AggMean,
    Assessor,
    DemandRidge,
    Predictor,
    canonical_name,
    cell_means,
    make_predictor,
    predictor_names,
)

FAST_MODELS = ("aggmean", "additive", "ridge", "assessor", "lltm", "lowrank")


def mse(predicted, observed) -> float:
    return float(np.mean((np.asarray(predicted, float) - np.asarray(observed, float)) ** 2))


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


# ------------------------------------------------------------------ the contract and the registry


def test_every_predictor_module_is_registered_under_its_name():
    import importlib
    import inspect
    import pkgutil

    import capprof.profiling.predictors as package

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Predictor) and cls.__dict__.get("name"):
                found[cls.name] = cls
    assert found == PREDICTORS
    assert {"aggmean", "additive", "ridge", "assessor", "layout-joint", "layout-per-team", "lltm",
            "lowrank"} <= set(predictor_names())


def test_layout_names_each_mean_one_model():
    assert canonical_name("layout") == "layout-joint"
    joint, per_team = make_predictor("layout"), make_predictor("layout-per-team")
    assert (joint.name, joint.mode) == ("layout-joint", "joint")
    assert (per_team.name, per_team.mode) == ("layout-per-team", "per-team")
    assert joint.is_bayesian and joint.has_intervals and joint.interval_level == 0.9
    assert not any(PREDICTORS[name].is_bayesian for name in FAST_MODELS)
    with pytest.raises(CapprofError, match='unknown model "layout-jont" \\(did you mean "layout-joint"\\?\\)'):
        make_predictor("layout-jont")


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_params_live_in_init_and_clone_copies_them_unfitted(name):
    model = make_predictor(name, seed=7, draws=50, tune=40, not_a_parameter=1)
    params = model.get_params()
    assert "not_a_parameter" not in params
    if "seed" in params:
        assert params["seed"] == 7
    twin = model.clone()
    assert type(twin) is type(model) and twin.get_params() == params and not twin.is_fitted


@pytest.mark.parametrize("name", FAST_MODELS)
def test_save_and_load_give_the_same_predictions(name, tmp_path):
    scores, demands = _toy()
    train = scores[~scores["scenario"].isin(["s38", "s39"])]
    model = make_predictor(name).fit(train, demands.drop(index=["s39"]))
    new = demands.loc[["s39"]]
    teams, scenarios = ["team_0", "team_3", "team_1"], ["s00", "s38", "s39"]
    before = model.predict(teams, scenarios, demands=new)
    loaded = Predictor.load(model.save(tmp_path / name))
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.predict(teams, scenarios, demands=new), before, atol=1e-9)


def test_load_of_a_directory_without_a_predictor_is_one_line(tmp_path):
    with pytest.raises(CapprofError, match="predictor.json is missing"):
        Predictor.load(tmp_path)
    (tmp_path / "predictor.json").write_text('{"name": "ridge", "par')
    with pytest.raises(CapprofError, match="predictor.json is truncated or not JSON"):
        Predictor.load(tmp_path)


# ------------------------------------------------------------------ the cheap demand baselines


def _graded_table(seed=0, n_teams=6, n_scenarios=60):
    """Scores from a team x graded-demand logistic truth with a scenario
    effect, clipped to [0, 1] so many cells are exactly 0 or 1."""
    rng = np.random.default_rng(seed)
    scen = [f"s{i:02d}" for i in range(n_scenarios)]
    demands = pd.DataFrame(rng.integers(0, 4, (n_scenarios, 5)).astype(float), columns=list("abcde"),
                           index=pd.Index(scen, name="scenario"))
    ability = rng.normal(0, 1.0, (n_teams, 5))
    difficulty = rng.normal(0, 0.5, n_scenarios)
    eta = (demands.to_numpy() @ ability.T).T * 0.8 - difficulty
    rows = []
    for t in range(n_teams):
        for s, name in enumerate(scen):
            for r in range(2):
                y = 1.3 / (1 + np.exp(-eta[t, s])) - 0.15 + rng.normal(0, 0.05)
                rows.append((f"team_{t}", name, "x", r, float(np.clip(y, 0, 1))))
    return pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score"]), demands


@pytest.mark.parametrize("name", ["lltm", "lowrank"])
def test_demand_baselines_beat_aggmean_on_held_out_cells_and_scenarios(name):
    scores, demands = _graded_table()
    cells = cell_means(scores)
    assert ((cells["score"] == 0) | (cells["score"] == 1)).mean() > 0.1  # exact floors and ceilings
    rng = np.random.default_rng(1)
    test = cells.iloc[rng.choice(len(cells), 40, replace=False)]
    key = pd.MultiIndex.from_frame(scores[["team", "scenario"]])
    train = scores[~key.isin(pd.MultiIndex.from_frame(test[["team", "scenario"]]))]
    model = make_predictor(name).fit(train, demands)
    out = model.predict(test["team"], test["scenario"])
    assert list(out.columns) == ["team", "scenario", "predicted", "low", "high"] and len(out) == 40
    assert out["predicted"].between(0, 1).all() and out["low"].isna().all()
    baseline = AggMean().fit(train, demands).predict(test["team"], test["scenario"])["predicted"]
    assert mse(out["predicted"], test["score"]) < 0.5 * mse(baseline, test["score"])

    # unseen scenarios: their residual is 0, they are placed by their demands alone
    held = ["s58", "s59"]
    model = make_predictor(name).fit(scores[~scores["scenario"].isin(held)], demands.drop(index=held))
    unseen = cells[cells["scenario"].isin(held)]
    out = model.predict(unseen["team"], unseen["scenario"], demands=demands.loc[held])
    assert np.isfinite(out["predicted"]).all()
    baseline = AggMean().fit(scores[~scores["scenario"].isin(held)]).predict(unseen["team"], unseen["scenario"])
    assert mse(out["predicted"], unseen["score"]) < mse(baseline["predicted"], unseen["score"])


def test_a_predictor_with_an_explicit_stored_parameter_clones_and_shows_it():
    # the base is a scikit-learn estimator: a parameter stored under its own
    # name (like the layout's mode) survives clone, set_params and repr
    from sklearn.base import clone

    class Modal(Predictor):
        def __init__(self, mode: str = "joint", alpha: float = 1.0):
            self.mode = mode
            self.alpha = alpha

    model = Modal(mode="per-team")
    assert Modal.param_names() == ["mode", "alpha"]
    assert model.get_params() == {"alpha": 1.0, "mode": "per-team"}
    assert clone(model).get_params() == model.clone().get_params() == model.get_params()
    assert model.set_params(alpha=2.0).alpha == 2.0
    assert repr(model) == "Modal(alpha=2.0, mode='per-team')"


def test_a_family_the_fit_never_had_is_left_out_of_a_prediction_but_an_unfitted_tag_is_refused():
    """A substrate family column is derived from the substrate: a fit on one
    substrate of a family has no such column, and a new scenario of that
    substrate predicts from the substrate column alone. A behaviour demand
    the fit never saw is still an error."""
    import pandas as pd

    from capprof.errors import CapprofError
    from capprof.profiling.predictors import make_predictor

    names = [f"prisoners_dilemma_in_the_matrix__arena_{i}" for i in range(4)]
    demands = pd.DataFrame({"prisoners_dilemma_in_the_matrix__arena": 1.0, "visitor": [0.0, 1.0, 0.0, 1.0]},
                           index=pd.Index(names, name="scenario"))
    scores = pd.DataFrame([{"team": t, "scenario": s, "substrate": "prisoners_dilemma_in_the_matrix__arena",
                            "replicate": 0, "score": 0.2 + 0.5 * (t == "b") + 0.1 * i}
                           for i, s in enumerate(names) for t in ("a", "b")])
    ridge = make_predictor("ridge").fit(scores, demands)
    new = pd.DataFrame({"prisoners_dilemma_in_the_matrix__arena": [1.0], "visitor": [1.0], "in_the_matrix": [1.0]},
                       index=pd.Index(["my_variant"], name="scenario"))
    with_family = ridge.predict(["a", "b"], ["my_variant"] * 2, new)["predicted"].to_numpy()
    without = ridge.predict(["a", "b"], ["my_variant"] * 2, new.drop(columns="in_the_matrix"))["predicted"].to_numpy()
    assert (with_family == without).all() and with_family[1] > with_family[0]
    with pytest.raises(CapprofError, match='demand "reciprocity" was not part of the fitted model'):
        ridge.predict(["a"], ["my_variant"], new.assign(reciprocity=1.0))
