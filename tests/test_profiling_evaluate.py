"""The evaluation protocol (docs/evaluation.md): K-fold cross-validation,
normalisation without leakage, clustered standard errors, coverage and
per-team flags. Fast: non-Bayesian models on small tables."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from capprof.errors import CapprofError, CapprofNote
from capprof.profiling.cellstats import clustered_se, coverage, paired_difference
from capprof.profiling.evaluate import EVALUATION_FILES, MIN_TEAM_CELLS, Evaluation, evaluate
from capprof.profiling.folds import distinct_partitions, kfold_assignments
from capprof.profiling.normalise import aggregate, dropped_scenarios, normalise
from capprof.profiling.predictors import PREDICTORS, Predictor, prediction_frame


def _table(n_teams=5, n_substrates=4, per_substrate=6, replicates=2, seed=0, anchors=False, small_team=None):
    """Raw scores on a scenario-specific scale (5..50) from team x demand
    structure, with a demand matrix; optional anchor teams (random,
    exploiter_x) and a team playing only ``small_team`` scenarios."""
    rng = np.random.default_rng(seed)
    teams = [f"t{i}" for i in range(n_teams)] + (["random", "exploiter_x"] if anchors else [])
    scenarios = [(f"s{j}_{i}", f"s{j}") for j in range(n_substrates) for i in range(per_substrate)]
    demands = pd.DataFrame(rng.integers(0, 2, size=(len(scenarios), 3)).astype(float), columns=["a", "b", "c"],
                           index=pd.Index([s for s, _ in scenarios], name="scenario"))
    skill = {t: rng.normal(size=3) for t in teams}
    skill.update({"random": np.full(3, -3.0), "exploiter_x": np.full(3, 3.0), "small": rng.normal(size=3)})
    rows = []
    for index, (scenario, substrate) in enumerate(scenarios):
        scale = rng.uniform(5, 50)
        players = teams + (["small"] if small_team is not None and index < small_team else [])
        for team in players:
            mu = 1 / (1 + np.exp(-(skill[team] @ demands.loc[scenario].to_numpy() - 1)))
            for r in range(replicates):
                rows.append((team, scenario, substrate, r, scale * (mu + rng.normal(0, 0.05))))
    scores = pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score"])
    return scores, demands


def _quiet_evaluate(*args, **kwargs) -> Evaluation:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CapprofNote)
        return evaluate(*args, progress=False, **kwargs)


class _Recorder(Predictor, register=False):
    """Predicts 0.5 with the interval [0.25, 0.75] and remembers every
    training table it was fitted on (class-level, in fit order)."""

    name = "recorder"
    has_intervals = True
    interval_level = 0.5
    seen: list = []

    def __init__(self):
        pass

    def fit(self, scores, demands=None):
        type(self).seen.append(scores.sort_values(["team", "scenario", "replicate"]).reset_index(drop=True))
        self.teams_ = sorted(scores["team"].unique())
        return self

    def predict(self, teams, scenarios, demands=None):
        n = len(teams)
        return prediction_frame(teams, scenarios, np.full(n, 0.5), np.full(n, 0.25), np.full(n, 0.75))


@pytest.fixture
def recorder():
    PREDICTORS.register(_Recorder)
    _Recorder.seen = []
    yield _Recorder
    del PREDICTORS["recorder"]


# ------------------------------------------------------------------ folds


@pytest.mark.parametrize("split, unit", [("random", None), ("scenario", "scenario"), ("substrate", "substrate")])
def test_every_cell_is_held_out_exactly_once_per_repeat(split, unit):
    scores, demands = _table(anchors=True)
    result = _quiet_evaluate(scores, demands, ["aggmean"], split=split, folds=3, repeats=2, seed=1)
    cells = result.cells
    scored = scores[~scores["team"].isin(["random", "exploiter_x"]) | (split == "random")]
    expected = set(map(tuple, scored[["team", "scenario"]].drop_duplicates().to_numpy()))
    for repeat in (0, 1):
        mine = cells[cells["repeat"] == repeat]
        pairs = list(zip(mine["team"], mine["scenario"]))
        assert len(pairs) == len(set(pairs)) and set(pairs) == expected
        if unit:  # a scenario or substrate is held out whole, in one fold
            assert (mine.groupby(unit)["fold"].nunique() == 1).all()
    # different shuffles per repeat
    folds = cells.pivot_table(index=["team", "scenario"], columns="repeat", values="fold")
    assert not (folds[0] == folds[1]).all()


def test_repeats_that_cannot_differ_are_refused_naming_the_groups():
    groups = ["a", "b", "c", "d"] * 5
    with pytest.raises(CapprofError) as info:
        kfold_assignments(groups, folds=10, repeats=40, seed=0, unit="substrate")
    message = str(info.value)
    assert "--repeats 40 cannot give different repeats" in message
    assert "4 substrates is leave-one-substrate-out" in message and "use --repeats 1" in message
    assert "\n" not in message
    with pytest.raises(CapprofError, match="only 3 distinct 2-fold partitions"):
        kfold_assignments(groups, folds=2, repeats=4, seed=0, unit="substrate")
    # three partitions exist, and three repeats get all three
    parts = kfold_assignments(groups, folds=2, repeats=3, seed=0, unit="substrate")
    assert len({tuple(p[:4]) if p[0] == 0 else tuple(1 - p[:4]) for p in parts}) == 3


def test_distinct_partitions_counts():
    assert distinct_partitions(4, 4) == 1
    assert distinct_partitions(4, 2) == 3
    assert distinct_partitions(5, 2) == 10  # {2,3} splits: C(5,2)
    assert distinct_partitions(6, 3) == 15


def test_evaluate_cli_refuses_repeated_leave_one_substrate_out(cli, published_path):
    r = cli("evaluate", published_path, "--models", "aggmean", "--split", "substrate", "--folds", "60",
            "--repeats", "3", "--quiet")
    assert r.code == 2 and r.out == ""
    errors = [line for line in r.err.splitlines() if line.startswith("capprof: error")]
    assert len(errors) == 1 and "49 substrates is leave-one-substrate-out" in errors[0]
    assert "Traceback" not in r.err


# ------------------------------------------------------------------ leakage


def _fold_of(result: Evaluation, team: str, scenario: str) -> int:
    cells = result.cells
    return int(cells.loc[(cells["team"] == team) & (cells["scenario"] == scenario), "fold"].iloc[0])


def test_a_test_cells_value_never_changes_its_folds_training_targets(recorder):
    scores, demands = _table()
    # make t0 the top scorer of s0_0, then move its raw value far up
    target = (scores["team"] == "t0") & (scores["scenario"] == "s0_0")
    scores.loc[target, "score"] = scores.loc[scores["scenario"] == "s0_0", "score"].max() + 1.0
    changed = scores.copy()
    changed.loc[target, "score"] *= 1000.0
    first = _quiet_evaluate(scores, demands, ["recorder"], reference="recorder", folds=4, seed=2)
    seen_first = list(recorder.seen)
    recorder.seen.clear()
    second = _quiet_evaluate(changed, demands, ["recorder"], reference="recorder", folds=4, seed=2)
    fold = _fold_of(first, "t0", "s0_0")
    pd.testing.assert_frame_equal(seen_first[fold], recorder.seen[fold])
    # the held-out cell itself is clipped to the top of the training scale, not 1000x it
    observed = second.cells.loc[(second.cells["team"] == "t0") & (second.cells["scenario"] == "s0_0"), "observed"]
    assert observed.item() == 1.0
    # under whole-table min-max the same change would have rescaled the training rows
    leaky = normalise(changed, "minmax")
    assert not np.allclose(leaky.loc[leaky["scenario"] == "s0_0", "score"],
                           normalise(scores, "minmax").loc[lambda f: f["scenario"] == "s0_0", "score"])


def test_a_held_out_scenario_is_scaled_by_anchors_not_its_test_scores(recorder):
    scores, demands = _table(anchors=True)
    changed = scores.copy()
    changed.loc[(changed["team"] == "t1") & (changed["scenario"] == "s2_3"), "score"] *= 50.0
    first = _quiet_evaluate(scores, demands, ["recorder"], reference="recorder", split="scenario", folds=4, seed=3)
    seen_first = list(recorder.seen)
    recorder.seen.clear()
    second = _quiet_evaluate(changed, demands, ["recorder"], reference="recorder", split="scenario", folds=4,
                             seed=3)
    fold = _fold_of(first, "t1", "s2_3")
    pd.testing.assert_frame_equal(seen_first[fold], recorder.seen[fold])
    # nothing of the held-out scenario is trained on, and its other cells keep their targets
    assert "s2_3" not in set(recorder.seen[fold]["scenario"])
    others = lambda r: r.cells[(r.cells["scenario"] == "s2_3") & (r.cells["team"] != "t1")]  # noqa: E731
    np.testing.assert_array_equal(others(first)["observed"].to_numpy(), others(second)["observed"].to_numpy())
    # anchors are calibration: never scored
    assert not set(first.cells["team"]) & {"random", "exploiter_x"}


def test_scenario_split_without_anchor_teams_is_one_line():
    scores, demands = _table()
    with pytest.raises(CapprofError) as info:
        _quiet_evaluate(scores, demands, ["aggmean"], split="scenario")
    assert "--anchors" in str(info.value) and "\n" not in str(info.value)
    # with raw scores (no scaling) no anchor is needed
    result = _quiet_evaluate(scores, demands, ["aggmean"], split="scenario", normalisation="none", folds=3)
    assert len(result.cells) == scores[["team", "scenario"]].drop_duplicates().shape[0]


def test_a_near_zero_training_range_is_floored_not_blown_up():
    """Every training team scores ~0 on one scenario, the held-out team 90:
    without a floor the held-out value would scale to ~1e4 (clipped to 1)
    and the training rows to noise spread over [0, 1]."""
    scores, demands = _table(n_teams=6)
    quiet = scores["scenario"] == "s1_0"
    scores.loc[quiet, "score"] = np.random.default_rng(0).normal(0, 1e-3, quiet.sum())
    scores.loc[quiet & (scores["team"] == "t0"), "score"] = 90.0
    result = _quiet_evaluate(scores, demands, ["ridge"], folds=4, seed=0)
    cells = result.cells[result.cells["scenario"] == "s1_0"]
    assert cells["observed"].between(0, 1).all()
    others = cells[cells["team"] != "t0"]["observed"]
    assert others.max() < 0.01  # ~0 on the substrate's scale, not spread over [0, 1]


# ------------------------------------------------------------------ statistics


def test_clustered_se_matches_a_hand_computation():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    clusters = np.array(["a", "a", "b", "b", "c", "c"])
    # mean 3.5; residual sums per cluster: -4, 0, 4; G/(G-1) = 3/2
    assert clustered_se(values, clusters) == pytest.approx(np.sqrt(1.5 * 32) / 6)
    # one value per cluster: sqrt(n/(n-1) * sum (v - m)^2) / n
    assert clustered_se(values, np.arange(6)) == pytest.approx(np.sqrt(6 / 5 * 17.5) / 6)
    assert np.isnan(clustered_se(values, np.zeros(6)))
    m, se, low, high, g = paired_difference(values, values - 1.0, clusters)
    assert m == pytest.approx(1.0) and se == pytest.approx(0.0) and g == 3


def test_pooled_mse_interval_uses_the_clustered_se():
    scores, demands = _table()
    result = _quiet_evaluate(scores, demands, ["aggmean", "ridge"], folds=3)
    pooled = result.summary[(result.summary["team"] == "ALL") & (result.summary["model"] == "ridge")].iloc[0]
    cells = result.cells[result.cells["model"] == "ridge"]
    assert pooled["mse"] == pytest.approx(cells["sq_error"].mean())
    assert pooled["se"] == pytest.approx(clustered_se(cells["sq_error"].to_numpy(), cells["scenario"].to_numpy()))
    assert pooled["clusters"] == cells["scenario"].nunique()
    # a scenario whose every cell fell in one fold has no training rows to scale it: unscored, and counted
    total = scores[["team", "scenario"]].drop_duplicates().shape[0]
    assert pooled["n_cells"] + result.protocol["unscored_cells"] == total
    diff = result.differences.set_index("model").loc["ridge"]
    ref = result.cells[result.cells["model"] == "aggmean"].set_index(["team", "scenario"])["sq_error"]
    mine = cells.set_index(["team", "scenario"])["sq_error"]
    assert diff["diff"] == pytest.approx((mine - ref.loc[mine.index]).mean())
    assert diff["reference"] == "aggmean"


def test_coverage_counts_observations_inside_their_interval():
    observed = np.array([0.5, 0.2, 0.9, 0.3])
    low = np.array([0.4, 0.3, 0.0, 0.3])
    high = np.array([0.6, 0.5, 1.0, 0.35])
    assert coverage(observed, low, high) == 0.75  # the bound itself counts as inside
    assert np.isnan(coverage(observed, np.full(4, np.nan), np.full(4, np.nan)))


def test_evaluate_reports_coverage_and_width_for_models_with_intervals(recorder):
    scores, demands = _table()
    result = _quiet_evaluate(scores, demands, ["aggmean", "recorder"], folds=3)
    summary = result.summary.set_index(["model", "team"])
    cells = result.cells[result.cells["model"] == "recorder"]
    inside = cells["observed"].between(0.25, 0.75).mean()
    assert summary.loc[("recorder", "ALL"), "coverage"] == pytest.approx(inside)
    assert summary.loc[("recorder", "ALL"), "width"] == pytest.approx(0.5)
    assert summary.loc[("recorder", "ALL"), "interval_level"] == 0.5
    assert np.isnan(summary.loc[("aggmean", "ALL"), "coverage"])


def test_per_team_rows_below_the_minimum_are_flagged_not_dropped():
    scores, demands = _table(small_team=10)
    result = _quiet_evaluate(scores, demands, ["aggmean"], folds=3)
    row = result.summary.set_index("team").loc["small"]
    assert row["n_cells"] == 10 and np.isnan(row["mse"])
    assert row["flag"] == f"10 test cells < {MIN_TEAM_CELLS}: too few for a per-team estimate"
    full = result.summary.set_index("team").loc["t0"]
    assert full["flag"] == "" and np.isfinite(full["mse"])
    per_repeat = result.results.set_index("team").loc["small"]
    assert per_repeat["flag"].startswith("10 test cells") and np.isnan(per_repeat["mse"])
    # the small team's cells still count in the pooled row
    assert result.summary.set_index("team").loc["ALL", "n_cells"] == len(result.cells)


# ------------------------------------------------------------------ normalise


def test_normalise_reports_dropped_scenarios_by_a_note_and_a_function():
    scores, _ = _table()
    scores.loc[scores["scenario"] == "s0_1", "score"] = 7.0
    with pytest.warns(CapprofNote, match="1 scenario.*left out.*s0_1"):
        out = normalise(scores, "minmax")
    assert dropped_scenarios(scores, "minmax") == ["s0_1"]
    assert "s0_1" not in set(out["scenario"]) and not out.attrs


def test_every_scenario_constant_is_one_error_line():
    scores, _ = _table()
    scores["score"] = 3.0
    for method in ("minmax", "team-minmax"):
        with pytest.raises(CapprofError) as info:
            normalise(scores, method)
        assert "every scenario has a zero" in str(info.value) and "\n" not in str(info.value)


def test_scores_near_the_largest_double_stay_finite():
    scores, _ = _table(n_substrates=1, per_substrate=2, n_teams=2, replicates=2)
    scores.loc[scores["team"] == "t0", "score"] = 1.7e308
    scores.loc[scores["team"] == "t1", "score"] = -1.7e308
    out = normalise(scores, "minmax")
    assert np.isfinite(out["score"]).all()
    assert set(out.groupby("team")["score"].mean().round(12)) == {0.0, 1.0}
    overall = aggregate(normalise(scores, "none"), "overall")
    assert np.isfinite(overall["score"]).all()


def test_folds_that_leave_nothing_to_scale_are_one_error_line():
    """2 teams x 2 scenarios x 1 replicate with 2 folds: every held-out cell's
    scenario keeps a single training row (zero range), so nothing can be
    scored; a CapprofError line, not a TypeError (found by the property suite)."""
    demands = pd.DataFrame({"a": [1.0, 0.0]}, index=pd.Index(["x", "y"], name="scenario"))
    scores = pd.DataFrame({"team": ["a", "b", "a", "b"], "scenario": ["x", "x", "y", "y"],
                           "substrate": ["u", "u", "v", "v"], "replicate": 0, "score": [1.0, 2.0, 3.0, 5.0]})
    with pytest.raises(CapprofError, match="no test cell could be scored") as info:
        _quiet_evaluate(scores, demands, ["aggmean"], folds=2)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ saving


def _assert_same(loaded: Evaluation, saved: Evaluation) -> None:
    for name in ("cells", "results", "summary", "differences", "fits", "diagnostics"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(saved, name), check_exact=True, obj=name)
    assert loaded.protocol == saved.protocol


def test_a_saved_evaluation_loads_back_equal(recorder, tmp_path):
    scores, demands = _table(anchors=True)
    result = _quiet_evaluate(scores, demands, ["aggmean", "recorder"], split="scenario", folds=3, repeats=2,
                             seed=np.int64(4))
    target = result.save(tmp_path / "profile" / "evaluation")
    assert sorted(p.name for p in target.iterdir()) == sorted(EVALUATION_FILES.values())
    loaded = Evaluation.load(target)
    _assert_same(loaded, result)
    assert sorted(loaded.protocol["anchors"]) == ["exploiter_x", "random"] and loaded.protocol["seed"] == 4
    assert loaded.summary["coverage"].notna().any()  # the recorder's intervals survive
    other = _quiet_evaluate(scores, demands, ["aggmean"], split="random", folds=3)
    other.save(target)  # a saved evaluation is replaced whole
    _assert_same(Evaluation.load(target), other)
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temporaries left


@pytest.mark.parametrize("damage, named, words", [
    (lambda d: (d / "summary.parquet").unlink(), "summary.parquet", "is missing"),
    (lambda d: (d / "cells.parquet").write_bytes(b"PAR1 not really"), "cells.parquet", "not a readable Parquet"),
    (lambda d: (d / "evaluation.json").write_text('{"format": 1, "protoc'), "evaluation.json", "not JSON"),
    (lambda d: (d / "evaluation.json").unlink(), "evaluation.json", "holds no saved evaluation"),
    (lambda d: (d / "evaluation.json").write_text('{"format": 1, "protocol": {}}'), "evaluation.json",
     "not marked complete"),
    (lambda d: pd.DataFrame({"model": ["x"]}).to_parquet(d / "summary.parquet"), "summary.parquet",
     "lacks column(s) split"),
])
def test_a_damaged_saved_evaluation_is_one_line_naming_the_file(tmp_path, damage, named, words):
    scores, demands = _table()
    target = _quiet_evaluate(scores, demands, ["aggmean"], folds=3).save(tmp_path / "evaluation")
    damage(target)
    with pytest.raises(CapprofError) as caught:
        Evaluation.load(target)
    message = str(caught.value)
    assert "\n" not in message and str(target / named) in message and words in message
    assert "capprof evaluate SCORES --save" in message


def test_saving_refuses_a_directory_that_holds_something_else(tmp_path):
    scores, demands = _table()
    result = _quiet_evaluate(scores, demands, ["aggmean"], folds=3)
    (tmp_path / "profiles.csv").write_text("team,ability\n")
    with pytest.raises(CapprofError, match="holds files but no saved evaluation"):
        result.save(tmp_path)
    assert (tmp_path / "profiles.csv").read_text() == "team,ability\n"
    (tmp_path / "file").write_text("x")
    with pytest.raises(CapprofError, match="is a file"):
        result.save(tmp_path / "file")


def _write_cli_scores(path):
    rows = ["team,scenario,substrate,replicate,score"]
    for i in range(9):
        for team, cu, tr in (("a", 0.2, 0.8), ("b", 0.7, 0.3), ("c", 0.5, 0.5)):
            rows.append(f"{team},clean_up_{i},clean_up,0,{cu + 0.01 * i}")
            rows.append(f"{team},territory__rooms_{i % 4},territory__rooms,{i // 4},{tr - 0.01 * i * (team != 'c')}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_evaluate_save_writes_the_whole_evaluation_beside_the_csvs(cli, tmp_path):
    scores = _write_cli_scores(tmp_path / "s.csv")
    saved, summary = tmp_path / "profile" / "evaluation", tmp_path / "profile" / "evaluate_summary.csv"
    r = cli("evaluate", scores, "--models", "aggmean,ridge", "--folds", "3", "--repeats", "2", "--quiet",
            "--save", saved, "--summary", summary, "--format", "csv")
    assert r.code == 0, r.err
    loaded = Evaluation.load(saved)
    assert loaded.protocol["repeats"] == 2 and loaded.protocol["folds"] == 3
    assert set(loaded.results["model"]) == {"aggmean", "ridge"} and set(loaded.results["repeat"]) == {0, 1}
    written = pd.read_csv(summary)
    np.testing.assert_allclose(written["mse_high"], loaded.summary["mse_high"], rtol=1e-5)
    assert r.out.splitlines()[0] == ",".join(loaded.results.columns)  # --format csv: the per-repeat table


def test_evaluate_save_into_a_foreign_directory_is_refused_before_fitting(cli, tmp_path):
    scores = _write_cli_scores(tmp_path / "s.csv")
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "profiles.csv").write_text("team\n")
    r = cli("evaluate", scores, "--models", "aggmean", "--quiet", "--save", tmp_path / "profile")
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err.strip().splitlines() == [f"capprof: error: {tmp_path / 'profile'} holds files but no saved "
                                          "evaluation, and saving replaces the directory whole; give a new "
                                          "directory (e.g. PROFILE_DIR/evaluation)"]


def test_evaluate_save_cut_short_by_the_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    import os
    import subprocess
    import sys

    from test_reliability import _file_size_limited

    scores = _write_cli_scores(tmp_path / "s.csv")
    saved = tmp_path / "evaluation"
    done = subprocess.run([sys.executable, "-m", "capprof", "evaluate", str(scores), "--models", "aggmean",
                           "--folds", "2", "--quiet", "--save", str(saved)], capture_output=True, text=True,
                          timeout=600, preexec_fn=_file_size_limited(2048),
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("capprof: note: ")]
    assert done.returncode == 2 and lines == [f"capprof: error: cannot write {saved}: file too large for the file "
                                              f"system in {tmp_path}; free space there or choose another --save"]
    assert sorted(os.listdir(tmp_path)) == ["s.csv"]  # no directory, no temporaries
