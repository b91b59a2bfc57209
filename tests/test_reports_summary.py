"""The report's first screen and its comparison charts: the summary (ranking
by IQM as `capprof compare` computes it, strengths and weaknesses, held-out
predictors and calibration, the trust line), the small-multiple radars on one
scale, the predictions section, and the collapsed details below."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capprof.profiling.normalise import normalise
from capprof.reports import charts, tables
from capprof.reports.compare import compare_teams, summary_tables
from capprof.reports.report import build_report
from capprof.scores import load_scores

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
DEMO = FIXTURES / "demo"
PROFILE = FIXTURES / "profile"


def _section(html: str, key: str) -> str:
    match = re.search(rf'<section id="{key}"[^>]*>(.*?)</section>', html, flags=re.S)
    assert match, f"section {key} missing"
    return match.group(1)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "report.html"
    record: list = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        save_png = charts.save_png

        def recording(fig, path, *args, **kwargs):
            axes = fig.axes[0]
            record.append((Path(path).name, axes.name, axes.get_ylim(),
                           axes.get_rorigin() if axes.name == "polar" else None))
            return save_png(fig, path, *args, **kwargs)

        monkeypatch.setattr(charts, "save_png", recording)
        build_report(DEMO, out, progress=False)
    return out.read_text(encoding="utf-8"), record


def test_the_summary_comes_first_and_ranks_teams_as_compare_does(demo_report):
    html, _ = demo_report
    body = html.split("</nav>", 1)[1]
    assert body.startswith('<section id="summary">')
    summary = _section(html, "summary")
    comparison = compare_teams(normalise(load_scores(DEMO / "scores.csv"), "minmax"), reps=2000, seed=0,
                               progress=False)
    aggregates, _ = summary_tables(comparison)
    ranking = re.search(r'<table class="ranking">(.*?)</table>', summary, flags=re.S).group(1)
    rows = re.findall(r"<tr><td>([\d.]+)</td><th>(.*?)</th><td>(.*?)</td><td>(.*?)</td>", ranking)
    assert [team for _, team, _, _ in rows] == list(aggregates["team"])  # best first, as compare prints
    assert [iqm for _, _, iqm, _ in rows] == list(aggregates["iqm"])  # same estimate and 95% interval
    assert rows[0][1] == "forager" and rows[0][3] == "[1, 1]"
    assert "<b>forager</b> ranks first by IQM in 95% of bootstrap resamples." in summary
    assert "on the 12 scenarios every ranked team played" in summary


def test_the_summary_names_strengths_weaknesses_predictors_calibration_and_trust(demo_report):
    html, _ = demo_report
    summary = _section(html, "summary")
    standouts = re.search(r"<table class=\"standouts\">.*?<tbody>(.*?)</tbody>", summary, flags=re.S).group(1)
    assert re.findall(r"<tr><th>(.*?)</th>", standouts) == ["forager", "prosocial", "random", "selfish"]
    # a trained team's prisoners_dilemma abilities rest on no cell: never a strength or weakness
    selfish = re.search(r"<tr><th>selfish</th>(.*?)</tr>", standouts).group(1)
    assert "partner_choice" not in selfish and "prosocial_newcomers" not in selfish
    assert "assessor</b> predicts best, MSE 0.0638 [0.0249, 0.1026], not clearly ahead of ridge (0.0694)" in summary
    assert "layout-joint's 90% intervals hold 81% [69%, 90%] of 54 held-out cells (random): <b>too narrow</b>" \
        in summary
    assert "max R-hat 1.006" in summary and "0 divergent transitions" in summary
    assert "posterior predictive checks: all agree" in summary
    assert "cells behind each ability: 1 to 12" in summary
    for target in ("comparison", "profiles", "predictive", "diagnostics", "predictive-checks"):
        assert f'href="#{target}"' in summary and f'<section id="{target}"' in html


def test_the_trust_line_flags_what_fails(tmp_path):
    out = tmp_path / "r.html"
    build_report(PROFILE, out, progress=False)
    summary = _section(out.read_text(), "summary")
    assert '<span class="bad">max R-hat 1.030</span> over 2 fits' in summary
    assert '<span class="bad">min bulk ESS 205</span>' in summary
    assert '<span class="bad">3 divergent transitions</span>' in summary
    assert "the evaluation reports no interval coverage" in summary


def test_the_summary_says_what_it_lacks(tmp_path):
    directory = tmp_path / "only"
    directory.mkdir()
    (directory / "profiles.csv").write_bytes((PROFILE / "profiles.csv").read_bytes())
    out = tmp_path / "r.html"
    build_report(directory, out, progress=False)
    summary = _section(out.read_text(), "summary")
    assert "The ranking not shown: no score table or episode records in" in summary
    assert "Held-out predictors not shown: no evaluate input in" in summary
    assert '<table class="standouts">' in summary  # the profiles alone still give strengths


def test_standouts_compare_a_team_with_the_others_measured_on_the_same_ability():
    profiles = pd.DataFrame({
        "team": ["a", "b", "c", "a", "b", "c"], "ability": ["restraint"] * 3 + ["defense"] * 3,
        "mean": [5.0, 2.0, 1.0, 1.0, 3.0, 9.0], "hdi_low": [4.0, 1.0, 0.0, 0.0, 1.0, 8.0],
        "hdi_high": [6.0, 3.0, 2.0, 2.0, 5.0, 10.0], "cells": [2, 2, 2, 2, 2, 0],
    })
    found = tables.standouts(profiles).set_index(["team", "ability"])
    assert found.loc[("a", "restraint"), "others"] == pytest.approx(1.5)
    assert found.loc[("a", "restraint"), "lead"] == pytest.approx(3.5) and found.loc[("a", "restraint"), "clear"]
    # c has no cell on defense: it is neither compared nor counted among the others
    assert ("c", "defense") not in found.index
    assert found.loc[("a", "defense"), ["others", "n_others"]].tolist() == [3.0, 1]
    assert not found.loc[("b", "defense"), "clear"]  # b's HDI [1, 5] holds a's 1.0


def test_calibration_pools_coverage_over_folds_and_says_too_narrow():
    evaluate = pd.DataFrame({
        "model": ["layout"] * 3 + ["aggmean"], "split": "random", "repeat": [0, 0, 1, 0],
        "team": "ALL", "n_test": [40, 60, 100, 100], "mse": 0.1, "coverage": [0.7, 0.8, 0.76, np.nan],
    })
    (found,) = tables.calibrations(evaluate, 0.9)
    assert found.model == "layout" and found.n_cells == 100 and found.level == 0.9
    assert found.coverage == pytest.approx((0.7 * 40 + 0.8 * 60 + 0.76 * 100) / 200)
    low, high = tables.wilson_interval(0.76, 100)
    assert (found.low, found.high) == pytest.approx((low, high)) and high < 0.9
    assert found.verdict == "too narrow"
    assert tables.calibrations(evaluate.assign(coverage=0.9), 0.9)[0].verdict == "calibrated"
    assert tables.calibrations(evaluate.drop(columns="coverage"), 0.9) == []


def test_small_multiple_radars_share_axes_and_scale_with_a_hollow_centre(demo_report):
    html, record = demo_report
    radars = [(name, ylim, origin) for name, kind, ylim, origin in record
              if kind == "polar" and "-profile-" in name]
    assert len(radars) == 4  # one behaviour radar per team: the demo's other groups have two abilities
    assert len({ylim for _, ylim, _ in radars}) == 1  # one radial scale for every team
    low, high = radars[0][1]
    assert all(origin < low - 0.2 * (high - low) for _, _, origin in radars)  # ring labels clear of the pole
    grid = _section(html, "profiles").split('<aside id="overlay">')[0]
    assert grid.count("<figure>") == 4
    # the trained teams' matrix-game abilities are named as the prior, not drawn
    assert grid.count("No cell of selfish makes these demands (prior only, not charted)") == 1


def test_radar_limits_fix_the_scale_and_leave_gaps_for_unmeasured_abilities():
    abilities = ["a", "b", "c", "d"]
    frame = pd.DataFrame({"mean": [1.0, np.nan, 2.0, 3.0], "hdi_low": [0.5, np.nan, 1.5, 2.5],
                          "hdi_high": [1.5, np.nan, 2.5, 3.5]}, index=abilities)
    fig = charts.radar_chart([frame], ["t"], abilities, "t", limits=(-2.0, 6.0), compact=True)
    ax = fig.axes[0]
    assert ax.get_ylim() == (-2.0, 6.0) and ax.get_rorigin() < -2.0
    assert np.isnan(ax.get_lines()[0].get_ydata()[1])
    assert all(-2.0 <= t <= 6.0 for t in ax.get_yticks())
    assert not fig.legends  # a small multiple carries no legend


def test_comparison_draws_the_interval_plot_and_the_improvement_matrix(demo_report):
    html, record = demo_report
    names = [name for name, *_ in record]
    assert any(n.endswith("-aggregate-intervals.png") for n in names)
    assert any(n.endswith("-probability-of-improvement.png") for n in names)
    section = _section(html, "comparison")
    assert section.count("<img ") == 2
    assert "<details><summary>The tables: aggregates, ranks and probabilities of improvement</summary>" in section


def test_the_improvement_matrix_writes_compare_s_numbers_in_its_cells():
    scores = pd.DataFrame({"team": ["a"] * 4 + ["b"] * 4, "scenario": ["s1", "s1", "s2", "s2"] * 2,
                           "replicate": [0, 1] * 4, "score": [1.0, 2.0, 3.0, 4.0, 0.0, 2.0, 3.0, 1.0]})
    comparison = compare_teams(scores, reps=50, seed=0, progress=False)
    fig = charts.poi_matrix_chart(comparison.table, ["a", "b"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    row = comparison.table.set_index(["team", "metric"]).loc[("a", "p_improve:b")]
    assert f"{row['value']:.2f}\n[{row['ci_low']:.2f}, {row['ci_high']:.2f}]" in texts
    assert len(texts) == 2  # no cell on the diagonal
    fig = charts.aggregate_interval_chart(comparison.table, ["a", "b"])
    assert [ax.get_title() for ax in fig.axes] == ["median", "IQM", "mean"]


def test_predictions_section_charts_the_model_with_intervals(demo_report):
    html, record = demo_report
    section = _section(html, "predictions")
    assert "Predicted score of 4 team(s) on 3 scenario(s) by layout-joint with its 90% predictive interval" \
        in section
    assert section.count("<img ") == 1 and "<details><summary>Every prediction (24 rows)</summary>" in section
    assert "clean_up_7" in section and "assessor" in section


def test_a_bad_predictions_file_is_one_line(cli, tmp_path):
    bad = tmp_path / "predictions.csv"
    bad.write_text("team,scenario,model,predicted,low,high\na,clean_up_7,m,high,,\n")
    result = cli("report", PROFILE, "--out", tmp_path / "r.html", "--predictions", bad)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert lines == [f"capprof: error: --predictions {bad}: its predicted column holds no number (write it with "
                     "`capprof predict DIR --scenario NAME --format csv`); docs/reports.md lists what the "
                     "predictions input needs"]
    assert not (tmp_path / "r.html").exists()


def test_details_are_collapsed_below_the_open_sections(demo_report):
    html, _ = demo_report
    order = re.findall(r'<section id="([^"]+)"( class="folded")?>', html)
    keys = [key for key, _ in order]
    folded = [key for key, css in order if css]
    assert keys[:5] == ["summary", "profiles", "comparison", "predictions", "substrate-scores"]
    assert folded == keys[5:] and keys[-1] == "inputs"
    assert {"predictive", "diagnostics", "predictive-checks", "importances"} <= set(folded)
    for key in folded:
        assert re.search(rf'<section id="{key}" class="folded"><details><summary><h2>', html), key
    assert "<details open" not in html
    assert "@media print" in html and "details::details-content" in html


def test_an_unsettled_top_rank_names_every_team_that_can_be_first(tmp_path):
    directory = tmp_path / "close"
    directory.mkdir()
    noise = np.random.default_rng(3).standard_normal((6, 3))
    rows = [(team, f"clean_up_{s}", "clean_up", r, 0.5 + 0.3 * noise[s, r] - shift)
            for team, shift in (("a", 0.0), ("b", 0.0), ("c", 2.0)) for s in range(6) for r in range(3)]
    pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score"]).to_csv(
        directory / "scores.csv", index=False)
    out = tmp_path / "r.html"
    build_report(directory, out, normalisation="none", progress=False)  # a and b: the same scores
    summary = _section(out.read_text(), "summary")
    assert "but the top rank is not settled: a, b can rank first within the intervals." in summary
    assert "in 95% of bootstrap resamples" not in summary


def test_the_evaluation_summary_beside_evaluate_csv_is_preferred_unless_one_is_named(tmp_path):
    directory = tmp_path / "profile"
    directory.mkdir()
    (directory / "profiles.csv").write_bytes((DEMO / "profiles.csv").read_bytes())
    summary = pd.read_csv(DEMO / "evaluate.csv")
    summary.to_csv(directory / "evaluate_summary.csv", index=False)
    per_repeat = pd.DataFrame({"model": ["aggmean", "ridge"], "split": "random", "repeat": 0, "team": "ALL",
                               "n_test": 54, "mse": [0.5, 0.4]})
    per_repeat.to_csv(directory / "evaluate.csv", index=False)
    out = tmp_path / "r.html"
    build_report(directory, out, progress=False)
    html = out.read_text()
    assert f"<td>evaluate</td><td>{directory / 'evaluate_summary.csv'}</td>" in html
    assert "<b>assessor</b> predicts best, MSE 0.0638 [0.0249, 0.1026]" in _section(html, "summary")
    build_report(directory, out, evaluate_path=str(directory / "evaluate.csv"), progress=False)
    assert "<b>ridge</b> predicts best, MSE 0.4000, clearly ahead" not in _section(out.read_text(), "summary")
    assert "<b>ridge</b> predicts best, MSE 0.4000, not clearly ahead of aggmean (0.5000)" \
        in _section(out.read_text(), "summary")


# ------------------------------------------------------------ a saved evaluation


def _interval_model():
    """A predictor with 50% intervals: each team's training mean +- 0.1."""
    from capprof.profiling.predictors import Predictor, prediction_frame

    class Banded(Predictor, register=False):
        name = "banded"
        has_intervals = True
        interval_level = 0.5

        def __init__(self):
            pass

        def fit(self, scores, demands=None):
            self.mean_ = scores.groupby("team")["score"].mean()
            self.teams_ = sorted(self.mean_.index)
            return self

        def predict(self, teams, scenarios, demands=None):
            mean = self.mean_.reindex(teams).to_numpy(float)
            return prediction_frame(teams, scenarios, mean, mean - 0.1, mean + 0.1)

    return Banded


