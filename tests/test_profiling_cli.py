"""`capprof evaluate`, `profile` and `predict` as a user runs them."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from capprof.profiling.simulate import simulate_layout_scores
from capprof.tagging.catalog import load_catalog
from capprof.tagging.demands import demand_matrix

SUBSTRATES = ("clean_up", "territory__rooms", "prisoners_dilemma_in_the_matrix__arena")


def _write_scores(path, n_teams=3, seed=0):
    """Scores simulated from the layout on real catalog scenarios of three
    substrates (so they pass catalog validation)."""
    catalog = load_catalog()
    scenarios = sorted(catalog.index[catalog["substrate"].isin(SUBSTRATES)])
    demands = demand_matrix(scenarios, tags="contest")
    scores, truth = simulate_layout_scores(demands, n_teams=n_teams, replicates=2, seed=seed,
                                           substrate_of=catalog["substrate"].to_dict())
    scores.to_csv(path, index=False)
    return scores, truth


@pytest.fixture(scope="module")
def scores_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scores") / "scores.csv"
    _write_scores(path)
    return path


@pytest.fixture(scope="module")
def profile_dir(scores_file, tmp_path_factory):
    from capprof.cli import main

    out = tmp_path_factory.mktemp("profile") / "prof"
    code = main(["profile", str(scores_file), "--out", str(out), "--tags", "contest",
                 "--draws", "100", "--tune", "100"])
    assert code == 0
    return out


@pytest.mark.parametrize("args, message", [
    (("--models", "aggmean,layot"), 'unknown model "layot" (did you mean "layout"?)'),
    (("--models", " , "), "--models is empty; name at least one model"),
    (("--seed", "-1"), "argument --seed: -1 is outside the seeds capprof takes; give a whole number from 0 to 2147483647"),
    (("--draws", "0"), "argument --draws: 0 is below 1"),
    (("--tags", "nonsense_tag"), 'unknown tag "nonsense_tag"'),
])
def test_evaluate_bad_input_is_one_line_exit_2(cli, scores_file, args, message):
    r = cli("evaluate", scores_file, *args, "--quiet")
    assert r.code == 2
    assert message in r.err and "Traceback" not in r.err
    assert r.out == ""


def test_profile_counts_the_cells_behind_each_ability(scores_file, tmp_path):
    """A team that never played a substrate has 0 cells behind that
    substrate's ability (its interval is the prior's), the others count the
    substrate's scenarios they played."""
    from capprof.cli import main

    scores = pd.read_csv(scores_file)
    missing = (scores["team"] == "team_2") & (scores["substrate"] == "territory__rooms")
    scores[~missing].to_csv(tmp_path / "scores.csv", index=False)
    out = tmp_path / "prof"
    assert main(["profile", str(tmp_path / "scores.csv"), "--out", str(out), "--tags", "contest",
                 "--draws", "100", "--tune", "100", "--quiet"]) == 0
    profiles = pd.read_csv(out / "profiles.csv").set_index(["team", "ability"])
    n_territory = scores.loc[scores["substrate"] == "territory__rooms", "scenario"].nunique()
    assert profiles.loc[("team_2", "territory__rooms"), "cells"] == 0
    assert profiles.loc[("team_0", "territory__rooms"), "cells"] == n_territory
    assert profiles.loc[("team_2", "clean_up"), "cells"] == profiles.loc[("team_0", "clean_up"), "cells"] > 0
    width = profiles["hdi_high"] - profiles["hdi_low"]
    assert width[("team_2", "territory__rooms")] > width[("team_0", "territory__rooms")]


def test_evaluate_missing_file_no_traceback(cli_subprocess, tmp_path):
    r = cli_subprocess("evaluate", tmp_path / "nope.csv", "--models", "aggmean")
    assert r.code == 2 and "does not exist" in r.err and "Traceback" not in r.err


