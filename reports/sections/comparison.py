"""Comparing submissions: aggregate scores with bootstrap intervals (an
interval plot, as rliable draws them) and the probability-of-improvement
matrix as a chart, from the same `capprof compare` computation the summary
ranks by; the tables are in a collapsed block."""

from __future__ import annotations

from capprof.reports.markup import esc, html_table
from capprof.reports.sections.base import Body, Section


def build(inputs, charts) -> Body:
    from capprof.reports.charts import aggregate_interval_chart, poi_matrix_chart
    from capprof.reports.compare import summary_tables

    comparison = inputs.comparison()
    aggregates, poi = summary_tables(comparison)
    chosen = inputs.teams and set(inputs.teams) == set(comparison.teams)
    intro = (
        f"{esc(inputs.normalisation)}-normalised scores of {esc(', '.join(comparison.teams))} "
        f"on the {comparison.n_scenarios} scenarios they all have"
        + ("" if chosen else " (choose teams with --teams)") + ": "
        f"point estimate [{comparison.level:.0%} stratified bootstrap interval, {comparison.reps} resamples, "
        f"seed {comparison.seed}] (as <code>capprof compare</code>)."
    )
    order = list(aggregates["team"])  # best first
    interval = aggregate_interval_chart(comparison.table, order, level=comparison.level, styles=charts.styles())
    matrix = poi_matrix_chart(comparison.table, order)
    return Body(intro, (
        '<div class="pair">'
        + charts.image(interval, "aggregate-intervals", "aggregate scores with 95% bootstrap intervals")
        + charts.image(matrix, "probability-of-improvement", "probability-of-improvement matrix")
        + "</div>",
        "<details><summary>The tables: aggregates, ranks and probabilities of improvement</summary>"
        + html_table(aggregates)
        + "<p>Probability that a run of the row team beats a run of the column team on a random scenario:</p>"
        + html_table(poi) + "</details>",
    ))


SECTION = Section("comparison", "Comparing teams: aggregate scores and probability of improvement", build, order=20)
