"""Focal vs background returns, where background returns were measured."""

from __future__ import annotations

from capprof.reports import tables
from capprof.reports.inputs import Absent
from capprof.reports.markup import html_table
from capprof.reports.sections.base import Body, Section


def build(inputs, charts) -> Body:
    from capprof.reports.charts import focal_background_chart

    means = tables.focal_background_means(inputs.scores())
    if means.empty:
        raise Absent("the scores have no background per-capita returns (background_score is empty)")
    intro = ("Focal vs background per-capita return per scenario. focal_ahead is the share of scenarios "
             "where the focal team earned more per capita than the background players.")
    return Body(intro, (
        html_table(tables.focal_background_summary(means), formats={"focal_ahead": ".0%"}),
        charts.image(focal_background_chart(means, styles=charts.styles()), "focal-background",
                     "focal vs background returns"),
    ))


SECTION = Section("focal-background", "Focal vs background returns", build, order=90, collapsed=True)
