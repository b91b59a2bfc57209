"""Interval statistics (reports.stats) and `capprof compare`, checked against
hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capprof.errors import CapprofNote
from capprof.reports import stats
from capprof.reports.compare import COMPARE_COLUMNS, compare_teams, summary_tables

FIXTURE_SCORES = Path(__file__).parent / "fixtures" / "reports" / "profile" / "scores.csv"


# ------------------------------------------------------------ pure functions


def test_scenario_means_and_aggregates_by_hand():
    # scenario 0 has replicates 1, 2, 3; scenario 1 has the single replicate 10
    samples, sizes = np.array([[1.0, 2.0, 3.0, 10.0]]), np.array([3, 1])
    assert stats.scenario_means(samples, sizes).tolist() == [[2.0, 10.0]]
    assert stats.aggregate_mean(samples, sizes).tolist() == [6.0]  # (2 + 10) / 2
    assert stats.aggregate_median(samples, sizes).tolist() == [6.0]
    # IQM of 4 values drops 1 at each end: mean(2, 3)
    assert stats.aggregate_iqm(samples, sizes).tolist() == [2.5]


def test_iqm_drops_a_quarter_at_each_end():
    samples = np.array([[7.0, 0.0, 5.0, 1.0, 6.0, 2.0, 4.0, 3.0]])
    assert stats.aggregate_iqm(samples, np.array([8]))[0] == pytest.approx(3.5)  # mean(2, 3, 4, 5)
    # an outlier does not move the IQM but moves the mean
    samples_outlier = samples.copy()
    samples_outlier[0, 0] = 1000.0
    assert stats.aggregate_iqm(samples_outlier, np.array([8]))[0] == pytest.approx(3.5)
    assert stats.aggregate_mean(samples_outlier, np.array([8]))[0] > 100


def test_probability_of_improvement_by_hand():
    # scenario 0: X = [1, 3], Y = [2, 2] -> 3 beats both 2s, 1 beats neither: 2/4
    # scenario 1: X = [5],    Y = [5, 4] -> one tie (1/2) and one win: 1.5/2
    x, sx = np.array([[1.0, 3.0, 5.0]]), np.array([2, 1])
    y, sy = np.array([[2.0, 2.0, 5.0, 4.0]]), np.array([2, 2])
    assert stats.probability_of_improvement(x, sx, y, sy)[0] == pytest.approx((0.5 + 0.75) / 2)
    assert stats.probability_of_improvement(y, sy, x, sx)[0] == pytest.approx((0.5 + 0.25) / 2)


def test_probability_of_improvement_is_half_for_identical_teams():
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert stats.probability_of_improvement(x, [2, 2], x, [2, 2])[0] == 0.5


def test_rank_descending_shares_ties():
    assert stats.rank_descending(np.array([3.0, 1.0, 3.0])).tolist() == [1.5, 3.0, 1.5]
    assert stats.rank_descending(np.array([[1.0, 2.0], [2.0, 1.0]])).tolist() == [[2.0, 1.0], [1.0, 2.0]]


def test_percentile_interval_by_hand():
    assert stats.percentile_interval(np.arange(101), level=0.9) == pytest.approx((5.0, 95.0))


def test_stratified_indices_stay_in_their_scenario():
    sizes = np.array([1, 3, 2])
    idx = stats.stratified_indices(sizes, 500, np.random.default_rng(1))
    assert idx.shape == (500, 6)
    assert (idx[:, 0] == 0).all()
    assert set(np.unique(idx[:, 1:4])) == {1, 2, 3}
    assert set(np.unique(idx[:, 4:6])) == {4, 5}
    # each member is drawn about equally often
    share = np.bincount(idx[:, 1:4].ravel(), minlength=6)[1:4] / idx[:, 1:4].size
    assert np.allclose(share, 1 / 3, atol=0.03)


def test_matches_rliable_metrics_on_a_balanced_table():
    rliable_metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(3)
    runs_x, runs_y = rng.random((5, 7)), rng.random((4, 7))  # rliable layout: runs x tasks
    # flat layout: grouped by scenario (task)
    fx, sx = runs_x.T.ravel()[None, :], np.full(7, 5)
    fy, sy = runs_y.T.ravel()[None, :], np.full(7, 4)
    assert stats.aggregate_mean(fx, sx)[0] == pytest.approx(rliable_metrics.aggregate_mean(runs_x))
    assert stats.aggregate_median(fx, sx)[0] == pytest.approx(rliable_metrics.aggregate_median(runs_x))
    assert stats.aggregate_iqm(fx, sx)[0] == pytest.approx(rliable_metrics.aggregate_iqm(runs_x))
    assert stats.probability_of_improvement(fx, sx, fy, sy)[0] == pytest.approx(
        rliable_metrics.probability_of_improvement(runs_x, runs_y))


# ------------------------------------------------------------ compare_teams


def _table(rows):
    return pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score"])


def _two_teams():
    rows = []
    for s, scenario in enumerate(["s0", "s1", "s2"]):
        for r in range(3):
            rows.append(("strong", scenario, "sub", r, 0.8 + 0.05 * r + 0.01 * s))
            rows.append(("weak", scenario, "sub", r, 0.1 + 0.05 * r + 0.01 * s))
    return _table(rows)


def _value(comparison, team, metric):
    result = comparison.table
    row = result[(result["team"] == team) & (result["metric"] == metric)]
    assert len(row) == 1, (team, metric)
    return row.iloc[0]


def test_compare_dominating_team_is_certain():
    result = compare_teams(_two_teams(), reps=200, seed=0, progress=False)
    assert tuple(result.table.columns) == COMPARE_COLUMNS
    assert result.teams == ("strong", "weak") and result.n_scenarios == 3 and result.reps == 200
    p = _value(result, "strong", "p_improve:weak")
    assert (p["value"], p["ci_low"], p["ci_high"]) == (1.0, 1.0, 1.0)
    assert _value(result, "weak", "p_improve:strong")["value"] == 0.0
    assert _value(result, "strong", "rank")[["value", "ci_low", "ci_high"]].tolist() == [1.0, 1.0, 1.0]
    # mean: per scenario mean over r of 0.8 + 0.05 r + 0.01 s = 0.85 + 0.01 s -> 0.86
    assert _value(result, "strong", "mean")["value"] == pytest.approx(0.86)
    for metric in ("mean", "median", "iqm"):
        row = _value(result, "strong", metric)
        assert row["ci_low"] <= row["value"] <= row["ci_high"]


def test_compare_interval_by_hand_for_two_replicates():
    # One scenario, replicates 0 and 1: a resampled mean is 0, 0.5 or 1 with
    # probabilities 1/4, 1/2, 1/4, so the 95% percentile interval is [0, 1].
    table = _table([("a", "s", "x", 0, 0.0), ("a", "s", "x", 1, 1.0),
                    ("b", "s", "x", 0, 0.5), ("b", "s", "x", 1, 0.5)])
    result = compare_teams(table, reps=2000, seed=0, progress=False)
    a = _value(result, "a", "mean")
    assert (a["value"], a["ci_low"], a["ci_high"]) == (0.5, 0.0, 1.0)
    b = _value(result, "b", "mean")  # no spread: a degenerate interval
    assert (b["value"], b["ci_low"], b["ci_high"]) == (0.5, 0.5, 0.5)
    # P(a > b): 0 vs 0.5 loses, 1 vs 0.5 wins -> 1/2
    assert _value(result, "a", "p_improve:b")["value"] == 0.5


def test_compare_is_seeded_and_stable_when_teams_are_added():
    table = _two_teams()
    first = compare_teams(table, reps=100, seed=4, progress=False)
    again = compare_teams(table, reps=100, seed=4, progress=False)
    pd.testing.assert_frame_equal(first.table, again.table)
    other_seed = compare_teams(table, reps=100, seed=5, progress=False)
    assert not first.table[["ci_low", "ci_high"]].equals(other_seed.table[["ci_low", "ci_high"]])
    third = table[table["team"] == "weak"].assign(team="middle", score=lambda d: d["score"] + 0.3)
    bigger = compare_teams(pd.concat([table, third]), reps=100, seed=4, progress=False)
    assert _value(bigger, "strong", "iqm").tolist() == _value(first, "strong", "iqm").tolist()
    assert _value(bigger, "middle", "rank")["value"] == 2.0


def test_compare_uses_only_shared_scenarios(capsys):
    table = pd.concat([_two_teams(), _table([("strong", "extra", "sub", 0, 100.0)])])
    with pytest.warns(CapprofNote, match=r"comparing on the 3 scenario\(s\) every chosen team has; 1 left out"):
        result = compare_teams(table, reps=50, progress=False)
    assert _value(result, "strong", "mean")["value"] == pytest.approx(0.86)
    assert result.n_scenarios == 3
    assert capsys.readouterr().err == ""  # a note, not a print


def test_compare_notes_single_replicates():
    table = _table([("a", "s", "x", 0, 0.0), ("a", "s", "x", 1, 1.0), ("b", "s", "x", 0, 0.5)])
    with pytest.warns(CapprofNote, match="b has one replicate per scenario"):
        compare_teams(table, reps=20, progress=False)


def test_summary_tables_put_the_best_team_first():
    result = compare_teams(_two_teams(), teams=["weak", "strong"], reps=50, progress=False)
    aggregates, poi = summary_tables(result)
    assert aggregates["team"].tolist() == ["strong", "weak"]
    assert aggregates.loc[0, "mean"].startswith("0.860 [")
    assert poi.loc[0, "weak"].startswith("1.00 [1.00, 1.00]")


# ------------------------------------------------------------ capprof compare


def test_compare_cli_on_published_results(cli, published_path):
    result = cli("compare", published_path, "--reps", "100", "--format", "csv")
    assert result.code == 0, result.err
    from io import StringIO

    table = pd.read_csv(StringIO(result.out))
    assert tuple(table.columns) == COMPARE_COLUMNS
    teams = sorted(table["team"].unique())
    assert len(teams) == 8
    assert len(table) == 8 * (3 + 1 + 7)
    poi = table[table["metric"].str.startswith("p_improve:")].set_index(["team", "metric"])["value"]
    assert poi[("acb", "p_improve:random")] + poi[("random", "p_improve:acb")] == pytest.approx(1.0)
    assert (table["ci_low"] <= table["value"] + 1e-9).all() and (table["value"] <= table["ci_high"] + 1e-9).all()
    assert "left out" in result.err  # the exploiter_opre team limits the shared scenarios


def test_compare_cli_table_on_chosen_teams(cli, published_path):
    result = cli("compare", published_path, "--teams", "acb", "opre", "random", "--reps", "50")
    assert result.code == 0, result.err
    assert "3 teams on" in result.out and "probability of improvement" in result.out
    lines = result.out.splitlines()
    assert lines[2].split()[0] == "acb"  # best team first in the aggregate table


@pytest.mark.parametrize(
    "args, message",
    [
        (["--teams", "acbb", "opre"], 'did you mean "acb"'),
        (["--teams", "acb"], "at least two teams"),
        (["--reps", "5"], "too few"),
    ],
)
def test_compare_cli_bad_input_is_one_line(cli, published_path, args, message):
    result = cli("compare", published_path, *args)
    assert result.code == 2
    assert message in result.err and "Traceback" not in result.err


def test_compare_cli_missing_file_exits_2_without_traceback(cli_subprocess, tmp_path):
    result = cli_subprocess("compare", tmp_path / "nope.csv")
    assert result.code == 2
    assert "does not exist" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seed", "-1"], "argument --seed: -1 is outside the seeds capprof takes; give a whole number from 0 to 2147483647"),
        (["--reps", "0"], "argument --reps: 0 is outside 1..1000000"),
        (["--reps", "many"], 'argument --reps: "many" is not a whole number'),
    ],
)
def test_compare_cli_bad_numbers_name_the_option(cli, args, message):
    result = cli("compare", FIXTURE_SCORES, *args)
    assert result.code == 2
    assert message in result.err and "Traceback" not in result.err


def test_compare_cli_on_a_table_of_constant_scenarios_is_one_line(cli, tmp_path):
    path = tmp_path / "all_equal.csv"
    _table([("a", "s0", "x", 0, 1.0), ("b", "s0", "x", 0, 1.0), ("a", "s1", "x", 0, 2.0), ("b", "s1", "x", 0, 2.0)]
           ).to_csv(path, index=False)
    result = cli("compare", path, "--normalise", "minmax")
    assert result.code == 2 and "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "every scenario has a zero minmax range" in lines[0], result.err


def test_compare_cli_prints_its_notes_as_note_lines(cli, tmp_path):
    path = tmp_path / "scores.csv"
    pd.concat([_two_teams(), _table([("strong", "extra", "sub", 0, 100.0), ("weak", "extra", "sub", 0, 1.0),
                                     ("strong", "only", "sub", 0, 1.0), ("strong", "only", "sub", 1, 2.0)])]
              ).to_csv(path, index=False)
    result = cli("compare", path, "--reps", "20")
    assert result.code == 0, result.err
    assert "capprof: note: comparing on the 4 scenario(s) every chosen team has; 1 left out" in result.err
