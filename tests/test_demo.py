"""`capprof demo`: the whole chain, end to end, on real substrates."""

import re

import pandas as pd
import pytest


@pytest.mark.slow
@pytest.mark.runners
def test_quick_demo_runs_profiles_and_reports(cli_subprocess, tmp_path):
    pytest.importorskip("meltingpot")
    out = tmp_path / "demo"
    result = cli_subprocess("demo", "--quick", "--out", out, timeout=900)
    assert result.code == 0, result.err[-2000:]
    assert "Traceback" not in result.err
    for name in ("profiles.csv", "posterior.nc", "diagnostics.csv", "evaluate.csv", "importances.csv"):
        assert (out / "profile" / name).exists(), name
    html = (out / "report.html").read_text()
    assert "<img" in html and not re.search(r'(src|href)="https?://', html)
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
