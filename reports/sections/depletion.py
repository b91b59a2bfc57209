"""Returns and inequality over time: depletion of shared resources."""

from __future__ import annotations

from capprof.reports import tables
from capprof.reports.inputs import Absent
from capprof.reports.markup import html_table
from capprof.reports.sections.base import Body, Section

MAX_PANELS = 6  # scenarios drawn (charts.timeseries_chart's default)


def _sampled_returns(inputs) -> tables.SampledReturns:
    """The timeseries input, or the returns the episode records sampled."""
    if inputs.paths.get("timeseries") is not None:
        return tables.SampledReturns(inputs.table("timeseries", tables.TIMESERIES_COLUMNS), "step")
    try:
        episodes = inputs.table("episodes", ("team", "scenario", "episode", "return_series"))
    except Absent:
        raise Absent(f"no timeseries input in {inputs.directory}, and no episode records with a "
                     "return_series (run with --series-every N)") from None
    sampled = tables.series_from_episodes(tables.ok_episodes(episodes))
    if sampled.table.empty:
        raise Absent("the episode records have empty return_series (run with --series-every N)")
    return sampled


def _named(frame):
    return frame.assign(team=frame["team"].astype(str), scenario=frame["scenario"].astype(str))


def _depleted(inputs) -> tuple[str, ...]:
    """Where the records say when episodes ran out: which did, and from when."""
    try:
        episodes = inputs.table("episodes", ("team", "scenario", "depleted_at_step"))
    except Absent:
        return ()
    summary = tables.depletion_summary(episodes)
    if summary.empty:
        return ("<p>No episode ran out of collective return (depleted_at_step is empty).</p>",)
    return ("<p>Episodes whose collective return stopped growing (depleted), and the mean step "
            "where that began:</p>",
            html_table(summary, formats={"depleted": ".0%", "depleted_at_step": ".0f"}))


def build(inputs, charts) -> Body:
    from capprof.reports.charts import timeseries_chart

    sampled = _sampled_returns(inputs)
    unit = sampled.unit
    curves = tables.timeseries_curves(_named(sampled.table), None if sampled.gini is None else _named(sampled.gini))
    n_scenarios = curves["scenario"].nunique()
    intro = (
        f"Collective return earned per {unit} (falls as shared resources are depleted) and the Gini coefficient of "
        "players' cumulative returns over the episode, mean over episodes"
        + (f"; the first {MAX_PANELS} of {n_scenarios} scenarios" if n_scenarios > MAX_PANELS else "")
        + ("" if unit == "step" else "; the x axis counts samples: the records do not say how many steps apart")
        + "."
    )
    rate = timeseries_chart(curves, "rate", f"collective return per {unit}", "return rate over the episode (depletion)",
                            max_panels=MAX_PANELS, xlabel=unit, styles=charts.styles())
    parts = [charts.image(rate, "depletion", "collective return rate over time")]
    gini = timeseries_chart(curves, "gini", "Gini of cumulative returns", "inequality over the episode",
                            max_panels=MAX_PANELS, xlabel=unit, styles=charts.styles())
    parts.append(charts.image(gini, "gini-over-time", "Gini coefficient over time"))
    return Body(intro, (*parts, *_depleted(inputs)))


SECTION = Section("depletion", "Returns and inequality over time", build, order=110, collapsed=True)
