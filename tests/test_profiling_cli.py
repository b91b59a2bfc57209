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


def test_evaluate_csv_has_documented_columns_and_ranks_models(cli, scores_file):
    r = cli("evaluate", scores_file, "--models", "aggmean,ridge,assessor", "--tags", "contest",
            "--repeats", "2", "--test-frac", "0.2", "--format", "csv", "--quiet")
    assert r.code == 0, r.err
    table = pd.read_csv(io.StringIO(r.out))
    assert list(table.columns) == ["model", "split", "repeat", "team", "n_test", "mse", "fit_s"]
    pooled = table[table["team"] == "ALL"]
    assert len(pooled) == 3 * 2 and set(pooled["repeat"]) == {0, 1}
    per_team = table[table["team"] != "ALL"].groupby(["model", "repeat"])["n_test"].sum()
    assert (per_team.to_numpy() == pooled.set_index(["model", "repeat"])["n_test"].loc[per_team.index].to_numpy()).all()
    mean_mse = pooled.groupby("model")["mse"].mean()
    # scores follow team x demand structure: demand-aware models beat the team mean
    assert mean_mse["ridge"] < mean_mse["aggmean"] and mean_mse["assessor"] < mean_mse["aggmean"]


def test_evaluate_table_summarises_with_intervals(cli, scores_file):
    r = cli("evaluate", scores_file, "--models", "aggmean,additive", "--split", "substrate", "--repeats", "3",
            "--quiet")
    assert r.code == 0, r.err
    header = r.out.splitlines()[0].split()
    assert header == ["model", "split", "team", "mse", "mse_low", "mse_high", "repeats", "n_test", "fit_s"]
    assert "substrate" in r.out and "ALL" in r.out


@pytest.mark.parametrize("args, message", [
    (("--models", "aggmean,layot"), 'unknown model "layot" (did you mean "layout"?)'),
    (("--test-frac", "0"), "--test-frac must be between 0 and 1"),
    (("--repeats", "0"), "--repeats must be at least 1"),
    (("--tags", "nonsense_tag"), 'unknown tag "nonsense_tag"'),
])
def test_evaluate_bad_input_is_one_line_exit_2(cli, scores_file, args, message):
    r = cli("evaluate", scores_file, *args, "--quiet")
    assert r.code == 2
    assert message in r.err and "Traceback" not in r.err
    assert r.out == ""


def test_evaluate_missing_file_no_traceback(cli_subprocess, tmp_path):
    r = cli_subprocess("evaluate", tmp_path / "nope.csv", "--models", "aggmean")
    assert r.code == 2 and "does not exist" in r.err and "Traceback" not in r.err


def test_profile_writes_documented_files(profile_dir):
    names = {p.name for p in profile_dir.iterdir()}
    assert {"profiles.csv", "posterior.nc", "diagnostics.csv", "assessor.json", "importances.csv",
            "demands.csv", "model.json"} <= names
    profiles = pd.read_csv(profile_dir / "profiles.csv")
    assert list(profiles.columns) == ["team", "ability", "mean", "sd", "hdi_low", "hdi_high", "hdi_prob"]
    assert set(profiles["team"]) == {"team_0", "team_1", "team_2"}
    assert set(SUBSTRATES) <= set(profiles["ability"])
    diag = pd.read_csv(profile_dir / "diagnostics.csv")
    assert {"max_rhat", "min_ess_bulk", "divergences"} <= set(diag.columns) and len(diag) == 1
    importances = pd.read_csv(profile_dir / "importances.csv")
    assert list(importances.columns) == ["feature", "importance"]
    meta = json.loads((profile_dir / "model.json").read_text())
    assert meta["normalisation"] == "minmax" and meta["layout"]["mode"] == "joint"
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


def test_predict_bad_input(cli, profile_dir, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("clean_up_99\n")
    r = cli("predict", profile_dir, "--scenarios", names)
    assert r.code == 2 and "clean_up_99" in r.err and "Traceback" not in r.err
    r = cli("predict", tmp_path, "--scenarios", names)
    assert r.code == 2 and "run `capprof profile" in r.err
    r = cli("predict", profile_dir, "--scenarios", tmp_path / "absent.txt")
    assert r.code == 2 and "does not exist" in r.err


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


def test_evaluate_runs_the_layout_and_reports_its_sampling(cli, scores_file):
    r = cli("evaluate", scores_file, "--models", "aggmean,layout", "--tags", "contest", "--repeats", "1",
            "--draws", "60", "--tune", "60", "--format", "csv", "--quiet")
    assert r.code == 0, r.err
    table = pd.read_csv(io.StringIO(r.out))
    assert set(table["model"]) == {"aggmean", "layout"}
    assert "layout sampling: max R-hat" in r.err and "divergence" in r.err
    layout_fit = table.loc[table["model"] == "layout", "fit_s"].iloc[0]
    assert layout_fit > table.loc[table["model"] == "aggmean", "fit_s"].iloc[0]