def test_profile_writes_documented_files(profile_dir):
    names = {p.name for p in profile_dir.iterdir()}
    assert {"profiles.csv", "posterior.nc", "diagnostics.csv", "assessor.json", "importances.csv",
            "demands.csv", "model.json"} <= names
    profiles = pd.read_csv(profile_dir / "profiles.csv")
    assert list(profiles.columns) == ["team", "ability", "mean", "sd", "hdi_low", "hdi_high", "hdi_prob", "cells"]
    assert set(profiles["team"]) == {"team_0", "team_1", "team_2"}
    # every team played every scenario: each substrate ability rests on cells
    assert (profiles.loc[profiles["ability"].isin(SUBSTRATES), "cells"] > 0).all()
    assert set(SUBSTRATES) <= set(profiles["ability"])
    diag = pd.read_csv(profile_dir / "diagnostics.csv")
    assert {"max_rhat", "min_ess_bulk", "divergences"} <= set(diag.columns) and len(diag) == 1
    importances = pd.read_csv(profile_dir / "importances.csv")
    assert list(importances.columns) == ["feature", "importance"]
    meta = json.loads((profile_dir / "model.json").read_text())
    assert meta["normalisation"] == "minmax" and meta["layout"]["mode"] == "joint"
    assert meta["layout"]["name"] == "layout-joint" and meta["complete"] is True
    assert not [p for p in profile_dir.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    import arviz as az

    idata = az.from_netcdf(profile_dir / "posterior.nc")
    assert "ability" in idata.posterior and "diverging" in idata.sample_stats


def test_predict_catalog_names_and_custom_demands(cli, profile_dir, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("clean_up_0\nterritory__rooms_1\n")
    r = cli("predict", profile_dir, "--scenarios", names)
    assert r.code == 0, r.err
    out = pd.read_csv(io.StringIO(r.out))
    assert list(out.columns) == ["team", "scenario", "model", "predicted", "low", "high"]
    assert len(out) == 3 * 2 * 2 and set(out["model"]) == {"layout-joint", "assessor"}
    layout = out[out["model"] == "layout-joint"]
    assert ((layout["low"] <= layout["predicted"]) & (layout["predicted"] <= layout["high"])).all()

    custom = tmp_path / "new.yaml"
    custom.write_text("scenarios:\n  clean_up_hard:\n    substrate: clean_up\n    demands:\n      visitor: 1\n"
                      "      reciprocity: 3\n")
    r = cli("predict", profile_dir, "--scenarios", custom, "--models", "layout")
    assert r.code == 0, r.err
    out = pd.read_csv(io.StringIO(r.out))
    assert set(out["scenario"]) == {"clean_up_hard"} and len(out) == 3


def _one_error_line(r, *words):
    assert r.code == 2 and r.out == "", (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capprof: error: "), r.err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_predict_bad_input(cli, profile_dir, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("clean_up_99\n")
    _one_error_line(cli("predict", profile_dir, "--scenarios", names), 'unknown scenario "clean_up_99"',
                    "describe new scenarios in a demands file given to --scenarios")
    _one_error_line(cli("predict", tmp_path, "--scenarios", names), "holds no profile (model.json missing)",
                    "run `capprof profile")
    _one_error_line(cli("predict", profile_dir, "--scenarios", tmp_path / "absent.txt"),
                    "absent.txt does not exist")
    _one_error_line(cli("predict", profile_dir, "--scenario", "clean_up_0", "--models", "layout-per-team"),
                    "holds layout-joint (fitted with --mode joint)", "use --models layout-joint")


@pytest.mark.parametrize("content, words", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not UTF-8 text (binary?)"),
    (b"", "is empty; list one scenario per line"),
    (b"\n  \n", "is empty; list one scenario per line"),
    (None, "is a directory"),
])
def test_predict_scenarios_file_binary_empty_or_directory(cli, profile_dir, tmp_path, content, words):
    path = tmp_path / "scenarios.txt"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    _one_error_line(cli("predict", profile_dir, "--scenarios", path), f"scenarios file {path} {words}")


@pytest.mark.parametrize("damage, words", [
    (lambda d: (d / "posterior.nc").unlink(), "posterior.nc is missing or empty"),
    (lambda d: (d / "demands.csv").unlink(), "demands.csv is missing or empty"),
    (lambda d: (d / "assessor.json").unlink(), "assessor.json is missing or empty"),
    (lambda d: (d / "model.json").write_text((d / "model.json").read_text()[:40]),
     "model.json is truncated or not JSON"),
    (lambda d: (d / "model.json").write_text("[]"), "model.json is not a JSON object"),
])
def test_predict_on_a_damaged_profile_names_the_file_and_the_fix(cli, profile_dir, tmp_path, damage, words):
    import shutil

    copy = tmp_path / "prof"
    shutil.copytree(profile_dir, copy)
    damage(copy)
    _one_error_line(cli("predict", copy, "--scenario", "clean_up_0"), words,
                    f"run `capprof profile SCORES --out {copy}")


@pytest.mark.parametrize("args, words", [
    (("--seed", "-3"), "argument --seed: -3 is outside the seeds capprof takes"),
    (("--draws", "-5"), "argument --draws: -5 is below 1"),
    (("--tune", "5"), "--draws and --tune must be at least 10"),
    (("--tags", "nonsense_tag"), 'unknown tag "nonsense_tag"'),
])
def test_profile_bad_input_leaves_no_out_behind(cli, scores_file, tmp_path, args, words):
    out = tmp_path / "prof"
    _one_error_line(cli("profile", scores_file, "--out", out, *args), words)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_profile_out_that_cannot_be_written_is_refused_before_fitting(cli, scores_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_error_line(cli("profile", scores_file, "--out", blocker), f"--out {blocker} is a file")
    _one_error_line(cli("profile", scores_file, "--out", blocker / "prof"), f"{blocker} is a file")


def test_predict_scenario_option_matches_the_same_names_in_a_file(cli, profile_dir, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("clean_up_3\nterritory__rooms_2\n")
    from_file = cli("predict", profile_dir, "--scenarios", names)
    assert from_file.code == 0, from_file.err
    from_options = cli("predict", profile_dir, "--scenario", "clean_up_3", "--scenario", "territory__rooms_2")
    assert from_options.code == 0, from_options.err
    assert from_options.out == from_file.out

    # both together: the union, each scenario once, file names first
    first_only = tmp_path / "first.txt"
    first_only.write_text("clean_up_3\n")
    both = cli("predict", profile_dir, "--scenarios", first_only, "--scenario", "clean_up_3",
               "--scenario", "territory__rooms_2")
    assert both.code == 0, both.err
    assert both.out == from_file.out
    out = pd.read_csv(io.StringIO(both.out))
    assert list(dict.fromkeys(out["scenario"])) == ["clean_up_3", "territory__rooms_2"]


def test_predict_scenario_option_unknown_name_suggests_the_closest(cli, profile_dir):
    r = cli("predict", profile_dir, "--scenario", "territory__room_1", "--models", "assessor")
    assert r.code == 2 and r.out == ""
    assert 'did you mean "territory__rooms_1"?' in r.err and "Traceback" not in r.err


def test_predict_without_scenarios_is_one_line_exit_2(cli, profile_dir):
    r = cli("predict", profile_dir)
    assert r.code == 2 and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert "--scenario NAME" in r.err and "--scenarios FILE" in r.err


def test_profile_inputs_name_the_scenarios_normalisation_left_out(tmp_path):
    """The profile's metadata lists the constant scenarios minmax left out
    (they are gone from the normalised table, so they must be found before)."""
    from capprof.profiling.inputs import load_scores_and_demands

    rows = ["team,scenario,substrate,replicate,score"]
    for i, team in enumerate(("a", "b", "c")):
        rows += [f"{team},clean_up_{k},clean_up,0,{i + k}" for k in range(3)]
        rows.append(f"{team},clean_up_7,clean_up,0,5")  # constant: no information
    path = tmp_path / "s.csv"
    path.write_text("\n".join(rows) + "\n")
    inputs = load_scores_and_demands(str(path), normalisation="minmax")
    scores, demands, dropped = inputs.scores, inputs.demands, inputs.dropped
    assert dropped == ["clean_up_7"] and inputs.metadata()["dropped_scenarios"] == ["clean_up_7"]
    assert "clean_up_7" not in set(scores["scenario"]) and "clean_up_7" not in demands.index


def test_a_score_table_where_every_scenario_is_tied_is_one_line(tmp_path):
    from capprof.errors import CapprofError
    from capprof.profiling.inputs import load_scores_and_demands

    rows = ["team,scenario,substrate,replicate,score"]
    rows += [f"{team},clean_up_{k},clean_up,0,5" for team in ("a", "b") for k in range(3)]
    path = tmp_path / "s.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(CapprofError, match=r"every scenario has a zero minmax range .* use --normalise none"):
        load_scores_and_demands(str(path))
    assert load_scores_and_demands(str(path), normalisation=None).scores["score"].eq(5).all()


def test_evaluate_outputs_never_replace_its_input_or_each_other(cli, scores_file, tmp_path):
    import shutil

    scores = tmp_path / f"scores{scores_file.suffix}"
    shutil.copy(scores_file, scores)
    before = scores.read_bytes()
    _one_error_line(cli("evaluate", scores, "--models", "aggmean", "--out", scores),
                    f"--out {scores} is SCORES {scores}, which this command reads; write it elsewhere")
    _one_error_line(cli("evaluate", scores, "--models", "aggmean", "--out", tmp_path / "a.csv",
                        "--cells", f"{tmp_path}/sub/../a.csv"), "--out and --cells both name")
    saved = tmp_path / "ev"
    assert cli("evaluate", scores, "--models", "aggmean", "--save", saved, "--quiet").code == 0
    (saved / "notes.txt").write_text("mine")
    _one_error_line(cli("evaluate", scores, "--models", "aggmean", "--save", saved),
                    "holds a saved evaluation and 1 other file(s) (e.g. notes.txt)")
    assert (saved / "notes.txt").read_text() == "mine"
    _one_error_line(cli("evaluate", scores, "--models", "aggmean", "--out", scores / "x.csv"),
                    "is a file, so the CSV cannot be written there")
    _one_error_line(cli("evaluate", scores, "--models", "aggmean", "--summary", ""),
                    "--summary is empty; give a value, or drop --summary")
    _one_error_line(cli("profile", scores, "--out", scores), "which this command reads")
    assert scores.read_bytes() == before


@pytest.mark.parametrize("args, words", [
    (["evaluate", "--split", "scenario", "--anchors", "nosuchteam"], ['anchor team "nosuchteam" is not in the scores']),
    (["evaluate", "--tags", "nosuchtag"], ['unknown tag "nosuchtag"']),
    (["compare", "--teams", "nosuchteam", "acb"], ['no scores for team "nosuchteam"']),
    (["compare", "--reps", "9"], ["--reps 9 is too few"]),
])
def test_a_bad_option_is_the_only_line_even_when_the_data_would_be_noted_on(cli, published_path, args, words):
    """The published table has three scenarios where every team scores the
    same, which the commands note; a bad option must be the one line, not
    follow that note."""
    _one_error_line(cli(args[0], published_path, *args[1:]), *words)
