"""The promise, tried on generated malformed input (hypothesis).

For every command that reads a score table or a demands file: exit 0 with a
sane table (every number finite), or exit 2 with at most two lines on stderr
(``capprof: error: ...``, a ``capprof: note: ...`` may precede one error) and
never a traceback; exit 70 (an internal error) fails the test.

Inputs are generated from a valid table by one defect each (types, encodings,
delimiters, compression, NaN / inf / huge scores, duplicates, empty tables,
constant scenarios, wrong substrates, ...), plus arbitrary bytes under score
and demand file names. Examples are derandomised and bounded so the file runs
in seconds; ``HYPOTHESIS_PROFILE=explore`` tries many more random ones.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hypothesis  # the dev extra installs it (`make test`); no skip: a missing suite must be loud
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

settings.register_profile(
    "capprof", max_examples=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("explore", max_examples=300, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "capprof"))

SCENARIOS = [
    ("clean_up_0", "clean_up"), ("clean_up_1", "clean_up"),
    ("territory__rooms_0", "territory__rooms"), ("territory__rooms_1", "territory__rooms"),
]
TEAMS = ["a", "b", "random", "exploiter_x", "NA", "null", "zoë", "team,comma", 'quo"te', " spaced ", "1", "<b>x</b>"]
COLUMNS = ["team", "scenario", "substrate", "replicate", "score", "background_score"]
SPECIAL_SCORES = [math.nan, math.inf, -math.inf, 1.7e308, -1.7e308, 1e16, -0.0, 5e-324, "high", "", " ", "1,5",
                  "NaN", "None", True]
DEFECTS = [
    "none", "special score", "special background", "duplicate row", "drop column", "header only",
    "wrong substrate", "unknown scenario", "bad replicate", "empty text", "constant scenario",
    "every scenario constant", "one team", "extra column", "shuffled columns",
]


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(*args) -> Result:
    """`capprof ARGS...` in this process (as the `cli` fixture, usable inside
    hypothesis examples)."""
    from capprof.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Result(code, out.getvalue(), err.getvalue())


def assert_promise(result: Result, finite_columns=(), rows=None) -> None:
    """Exit 0 with finite numbers in ``finite_columns`` of the CSV on stdout,
    or exit 2 with at most two `capprof:` lines and no traceback."""
    hypothesis.event(f"exit {result.code}")
    assert "Traceback" not in result.err, result.err
    assert result.code in (0, 2), result
    lines = result.err.strip().splitlines()
    assert all(line.startswith(("capprof: error: ", "capprof: note: ", "capprof: warning: ")) for line in lines), result.err
    if result.code == 2:
        assert any(line.startswith("capprof: error: ") for line in lines), result.err
        assert len(lines) <= 2, result.err
        return
    table = pd.read_csv(io.StringIO(result.out))
    assert len(table), result
    if rows is not None:
        table = table[rows(table)]
    for column in finite_columns:
        values = pd.to_numeric(table[column], errors="raise")
        assert np.isfinite(values).all(), (column, result.out)


# ------------------------------------------------------------------ strategies


@st.composite
def score_frames(draw):
    """A valid score table, then at most one defect."""
    teams = draw(st.lists(st.sampled_from(TEAMS), min_size=2, max_size=3, unique=True))
    scenarios = draw(st.lists(st.sampled_from(SCENARIOS), min_size=1, max_size=4, unique=True))
    replicates = draw(st.integers(1, 2))
    score = st.floats(-1000, 1000, allow_nan=False, allow_infinity=False)
    rows = [[t, sc, sub, r, draw(score), math.nan] for t in teams for sc, sub in scenarios for r in range(replicates)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    defect = draw(st.sampled_from(DEFECTS))
    i = draw(st.integers(0, len(frame) - 1))
    if defect == "special score":
        frame["score"] = frame["score"].astype(object)
        frame.loc[i, "score"] = draw(st.sampled_from(SPECIAL_SCORES))
    elif defect == "special background":
        frame["background_score"] = frame["background_score"].astype(object)
        frame.loc[i, "background_score"] = draw(st.sampled_from(SPECIAL_SCORES))
    elif defect == "duplicate row":
        frame = pd.concat([frame, frame.iloc[[i]]], ignore_index=True)
    elif defect == "drop column":
        frame = frame.drop(columns=draw(st.sampled_from(COLUMNS)))
    elif defect == "header only":
        frame = frame.iloc[0:0]
    elif defect == "wrong substrate":
        frame.loc[i, "substrate"] = draw(st.sampled_from(["territory__rooms", "clean_up", "commons_harvest__open", "nope"]))
    elif defect == "unknown scenario":
        frame.loc[i, "scenario"] = draw(st.sampled_from(["clean_up_99", "x", "CLEAN_UP_0"]))
    elif defect == "bad replicate":
        frame["replicate"] = frame["replicate"].astype(object)
        frame.loc[i, "replicate"] = draw(st.sampled_from([-1, 0.5, 1e20, "one", "", math.nan, math.inf]))
    elif defect == "empty text":
        frame.loc[i, draw(st.sampled_from(["team", "scenario", "substrate"]))] = draw(st.sampled_from(["", " ", None]))
    elif defect == "constant scenario":
        frame.loc[frame["scenario"] == frame.loc[i, "scenario"], "score"] = draw(score)
    elif defect == "every scenario constant":
        frame["score"] = draw(st.sampled_from([0.0, 1.0, -3.5]))
    elif defect == "one team":
        frame = frame[frame["team"] == frame.loc[i, "team"]]
    elif defect == "extra column":
        frame["notes"] = "x"
    elif defect == "shuffled columns":
        frame = frame[draw(st.permutations(list(frame.columns)))]
    return frame


@st.composite
def score_files(draw, directory: Path):
    """A score table written as CSV (any delimiter, encoding, compression),
    Parquet or Feather, named truthfully or not."""
    frame = draw(score_frames())
    kind = draw(st.sampled_from(["csv", "csv", "csv", "parquet", "feather", "csv.gz", "gzip named .csv"]))
    if kind in ("parquet", "feather"):
        frame = frame.copy()
        for col in frame.columns:  # Arrow wants one type per column
            if frame[col].dtype == object and frame[col].map(type).nunique() > 1:
                frame[col] = frame[col].astype(str)
        path = directory / f"s.{kind}"
        frame.reset_index(drop=True).to_parquet(path) if kind == "parquet" else frame.reset_index(drop=True).to_feather(path)
        return path
    sep = draw(st.sampled_from([",", ",", ";", "\t"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    text = frame.to_csv(index=False, sep=sep)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    if kind == "csv.gz":
        path, data = directory / "s.csv.gz", gzip.compress(data)
    elif kind == "gzip named .csv":
        path, data = directory / "s.csv", gzip.compress(data)
    else:
        path = directory / "s.csv"
    path.write_bytes(data)
    return path


DEMAND_DEFECTS = [
    "none", "none", "bad level", "unknown demand", "wrong substrate", "unknown substrate", "no substrate",
    "empty scenario", "duplicate scenario", "undeclared new demand", "substrate as demand", "no scenarios",
    "not a mapping", "broken syntax", "utf-16", "bytes", "directory", "empty file", "semicolons",
]
LEVELS = [6, -1, "high", None, math.nan, math.inf, [1], {"a": 1}, "", 1e400]


@st.composite
def demand_files(draw, directory: Path):
    """A valid demands file (YAML or CSV) describing the scenarios of GOOD,
    then at most one defect."""
    import yaml

    fmt = draw(st.sampled_from(["yaml", "csv"]))
    defect = draw(st.sampled_from(DEMAND_DEFECTS))
    # scenario -> (substrate or None, {demand: level})
    rows = {"mine": ("clean_up", {"defense": draw(st.sampled_from([0, 1, 2.5, 5])), "night_vision": 1}),
            "clean_up_0": (None, {"reciprocity": draw(st.sampled_from([0, 3, 5])), "parter_choice": 1})}
    new = ["night_vision"]
    name = draw(st.sampled_from(list(rows)))
    substrate, demands = rows[name]
    if defect == "bad level":
        demands["defense"] = draw(st.sampled_from(LEVELS))
    elif defect == "unknown demand":
        demands[draw(st.sampled_from(["defence", "reciprocty", "x"]))] = 1
    elif defect == "wrong substrate":
        rows[name] = ("territory__rooms" if name == "clean_up_0" else substrate, demands)
        if name == "mine":  # the table says clean_up: the demands file contradicts it
            rows[name] = ("territory__rooms", demands)
    elif defect == "unknown substrate":
        rows[name] = ("clean_upp", demands)
    elif defect == "no substrate":
        rows["mine"] = (None, rows["mine"][1])
    elif defect == "empty scenario":
        rows[""] = ("clean_up", {"defense": 1})
    elif defect == "undeclared new demand":
        new = []
    elif defect == "substrate as demand":
        demands["clean_up"] = 1
    elif defect == "no scenarios":
        rows = {}
    if fmt == "yaml":
        doc = {"new_demands": new, "scenarios": {
            s: {**({"substrate": sub} if sub else {}), "demands": d} for s, (sub, d) in rows.items()}}
        text = yaml.safe_dump(doc)
        if defect == "duplicate scenario":
            text += "  mine:\n    substrate: clean_up\n"
        elif defect == "not a mapping":
            text = yaml.safe_dump(list(rows))
        elif defect == "broken syntax":
            text = "scenarios: {mine: [unclosed\n"
        path = directory / "d.yaml"
    else:
        names = sorted({d for _, ds in rows.values() for d in ds})
        header = ["scenario", "substrate"] + [f"new:{n}" if n in new else n for n in names]
        lines = [header] + [[s, sub or ""] + [str(ds.get(n, "")) for n in names] for s, (sub, ds) in rows.items()]
        if defect == "duplicate scenario":
            lines.append(lines[-1])
        elif defect == "not a mapping":
            lines = [["name"], ["mine"]]
        elif defect == "broken syntax":
            lines.append(lines[-1] + ["extra", "fields"])
        sep = ";" if defect == "semicolons" else ","
        text = "\n".join(sep.join(f'"{v}"' if sep in v else v for v in line) for line in lines) + "\n"
        path = directory / "d.csv"
    data = text.encode("utf-16" if defect == "utf-16" else "utf-8")
    if defect == "bytes":
        data = draw(st.binary(max_size=200))
    elif defect == "empty file":
        data = draw(st.sampled_from([b"", b"\n", b"   \n\n"]))
    if defect == "directory":
        path.mkdir()
    else:
        path.write_bytes(data)
    return path


GOOD = (
    "team,scenario,substrate,replicate,score\n"
    "a,clean_up_0,clean_up,0,1.0\nb,clean_up_0,clean_up,0,2.0\n"
    "a,mine,clean_up,0,1.0\nb,mine,clean_up,0,3.0\n"
)


# ------------------------------------------------------------------ properties


@given(data=st.data(), normalise=st.sampled_from(["none", "minmax", "team-minmax", "random-exploiter"]),
       by=st.sampled_from(["scenario", "substrate", "overall"]))
def _scores_keeps_the_promise(data, normalise, by):
    with tempfile.TemporaryDirectory() as tmp:
        path = data.draw(score_files(Path(tmp)))
        result = run("scores", path, "--normalise", normalise, "--by", by, "--format", "csv")
        assert_promise(result, finite_columns=["score"])


@given(data=st.data())
def _compare_keeps_the_promise(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = data.draw(score_files(Path(tmp)))
        result = run("compare", path, "--reps", "50", "--format", "csv")
        assert_promise(result, finite_columns=["value"])


@settings(max_examples=15)
@given(data=st.data())
def _evaluate_with_cheap_models_keeps_the_promise(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = data.draw(score_files(Path(tmp)))
        result = run("evaluate", path, "--models", "aggmean,ridge", "--folds", "2", "--quiet", "--format", "csv")
        assert_promise(result, finite_columns=["mse"], rows=lambda t: t["team"] == "ALL")


@settings(max_examples=15)
@given(data=st.data())
def _profile_refuses_bad_tables_before_sampling(data):
    """profile is only run where `scores --normalise minmax` (the same loading
    and checks) refuses the table, so it never samples here."""
    with tempfile.TemporaryDirectory() as tmp:
        path = data.draw(score_files(Path(tmp)))
        if run("scores", path, "--normalise", "minmax").code != 2:
            return
        result = run("profile", path, "--draws", "10", "--tune", "10", "--quiet", "--out", Path(tmp) / "profile")
        assert result.code == 2, result
        assert_promise(result)


@settings(max_examples=10)
@given(data=st.data())
def _report_keeps_the_promise(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = data.draw(score_files(Path(tmp)))
        out = Path(tmp) / "report"
        out.mkdir()
        result = run("report", out, "--scores", path, "--out", out / "r.html")
        assert "Traceback" not in result.err, result.err
        assert result.code in (0, 2), result
        if result.code == 2:
            assert len(result.err.strip().splitlines()) <= 2, result.err


@given(data=st.data())
def _demand_files_keep_the_promise(data):
    with tempfile.TemporaryDirectory() as tmp:
        scores = Path(tmp) / "s.csv"
        scores.write_text(GOOD)
        demands = data.draw(demand_files(Path(tmp)))
        result = run("scores", scores, "--demands", demands, "--by", "scenario", "--format", "csv")
        assert_promise(result, finite_columns=["score"])


@settings(max_examples=15)
@given(data=st.data())
def _evaluate_reads_demand_files_keeping_the_promise(data):
    with tempfile.TemporaryDirectory() as tmp:
        scores = Path(tmp) / "s.csv"
        scores.write_text(GOOD)
        demands = data.draw(demand_files(Path(tmp)))
        result = run("evaluate", scores, "--demands", demands, "--models", "aggmean", "--folds", "2",
                     "--quiet", "--format", "csv")
        assert_promise(result, finite_columns=["mse"], rows=lambda t: t["team"] == "ALL")


@given(data=st.binary(max_size=300), name=st.sampled_from(["s.csv", "s.csv.gz", "s.parquet", "s.feather", "s.txt"]))
def _arbitrary_bytes_are_one_line(data, name):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        assert_promise(run("scores", path, "--format", "csv"), finite_columns=["score"])


def test_scores_keeps_the_promise():
    _scores_keeps_the_promise()


def test_compare_keeps_the_promise():
    _compare_keeps_the_promise()


def test_evaluate_with_cheap_models_keeps_the_promise():
    _evaluate_with_cheap_models_keeps_the_promise()


def test_profile_refuses_bad_tables_before_sampling():
    _profile_refuses_bad_tables_before_sampling()


def test_report_keeps_the_promise():
    _report_keeps_the_promise()


def test_demand_files_keep_the_promise():
    _demand_files_keep_the_promise()


def test_evaluate_reads_demand_files_keeping_the_promise():
    _evaluate_reads_demand_files_keeping_the_promise()


def test_arbitrary_bytes_are_one_line():
    _arbitrary_bytes_are_one_line()
