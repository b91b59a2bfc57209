"""CSV output never holds a cell a spreadsheet would run as a formula."""

import pandas as pd

from capprof.output import spreadsheet_safe, write_table


def test_formula_cells_get_a_quote_and_numbers_stay(capsys):
    frame = pd.DataFrame({"team": ['=HYPERLINK("http://evil.example","click")', "+1+cmd", "@SUM(A1)", "ok", "-2.5"],
                          "score": [-1.0, 2.0, -3.0, 4.0, 5.0]})
    write_table(frame, "csv")
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith('"\'=HYPERLINK(') and lines[2].startswith("'+1+cmd")
    assert lines[3].startswith("'@SUM") and lines[4] == "ok,4" and lines[5] == "-2.5,5" and lines[1].endswith(",-1")
    assert spreadsheet_safe(frame)["score"].tolist() == frame["score"].tolist()


# ---------------------------------------------------------------- CSV files on disk

import csv  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from capprof.output import FORMULA_START, guard_text, unguard, unguard_text, write_csv  # noqa: E402
from capprof.readers import read_table  # noqa: E402

EVIL = ['=HYPERLINK("http://evil.example","click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
        "\tx", "\rx", "'=already quoted", "'", "''", "plain", "-1.5", "1e5", "'-1.5"]
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def formula_cells(path) -> list[str]:
    """Every cell of a CSV file a spreadsheet would run as a formula."""
    with open(path, newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row
                if cell[:1] in FORMULA_START and not _NUMBER.match(cell)]


@pytest.mark.parametrize("value", EVIL)
def test_guard_and_unguard_are_inverse(value):
    assert unguard_text(guard_text(value)) == value
    assert guard_text(value)[:1] not in FORMULA_START or _NUMBER.match(value)


def test_a_csv_file_has_no_formula_and_reads_back_exactly(tmp_path):
    frame = pd.DataFrame({"team": EVIL, "=col": range(len(EVIL)), "score": np.linspace(-1, 1, len(EVIL))})
    path = write_csv(frame, tmp_path / "t.csv")
    assert formula_cells(path) == []
    back = read_table(path)  # the reader every command uses: cells as text
    assert list(back.columns) == ["team", "=col", "score"]
    assert back["team"].tolist() == EVIL
    assert unguard(pd.read_csv(path, keep_default_na=False))["team"].tolist() == EVIL
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temporary left


def test_a_profile_with_formula_names_writes_safe_csvs_and_loads_the_names_back(tmp_path):
    from test_profile_artifact import DEMANDS, _demands, _posterior, _scores
    import test_profile_artifact as artifact

    from capprof.profiling.predictors import Assessor, MeasurementLayout
    from capprof.profiling.profile import PROFILE_FILES, Profile

    # sorted, as Profile.fit orders teams (the assessor's save/load assumes it)
    teams = sorted(['=HYPERLINK("http://evil.example","click")', "+team", "@team"])
    demands = _demands()
    demands.index = pd.Index(["-" + s if i == 0 else s for i, s in enumerate(demands.index)], name="scenario")
    old = artifact.TEAMS
    artifact.TEAMS = teams
    try:
        posterior, scores = _posterior(), _scores(demands)
    finally:
        artifact.TEAMS = old
    layout = MeasurementLayout.from_posterior(posterior, demands, mode="joint", seed=0)
    assessor = Assessor(n_estimators=5).fit(scores, demands)
    profile = Profile(layout=layout, demands=demands, assessor=assessor, metadata={"normalisation": "minmax"})
    out = profile.save(tmp_path / "prof")
    for key in ("profiles", "diagnostics", "importances", "demands"):
        assert formula_cells(out / PROFILE_FILES[key]) == [], key
    loaded = Profile.load(out)
    assert sorted(loaded.abilities["team"].unique()) == sorted(teams)
    assert loaded.demands.index[0] == demands.index[0] and list(loaded.demands.columns) == DEMANDS
    again, before = (p.predict(scenarios=list(demands.index[:2])) for p in (loaded, profile))
    assert again[["team", "scenario", "model"]].equals(before[["team", "scenario", "model"]])
    assert np.allclose(again["predicted"], before["predicted"], rtol=1e-4)


def test_evaluate_files_are_spreadsheet_safe_and_read_back(tmp_path, cli):
    from test_profiling_cli import _write_scores

    path = tmp_path / "scores.csv"
    scores, _ = _write_scores(path)
    names = {t: n for t, n in zip(sorted(scores["team"].unique()), ["=cmd()", "+evil", "@evil"])}
    scores["team"] = scores["team"].map(names)
    write_csv(scores, path)
    files = {flag: tmp_path / f"{flag}.csv" for flag in ("out", "cells", "summary")}
    result = cli("evaluate", path, "--models", "aggmean,ridge", "--folds", "2", "--quiet",
                 *[a for flag, f in files.items() for a in (f"--{flag}", f)])
    assert result.code == 0, result.err
    for flag, file in files.items():
        assert formula_cells(file) == [], flag
    cells = read_table(files["cells"])
    assert set(cells["team"]) == set(names.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.csv", "out.csv", "scores.csv", "summary.csv"]


def test_compare_csv_on_stdout_is_spreadsheet_safe(tmp_path, cli):
    rows = [(team, f"commons_harvest__open__{s}", "commons_harvest__open", r, float(i + r))
            for i, team in enumerate(["=1+1", "@evil", "fine"])
            for s in ("resident_harvester", "visitor_harvester") for r in range(2)]
    path = tmp_path / "s.csv"
    pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score"]).to_csv(path, index=False)
    result = cli("compare", path, "--format", "csv", "--reps", "20")
    assert result.code == 0, result.err
    (tmp_path / "out.csv").write_text(result.out)
    assert formula_cells(tmp_path / "out.csv") == []
    assert {"=1+1", "@evil", "fine"} <= set(read_table(tmp_path / "out.csv")["team"])
