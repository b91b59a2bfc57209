"""Bad input: one clear line per problem, exit code 2, never a traceback."""

import pandas as pd
import pytest

GOOD = (
    "team,scenario,substrate,replicate,score\n"
    "a,clean_up_0,clean_up,0,1.0\n"
    "b,clean_up_0,clean_up,0,2.0\n"
)


def csv(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


CASES = {
    "unknown command": lambda p: ["profilez"],
    "unknown substrate": lambda p: ["tags", "--substrate", "cleanup"],
    "unknown tag": lambda p: ["tags", "--tag", "defence"],
    "bad format": lambda p: ["tags", "--format", "xml"],
    "filters match nothing": lambda p: ["tags", "--substrate", "clean_up", "--tag", "time_pressure"],
    "missing file": lambda p: ["scores", p / "nope.csv"],
    "unknown extension": lambda p: ["scores", csv(p, "x", "s.xlsx")],
    "corrupt parquet": lambda p: ["scores", csv(p, "not parquet", "s.parquet")],
    "zero-byte csv": lambda p: ["scores", csv(p, "")],
    "header only": lambda p: ["scores", csv(p, "team,scenario,substrate,replicate,score\n")],
    "missing column": lambda p: ["scores", csv(p, "team,scenario,replicate,score\na,clean_up_0,0,1\n")],
    "nan score": lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,0,nan\n")],
    "text score": lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,0,high\n")],
    "duplicate row": lambda p: ["scores", csv(p, GOOD + "a,clean_up_0,clean_up,0,3.0\n")],
    "negative replicate": lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,-1,3.0\n")],
    "unknown scenario": lambda p: ["scores", csv(p, GOOD + "c,clean_up_99,clean_up,0,3.0\n")],
    "single team normalised": lambda p: ["scores", csv(p, "team,scenario,substrate,replicate,score\na,clean_up_0,clean_up,0,1\n"),
                                         "--normalise", "minmax"],
    "random-exploiter without anchors": lambda p: ["scores", csv(p, GOOD), "--normalise", "random-exploiter"],
    "bad demands file": lambda p: ["scores", csv(p, GOOD), "--demands", csv(p, "scenario,defense\nclean_up_0,9\n", "d.csv")],
    "bad --by": lambda p: ["scores", csv(p, GOOD), "--by", "team"],
    "unreachable url": lambda p: ["scores", "http://127.0.0.1:9/results.feather"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_exit_2_and_clear_lines(cli, tmp_path, monkeypatch, case):
    monkeypatch.setenv("CAPPROF_CACHE", str(tmp_path / "cache"))
    result = cli(*CASES[case](tmp_path))
    assert result.code == 2, result
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert lines and all(line.startswith("capprof: error: ") for line in lines), result.err
    assert len(lines) <= 2  # one line per problem; no case here has more than two


def test_unknown_scenario_is_fine_with_custom_demands(cli, tmp_path):
    demands = csv(tmp_path, "scenario,substrate,defense\nclean_up_99,clean_up,2\n", "d.csv")
    result = cli("scores", csv(tmp_path, GOOD + "c,clean_up_99,clean_up,0,3.0\n"), "--demands", demands,
                 "--by", "scenario", "--format", "csv")
    assert result.code == 0, result.err
    assert "c,clean_up_99,3" in result.out


def test_real_process_prints_no_traceback(cli_subprocess, tmp_path):
    result = cli_subprocess("scores", csv(tmp_path, GOOD + "a,clean_up_0,clean_up,0,3.0\n"))
    assert result.code == 2
    assert result.err.startswith("capprof: error: ") and "Traceback" not in result.err


def test_scores_cli_on_published_results(cli, published_path):
    result = cli("scores", published_path, "--normalise", "random-exploiter", "--by", "scenario", "--format", "csv")
    assert result.code == 0
    table = pd.read_csv(__import__("io").StringIO(result.out))
    assert list(table.columns) == ["team", "level", "score"]
    clean_up_2 = table[table.level == "clean_up_2"].set_index("team")["score"]
    assert clean_up_2["random"] == pytest.approx(0, abs=1e-6) and clean_up_2["exploiter_acb"] == pytest.approx(1, abs=1e-6)
    overall = cli("scores", published_path, "--normalise", "minmax", "--format", "csv")
    teams = pd.read_csv(__import__("io").StringIO(overall.out)).set_index("team")["score"]
    assert len(teams) == 8 and teams["random"] < teams["acb"] < teams["exploiter_opre"]