@pytest.fixture
def saved_evaluation(tmp_path):
    """A real evaluation of the demo fixture's raw scores (one repeat, so a
    per-repeat table has no interval to show), saved to tmp/evaluation."""
    import warnings

    from capprof.errors import CapprofNote
    from capprof.profiling.evaluate import evaluate
    from capprof.profiling.predictors import PREDICTORS

    banded = _interval_model()
    PREDICTORS.register(banded)
    try:
        scores = load_scores(DEMO / "scores.csv", min_teams=1)
        names = sorted(scores["scenario"].unique())
        demands = pd.DataFrame({"a": np.arange(len(names)) % 2, "b": np.arange(len(names)) % 3 == 0},
                               index=pd.Index(names, name="scenario")).astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CapprofNote)
            result = evaluate(scores, demands, ["aggmean", "ridge", "banded"], folds=3, progress=False)
    finally:
        del PREDICTORS["banded"]
    return result, result.save(tmp_path / "evaluation")


def _pooled(result):
    return result.summary[result.summary["team"] == "ALL"].set_index("model")


def test_a_saved_evaluation_in_dir_is_shown_as_saved_not_summarised_again(tmp_path, saved_evaluation):
    result, saved = saved_evaluation
    directory = saved.parent
    (directory / "profiles.csv").write_bytes((DEMO / "profiles.csv").read_bytes())
    # the loose tables beside it lose to the saved evaluation
    result.results.to_csv(directory / "evaluate.csv", index=False)
    pd.read_csv(DEMO / "evaluate.csv").to_csv(directory / "evaluate_summary.csv", index=False)
    out = tmp_path / "r.html"
    build_report(directory, out, progress=False)
    html = out.read_text()
    assert f"<td>evaluate</td><td>{saved}</td>" in html
    pooled = _pooled(result)
    predictive = _section(html, "predictive")
    for model, row in pooled.iterrows():
        assert f"{row['mse']:.4g} [{row['mse_low']:.4g}, {row['mse_high']:.4g}]" in predictive, model
    # the section says which interval it shows: the evaluation's own, not one over repeats
    assert "its 95% interval, clustered by scenario" in predictive
    assert "Student-t" not in predictive
    best = pooled["mse"].idxmin()
    row = pooled.loc[best]
    summary = _section(html, "summary")
    assert (f"<b>{best}</b> predicts best, MSE {row['mse']:.4f} [{row['mse_low']:.4f}, {row['mse_high']:.4f}]"
            in summary)
    banded = pooled.loc["banded"]
    assert (f"banded's 50% intervals hold {banded['coverage']:.0%} ") in summary
    assert f"of {int(banded['n_cells'])} held-out cells (random)" in summary
    # the report's own table is the saved summary, row for row
    from capprof.reports.inputs import Inputs, locate_inputs

    inputs = Inputs(directory, locate_inputs(directory, {}), None)
    tidy = tables.predictive_table(inputs.table("evaluate"))
    shown = tidy[tidy["team"] == "ALL"].set_index("model")
    np.testing.assert_array_equal(shown.loc[pooled.index, "ci_high"], pooled["mse_high"])


