"""`capprof report`: charts and the self-contained HTML, from the small
fixture in tests/fixtures/reports/profile/ (see make_fixture.py there)."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capprof.reports import charts, tables
from capprof.reports.report import SECTIONS, build_report

FIXTURE = Path(__file__).parent / "fixtures" / "reports" / "profile"
EVIL = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    written = build_report(FIXTURE, out, progress=False)
    return out, written, out.read_text(encoding="utf-8")


def _section(html: str, key: str) -> str:
    match = re.search(rf'<section id="{key}"[^>]*>(.*?)</section>', html, flags=re.S)
    assert match, f"section {key} missing"
    return match.group(1)


def test_report_is_self_contained(full_report):
    _, _, html = full_report
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.I)
    assert "<script" not in html.lower()  # no scripts at all, not even escaped-looking ones
    assert "<link" not in html.lower()
    assert "<style>" in html
    for src in re.findall(r'<img src="([^"]+)"', html):
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_report_escapes_names(full_report):
    _, _, html = full_report
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "beta &amp; co" in html and "beta & co" not in html


def test_report_has_every_section_with_content(full_report):
    _, _, html = full_report
    for section in SECTIONS:
        body = _section(html, section.key)
        assert section.key in re.findall(r'<a href="#([^"]+)">', html)
        if section.key == "predictive-checks":  # needs a fitted posterior: see the tests below
            assert "Not shown: no profile in" in body
            continue
        assert "Not shown" not in body, (section.key, body[:300])
    # every team at a glance: one small radar per team and radar group (substrates 4, behaviours 6), the
    # overlay radars beside them, the overlaid mode chart below, each team's mode chart collapsed
    profiles = _section(html, "profiles")
    grid = profiles.split('<aside id="overlay">')[0]
    assert grid.count("<figure>") == 6 and grid.count('<div class="radars">') == 2
    overlay = profiles.split('<aside id="overlay">')[1].split("</aside>")[0]
    assert overlay.count("<img ") == 2
    assert profiles.count("<img ") == 6 + 2 + 1 + 3
    assert "<details><summary>Each team's interval charts (3)</summary>" in profiles
    assert "substrates (4)" in profiles and "behaviours (6)" in profiles and "mode (resident / visitor) (2)" in profiles


def test_report_writes_the_pngs_next_to_the_html(full_report):
    out, written, html = full_report
    assert written[0] == out
    pngs = written[1:]
    assert len(pngs) == html.count("<img ") == 22
    for png in pngs:
        assert png.parent == out.parent / "report_files"
        assert png.read_bytes().startswith(PNG_MAGIC)
    assert not any("script" in p.name for p in pngs)  # file names never carry team names


# ------------------------------------------------------------ a profile written by `capprof profile`


def _ppc_table(floor_agrees=True):
    rows = [("floor share", 0.25, 0.05, 0.01, 0.10, floor_agrees), ("ceiling share", 0.0, 0.01, 0.0, 0.03, True),
            ("PIT KS distance", 0.3, np.nan, np.nan, np.nan, floor_agrees),
            ("PIT KS p-value", 0.5 if floor_agrees else 0.001, np.nan, 0.01, 1.0, floor_agrees)]
    rows += [(f"PIT bin [{k / 10:.1f}, {(k + 1) / 10:.1f})", 0.3 if k == 4 else 0.7 / 9, 0.1, 0.02, 0.2, k != 4)
             for k in range(10)]
    return pd.DataFrame(rows, columns=["check", "observed", "replicated", "low", "high", "agrees"])


def test_predictive_checks_split_for_display():
    checks = tables.predictive_checks(_ppc_table())
    assert checks.shares["check"].tolist() == ["floor share", "ceiling share"]
    assert checks.ks["check"].tolist() == ["PIT KS distance", "PIT KS p-value"]
    assert checks.bins["lo"].tolist() == pytest.approx([k / 10 for k in range(10)])
    assert checks.bins["hi"].iloc[-1] == 1.0 and checks.bins["expected"].tolist() == [0.1] * 10
    assert checks.bins["agrees"].tolist() == [k != 4 for k in range(10)]


@pytest.fixture
def profiled(tmp_path, monkeypatch):
    """The fixture directory as if `capprof profile` had written it: a
    Profile-like object whose posterior the (stubbed) PPCs read."""
    from types import SimpleNamespace

    from capprof.profiling.profile import CONTRAST_COLUMNS

    directory = tmp_path / "profile"
    shutil.copytree(FIXTURE, directory)
    posterior = object()
    profile = SimpleNamespace(abilities=pd.read_csv(FIXTURE / "profiles.csv"),
                              diagnostics=pd.read_csv(FIXTURE / "diagnostics.csv").assign(ppc_disagreements=[0, 2]),
                              importances=None, posterior=posterior, metadata={"normalisation": "minmax"},
                              contrasts=lambda hdi_prob: pd.DataFrame(columns=list(CONTRAST_COLUMNS)))
    monkeypatch.setattr("capprof.reports.report.read_profile", lambda d: profile)
    seen = []

    def ppc_table(idata, **kwargs):
        seen.append(idata)
        return _ppc_table(floor_agrees=False)

    monkeypatch.setattr("capprof.profiling.checks.ppc_table", ppc_table)
    return directory, posterior, seen


def test_report_shows_the_posterior_predictive_checks(profiled, tmp_path):
    directory, posterior, seen = profiled
    out = tmp_path / "r.html"
    build_report(directory, out, progress=False)
    html = out.read_text()
    assert seen == [posterior]  # the checks ran on the profile's own posterior
    checks = _section(html, "predictive-checks")
    assert "Not shown" not in checks and checks.count("<img ") == 1
    assert "The posterior does not reproduce the data: observed 25% of cells at the floor (score 0), " \
           "replicated from the posterior 5% [1%, 10%]" in checks
    assert "<td>floor share</td><td>25.0%</td><td>5.0%</td><td>[1.0%, 10.0%]</td><td class=\"bad\">no</td>" in checks
    assert "<td>ceiling share</td><td>0.0%</td><td>1.0%</td><td>[0.0%, 3.0%]</td><td>yes</td>" in checks
    diagnostics = _section(html, "diagnostics")
    assert "1 model(s) with posterior predictive checks that disagree" in diagnostics
    # the profile's parts replace the loose files: it has no assessor, so no importances
    assert "Not shown: the profile in" in _section(html, "importances")
    assert "has no importances (it was fitted without an assessor)" in _section(html, "importances")


def test_report_refuses_an_incomplete_profile_in_one_line(cli, tmp_path):
    directory = tmp_path / "profile"
    shutil.copytree(FIXTURE, directory)
    (directory / "model.json").write_text('{"format": 2, "complete": false}')
    line = _one_error_line(cli("report", directory, "--out", tmp_path / "r.html"))
    assert f"{directory / 'model.json'} is not marked complete (interrupted?)" in line
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_report_of_a_real_profile_shows_its_predictive_checks(cli, tmp_path):
    out_dir = tmp_path / "profile"
    result = cli("profile", FIXTURE / "scores.csv", "--draws", "60", "--tune", "60", "--quiet", "--out", out_dir)
    assert result.code == 0, result.err
    result = cli("report", out_dir, "--out", tmp_path / "r.html")
    assert result.code == 0, result.err
    html = (tmp_path / "r.html").read_text()
    checks = _section(html, "predictive-checks")
    assert "Not shown" not in checks and checks.count("<img ") == 1 and "floor share" in checks
    assert "Not shown" not in _section(html, "profiles") and "Not shown" not in _section(html, "importances")
    # with the posterior, strengths are posterior contrasts with their own interval
    summary = _section(html, "summary")
    assert "a posterior contrast, draw by draw" in summary and ", difference " in summary


def test_report_flags_sampling_problems(full_report):
    diagnostics = _section(full_report[2], "diagnostics")
    assert "Sampling problems" in diagnostics
    assert "R-hat above 1.01" in diagnostics and "divergent transitions" in diagnostics
    assert diagnostics.count('class="bad"') == 3  # flat model: rhat, ess, divergences


def test_predictive_table_rows_teams_columns_models(full_report):
    section = _section(full_report[2], "predictive")
    assert section.count("<h3>split:") == 2
    first = section.split("<h3>split:")[1]
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", first).group(1)
    assert re.findall(r"<th>(.*?)</th>", header) == ["team", "capability", "xgboost", "mean"]
    rows = re.findall(r"<tr><th>(.*?)</th>", first.split("<tbody>")[1])
    assert rows[0] == "ALL" and set(rows[1:]) == {"alpha", "beta &amp; co", "&lt;script&gt;alert(1)&lt;/script&gt;"}
    # the fixture's capability model has the lowest error: bold in the pooled row
    pooled = re.search(r"<tr><th>ALL</th>(.*?)</tr>", first).group(1)
    assert re.findall(r"<td>(.*?)</td>", pooled)[0].startswith("<b>")


def test_report_with_only_profiles_says_what_is_absent(tmp_path):
    directory = tmp_path / "profile"
    directory.mkdir()
    shutil.copy(FIXTURE / "profiles.csv", directory)
    out = tmp_path / "only.html"
    build_report(directory, out, progress=False)
    html = out.read_text()
    for key in ("diagnostics", "predictive", "importances", "substrate-scores", "comparison",
                "focal-background", "gini", "depletion", "predictions"):
        assert "Not shown: no " in _section(html, key), key
    assert "Not shown" not in _section(html, "profiles")


def test_report_escapes_the_directory_name_and_file_problems(tmp_path):
    directory = tmp_path / 'x"><b onmouseover=1>'
    directory.mkdir()
    shutil.copy(FIXTURE / "profiles.csv", directory)
    (directory / "importances.csv").write_text('feature,"<i>weight</i>"\na,1\n')
    out = tmp_path / "r.html"
    build_report(directory, out, progress=False)
    html = out.read_text()
    assert "<b onmouseover" not in html and "<i>weight" not in html
    assert "Capability report: x&quot;&gt;&lt;b onmouseover=1&gt;" in html
    assert "Not shown: importances.csv lacks column(s) importance" in _section(html, "importances")


def test_report_names_a_malformed_input(tmp_path):
    directory = tmp_path / "profile"
    shutil.copytree(FIXTURE, directory)
    pd.DataFrame({"feature": ["a"], "weight": [1.0]}).to_csv(directory / "importances.csv", index=False)
    (directory / "timeseries.csv").write_text("team,scenario\nx,y\n")
    out = tmp_path / "r.html"
    build_report(directory, out, progress=False)
    html = out.read_text()
    assert "importances.csv lacks column(s) importance" in _section(html, "importances")
    assert "timeseries.csv lacks column(s) episode, step, player, cumulative_return" in _section(html, "depletion")


def test_report_cli(cli, tmp_path):
    out = tmp_path / "sub" / "r.html"
    result = cli("report", FIXTURE, "--out", out, "--teams", "alpha", "beta & co")
    assert result.code == 0, result.err
    assert out.exists() and "wrote" in result.out
    assert "Teams overlaid: alpha, beta &amp; co." in _section(out.read_text(), "profiles")


def _one_error_line(result) -> str:
    """The single error line of a refused command (exit 2, no traceback)."""
    assert result.code == 2, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capprof: error: "), result.err
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--teams", "alpah"], 'no profile for team "alpah" (did you mean "alpha"?); teams in profiles: '),
        (["--out", "report.txt"], "--out report.txt should end in .html"),
        (["--scores", "/nonexistent/scores.csv"], "/nonexistent/scores.csv does not exist; give an existing file"),
    ],
)
def test_report_cli_bad_input(cli, tmp_path, args, message):
    result = cli("report", FIXTURE, *args)
    assert message in _one_error_line(result)


@pytest.mark.parametrize("option", ["scores", "evaluate", "episodes", "timeseries", "predictions"])
@pytest.mark.parametrize("content, problem", [(b"hello\x00\x01garbage\n", "not a plain-text CSV"),
                                              (b"a,b\n1,2\n", "column(s) "),
                                              (b"", "")])
def test_report_refuses_a_given_input_it_cannot_use_in_one_line(cli, tmp_path, option, content, problem):
    given = tmp_path / f"{option}-given.csv"
    given.write_bytes(content)
    out = tmp_path / "r.html"
    result = cli("report", FIXTURE, "--out", out, f"--{option}", given)
    assert result.code == 2
    line = _one_error_line(result)
    assert line.startswith(f"capprof: error: --{option} {given}: ") and problem in line, line
    assert f"docs/reports.md lists what the {option} input needs" in line
    assert not out.exists()


def test_report_cli_missing_directory(cli, tmp_path):
    result = cli("report", tmp_path / "nope", "--out", tmp_path / "r.html")
    assert f"{tmp_path / 'nope'} is not a directory" in _one_error_line(result)


def test_report_on_a_directory_without_inputs_is_one_line(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing the report reads")
    out = tmp_path / "r.html"
    line = _one_error_line(cli("report", empty, "--out", out))
    assert f"{empty} holds none of the report's inputs" in line
    for name in ("profiles.*", "diagnostics.*", "evaluate.*", "scores.*", "episodes.*", "timeseries.*"):
        assert name in line
    assert "capprof profile" in line
    assert not out.exists() and not (tmp_path / "r_files").exists()


@pytest.mark.parametrize("where, message", [
    ("a_directory.html", "is a directory; give a file name ending in .html"),
    ("a_file/r.html", "a_file is a file; choose another --out"),
    ("a_file/deeper/r.html", "a_file is a file; choose another --out"),
    ("clash.html", "clash_files is a file; choose another --out"),
])
def test_report_out_that_cannot_be_written_is_one_line_before_any_work(cli, tmp_path, monkeypatch, where, message):
    (tmp_path / "a_directory.html").mkdir()
    (tmp_path / "a_file").write_text("a file where a folder should be")
    (tmp_path / "clash_files").write_text("a file where the charts folder goes")
    started = []
    monkeypatch.setattr("capprof.reports.report.locate_inputs", lambda *a: started.append(1) or {})
    line = _one_error_line(cli("report", FIXTURE, "--out", tmp_path / where))
    assert message in line
    assert not started  # refused before reading any input
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_directory.html", "a_file", "clash_files"]


def test_report_out_in_a_missing_folder_is_created(cli, tmp_path):
    out = tmp_path / "new" / "deeper" / "r.html"
    result = cli("report", FIXTURE, "--out", out)
    assert result.code == 0, result.err
    assert out.exists() and (out.parent / "r_files").is_dir()


def test_report_with_constant_scores_says_so_in_the_score_sections(cli, tmp_path):
    directory = tmp_path / "profile"
    directory.mkdir()
    shutil.copy(FIXTURE / "profiles.csv", directory)
    scores = pd.read_csv(FIXTURE / "scores.csv").assign(score=1.0)
    scores.to_csv(directory / "scores.csv", index=False)
    out = tmp_path / "r.html"
    result = cli("report", directory, "--out", out)
    assert result.code == 0, result.err
    html = out.read_text()
    for key in ("substrate-scores", "comparison"):
        assert "Not shown: every scenario has a zero minmax range" in _section(html, key), key
    assert "Not shown" not in _section(html, "profiles")


# ------------------------------------------------------------ charts and tables


def _profile(abilities, shift=0.0):
    mean = np.linspace(-1, 1, len(abilities)) + shift
    return pd.DataFrame({"mean": mean, "hdi_low": mean - 0.3, "hdi_high": mean + 0.3}, index=abilities)


@pytest.mark.parametrize("n_axes, polar", [(2, False), (3, True), (24, True), (49, False)])
def test_ability_chart_picks_radar_or_intervals(n_axes, polar, tmp_path):
    abilities = [f"ability_{i}" for i in range(n_axes)]
    fig = charts.ability_chart([_profile(abilities), _profile(abilities, 0.5)], ["a", "b$c"], abilities, "t")
    assert (fig.axes[0].name == "polar") is polar
    labels = [t.get_text() for t in (fig.axes[0].get_xticklabels() if polar else fig.axes[0].get_yticklabels())]
    assert labels[0].replace("\n", " ") == "ability 0"
    path = charts.save_png(fig, tmp_path / "c.png")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_radar_draws_the_hdi_band_and_the_mean():
    abilities = ["a", "b", "c", "d"]
    fig = charts.radar_chart([_profile(abilities)], ["team"], abilities, "t")
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    assert np.allclose(line.get_ydata(), [-1, -1 / 3, 1 / 3, 1, -1])  # closed polygon of means
    assert len(ax.collections) == 1  # the band
    low, high = ax.get_ylim()
    assert low < -1.3 and high > 1.3  # the band fits inside the rings


def test_depletion_uses_the_gini_the_runner_stored():
    episodes = pd.DataFrame({"team": ["t"], "scenario": ["s"], "episode": [0], "series_every": [10],
                             "return_series": [[[1.0, 3.0], [2.0, 2.0]]], "gini_series": [[0.9, 0.8]]})
    sampled = tables.series_from_episodes(episodes)
    stored = tables.timeseries_curves(sampled.table, sampled.gini).set_index("step")
    assert stored["gini"].tolist() == [0.9, 0.8]
    # records without gini_series: computed from the sampled returns
    computed = tables.series_from_episodes(episodes.drop(columns="gini_series"))
    assert computed.gini is None
    assert tables.timeseries_curves(computed.table).set_index("step")["gini"].tolist() == pytest.approx([0.25, 0.0])


def test_predictive_table_pools_folds_and_intervals_repeats():
    evaluate = pd.DataFrame({
        "model": ["m"] * 4, "split": ["s"] * 4, "repeat": [0, 0, 1, 2], "team": ["ALL"] * 4,
        "n_test": [10, 30, 40, 40], "mse": [1.0, 2.0, 2.0, 3.0], "fit_s": [1.0] * 4,
    })
    tidy = tables.predictive_table(evaluate)
    row = tidy.iloc[0]
    # repeat 0 pools to (10*1 + 30*2) / 40 = 1.75; repeats 1.75, 2, 3
    values = np.array([1.75, 2.0, 3.0])
    half = 4.302652729911275 * values.std(ddof=1) / np.sqrt(3)
    assert row["repeats"] == 3
    assert row[["mse", "ci_low", "ci_high"]].tolist() == pytest.approx([values.mean(), values.mean() - half,
                                                                       values.mean() + half])


def test_timeseries_curves_rate_and_gini():
    series = pd.DataFrame({
        "team": "t", "scenario": "s", "episode": 0,
        "step": [0, 0, 100, 100, 200, 200], "player": [0, 1] * 3,
        "cumulative_return": [0.0, 0.0, 30.0, 10.0, 40.0, 20.0],
    })
    curves = tables.timeseries_curves(series).set_index("step")
    assert curves.loc[100, "collective"] == 40.0
    assert curves.loc[100, "rate"] == pytest.approx(0.4)  # 40 earned over 100 steps
    assert curves.loc[200, "rate"] == pytest.approx(0.2)  # 20 more over the next 100: depletion
    assert curves.loc[100, "gini"] == pytest.approx(0.25)  # returns 30 and 10
    assert curves.loc[0, "gini"] == 0.0  # nobody has earned anything yet: equal, as the runner counts it


def test_focal_background_summary_counts_who_is_ahead():
    scores = pd.DataFrame({
        "team": ["a"] * 4, "scenario": ["x", "x", "y", "z"], "substrate": "s",
        "score": [2.0, 4.0, 1.0, 5.0], "background_score": [1.0, 1.0, 3.0, np.nan],
    })
    means = tables.focal_background_means(scores)
    assert means[["scenario", "focal", "background"]].values.tolist() == [["x", 3.0, 1.0], ["y", 1.0, 3.0]]
    summary = tables.focal_background_summary(means).iloc[0]
    assert summary["scenarios"] == 2 and summary["focal_ahead"] == 0.5


def test_report_section_shows_a_normalisation_problem(tmp_path):
    out = tmp_path / "r.html"
    build_report(FIXTURE, out, normalisation="random-exploiter", progress=False)
    html = out.read_text()
    for key in ("substrate-scores", "comparison"):
        assert 'Not shown: random-exploiter normalisation needs a "random" team' in _section(html, key).replace(
            "&quot;", '"')
    assert "Not shown" not in _section(html, "focal-background")


def test_report_compares_the_chosen_teams(tmp_path):
    out = tmp_path / "r.html"
    build_report(FIXTURE, out, teams=["alpha", "beta & co"], progress=False)
    comparison = _section(out.read_text(), "comparison")
    assert "scores of alpha, beta &amp; co on the 6 scenarios" in comparison
    assert "&lt;script&gt;" not in comparison


def test_report_cli_subprocess_writes_a_report(cli_subprocess, tmp_path):
    out = tmp_path / "r.html"
    result = cli_subprocess("report", FIXTURE, "--out", out)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert out.stat().st_size > 10_000 and (tmp_path / "r_files").is_dir()


def test_report_reads_runner_episode_series(tmp_path):
    """Runner records carry per-player cumulative returns as list columns."""
    directory = tmp_path / "profile"
    directory.mkdir()
    shutil.copy(FIXTURE / "profiles.csv", directory)
    records = []
    for team, speed in (("fast", 3.0), ("slow", 1.0)):
        for episode in range(2):
            series = [[speed * min(k, 2), speed * min(k, 2) / 2] for k in range(1, 6)]  # stops growing at k = 2
            records.append({
                "team": team, "scenario": "commons_harvest__open_0", "substrate": "commons_harvest__open",
                "episode": episode, "status": "ok", "focal_per_capita_return": speed + episode,
                "background_per_capita_return": np.nan, "gini_focal": 0.1, "gini_all": 0.2,
                "depleted_at_step": 2.0 if team == "fast" else np.nan, "return_series": series,
            })
    pd.DataFrame(records).to_parquet(directory / "episodes.parquet")
    out = tmp_path / "r.html"
    build_report(directory, out, progress=False)
    html = out.read_text()
    depletion = _section(html, "depletion")
    assert "Not shown" not in depletion and depletion.count("<img ") == 2
    assert "the x axis counts samples" in depletion  # no series_every column in these records
    assert "<td>fast</td><td>commons_harvest__open_0</td><td>2</td><td>100%</td><td>2</td>" in depletion
    assert "<td>slow</td>" not in depletion  # never depleted
    assert "Not shown" not in _section(html, "gini")
    assert "background returns" in _section(html, "focal-background")  # none measured: says so


def test_report_of_a_run_directory_reads_its_episode_records(tmp_path):
    """`capprof run --out DIR` writes one Parquet file per episode into DIR."""
    run = tmp_path / "run"
    run.mkdir()
    episodes = pd.read_csv(FIXTURE / "episodes.csv")
    for i, (_, part) in enumerate(episodes.groupby(["team", "scenario"])):
        part.to_parquet(run / f"part{i:03d}.parquet")
    (run / "_demands.yaml").write_text("{}\n")
    out = tmp_path / "r.html"
    from capprof.errors import CapprofNote

    with pytest.warns(CapprofNote, match="1 failed episode"):
        build_report(run, out, progress=False)
    html = out.read_text()
    assert f"<td>episodes</td><td>{run}</td>" in html
    for key in ("gini", "focal-background", "comparison", "substrate-scores"):
        assert "Not shown" not in _section(html, key), key


def test_series_from_episodes_uses_series_every():
    episodes = pd.DataFrame({"team": ["t"], "scenario": ["s"], "episode": [0], "series_every": [50],
                             "return_series": [[[1.0, 2.0], [3.0, 4.0]]]})
    sampled = tables.series_from_episodes(episodes)
    assert sampled.table["step"].tolist() == [50, 50, 100, 100]
    assert sampled.table["cumulative_return"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert sampled.unit == "step"
    assert tables.series_from_episodes(episodes.drop(columns="series_every")).unit == "sample"


def test_predictive_table_shows_flagged_teams_without_an_mse(tmp_path):
    """evaluate leaves per-team rows with too few test cells without an MSE
    (NaN and a flag): they must not pool to 0 and win the row."""
    flag = "12 test cells < 20: too few for a per-team estimate"
    evaluate = pd.DataFrame({
        "model": ["good", "good", "bad", "bad"] * 2, "split": "scenario", "repeat": [0] * 4 + [1] * 4,
        "team": ["ALL", "small", "ALL", "small"] * 2, "n_test": [40, 12] * 4,
        "mse": [0.1, np.nan, 0.2, 0.3] * 2, "fit_s": 1.0, "flag": ["", flag, "", ""] * 2,
    })
    tidy = tables.predictive_table(evaluate).set_index(["team", "model"])
    assert np.isnan(tidy.loc[("small", "good"), "mse"]) and tidy.loc[("small", "good"), "flag"] == flag
    assert tidy.loc[("small", "bad"), "mse"] == pytest.approx(0.3)
    directory = tmp_path / "profile"
    directory.mkdir()
    evaluate.to_csv(directory / "evaluate.csv", index=False)
    build_report(directory, tmp_path / "r.html", progress=False)
    small = re.search(r"<tr><th>small</th>(.*?)</tr>", _section((tmp_path / "r.html").read_text(), "predictive"))
    cells = re.findall(r"<td[^>]*>(.*?)</td>", small.group(1))
    assert cells[0].startswith("— <small>(12 test cells &lt; 20") and cells[1] == "<b>0.3 [0.3, 0.3]</b>"


def test_predictive_table_accepts_the_summarised_evaluation():
    summary = pd.DataFrame({"model": ["b", "a"], "split": ["random"] * 2, "team": ["ALL"] * 2,
                            "mse": [0.2, 0.1], "mse_low": [0.1, 0.05], "mse_high": [0.3, 0.15], "repeats": [5, 5]})
    tidy = tables.predictive_table(summary)
    assert tidy["model"].tolist() == ["b", "a"]  # the table's own model order
    assert tidy[["mse", "ci_low", "ci_high"]].values.tolist() == [[0.2, 0.1, 0.3], [0.1, 0.05, 0.15]]


def test_report_names_the_hdi_level_when_given(tmp_path):
    directory = tmp_path / "profile"
    directory.mkdir()
    pd.read_csv(FIXTURE / "profiles.csv").assign(hdi_prob=0.9).to_csv(directory / "profiles.csv", index=False)
    out = tmp_path / "r.html"
    build_report(directory, out, progress=False)
    assert "with its 90% highest-density interval" in _section(out.read_text(), "profiles")


def test_report_leaves_out_abilities_no_cell_informs(tmp_path):
    """A team that never played a demand's scenarios (``cells`` 0) shows the
    prior there: the report names those abilities and charts only the rest."""
    directory = tmp_path / "profile"
    directory.mkdir()
    profiles = pd.read_csv(FIXTURE / "profiles.csv")
    teams, abilities = ["alpha"], sorted(profiles["ability"].unique())
    unplayed = (profiles["team"] == teams[0]) & (profiles["ability"] == abilities[0])
    profiles.assign(cells=np.where(unplayed, 0, 5)).to_csv(directory / "profiles.csv", index=False)
    out = tmp_path / "r.html"
    build_report(directory, out, progress=False)
    html = out.read_text()
    body = _section(html, "profiles")
    assert f"No cell of {teams[0]} makes these demands (prior only, not charted): {abilities[0]}." \
        in body.replace("&amp;", "&")
    assert body.count("not charted") == 1
    assert f"Left out, some of these teams have no cell making the demand: {abilities[0]}." \
        in body.replace("&amp;", "&")


# ------------------------------------------------------------ team colours


def _team_colours(fig) -> dict[str, set[str]]:
    """Label -> colours (lower-case hex) of every labelled line or point set
    drawn in ``fig``."""
    from matplotlib.colors import to_hex

    colours: dict[str, set[str]] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_label() and not line.get_label().startswith("_"):
                colours.setdefault(line.get_label(), set()).add(to_hex(line.get_color()))
        for collection in ax.collections:
            label = collection.get_label()
            if label and not label.startswith("_") and len(collection.get_facecolor()):
                colours.setdefault(label, set()).add(to_hex(collection.get_facecolor()[0]))
    return colours


def _hex(colour) -> str:
    from matplotlib.colors import to_hex

    return to_hex(colour)


def _record_charts(monkeypatch, record: list) -> None:
    """Make every chart the report saves append (file name, label -> colours)."""
    save_png = charts.save_png

    def recording_save_png(fig, path, *args, **kwargs):
        record.append((Path(path).name, _team_colours(fig)))
        return save_png(fig, path, *args, **kwargs)

    monkeypatch.setattr(charts, "save_png", recording_save_png)


def _curves(teams, scenarios=("s",)):
    return pd.DataFrame([(t, s, step, float(step), 0.1) for t in teams for s in scenarios for step in (0, 1, 2)],
                        columns=["team", "scenario", "step", "rate", "gini"])


def test_team_styles_depend_on_the_set_of_teams_not_their_order():
    styles = charts.team_styles(["gamma", "alpha", "beta", "alpha"])
    assert list(styles) == ["alpha", "beta", "gamma"]
    assert [s.colour for s in styles.values()] == list(charts.PALETTE[:3])
    assert charts.team_styles(["beta", "gamma", "alpha"]) == styles


def test_a_team_keeps_its_colour_drawn_alone_or_with_others():
    styles = charts.team_styles(["alpha", "beta", "gamma"])
    gamma = _hex(styles["gamma"].colour)
    assert gamma != _hex(charts.PALETTE[0])  # drawn alone, position 0 would have hidden a mix-up
    radar = ["a", "b", "c"]
    interval = ["resident", "visitor"]
    figures = [
        charts.ability_chart([_profile(radar)], ["gamma"], radar, "t", styles=styles),
        charts.ability_chart([_profile(radar), _profile(radar, 0.5)], ["gamma", "beta"], radar, "t", styles=styles),
        charts.ability_chart([_profile(interval)], ["gamma"], interval, "t", styles=styles),
        charts.timeseries_chart(_curves(["gamma"]), "rate", "r", "t", styles=styles),
        charts.focal_background_chart(pd.DataFrame({"team": ["alpha", "gamma"], "focal": [1.0, 2.0],
                                                    "background": [2.0, 1.0]}), styles=styles),
    ]
    for fig in figures:
        assert _team_colours(fig)["gamma"] == {gamma}


def test_charts_drawn_alone_colour_teams_by_name_and_cover_unmapped_teams():
    abilities = ["a", "b", "c"]
    forward = charts.radar_chart([_profile(abilities), _profile(abilities)], ["a", "b"], abilities, "t")
    backward = charts.radar_chart([_profile(abilities), _profile(abilities)], ["b", "a"], abilities, "t")
    assert _team_colours(forward) == _team_colours(backward)
    # a team the mapping lacks still draws, in a colour no mapped team has
    styles = charts.team_styles(["a", "b"])
    fig = charts.timeseries_chart(_curves(["a", "new"]), "rate", "r", "t", styles=styles)
    colours = _team_colours(fig)
    assert colours["a"] == {_hex(styles["a"].colour)}
    assert colours["new"].isdisjoint({_hex(s.colour) for s in styles.values()})


def test_teams_beyond_the_palette_repeat_a_colour_with_another_line_style_and_marker():
    teams = [f"team_{i:02d}" for i in range(len(charts.PALETTE) + 2)]
    styles = charts.team_styles(teams)
    assert [styles[t].colour for t in teams[:len(charts.PALETTE)]] == list(charts.PALETTE)
    assert len({(s.colour, s.linestyle) for s in styles.values()}) == len(teams)
    assert len({(s.colour, s.marker) for s in styles.values()}) == len(teams)
    first, repeat = styles[teams[0]], styles[teams[len(charts.PALETTE)]]
    assert first.colour == repeat.colour
    fig = charts.timeseries_chart(_curves(teams), "rate", "r", "t", styles=styles)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert lines[teams[0]].get_linestyle() != lines[teams[len(charts.PALETTE)]].get_linestyle()


@pytest.fixture(scope="module")
def report_chart_colours(tmp_path_factory):
    """(file name, label -> colours) of every chart of a report that overlays
    a subset of the teams, in an order other than by name."""
    record: list = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        _record_charts(monkeypatch, record)
        out = tmp_path_factory.mktemp("colours") / "report.html"
        build_report(FIXTURE, out, teams=["beta & co", "alpha"], progress=False)
    return record


def test_report_draws_each_team_in_one_colour_across_its_charts(report_chart_colours):
    teams = ["alpha", "beta & co", EVIL]
    expected = {t: _hex(s.colour) for t, s in charts.team_styles(teams).items()}
    assert len(set(expected.values())) == len(teams)
    for team in teams:
        drawn_in = {name: colours[team] for name, colours in report_chart_colours if team in colours}
        assert set().union(*drawn_in.values()) == {expected[team]}, (team, drawn_in)
        kinds = {re.sub(r"^\d+-", "", name).removesuffix(".png").split("-")[0] for name in drawn_in}
        assert {"profile", "focal", "depletion", "gini"} <= kinds, (team, kinds)
    overlaid = {t for name, colours in report_chart_colours if "overlay" in name for t in colours if t in teams}
    assert overlaid == {"alpha", "beta & co"}


def test_report_colours_teams_found_only_in_runner_records(tmp_path, monkeypatch):
    directory = tmp_path / "profile"
    directory.mkdir()
    shutil.copy(FIXTURE / "profiles.csv", directory)
    series = pd.read_csv(FIXTURE / "timeseries.csv")
    series["team"] = series["team"].map({"alpha": "zeta"}).fillna(series["team"])  # zeta has no profile
    series.to_csv(directory / "timeseries.csv", index=False)
    record: list = []
    _record_charts(monkeypatch, record)
    build_report(directory, tmp_path / "r.html", progress=False)
    expected = charts.team_styles(["alpha", "beta & co", EVIL, "zeta"])
    depletion = dict(record)[next(name for name, _ in record if name.endswith("-depletion.png"))]
    assert depletion["zeta"] == {_hex(expected["zeta"].colour)}
    assert depletion["beta & co"] == {_hex(expected["beta & co"].colour)}


def test_every_section_module_is_on_the_page_in_its_order():
    """A new section is one file: every module of reports/sections defining a
    SECTION is found, without a list to keep in step, and placed by order."""
    import pkgutil

    import capprof.reports.sections as package
    from capprof.reports.sections import SECTIONS

    modules = [m.name for m in pkgutil.iter_modules(package.__path__) if m.name != "base"]
    assert len(SECTIONS) == len(modules) == 12
    assert [s.order for s in SECTIONS] == sorted(s.order for s in SECTIONS)
    assert SECTIONS[0].key == "summary" and SECTIONS[-1].key == "depletion"


def test_build_report_interrupted_from_python_leaves_the_previous_report(tmp_path, monkeypatch):
    # A script calling build_report directly gets the CLI's atomicity: a failure
    # half-way through the sections (here Ctrl-C) leaves the old HTML and its
    # charts untouched and no staging folder behind.
    import capprof.reports.report as report

    out = tmp_path / "r.html"
    first = build_report(FIXTURE, out, progress=False)
    before = {p.name: p.read_bytes() for p in first}
    calls = []

    def interrupted(section, inputs, charts):
        calls.append(section.key)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_render(section, inputs, charts)

    real_render = report.render
    monkeypatch.setattr(report, "render", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_report(FIXTURE, out, progress=False)
    assert {p.name: p.read_bytes() for p in first} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"r.html", "r_files"})
    assert sorted(p.name for p in (tmp_path / "r_files").iterdir()) == sorted(p.name for p in first[1:])


def test_charts_draw_without_pyplot_and_importing_them_leaves_the_backend_alone(tmp_path):
    # a notebook or GUI user who imports capprof keeps their own backend
    import subprocess
    import sys

    code = ("import matplotlib, sys; matplotlib.use('svg'); import capprof.reports.charts as charts; "
            "import capprof.reports.study; "
            "fig, ax = charts.subplots(figsize=(2, 2)); ax.plot([0, 1]); "
            f"charts.save_png(fig, {str(tmp_path / 'c.png')!r}); "
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["svg", "False"]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_a_charts_folder_holding_someone_elses_files_is_never_replaced(cli, tmp_path):
    out = tmp_path / "r.html"
    assert cli("report", FIXTURE, "--out", out).code == 0
    mine = tmp_path / "r_files" / "notes.txt"
    mine.write_text("keep me")
    line = _one_error_line(cli("report", FIXTURE, "--out", out))
    assert "r_files holds 1 file(s) the report did not write (e.g. notes.txt)" in line
    assert mine.read_text() == "keep me"
    mine.unlink()
    assert cli("report", FIXTURE, "--out", out).code == 0  # its own charts are replaced as before
