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


def raw(tmp_path, data: bytes, name):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def gzip_of(text):
    import gzip

    return gzip.compress(text.encode())


def directory(tmp_path, name, files=()):
    path = tmp_path / name
    path.mkdir()
    for f in files:
        (path / f).write_text(RUN_DEMANDS if f == "_demands.yaml" else "x")
    return path


RUN_DEMANDS = "scenarios:\n  my_variant:\n    substrate: clean_up\n    demands: {visitor: 1}\n"
HEADER = "team,scenario,substrate,replicate,score\n"
BINARY = bytes(range(256)) * 4

# case -> (arguments, words the error line must contain: it names the problem and the fix)
CASES = {
    "unknown command": (lambda p: ["profilez"], ["invalid choice: 'profilez'", "capprof --help"]),
    "unknown substrate": (lambda p: ["tags", "--substrate", "cleanup"], ['unknown substrate "cleanup"', 'did you mean "clean_up"']),
    "unknown tag": (lambda p: ["tags", "--tag", "defence"], ['unknown tag "defence"', 'did you mean "defense"']),
    "bad format": (lambda p: ["tags", "--format", "xml"], ["--format", "invalid choice: 'xml'"]),
    "filters match nothing": (lambda p: ["tags", "--substrate", "clean_up", "--tag", "time_pressure"],
                              ["no scenario matches", "loosen"]),
    "missing file": (lambda p: ["scores", p / "nope.csv"], ["nope.csv does not exist", "check the path"]),
    "unknown extension": (lambda p: ["scores", csv(p, "x", "s.xlsx")], ["unknown file type", "use .csv"]),
    "corrupt parquet": (lambda p: ["scores", raw(p, BINARY, "s.parquet")], ["not a readable Parquet file"]),
    "csv in a .parquet name": (lambda p: ["scores", csv(p, GOOD, "s.parquet")], ["this is text", "name it .csv"]),
    "zero-byte csv": (lambda p: ["scores", csv(p, "")], ["s.csv: the file is empty"]),
    "blank-lines-only csv": (lambda p: ["scores", csv(p, "\n\n\n")], ["the file is empty"]),
    "header only": (lambda p: ["scores", csv(p, HEADER)], ["has no rows"]),
    "missing column": (lambda p: ["scores", csv(p, "team,scenario,replicate,score\na,clean_up_0,0,1\n")],
                       ["missing column(s) substrate", "docs/schema.md"]),
    "capitalised columns": (lambda p: ["scores", csv(p, "Team,Scenario,substrate,replicate,score\na,clean_up_0,clean_up,0,1\n")],
                            ["missing column(s) team, scenario", 'rename "Team" to "team", "Scenario" to "scenario"']),
    "nan score": (lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,0,nan\n")],
                  ["1 score(s) are empty or NaN", 'line 4: team "c" on "clean_up_0"']),
    "empty score": (lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,0,\n")], ["empty or NaN", "line 4"]),
    "infinite score": (lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,0,-inf\n")], ["infinite", "line 4"]),
    "overflowing score": (lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,0,1e400\n")], ["infinite", "line 4"]),
    "huge scores": (lambda p: ["scores", csv(p, HEADER + "a,clean_up_0,clean_up,0,1.7e308\nb,clean_up_0,clean_up,0,-1.7e308\n"),
                              "--normalise", "minmax"], ["2 score(s) are beyond +-1e+15", "line 2", "line 3", "rescale"]),
    "text score": (lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,0,high\n")], ['not numbers (e.g. "high"', "line 4"]),
    "duplicate row": (lambda p: ["scores", csv(p, GOOD + "a,clean_up_0,clean_up,0,3.0\n")],
                      ['repeat a (team, scenario, replicate), e.g. ("a", "clean_up_0", 0)', "keep one row"]),
    "negative replicate": (lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,-1,3.0\n")],
                           ['not non-negative integers (e.g. "-1"']),
    "unknown scenario": (lambda p: ["scores", csv(p, GOOD + "c,clean_up_99,clean_up,0,3.0\n")],
                         ['not in the catalog, e.g. "clean_up_99"', "--demands FILE"]),
    "scenario on the wrong substrate": (
        lambda p: ["scores", csv(p, GOOD + "c,territory__rooms_0,clean_up,0,3.0\n")],
        ['scenario "territory__rooms_0" runs on "territory__rooms"', 'table says "clean_up"', "give it a new name"]),
    "custom scenario on the wrong substrate": (
        lambda p: ["scores", csv(p, GOOD + "c,mine,territory__rooms,0,3.0\n"),
                   "--demands", csv(p, "scenario,substrate,defense\nmine,clean_up,2\n", "d.csv")],
        ['scenario "mine" runs on "clean_up"', 'table says "territory__rooms"']),
    "empty team": (lambda p: ["scores", csv(p, GOOD + ",clean_up_0,clean_up,1,3.0\n")], ["empty `team`", "line 4"]),
    "ragged line": (lambda p: ["scores", csv(p, GOOD + "c,clean_up_0,clean_up,0,3,5\n")],
                    ["line 4 has 6 fields but the header has 5", "quote values"]),
    "repeated header column": (lambda p: ["scores", csv(p, "team,scenario,substrate,replicate,score,score\na,clean_up_0,clean_up,0,1,2\n")],
                               ["column `score` appears more than once"]),
    "gzip named .csv": (lambda p: ["scores", raw(p, gzip_of(GOOD), "s.csv")], ["gzip-compressed", "name it .csv.gz"]),
    "bad .csv.gz": (lambda p: ["scores", csv(p, GOOD, "s.csv.gz")], ["not a readable gzip file"]),
    "utf-16 csv": (lambda p: ["scores", raw(p, GOOD.encode("utf-16"), "s.csv")], ["UTF-16 text", "save it as UTF-8"]),
    "utf-16 csv without a byte-order mark": (lambda p: ["scores", raw(p, GOOD.encode("utf-16-le"), "s.csv")], ["UTF-16 text"]),
    "latin-1 csv": (lambda p: ["scores", raw(p, (GOOD + "zo\xeb,clean_up_0,clean_up,0,1\n").encode("latin-1"), "s.csv")],
                    ["not UTF-8 text", "byte 0xeb"]),
    "binary csv": (lambda p: ["scores", raw(p, BINARY, "s.csv")], ["a binary file", "export the table as CSV"]),
    "xlsx named .csv": (lambda p: ["scores", raw(p, b"PK\x03\x04" + BINARY, "s.csv")], ["zip archive"]),
    "empty directory": (lambda p: ["scores", directory(p, "run")], ["no Parquet files in this directory"]),
    "directory of csv files": (lambda p: ["scores", directory(p, "run", ["a.csv"])], ["no Parquet files", "holds .csv files"]),
    "interrupted run with no episodes": (lambda p: ["scores", directory(p, "run", ["_demands.yaml"])],
                                         ["no Parquet files", "--resume"]),
    "single team normalised": (lambda p: ["scores", csv(p, HEADER + "a,clean_up_0,clean_up,0,1\n"), "--normalise", "minmax"],
                               ['only 1 team(s) ("a")', "add another team"]),
    "random-exploiter without anchors": (lambda p: ["scores", csv(p, GOOD), "--normalise", "random-exploiter"],
                                         ['needs a "random" team']),
    "bad demands file": (lambda p: ["scores", csv(p, GOOD), "--demands", csv(p, "scenario,defense\nclean_up_0,9\n", "d.csv")],
                         ['demand "defense" of scenario "clean_up_0" is 9', "between 0 and 5"]),
    "demands file is a directory": (lambda p: ["scores", csv(p, GOOD), "--demands", directory(p, "d.yaml")],
                                    ["is a directory, not a file"]),
    "demands file is empty": (lambda p: ["scores", csv(p, GOOD), "--demands", csv(p, "", "d.yaml")], ["d.yaml is empty"]),
    "demands file is UTF-16": (lambda p: ["scores", csv(p, GOOD), "--demands", raw(p, "scenarios: {}\n".encode("utf-16"), "d.yaml")],
                               ["UTF-16 text, not UTF-8 text"]),
    "demands file is binary": (lambda p: ["scores", csv(p, GOOD), "--demands", raw(p, BINARY, "d.csv")], ["a binary file"]),
    "demands file is malformed YAML": (lambda p: ["scores", csv(p, GOOD), "--demands", csv(p, "scenarios: [x\n", "d.yaml")],
                                       ["not valid YAML at line"]),
    "demands file contradicts the catalog": (
        lambda p: ["scores", csv(p, GOOD), "--demands", csv(p, "scenarios:\n  clean_up_0:\n    substrate: territory__rooms\n", "d.yaml")],
        ['scenario "clean_up_0" is given substrate "territory__rooms" but runs on "clean_up"', "new name"]),
    "empty score path": (lambda p: ["scores", ""], ["PATH_OR_URL is empty; give a value"]),
    "empty demands path": (lambda p: ["scores", csv(p, GOOD), "--demands", ""],
                           ["--demands is empty; give a value, or drop --demands"]),
    "empty evaluate output": (lambda p: ["evaluate", csv(p, GOOD), "--out", " "], ["--out is empty"]),
    "bad --by": (lambda p: ["scores", csv(p, GOOD), "--by", "team"], ["--by", "invalid choice: 'team'"]),
    "unreachable url": (lambda p: ["scores", "http://127.0.0.1:9/results.feather"],
                        ["could not download http://127.0.0.1:9/results.feather", "local copy"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_exit_2_and_a_line_naming_the_problem(cli, tmp_path, monkeypatch, case):
    monkeypatch.setenv("CAPPROF_CACHE", str(tmp_path / "cache"))
    arguments, words = CASES[case]
    result = cli(*arguments(tmp_path))
    assert result.code == 2, result
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    errors = [line for line in lines if line.startswith("capprof: error: ")]
    assert errors and all(line.startswith(("capprof: error: ", "capprof: note: ")) for line in lines), result.err
    assert len(errors) <= 2  # one line per problem; no case here has more than two
    for word in words:
        assert word in result.err, (word, result.err)


def test_semicolon_and_tab_csv_are_read_with_a_note(cli, tmp_path):
    semicolon = HEADER.replace(",", ";") + "a;clean_up_0;clean_up;0;1,5\nb;clean_up_0;clean_up;0;2\n"
    result = cli("scores", csv(tmp_path, semicolon), "--by", "scenario", "--format", "csv")
    assert result.code == 0, result.err
    assert "read as semicolon-delimited" in result.err
    assert "a,clean_up_0,1.5" in result.out  # the decimal comma understood
    tab = GOOD.replace(",", "\t")
    result = cli("scores", csv(tmp_path, tab, "t.csv"), "--by", "scenario", "--format", "csv")
    assert result.code == 0 and "read as tab-delimited" in result.err
    assert "b,clean_up_0,2" in result.out


def test_gzipped_csv_and_utf8_bom_and_blank_lines_are_read(cli, tmp_path):
    result = cli("scores", raw(tmp_path, gzip_of(GOOD), "s.csv.gz"), "--by", "scenario", "--format", "csv")
    assert result.code == 0, result.err
    assert "b,clean_up_0,2" in result.out
    result = cli("scores", raw(tmp_path, ("\ufeff" + GOOD + "\n\n").encode(), "bom.csv"), "--format", "csv")
    assert result.code == 0, result.err
    assert "a,overall,1" in result.out


def test_team_names_that_look_missing_stay_names(cli, tmp_path):
    table = HEADER + "NA,clean_up_0,clean_up,0,1\nnull,clean_up_0,clean_up,0,2\n"
    result = cli("scores", csv(tmp_path, table), "--format", "csv")
    assert result.code == 0, result.err
    assert "NA,overall,1" in result.out and "null,overall,2" in result.out


def test_a_bug_is_one_internal_error_line_with_exit_70(cli, monkeypatch, tmp_path):
    import capprof.cli

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(capprof.cli, "cmd_tags", broken)
    monkeypatch.delenv("CAPPROF_DEBUG", raising=False)
    result = cli("tags")
    assert result.code == 70
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert result.err.startswith("capprof: internal error: ZeroDivisionError: division by zero; this is a bug")
    assert "CAPPROF_DEBUG=1" in result.err
    monkeypatch.setenv("CAPPROF_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli("tags")


def test_a_file_that_cannot_be_written_is_one_error_line(cli, monkeypatch):
    import capprof.cli

    def unwritable(args):
        raise PermissionError(13, "Permission denied", "/root/out/report.html")

    monkeypatch.setattr(capprof.cli, "cmd_tags", unwritable)
    result = cli("tags")
    assert result.code == 2
    assert result.err == ("capprof: error: /root/out/report.html: Permission denied; "
                          "check the path, its permissions and free space\n")


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


def test_a_full_disk_without_a_file_name_is_one_line_naming_the_output(tmp_path, monkeypatch, capsys):
    import argparse

    from capprof import cli

    def fill(args):
        raise OSError(28, "No space left on device")

    args = argparse.Namespace(func=fill, out=str(tmp_path / "trained"))
    assert cli._dispatch(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on device" in err[0] and str(tmp_path) in err[0]
