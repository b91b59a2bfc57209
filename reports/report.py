"""``capprof report DIR --out report.html``: one self-contained HTML file.

Inputs, looked up in the profile directory DIR (any may be absent; its section
then says so instead of failing; a file that is present but malformed is
named in its section with the problem):

=====================  ========================================================
file                   columns used
=====================  ========================================================
profiles.csv           team, ability, mean, hdi_low, hdi_high (sd optional)
diagnostics.csv        any; flags max_rhat > 1.01, min_ess_bulk < 400,
                       divergences > 0 when those columns exist
importances.csv        feature, importance
evaluate.csv           model, split, repeat, team (ALL = pooled), mse,
                       n_test and fit_s optional (``capprof evaluate --format csv``)
scores.{csv,parquet,   the score table (capprof.scores); background_score
feather}               feeds the focal-vs-background section
episodes.{parquet,     runner episode records; gini_focal / gini_all feed the
csv}                   inequality section; also a score table if scores.* is absent
timeseries.{parquet,   team, scenario, episode, step, player, cumulative_return
csv}                   (per-player cumulative return every few steps)
=====================  ========================================================

The HTML inlines every chart as a base64 PNG and its CSS in a <style> element:
no network, no scripts. The PNGs are also written to ``<out stem>_files/``
next to the HTML. Every name taken from the data is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, did_you_mean
from capprof.reports import tables

if TYPE_CHECKING:  # charts load matplotlib: imported where a chart is drawn
    from capprof.reports.charts import TeamStyle

OVERLAY_DEFAULT = 4
RHAT_MAX, ESS_MIN = 1.01, 400
COMPARE_REPS = 1000


class _Absent(Exception):
    """A section's input is absent or unusable; the message says which and why."""


@dataclass
class Section:
    key: str
    title: str
    intro: str = ""
    body: list[str] = field(default_factory=list)


