"""``capprof study``: the commons-safety design, its statistics and its run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from capprof.study import COMMONS_SAFETY, matrix_table, plan_study, sweep_table, wilson_interval


def test_the_design_is_the_safety_studys():
    regrowth, cooldown = COMMONS_SAFETY.sweeps
    assert regrowth.values == (0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0, 31.6, 100.0)
    assert np.allclose(np.diff(np.log10(regrowth.values)), 0.5, atol=0.01)  # 9 points, log spaced
    assert cooldown.values == (1, 2, 10, 200, 2000)


def test_a_study_plans_every_sweep_point_and_the_focal_by_background_matrix():
    tasks = plan_study(COMMONS_SAFETY, ["random", "h=harvester", "mine=random+harvester"],
                       episodes=2, max_steps=10)
    by_team = pd.Series([t.team for t in tasks]).value_counts()
    # 14 sweep scenarios x 2 episodes, plus the matrix beside the two members that can sit in the background
    assert by_team["mine"] == 14 * 2 + 2 * 2
    assert by_team["random"] == by_team["h"] == 14 * 2 + 1 * 2
    matrix = {t.scenario.name for t in tasks if t.team == "random" and t.scenario.n_background}
    assert matrix == {"commons_harvest__open:background=harvester,focal=5"}
    assert len({t.run_id for t in tasks}) == 1 and all(t.series_every for t in tasks)


def test_the_design_without_its_shipped_populations_says_how_to_name_others(cli, tmp_path):
    from capprof.runners.populations.shipped_populations import shipped_populations

    if {"open", "no_zap", "scarcity", "farmer", "prosocial"} <= {p.name for p in shipped_populations()}:
        pytest.skip("every study population is shipped")
    res = cli("study", "commons-safety", "--out", tmp_path / "s")
    lines = res.err.strip().splitlines()
    assert res.code == 2 and len(lines) == 1, res.err
    assert "not shipped with this capprof" in lines[0] and "--population TEAM=SPEC" in lines[0]
    assert not (tmp_path / "s").exists()


def test_an_unknown_study_is_one_line(cli, tmp_path):
    res = cli("study", "commons-safty", "--out", tmp_path / "s")
    assert res.code == 2 and 'unknown study "commons-safty" (did you mean "commons-safety"?)' in res.err


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (1, 2)])
def test_wilson_interval_is_the_score_interval(k, n):
    p, low, high = wilson_interval(k, n)
    z = 1.959963984540054
    # the bounds are the two roots of (p - q)^2 = z^2 q (1 - q) / n
    for q in (low, high):
        if 1e-9 < q < 1 - 1e-9:
            assert math.isclose((p - q) ** 2, z * z * q * (1 - q) / n, rel_tol=1e-9)
    assert 0 <= low <= p <= high <= 1 and high - low > 0


def _episode(team, scenario, focal, background=math.nan, depleted=math.nan, population=None):
    return {"team": team, "population": population or team, "scenario": scenario, "status": "ok",
            "focal_per_capita_return": focal, "background_per_capita_return": background,
            "depleted_at_step": depleted, "gini_series": (), "series_every": None}


def test_sweep_and_matrix_tables_summarise_episodes_with_intervals():
    episodes = pd.DataFrame([
        _episode("a", "commons_harvest__open:regrowth=0.1", 4.0, depleted=120.0),
        _episode("a", "commons_harvest__open__regrowth_x0p1", 6.0),  # the suite's spelling is the same point
        _episode("a", "commons_harvest__open:zap_cooldown=10", 5.0),
        _episode("a", "commons_harvest__open:background=harvester,focal=5", 3.0, 9.0),
        _episode("a", "commons_harvest__open:background=harvester,focal=5", 5.0, 11.0),
        _episode("harvester", "commons_harvest__open:regrowth=0.1", 1.0, depleted=40.0),
    ])
    episodes.loc[1, "scenario"] = "commons_harvest__open__regrowth_x0p1"
    sweep = sweep_table(COMMONS_SAFETY, episodes)
    row = sweep[(sweep.team == "a") & (sweep.sweep == "regrowth")].iloc[0]
    assert row.value == 0.1 and row.episodes == 2 and row.per_capita_return == 5.0
    assert row.per_capita_low < 5.0 < row.per_capita_high
    assert row.depleted_share == 0.5 and row.depleted_at_median == 120.0
    matrix = matrix_table(COMMONS_SAFETY, episodes)
    cell = matrix.iloc[0]
    assert (cell.focal, cell.background, cell.episodes) == ("a", "harvester", 2)
    assert (cell.focal_return, cell.background_return) == (4.0, 10.0)


@pytest.mark.slow
def test_a_study_runs_resumes_and_writes_its_report(cli, tmp_path):
    out = tmp_path / "study"
    args = ("study", "commons-safety", "--out", out, "--population", "random", "--population", "harvester",
            "--episodes", "1", "--max-steps", "60", "--draws", "100", "--quiet")
    first = cli(*args)
    assert first.code == 0, first.err
    assert "30 episode(s) ok" in first.out
    sweep = pd.read_csv(out / "sweep.csv")
    assert len(sweep) == 2 * 14 and set(sweep.sweep) == {"regrowth", "zap_cooldown"}
    assert len(pd.read_csv(out / "matrix.csv")) == 2
    html = (out / "study.html").read_text()
    assert "Regrowth sweep" in html and "Focal x background" in html and html.count("data:image/png") >= 7
    assert "Capability profiles" in html and "max R-hat" in html
    abilities = pd.read_csv(out / "abilities.csv")
    assert set(abilities.team) == {"random", "harvester"} and {"scarcity", "restraint"} <= set(abilities.ability)
    again = cli(*args)
    assert again.code == 2 and "pass --resume" in again.err
    resumed = cli(*args, "--resume")
    assert resumed.code == 0 and "30 already done" in resumed.out


@pytest.mark.parametrize("args, needle", [
    (("--population", "nobody_here"), 'nobody_here'),
    (("--population", "random", "--workers", "2"), "--workers needs --ray"),
    (("--population", "random", "--episodes", "0"), "--episodes"),
])
def test_bad_study_options_are_one_line_exit_2(cli, tmp_path, args, needle):
    res = cli("study", "commons-safety", "--out", tmp_path / "s", *args)
    lines = res.err.strip().splitlines()
    assert res.code == 2 and len(lines) == 1 and needle in lines[0], res.err
    assert not (tmp_path / "s").exists()


def test_a_study_out_that_is_a_file_is_refused(cli, tmp_path):
    (tmp_path / "f").write_text("")
    res = cli("study", "commons-safety", "--out", tmp_path / "f", "--population", "random")
    assert res.code == 2 and "is a file; give a directory" in res.err


@pytest.mark.parametrize("stop, code, needle", [
    (KeyboardInterrupt(), 130, "capprof: interrupted; 1 finished episode(s) are kept in {runs}; continue with: "),
    (OSError(28, "No space left on device"), 2,
     "capprof: error: {runs}: No space left on device; 1 finished episode(s) are kept in {runs}; free space or "
     "fix the directory, then continue with: "),
])
def test_a_study_stopped_mid_run_says_what_is_kept_and_how_to_continue(cli, tmp_path, monkeypatch, stop, code,
                                                                        needle):
    import capprof.runners.execution.execute as execute_module

    out = tmp_path / "study"
    real, written = execute_module.write_record, []

    def stop_after_one(out_dir, record):
        if written:
            raise stop
        written.append(real(out_dir, record))
        return written[-1]

    monkeypatch.setattr(execute_module, "write_record", stop_after_one)
    res = cli("study", "commons-safety", "--out", out, "--population", "random", "--episodes", "1",
              "--max-steps", "3", "--no-profile", "--quiet")
    lines = res.err.strip().splitlines()
    assert res.code == code and len(lines) == 1, res.err
    assert lines[0].startswith(needle.format(runs=out / "runs")), lines[0]
    assert lines[0].endswith(f"capprof study commons-safety --out {out} --population random --episodes 1 "
                             "--max-steps 3 --seed 0 --no-profile --quiet --resume")
