"""Scores per substrate: a heat map of substrates x teams."""

from __future__ import annotations

from capprof.reports.markup import esc
from capprof.reports.sections.base import Body, Section


def build(inputs, charts) -> Body:
    from capprof.profiling.normalise import aggregate
    from capprof.reports.charts import substrate_heatmap

    per_substrate = aggregate(inputs.normalised_scores(), "substrate")
    intro = (f"Mean {esc(inputs.normalisation)}-normalised score per substrate (mean over its scenarios "
             "of the mean over replicates).")
    return Body(intro, (charts.image(substrate_heatmap(per_substrate, inputs.normalisation), "substrate-scores",
                                     "per-substrate scores per team"),))


SECTION = Section("substrate-scores", "Scores per substrate", build, order=40)