@dataclass
class Inputs:
    directory: Path
    paths: dict[str, Path | None]
    teams: Sequence[str] | None
    normalisation: str
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    _cache: dict = field(default_factory=dict)

    def table(self, name: str, required: Sequence[str] = ()) -> pd.DataFrame:
        """The named input as a DataFrame, or _Absent naming what is missing."""
        if name not in self._cache:
            path = self.paths.get(name)
            if path is None:
                self._cache[name] = _Absent(f"no {name} input in {self.directory}")
            else:
                try:
                    self._cache[name] = _read(path)
                except CapprofError as exc:
                    self._cache[name] = _Absent(str(exc))
        value = self._cache[name]
        if isinstance(value, Exception):
            raise value
        missing = [c for c in required if c not in value.columns]
        if missing:
            raise _Absent(f"{self.paths[name].name} lacks column(s) {', '.join(missing)}")
        if value.empty:
            raise _Absent(f"{self.paths[name].name} has no rows")
        return value

    def scores(self) -> pd.DataFrame:
        """The score table from scores.* or, failing that, the episode records."""
        if "scores_table" not in self._cache:
            from capprof.scores import load_scores

            source = self.paths.get("scores") or self.paths.get("episodes")
            if source is None:
                self._cache["scores_table"] = _Absent(f"no score table or episode records in {self.directory}")
            else:
                try:
                    self._cache["scores_table"] = load_scores(source, min_teams=1)
                except CapprofError as exc:
                    self._cache["scores_table"] = _Absent(str(exc).splitlines()[0])
        value = self._cache["scores_table"]
        if isinstance(value, Exception):
            raise value
        return value

    def normalised_scores(self) -> pd.DataFrame:
        """The score table under the report's normalisation, computed once for
        every section (normalising also prints its notices once)."""
        if "normalised_scores" not in self._cache:
            from capprof.profiling.normalise import normalise

            try:
                self._cache["normalised_scores"] = normalise(self.scores(), self.normalisation)
            except CapprofError as exc:
                self._cache["normalised_scores"] = exc
        value = self._cache["normalised_scores"]
        if isinstance(value, Exception):
            raise value
        return value

    def report_teams(self) -> list[str]:
        """Every team named in any input, sorted: the teams the report shows."""
        found: set[str] = set()
        for name in ("profiles", "episodes", "timeseries", "evaluate"):
            try:
                named = set(self.table(name, ("team",))["team"].astype(str))
            except _Absent:  # its own section says what is wrong
                continue
            if name == "evaluate":
                named.discard(tables.POOLED_TEAM)  # the pooled row, not a team
            found |= named
        try:
            found |= set(self.scores()["team"].astype(str))
        except (_Absent, CapprofError):
            pass
        return sorted(found)

    def team_styles(self) -> dict[str, TeamStyle]:
        """Team -> TeamStyle for every chart of the report, built once from
        all its teams: a chart drawing a subset of the teams, or drawing them
        in another order, still gives each team its report-wide colour."""
        if "team_styles" not in self._cache:
            from capprof.reports.charts import team_styles

            self._cache["team_styles"] = team_styles(self.report_teams())
        return self._cache["team_styles"]

    def chart(self, fig, name: str, alt: str) -> str:
        """Save ``fig`` as the next PNG and return an <img> with it inlined."""
        from capprof.reports.charts import save_png

        path = save_png(fig, self.out_dir / f"{len(self.written) + 1:02d}-{name}.png")
        self.written.append(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def _read(path: Path) -> pd.DataFrame:
    from capprof.scores import read_table

    return read_table(path)


def _locate(directory: Path, stem: str, explicit: str | None) -> Path | None:
    if explicit is not None:
        path = Path(explicit)
        if not path.exists():
            raise CapprofError(f"{path} does not exist; give an existing file or leave the option out")
        return path
    for suffix in (".csv", ".parquet", ".feather", ""):
        candidate = directory / f"{stem}{suffix}"
        if candidate.exists() and (suffix or candidate.is_dir()):
            return candidate
    return None


def _html_table(frame: pd.DataFrame, classes: dict[tuple[int, str], str] | None = None,
                formats: dict[str, str] | None = None) -> str:
    classes, formats = classes or {}, formats or {}
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = []
        for column, value in zip(frame.columns, row):
            if isinstance(value, (float, np.floating)):
                text = "—" if not np.isfinite(value) else format(value, formats.get(column, ".4g"))
            else:
                text = str(value)
            css = classes.get((i, column))
            cells.append(f'<td class="{css}">{esc(text)}</td>' if css else f"<td>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# ------------------------------------------------------------ sections


def _profiles(inputs: Inputs) -> pd.DataFrame:
    frame = inputs.table("profiles", tables.PROFILE_COLUMNS).copy()
    frame["team"] = frame["team"].astype(str)
    frame["ability"] = frame["ability"].astype(str)
    return frame


def _ability_groups(inputs: Inputs, abilities: Sequence[str]) -> dict[str, list[str]]:
    """Abilities by demand group (substrate, mode, behaviour), each sorted."""
    from capprof.tagging.demands import demand_group

    substrates: set[str] = set()
    try:
        from capprof.tagging.catalog import load_catalog

        substrates |= set(load_catalog()["substrate"])
    except Exception:  # noqa: BLE001 - the catalog only sharpens the grouping
        pass
    try:
        substrates |= set(inputs.scores()["substrate"])
    except _Absent:
        pass
    groups: dict[str, list[str]] = {"substrate": [], "mode": [], "behaviour": []}
    for ability in sorted(set(abilities)):
        groups[demand_group(ability, substrates)].append(ability)
    return {g: a for g, a in groups.items() if a}


def section_diagnostics(inputs: Inputs, section: Section) -> None:
    frame = inputs.table("diagnostics")
    classes, problems = {}, []
    checks = {
        "max_rhat": (lambda v: v > RHAT_MAX, f"R-hat above {RHAT_MAX}"),
        "min_ess_bulk": (lambda v: v < ESS_MIN, f"bulk ESS below {ESS_MIN}"),
        "divergences": (lambda v: v > 0, "divergent transitions"),
    }
    for column, (bad, what) in checks.items():
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        for i in np.flatnonzero(bad(values).to_numpy()):
            classes[(int(i), column)] = "bad"
        if bad(values).any():
            problems.append(f"{int(bad(values).sum())} model(s) with {what}")
    if problems:
        section.body.append(
            f'<p class="warn">Sampling problems: {esc("; ".join(problems))}. '
            "Treat the profiles below with care (more draws or a reparameterisation may help).</p>")
    else:
        section.body.append(f'<p class="ok">No sampling problems flagged (R-hat &le; {RHAT_MAX}, '
                            f"bulk ESS &ge; {ESS_MIN}, no divergences, where reported).</p>")
    section.body.append(_html_table(frame, classes))


def section_profiles(inputs: Inputs, section: Section) -> None:
    from capprof.reports.charts import GROUP_TITLES, ability_chart

    frame = _profiles(inputs)
    groups = _ability_groups(inputs, frame["ability"])
    level = ""
    if "hdi_prob" in frame.columns and pd.to_numeric(frame["hdi_prob"], errors="coerce").nunique() == 1:
        level = f"{float(pd.to_numeric(frame['hdi_prob']).iloc[0]):.0%} "
    section.intro = (
        f"Posterior mean ability per demand (line or dot) with its {level}highest-density interval (band or bar), "
        "one chart per demand group: " + ", ".join(f"{esc(GROUP_TITLES[g])} ({len(a)})" for g, a in groups.items())
        + ". Groups of 3 to 24 abilities are radars; larger or smaller groups are interval charts."
    )
    for team, own in frame.groupby("team", sort=True):
        own = own.drop_duplicates("ability").set_index("ability")
        images = []
        for group, abilities in groups.items():
            present = [a for a in abilities if a in own.index]
            if present:
                fig = ability_chart([own], [team], present, f"{team}: {GROUP_TITLES[group]}",
                                    styles=inputs.team_styles())
                images.append(inputs.chart(fig, f"profile-{group}", f"{team} abilities: {GROUP_TITLES[group]}"))
        section.body.append(f'<h3>{esc(team)}</h3><div class="charts">{"".join(images)}</div>')


def section_overlay(inputs: Inputs, section: Section) -> None:
    from capprof.reports.charts import GROUP_TITLES, ability_chart

    frame = _profiles(inputs)
    known = sorted(frame["team"].unique())
    chosen = list(inputs.teams) if inputs.teams else known[:OVERLAY_DEFAULT]
    groups = _ability_groups(inputs, frame["ability"])
    section.intro = (
        f"Teams overlaid: {esc(', '.join(chosen))}"
        + ("" if inputs.teams else f" (the first {OVERLAY_DEFAULT} by name; choose with --teams)") + "."
    )
    per_team = [frame[frame["team"] == t].drop_duplicates("ability").set_index("ability") for t in chosen]
    images = []
    for group, abilities in groups.items():
        fig = ability_chart(per_team, chosen, abilities, f"{GROUP_TITLES[group]}", styles=inputs.team_styles())
        images.append(inputs.chart(fig, f"overlay-{group}", f"overlay of {', '.join(chosen)}: {GROUP_TITLES[group]}"))
    section.body.append(f'<div class="charts">{"".join(images)}</div>')


def section_predictive(inputs: Inputs, section: Section) -> None:
    evaluate = inputs.table("evaluate", ("model", "split", "team", "mse"))
    if "repeat" not in evaluate.columns and not {"mse_low", "mse_high"} <= set(evaluate.columns):
        raise _Absent(f"{inputs.paths['evaluate'].name} lacks column(s) repeat (or mse_low, mse_high)")
    tidy = tables.predictive_table(evaluate)
    section.intro = (
        "Test MSE per team (rows; ALL = pooled over teams) and model (columns): mean over repeats "
        "[95% Student-t interval over repeats]. The lowest mean in each row is in bold."
    )
    for split, block in tidy.groupby("split", sort=False):
        models = list(dict.fromkeys(block["model"]))
        teams = list(dict.fromkeys(block["team"]))
        keyed = block.set_index(["team", "model"])
        head = "<th>team</th>" + "".join(f"<th>{esc(m)}</th>" for m in models)
        rows = []
        for team in teams:
            cells = []
            present = [m for m in models if (team, m) in keyed.index]
            best = min(present, key=lambda m: keyed.loc[(team, m), "mse"]) if present else None
            for model in models:
                if (team, model) not in keyed.index:
                    cells.append("<td>—</td>")
                    continue
                row = keyed.loc[(team, model)]
                text = f"{row['mse']:.4g}"
                if np.isfinite(row["ci_low"]):
                    text += f" [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"
                text = esc(text)
                cells.append(f"<td><b>{text}</b></td>" if model == best else f"<td>{text}</td>")
            rows.append(f"<tr><th>{esc(team)}</th>{''.join(cells)}</tr>")
        fit = block.groupby("model", sort=False)["fit_s"].first()
        if fit.notna().any():
            rows.append("<tr class=\"foot\"><th>fit time (s)</th>"
                        + "".join(f"<td>{esc(format(fit[m], '.3g'))}</td>" for m in models) + "</tr>")
        repeats = block["repeats"].max()
        note = f" <small>({int(repeats)} repeat{'s' if repeats != 1 else ''})</small>" if np.isfinite(repeats) else ""
        section.body.append(f"<h3>split: {esc(split)}{note}</h3>"
                            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def section_importances(inputs: Inputs, section: Section) -> None:
    from capprof.reports.charts import importance_chart

    frame = inputs.table("importances", ("feature", "importance")).copy()
    frame["importance"] = pd.to_numeric(frame["importance"], errors="coerce")
    frame = frame.dropna(subset=["importance"])
    if frame.empty:
        raise _Absent("importances has no numeric importance")
    section.intro = "How much each demand feature helps the assessor predict scores."
    section.body.append(inputs.chart(importance_chart(frame), "importances", "assessor feature importances"))


def section_substrate_scores(inputs: Inputs, section: Section) -> None:
    from capprof.profiling.normalise import aggregate
    from capprof.reports.charts import substrate_heatmap

    normalised = inputs.normalised_scores()
    per_substrate = aggregate(normalised, "substrate")
    section.intro = (f"Mean {esc(inputs.normalisation)}-normalised score per substrate (mean over its scenarios "
                     "of the mean over replicates).")
    section.body.append(inputs.chart(substrate_heatmap(per_substrate, inputs.normalisation), "substrate-scores",
                                     "per-substrate scores per team"))


def section_comparison(inputs: Inputs, section: Section) -> None:
    from capprof.reports.compare import compare_teams, summary_tables

    scores = inputs.scores()
    if scores["team"].nunique() < 2:
        raise _Absent("the score table has a single team; a comparison needs two")
    normalised = inputs.normalised_scores()
    # The overlay teams, when chosen and all scored, are the ones to compare:
    # fewer teams usually share more scenarios.
    chosen = list(inputs.teams) if inputs.teams and set(inputs.teams) <= set(scores["team"]) else None
    try:
        result = compare_teams(normalised, teams=chosen, reps=COMPARE_REPS, seed=0)
    except CapprofError as exc:
        raise _Absent(str(exc)) from None
    aggregates, poi = summary_tables(result)
    section.intro = (
        f"{esc(inputs.normalisation)}-normalised scores of {esc(', '.join(result.attrs['teams']))} "
        f"on the {result.attrs['n_scenarios']} scenarios they all have"
        + ("" if chosen else " (choose teams with --teams)") + ": "
        f"point estimate [95% stratified bootstrap interval, {COMPARE_REPS} resamples, seed 0] "
        "(as `capprof compare`)."
    )
    section.body.append(_html_table(aggregates))
    section.body.append("<p>Probability that a run of the row team beats a run of the column team on a random scenario:</p>")
    section.body.append(_html_table(poi))


def section_focal_background(inputs: Inputs, section: Section) -> None:
    from capprof.reports.charts import focal_background_chart

    scores = inputs.scores()
    means = tables.focal_background_means(scores)
    if means.empty:
        raise _Absent("the scores have no background per-capita returns (background_score is empty)")
    summary = tables.focal_background_summary(means)
    section.intro = ("Focal vs background per-capita return per scenario. focal_ahead is the share of scenarios "
                     "where the focal team earned more per capita than the background players.")
    section.body.append(_html_table(summary, formats={"focal_ahead": ".0%"}))
    section.body.append(inputs.chart(focal_background_chart(means, styles=inputs.team_styles()), "focal-background",
                                     "focal vs background returns"))


def section_gini(inputs: Inputs, section: Section) -> None:
    from capprof.reports.charts import gini_chart

    episodes = inputs.table("episodes", ("team",)).copy()
    columns = [c for c in ("gini_focal", "gini_all") if c in episodes.columns]
    if not columns:
        raise _Absent("the episode records have no gini_focal or gini_all column")
    if "status" in episodes.columns:
        episodes = episodes[episodes["status"] == "ok"]
    episodes["team"] = episodes["team"].astype(str)
    for c in columns:
        episodes[c] = pd.to_numeric(episodes[c], errors="coerce")
    summary = episodes.groupby("team", as_index=False)[columns].agg(["mean", "median"])
    summary.columns = ["team"] + [f"{c} {s}" for c in columns for s in ("mean", "median")]
    section.intro = "Gini coefficient of per-player return in each episode (0 = equal shares)."
    section.body.append(_html_table(summary, formats={c: ".3f" for c in summary.columns}))
    section.body.append(inputs.chart(gini_chart(episodes, columns), "gini", "Gini coefficients per team"))


def section_depletion(inputs: Inputs, section: Section) -> None:
    from capprof.reports.charts import timeseries_chart

    unit = "step"
    if inputs.paths.get("timeseries") is not None:
        series = inputs.table("timeseries", tables.TIMESERIES_COLUMNS).copy()
    else:
        try:
            episodes = inputs.table("episodes", ("team", "scenario", "episode", "return_series"))
        except _Absent:
            raise _Absent(f"no timeseries input in {inputs.directory}, and no episode records with a "
                          "return_series (run with --series-every N)") from None
        if "status" in episodes.columns:
            episodes = episodes[episodes["status"] == "ok"]
        series = tables.series_from_episodes(episodes)
        unit = series.attrs["step_unit"]
        if series.empty:
            raise _Absent("the episode records have empty return_series (run with --series-every N)")
    for c in ("team", "scenario"):
        series[c] = series[c].astype(str)
    curves = tables.timeseries_curves(series)
    n_scenarios = curves["scenario"].nunique()
    section.intro = (
        f"Collective return earned per {unit} (falls as shared resources are depleted) and the Gini coefficient of "
        "players' cumulative returns over the episode, mean over episodes"
        + (f"; the first 6 of {n_scenarios} scenarios" if n_scenarios > 6 else "")
        + ("" if unit == "step" else "; the x axis counts samples: the records do not say how many steps apart")
        + "."
    )
    section.body.append(inputs.chart(
        timeseries_chart(curves, "rate", f"collective return per {unit}", "return rate over the episode (depletion)",
                         xlabel=unit, styles=inputs.team_styles()),
        "depletion", "collective return rate over time"))
    section.body.append(inputs.chart(
        timeseries_chart(curves, "gini", "Gini of cumulative returns", "inequality over the episode", xlabel=unit,
                         styles=inputs.team_styles()),
        "gini-over-time", "Gini coefficient over time"))
    try:
        episodes = inputs.table("episodes", ("team", "scenario", "depleted_at_step"))
    except _Absent:
        return
    if "status" in episodes.columns:
        episodes = episodes[episodes["status"] == "ok"]
    depleted = pd.to_numeric(episodes["depleted_at_step"], errors="coerce")
    summary = (
        episodes.assign(team=episodes["team"].astype(str), depleted=depleted.notna(), at=depleted)
        .groupby(["team", "scenario"], as_index=False)
        .agg(episodes=("depleted", "size"), depleted=("depleted", "mean"), depleted_at_step=("at", "mean"))
    )
    summary = summary[summary["depleted"] > 0]
    if summary.empty:
        section.body.append("<p>No episode ran out of collective return (depleted_at_step is empty).</p>")
    else:
        section.body.append("<p>Episodes whose collective return stopped growing (depleted), and the mean step "
                            "where that began:</p>")
        section.body.append(_html_table(summary, formats={"depleted": ".0%", "depleted_at_step": ".0f"}))


SECTIONS: tuple[tuple[str, str, Callable[[Inputs, Section], None]], ...] = (
    ("diagnostics", "Sampling diagnostics", section_diagnostics),
    ("profiles", "Capability profiles per team", section_profiles),
    ("overlay", "Teams compared on one chart", section_overlay),
    ("predictive", "Predictive comparison of assessors", section_predictive),
    ("importances", "Assessor feature importances", section_importances),
    ("substrate-scores", "Scores per substrate", section_substrate_scores),
    ("comparison", "Aggregate scores with bootstrap intervals", section_comparison),
    ("focal-background", "Focal vs background returns", section_focal_background),
    ("gini", "Inequality of returns", section_gini),
    ("depletion", "Returns and inequality over time", section_depletion),
)

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;color:#222;
padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;white-space:nowrap}
thead th{background:#f3f3f3}td.bad{background:#fde2e1;font-weight:bold}tr.foot{color:#666}
.charts{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}img{max-width:100%;height:auto}
.absent{color:#666;font-style:italic}.warn{background:#fff4d6;padding:.4rem .6rem}.ok{color:#2a6b2a}
nav a{margin-right:.8rem}
"""


def build_report(
    directory: Path,
    out: Path,
    teams: Sequence[str] | None = None,
    scores_path: str | None = None,
    evaluate_path: str | None = None,
    episodes_path: str | None = None,
    timeseries_path: str | None = None,
    normalisation: str = "minmax",
    progress: bool | None = None,
) -> list[Path]:
    """Write the HTML report and its PNGs; returns [html, *pngs]."""
    from tqdm import tqdm

    directory, out = Path(directory), Path(out)
    if not directory.is_dir():
        raise CapprofError(f"{directory} is not a directory; give the profile directory written by `capprof profile`")
    if out.suffix.lower() not in (".html", ".htm"):
        raise CapprofError(f"--out {out} should end in .html")
    paths = {
        "profiles": _locate(directory, "profiles", None),
        "diagnostics": _locate(directory, "diagnostics", None),
        "importances": _locate(directory, "importances", None),
        "evaluate": _locate(directory, "evaluate", evaluate_path),
        "scores": _locate(directory, "scores", scores_path),
        "episodes": _locate(directory, "episodes", episodes_path),
        "timeseries": _locate(directory, "timeseries", timeseries_path),
    }
    out_dir = out.parent / f"{out.stem}_files"
    inputs = Inputs(directory, paths, teams, normalisation, out_dir)
    if teams:
        try:
            known = sorted(_profiles(inputs)["team"].unique())
        except _Absent:
            known = []
        unknown = [t for t in teams if known and t not in known]
        if unknown:
            raise CapprofError(f'no profile for team "{unknown[0]}"{did_you_mean(unknown[0], known)}; '
                               f"teams in profiles: {', '.join(known)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("[0-9][0-9]-*.png"):  # charts of an earlier run would be stale
        old.unlink()

    sections = []
    for key, title, build in tqdm(SECTIONS, desc="report", unit="section", file=sys.stderr,
                                  disable=(None if progress is None else not progress)):
        section = Section(key, title)
        try:
            build(inputs, section)
        except (_Absent, CapprofError) as exc:  # a data problem in one input spoils only its section
            reason = str(exc).splitlines()[0].rstrip(".")
            section.intro, section.body = "", [f'<p class="absent">Not shown: {esc(reason)}.</p>']
        sections.append(section)

    found = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(path) if path else '<i>absent</i>'}</td></tr>"
        for name, path in paths.items()
    )
    nav = "".join(f'<a href="#{s.key}">{esc(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.key}"><h2>{esc(s.title)}</h2>'
        + (f"<p>{s.intro}</p>" if s.intro else "") + "".join(s.body) + "</section>"
        for s in sections
    )
    document = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>capprof report: {esc(directory.name)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Capability report: {esc(directory.name)}</h1><nav>{nav}</nav>"
        f'<section id="inputs"><h2>Inputs</h2><table><tbody>{found}</tbody></table></section>'
        f"{body}</body></html>\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document, encoding="utf-8")
    return [out, *inputs.written]
