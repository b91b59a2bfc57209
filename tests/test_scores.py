"""Score tables: loaders, validation, normalisation and the contest aggregate."""

import numpy as np
import pandas as pd
import pytest

from capprof.errors import CapprofError
from capprof.profiling.normalise import aggregate, minmax, normalise, random_exploiter, team_minmax
from capprof.scores import SCORE_COLUMNS, load_scores, validate_scores


def table(rows):
    return pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score"])


TOY = table([
    # synthetic: two substrates, three teams, two replicates
    ("a", "clean_up_0", "clean_up", 0, 10.0), ("a", "clean_up_0", "clean_up", 1, 20.0),
    ("b", "clean_up_0", "clean_up", 0, 30.0), ("b", "clean_up_0", "clean_up", 1, 50.0),
    ("random", "clean_up_0", "clean_up", 0, 0.0), ("random", "clean_up_0", "clean_up", 1, 10.0),
    ("a", "clean_up_1", "clean_up", 0, 1.0), ("b", "clean_up_1", "clean_up", 0, 3.0),
    ("random", "clean_up_1", "clean_up", 0, 2.0),
    ("a", "territory__rooms_0", "territory__rooms", 0, 4.0), ("b", "territory__rooms_0", "territory__rooms", 0, 8.0),
    ("random", "territory__rooms_0", "territory__rooms", 0, 0.0),
])


def test_published_results_load_into_the_schema(published_path):
    scores = load_scores(published_path)
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert len(scores) == 4174
    assert scores["scenario"].nunique() == 262 and scores["substrate"].nunique() == 49
    assert set(scores["replicate"]) == {0, 1, 2}
    assert scores["background_score"].isna().all()


def test_random_exploiter_maps_clean_up_2_anchors_to_0_and_1(published_path):
    scores = load_scores(published_path)
    raw_means = scores[scores.scenario == "clean_up_2"].groupby("team")["score"].mean()
    assert raw_means["random"] == pytest.approx(40.4261, abs=1e-4)
    assert raw_means["exploiter_acb"] == pytest.approx(699.1939, abs=1e-4)
    with pytest.warns(UserWarning, match="left out"):  # the published file's constant scenarios
        normalised = random_exploiter(scores)
    means = normalised[normalised.scenario == "clean_up_2"].groupby("team")["score"].mean()
    assert means["random"] == pytest.approx(0.0, abs=1e-12)
    assert means["exploiter_acb"] == pytest.approx(1.0, abs=1e-12)


def test_constant_scenarios_are_left_out_with_a_notice_never_nan(published_path):
    from capprof.errors import CapprofNote
    from capprof.profiling.normalise import dropped_scenarios

    scores = load_scores(published_path)
    for method in ("minmax", "team-minmax", "random-exploiter"):
        with pytest.warns(CapprofNote, match="left out"):
            out = normalise(scores, method)
        assert np.isfinite(out["score"]).all()
        dropped = dropped_scenarios(scores, method)
        assert {"collaborative_cooking__circuit_2", "collaborative_cooking__crowded_2",
                "collaborative_cooking__figure_eight_2"} <= set(dropped)
        assert not set(dropped) & set(out["scenario"])
        assert not out.attrs


def test_minmax_spans_each_scenario_exactly():
    out = minmax(TOY)
    spans = out.groupby("scenario")["score"].agg(["min", "max"])
    assert (spans["min"] == 0).all() and (spans["max"] == 1).all()
    row = out[(out.team == "a") & (out.scenario == "clean_up_0") & (out.replicate == 1)]
    assert row["score"].item() == pytest.approx(20 / 50)
    assert row["raw_score"].item() == 20


def test_team_minmax_uses_team_means():
    out = team_minmax(TOY)
    means = out.groupby(["scenario", "team"])["score"].mean().unstack()
    # clean_up_0 team means: a 15, b 40, random 5 -> (m - 5) / 35
    assert means.loc["clean_up_0", "a"] == pytest.approx(10 / 35)
    assert means.loc["clean_up_0"].min() == pytest.approx(0) and means.loc["clean_up_0"].max() == pytest.approx(1)


