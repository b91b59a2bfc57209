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
