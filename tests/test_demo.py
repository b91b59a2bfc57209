"""`capprof demo`: the whole chain, end to end, on real substrates."""

import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "reports" / "demo"


@pytest.mark.slow
@pytest.mark.runners
def test_quick_demo_runs_profiles_and_reports(cli_subprocess, tmp_path):
    pytest.importorskip("meltingpot")
    out = tmp_path / "demo"
    result = cli_subprocess("demo", "--quick", "--out", out, timeout=900)
    assert result.code == 0, result.err[-2000:]
    assert "Traceback" not in result.err
    for name in ("profiles.csv", "posterior.nc", "diagnostics.csv", "importances.csv"):
        assert (out / "profile" / name).exists(), name
    html = (out / "report.html").read_text()
    assert "<img" in html and not re.search(r'(src|href)="https?://', html)
    # the report's held-out table and the console show the one saved evaluation
    from capprof.profiling.evaluate import Evaluation

    summary = Evaluation.load(out / "evaluation").summary
    for row in summary[summary["team"] == "ALL"].itertuples():
        assert f"{row.mse:.4g} [{row.mse_low:.4g}, {row.mse_high:.4g}]" in html, row.model
        assert f"{row.mse_high:.4f}" in result.out, row.model
    # the summary names every demo team and the predictors it compared
    for team in ("open", "no_zap", "scarcity", "farmer", "prosocial", "forager", "random"):
        assert f"  {team}: " in result.out
    # it says which teams are trained, on what, for how long, and where they play
    assert "  open: trained: PPO, one shared module, own rewards, " in result.out
    assert "env steps of commons_harvest__open" in result.out and "min of training" in result.out
    assert "plays commons_harvest__open only" in result.out
    assert "Profile fit: max R-hat " in result.out
    runs = pd.read_parquet(out / "runs")
    trained = runs[runs["team"].isin(["open", "no_zap", "scarcity", "farmer", "prosocial"])]
    assert len(trained) and (trained["substrate"] == "commons_harvest__open").all()
    assert (trained["status"] == "ok").all(), trained["error"].iloc[0]
    assert set(runs.loc[runs["team"] == "random", "substrate"]) > {"commons_harvest__open"}
    assert "layout-joint" in result.out and "aggmean" in result.out
    assert f"Report: {(out / 'report.html').resolve()}" in result.out


def test_evaluate_writes_its_per_repeat_table(cli, tmp_path):
    scores = tmp_path / "s.csv"
    rows = ["team,scenario,substrate,replicate,score"]
    # synthetic scores: team b is better on clean_up, team a on territory__rooms
    for i in range(9):
        for team, cu, tr in (("a", 0.2, 0.8), ("b", 0.7, 0.3)):
            rows.append(f"{team},clean_up_{i},clean_up,0,{cu + 0.01 * i}")
            rows.append(f"{team},territory__rooms_{i % 4},territory__rooms,{i // 4},{tr - 0.01 * i}")
    scores.write_text("\n".join(rows) + "\n")
    target = tmp_path / "profile" / "evaluate.csv"
    result = cli("evaluate", scores, "--models", "aggmean,ridge", "--repeats", "2", "--quiet", "--out", target)
    assert result.code == 0, result.err
    lines = target.read_text().splitlines()
    assert lines[0] == "model,split,repeat,team,n_test,mse,fit_s,coverage,width,flag"
    assert {line.split(",")[0] for line in lines[1:]} == {"aggmean", "ridge"}


def test_demo_summary_prints_the_saved_evaluations_intervals(tmp_path):
    from capprof.demo import summarise
    from capprof.errors import CapprofNote
    from capprof.profiling.evaluate import evaluate
    from capprof.scores import load_scores

    profile = tmp_path / "profile"
    profile.mkdir()
    for name in ("profiles.csv", "diagnostics.csv"):
        (profile / name).write_bytes((FIXTURE / name).read_bytes())
    scores = load_scores(FIXTURE / "scores.csv", min_teams=1)
    names = sorted(scores["scenario"].unique())
    demands = pd.DataFrame({"a": np.arange(len(names)) % 2}, index=pd.Index(names, name="scenario")).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CapprofNote)
        result = evaluate(scores, demands, ["aggmean", "ridge"], folds=3, progress=False)
    result.save(tmp_path / "evaluation")
    printed = io.StringIO()
    summarise(profile, out=printed)  # the evaluation beside the profile, as the demo saves it
    text = printed.getvalue()
    assert "95% interval clustered by scenario" in text
    for row in result.summary[result.summary["team"] == "ALL"].itertuples():
        line = next(line for line in text.splitlines() if line.split()[:1] == [row.model])
        assert f"{row.mse:.4f}" in line and f"{row.mse_low:.4f}" in line and f"{row.mse_high:.4f}" in line