def test_contest_aggregate_weights_substrates_equally():
    # clean_up: a's scenario means 15 and 1 -> 8; territory: 4 -> overall (8 + 4) / 2 = 6
    overall = aggregate(TOY, "overall").set_index("team")["score"]
    assert overall["a"] == pytest.approx(6.0)
    by_substrate = aggregate(TOY, "substrate")
    assert set(by_substrate.columns) == {"team", "level", "score"}
    assert by_substrate.set_index(["team", "level"]).loc[("a", "clean_up"), "score"] == pytest.approx(8.0)


def test_random_exploiter_needs_its_anchor_teams():
    with pytest.raises(CapprofError, match="exploiter"):
        random_exploiter(TOY)


def test_schema_csv_and_parquet_round_trip(tmp_path):
    scores = validate_scores(TOY)
    scores.to_csv(tmp_path / "s.csv", index=False)
    scores.to_parquet(tmp_path / "s.parquet")
    for name in ("s.csv", "s.parquet"):
        back = load_scores(tmp_path / name)
        pd.testing.assert_frame_equal(back.drop(columns="source"), scores.drop(columns="source"),
                                      check_dtype=False)


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t.drop(columns="score"), "missing column(s) score"),
    (lambda t: t.iloc[0:0], "no rows"),
    (lambda t: t.assign(score=t.score.astype(object).where(t.index != 2, "n/a")), "not numbers"),
    (lambda t: t.assign(score=t.score.where(t.index != 2, np.nan)), 'empty or NaN (team "b" on "clean_up_0")'),
    (lambda t: t.assign(score=t.score.where(t.index != 2, np.inf)), 'infinite (team "b" on "clean_up_0")'),
    (lambda t: t.assign(score=t.score.where(t.index != 2, -1.7e308)), "beyond +-1e+15"),
    (lambda t: t.assign(background_score=np.where(t.index == 2, np.inf, np.nan)), "`background_score` value(s) are infinite"),
    (lambda t: t.assign(score=t.score.where(t.index != 2, True)), "not numbers"),
    (lambda t: t.assign(replicate=t.replicate.astype(float).where(t.index != 1, 1e20)), "non-negative integers"),
    (lambda t: t.assign(team=t.team.where(t.index != 1, " ")), "empty `team`"),
    (lambda t: pd.concat([t, t.iloc[[0]]]), "repeat a (team, scenario, replicate)"),
    (lambda t: t.assign(replicate=t.replicate.astype(float).where(t.index != 1, 0.5)), "non-negative integers"),
    (lambda t: t.assign(substrate=t.substrate.where(t.index != 1, "territory__rooms")),
     'scenario "clean_up_0" runs on "clean_up" (catalog or demands file), but the table says "territory__rooms"'),
    (lambda t: t.assign(scenario=t.scenario.replace("clean_up_1", "mine"),
                        substrate=t.substrate.where(t.index != 7, "territory__rooms")),
     'scenario "mine" is listed under more than one substrate ("clean_up", "territory__rooms")'),
])
def test_validation_names_each_problem(mutate, message):
    with pytest.raises(CapprofError) as info:
        validate_scores(mutate(TOY.copy()))
    assert message in str(info.value)


def test_unknown_scenarios_and_single_team_are_rejected_when_asked():
    with pytest.raises(CapprofError, match="not in the catalog"):
        validate_scores(TOY.assign(scenario=TOY.scenario.replace("clean_up_1", "cleanup_1")),
                        known_scenarios={"clean_up_0", "clean_up_1", "territory__rooms_0"})
    with pytest.raises(CapprofError, match="only 1 team"):
        validate_scores(TOY[TOY.team == "a"], min_teams=2)


def test_parquet_directories_flat_partitioned_or_with_stray_files(tmp_path):
    scores = validate_scores(TOY)
    scores.to_parquet(tmp_path / "partitioned", partition_cols=["team"])  # team=a/... carries the team
    back = load_scores(tmp_path / "partitioned")
    assert sorted(back["team"].unique()) == ["a", "b", "random"] and len(back) == len(TOY)
    flat = tmp_path / "flat"
    flat.mkdir()
    scores.iloc[:5].to_parquet(flat / "one.parquet")
    scores.iloc[5:].to_parquet(flat / "two.parquet")
    (flat / "README.txt").write_text("notes beside the data are skipped")
    assert len(load_scores(flat)) == len(TOY)
    (flat / "three.parquet").write_bytes(b"half a file")
    with pytest.raises(CapprofError, match="three.parquet: not a readable Parquet file"):
        load_scores(flat)