def test_evaluate_option_takes_a_saved_evaluation_directory(cli, tmp_path, saved_evaluation):
    result, saved = saved_evaluation
    directory = tmp_path / "profile"
    directory.mkdir()
    (directory / "profiles.csv").write_bytes((DEMO / "profiles.csv").read_bytes())
    out = tmp_path / "r.html"
    r = cli("report", directory, "--out", out, "--evaluate", saved)
    assert r.code == 0, r.err
    row = _pooled(result).loc["ridge"]
    assert f"{row['mse']:.4g} [{row['mse_low']:.4g}, {row['mse_high']:.4g}]" in _section(out.read_text(),
                                                                                         "predictive")


@pytest.mark.parametrize("damage, named", [
    (lambda d: (d / "summary.parquet").unlink(), "summary.parquet"),
    (lambda d: (d / "evaluation.json").write_text("{not json"), "evaluation.json"),
])
def test_a_damaged_saved_evaluation_is_one_line_naming_the_file(cli, tmp_path, saved_evaluation, damage, named):
    _, saved = saved_evaluation
    damage(saved)
    directory = tmp_path / "profile"
    directory.mkdir()
    (directory / "profiles.csv").write_bytes((DEMO / "profiles.csv").read_bytes())
    out = tmp_path / "r.html"
    r = cli("report", directory, "--out", out, "--evaluate", saved)
    assert r.code == 2 and "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and str(saved / named) in lines[0] and "capprof evaluate SCORES --save" in lines[0]
    assert not out.exists()
    # found in DIR rather than named, it spoils only its own sections
    saved.rename(directory / "evaluation")
    build_report(directory, out, progress=False)
    assert f"{directory / 'evaluation' / named}" in _section(out.read_text(), "predictive")


def test_the_score_sections_take_the_normalisation_the_profile_records(tmp_path):
    from types import SimpleNamespace

    from capprof.reports.inputs import Inputs

    profile = SimpleNamespace(metadata={"normalisation": "random-exploiter"})
    assert Inputs(tmp_path, {}, None, None, profile).normalisation == "random-exploiter"
    assert Inputs(tmp_path, {}, None, "none", profile).normalisation == "none"  # --normalise still wins
    assert Inputs(tmp_path, {}, None, None, SimpleNamespace(metadata={})).normalisation == "minmax"
    assert Inputs(tmp_path, {}, None, None, None).normalisation == "minmax"
