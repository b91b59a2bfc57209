"""Predictor parameters on the command line: `--models 'NAME(KEY=VALUE,...)'`
for `capprof evaluate`, `profile` and `predict` (docs/evaluation.md)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from capprof.profiling.predictors import predictor_names
from capprof.profiling.simulate import simulate_layout_scores
from capprof.tagging.catalog import load_catalog
from capprof.tagging.demands import demand_matrix

SUBSTRATES = ("clean_up", "prisoners_dilemma_in_the_matrix__arena")


@pytest.fixture(scope="module")
def scores_file(tmp_path_factory):
    catalog = load_catalog()
    scenarios = sorted(catalog.index[catalog["substrate"].isin(SUBSTRATES)])
    demands = demand_matrix(scenarios, tags="contest")
    scores, _ = simulate_layout_scores(demands, n_teams=3, replicates=2, seed=3,
                                       substrate_of=catalog["substrate"].to_dict())
    path = tmp_path_factory.mktemp("scores") / "scores.parquet"
    scores.reset_index(drop=True).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def profile_dir(scores_file, tmp_path_factory):
    """A profile fitted with layout parameters from --models and no assessor."""
    from capprof.cli import main

    out = tmp_path_factory.mktemp("profile") / "prof"
    code = main(["profile", str(scores_file), "--out", str(out), "--tags", "contest", "--quiet",
                 "--models", "layout-joint(draws=60,tune=60,scenario_effect=false,interval=0.8)"])
    assert code == 0
    return out


def _one_error_line(r, *words):
    assert r.code == 2 and r.out == "", (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capprof: error: "), r.err
    assert "Traceback" not in r.err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_evaluate_compares_two_variants_of_one_model_by_their_specs(cli, scores_file):
    r = cli("evaluate", scores_file, "--tags", "contest", "--folds", "3", "--quiet", "--format", "csv",
            "--models", "ridge,ridge(alpha=1000)")
    assert r.code == 0, r.err
    table = pd.read_csv(io.StringIO(r.out))
    pooled = table[table["team"] == "ALL"].set_index("model")["mse"]
    assert set(pooled.index) == {"aggmean", "ridge", "ridge(alpha=1000)"}
    # alpha=1000 shrinks the demand slopes towards 0: a different (here worse) model
    assert pooled["ridge(alpha=1000)"] > pooled["ridge"]


def test_evaluate_reference_takes_a_spec(cli, scores_file):
    r = cli("evaluate", scores_file, "--tags", "contest", "--folds", "3", "--quiet",
            "--models", "ridge", "--reference", "ridge(alpha=100)")
    assert r.code == 0, r.err
    assert "vs ridge(alpha=100)" in r.out


@pytest.mark.parametrize("models, words", [
    ("layout-joint(scenario_efect=true)",
     ['unknown parameter "scenario_efect" (did you mean "scenario_effect"?)', "layout-joint takes mode, draws, tune",
      "scenario_effect"]),
    ("layout-joint(draws=abc)", ["draws takes a whole number (default", 'got "abc"']),
    ("layout-joint(draws=1.5)", ["draws takes a whole number", 'got "1.5"']),
    ("layout-joint(scenario_effect=maybe)", ["scenario_effect takes true or false", 'got "maybe"']),
    ("layout-joint(sampler=nutpei)", ["sampler=nutpei is not one of nutpie, pymc", 'did you mean "nutpie"']),
    ("layout-joint(draws=5)", ["draws=5 is below 10; give draws >= 10"]),
    ("layout-joint(backend=cuda)", ["backend=cuda is not one of numba, jax"]),
    ("layout-joint(mass_matrix=dense)", ["mass_matrix=dense is not one of diag, low-rank"]),
    ("layout-joint(target_accept=0.999)", ["target_accept=0.999 is above 0.99; give target_accept <= 0.99"]),
    ("layout-joint(target_accept=0.2)", ["target_accept=0.2 is below 0.5; give target_accept >= 0.5"]),
    ("layout-joint(interval=1.5)", ["interval=1.5 is above 0.999999"]),
    ("ridge(alpha=x)", ["alpha takes a number (default 1", 'got "x"']),
    ("ridge(alpha=-1)", ["alpha=-1 is below 0; give alpha >= 0"]),
    ("ridge(alpha=nan)", ["alpha=nan is not a finite number"]),
    ("lowrank(rank=0)", ["rank=0 is below 1; give rank >= 1"]),
    ("lltm(max_iter=0)", ["max_iter=0 is below 1; give max_iter >= 1"]),
    ("assessor(learning_rate=0)", ["learning_rate=0 must be above 0; give learning_rate > 0"]),
    ("assessor(subsample=1.5)", ["subsample=1.5 is above 1; give subsample <= 1"]),
    ("assessor(n_estimators=0)", ["n_estimators=0 is below 1; give n_estimators >= 1"]),
    ("layout-joint(scale=0)", ["scale=0 must be above 0; give scale > 0"]),
    ("aggmean(alpha=1)", ['unknown parameter "alpha"', "aggmean takes no parameters"]),
    ("ridge(alpha=1", ["unbalanced parentheses", "NAME(KEY=VALUE,...)"]),
    ("ridge(alpha)", ['"alpha" is not KEY=VALUE', "ridge takes alpha"]),
    ("ridge(alpha=1,alpha=2)", ['parameter "alpha" is given twice']),
    ("lowrnk(rank=3)", ['unknown model "lowrnk" (did you mean "lowrank"?)']),
])
def test_evaluate_bad_parameters_are_one_line_exit_2(cli, scores_file, models, words):
    _one_error_line(cli("evaluate", scores_file, "--models", models, "--quiet"), *words)


def test_profile_fits_the_layout_with_the_parameters_given(profile_dir):
    meta = json.loads((profile_dir / "model.json").read_text())
    assert meta["layout"]["draws"] == 60 and meta["layout"]["tune"] == 60
    assert meta["layout"]["scenario_effect"] is False and meta["layout"]["interval"] == 0.8
    assert meta["assessor"] is None and not (profile_dir / "assessor.json").exists()
    import arviz as az

    posterior = az.from_netcdf(profile_dir / "posterior.nc").posterior
    assert posterior.sizes["draw"] == 60 and "scenario_difficulty" not in posterior


@pytest.mark.parametrize("args, words", [
    (("--models", "layout-joint(draws=abc)"), ["draws takes a whole number"]),
    (("--models", "ridge"), ['profile fits a layout and the assessor, not "ridge"']),
    (("--models", "assessor"), ["needs exactly one layout"]),
    (("--models", "layout-per-team", "--mode", "joint"), ["--mode joint contradicts --models layout-per-team"]),
    (("--models", "layout-joint,assessor(max_depht=3)"), ['unknown parameter "max_depht"', 'did you mean "max_depth"']),
])
def test_profile_bad_models_are_one_line_before_fitting(cli, scores_file, tmp_path, args, words):
    out = tmp_path / "prof"
    _one_error_line(cli("profile", scores_file, "--out", out, "--tags", "contest", *args), *words)
    assert not out.exists()


def test_predict_sets_the_interval_and_keeps_the_spec_as_model_name(cli, profile_dir):
    r = cli("predict", profile_dir, "--scenario", "clean_up_0")
    assert r.code == 0, r.err
    saved = pd.read_csv(io.StringIO(r.out)).set_index("team")
    assert set(saved["model"]) == {"layout-joint"}  # no assessor in this profile
    r = cli("predict", profile_dir, "--scenario", "clean_up_0", "--models", "layout-joint(interval=0.3)")
    assert r.code == 0, r.err
    narrow = pd.read_csv(io.StringIO(r.out)).set_index("team")
    assert set(narrow["model"]) == {"layout-joint(interval=0.3)"}
    # the same posterior: the same point prediction, a narrower interval than the saved 0.8
    assert (narrow["predicted"] - saved["predicted"]).abs().max() < 1e-9
    assert ((narrow["high"] - narrow["low"]) < (saved["high"] - saved["low"])).all()


def test_predict_refuses_parameters_fixed_at_fit_time(cli, profile_dir):
    _one_error_line(cli("predict", profile_dir, "--scenario", "clean_up_0", "--models", "layout-joint(draws=500)"),
                    '"draws" is fixed when the profile is fitted', "predict can set interval, seed of layout-joint")
    _one_error_line(cli("predict", profile_dir, "--scenario", "clean_up_0", "--models", "layout-joint(interval=x)"),
                    "interval takes a number")


def _numeric_params(cls):
    from capprof.profiling.predictors.registry import _accepted_kinds

    return [p for p in cls.param_names() if p not in cls.param_choices
            and set(_accepted_kinds(cls, p)) & {int, float} and bool not in _accepted_kinds(cls, p)]


@pytest.mark.parametrize("name", predictor_names())
def test_every_numeric_parameter_at_0_and_minus_1_is_refused_or_fits(name, scores_file):
    """The whole class, not only the parameters above: every registered
    predictor's numeric parameters, set to 0 or -1, are either refused with
    one CapprofError line naming the parameter, or the model fits and predicts
    finite scores (never a library's own error). The layout is only tried
    where its fit stops before sampling."""
    from capprof.errors import CapprofError
    from capprof.profiling.normalise import normalise
    from capprof.profiling.predictors import make_predictor, predictor_class
    import numpy as np

    cls = predictor_class(name)
    scores = normalise(pd.read_parquet(scores_file), "minmax")
    demands = demand_matrix(sorted(scores["scenario"].unique()), tags="contest")
    for param in _numeric_params(cls):
        for value in (0, -1):
            if cls.is_bayesian and value == 0:
                continue  # 0 is a valid seed or chance; fitting would sample
            try:
                cls.check_param(param, value)
            except CapprofError as error:
                assert f"{param}={value} " in str(error), str(error)
                continue
            predictor = make_predictor(name, **{param: value})
            try:
                predictor.fit(scores, demands)
            except CapprofError as error:  # refused at fit, before sampling: in one line naming it
                assert "\n" not in str(error) and param in str(error), str(error)
                continue
            assert not cls.is_bayesian, f"{name}({param}={value}) started sampling"
            teams, scenarios = list(scores["team"][:5]), list(scores["scenario"][:5])
            predicted = predictor.predict(teams, scenarios, demands)["predicted"]
            assert np.isfinite(predicted).all(), (name, param, value)


def test_fit_checks_parameters_given_in_python_too(scores_file):
    from capprof.errors import CapprofError
    from capprof.profiling.predictors import make_predictor

    scores = pd.read_parquet(scores_file)
    with pytest.raises(CapprofError, match=r"^lowrank: rank=0 is below 1; give rank >= 1$"):
        make_predictor("lowrank", rank=0).fit(scores, demand_matrix(sorted(scores["scenario"].unique()),
                                                                    tags="contest"))
