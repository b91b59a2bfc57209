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
