"""Inequality of returns: the runner's per-episode Gini coefficients."""

from __future__ import annotations

from capprof.reports import tables
from capprof.reports.inputs import Absent
from capprof.reports.markup import html_table
from capprof.reports.sections.base import Body, Section

GINI_COLUMNS = ("gini_focal", "gini_all")  # stored per episode by the runner


def build(inputs, charts) -> Body:
    from capprof.reports.charts import gini_chart

    episodes = inputs.table("episodes", ("team",))
    columns = [c for c in GINI_COLUMNS if c in episodes.columns]
    if not columns:
        raise Absent("the episode records have no gini_focal or gini_all column")
    episodes, summary = tables.gini_summary(episodes, columns)
    return Body("Gini coefficient of per-player return in each episode (0 = equal shares).", (
        html_table(summary, formats={c: ".3f" for c in summary.columns}),
        charts.image(gini_chart(episodes, columns), "gini", "Gini coefficients per team"),
    ))


SECTION = Section("gini", "Inequality of returns", build, order=100, collapsed=True)
