"""A `capprof run` directory is a score table, with its own demands."""

import io

import pandas as pd
import pytest


@pytest.mark.runners
def test_scores_reads_a_run_directory_and_its_demands(cli, tmp_path):
    pytest.importorskip("meltingpot")
    out = tmp_path / "run"
    result = cli("run", "--population", "random", "--scenario", "clean_up__visitor_cleaner",
                 "--episodes", "2", "--max-steps", "15", "--out", out, "--quiet")
    assert result.code == 0, result.err
    scores = cli("scores", out, "--by", "scenario", "--format", "csv")
    assert scores.code == 0, scores.err  # no --demands needed: _demands.yaml comes with the run
    table = pd.read_csv(io.StringIO(scores.out))
    assert table.to_dict("records")[0]["level"] == "clean_up__visitor_cleaner"


def _episodes(directory, rows):
    """Episode files as `capprof run` leaves them (one Parquet file each), with
    the run's _demands.yaml written first, as an interrupted run leaves it."""
    directory.mkdir(exist_ok=True)
    (directory / "_demands.yaml").write_text(
        "scenarios:\n  clean_up__my_variant:\n    substrate: clean_up\n    demands: {visitor: 1}\n")
    for i, (team, status, ret) in enumerate(rows):
        pd.DataFrame([{
            "team": team, "scenario": "clean_up__my_variant", "substrate": "clean_up", "episode": i,
            "focal_per_capita_return": ret, "background_per_capita_return": None, "status": status,
            "error": "" if status == "ok" else "ValueError: boom", "run_id": "r1",
        }]).to_parquet(directory / f"{team}__ep{i:05d}.parquet")
    (directory / ".a__ep99999.parquet.123.tmp").write_bytes(b"half a file")  # killed mid-write


def test_an_interrupted_run_directory_scores_with_its_own_demands(cli, tmp_path):
    from capprof.scores import failed_episodes, load_scores

    run = tmp_path / "run"
    _episodes(run, [("a", "ok", 1.0), ("b", "ok", 3.0), ("b", "error", None)])
    result = cli("scores", run, "--by", "scenario", "--format", "csv")
    assert result.code == 0, result.err
    assert "1 failed episode(s) in run have no score and are left out" in result.err
    table = pd.read_csv(io.StringIO(result.out))
    assert table.set_index("team")["score"].to_dict() == {"a": 1.0, "b": 3.0}
    assert failed_episodes(pd.read_parquet(run)) == 1
    with pytest.warns(UserWarning, match="1 failed episode"):
        assert not load_scores(run).attrs  # no results ride in DataFrame.attrs


def test_a_run_where_every_episode_failed_is_an_error(cli, tmp_path):
    run = tmp_path / "run"
    _episodes(run, [("a", "error", None), ("b", "timeout", None)])
    result = cli("scores", run)
    assert result.code == 2
    assert "every one of the 2 episode(s) failed, so there are no scores" in result.err
