"""Assessor feature importances: the largest, as bars."""

from __future__ import annotations

import pandas as pd

from capprof.reports.inputs import Absent
from capprof.reports.sections.base import Body, Section


def build(inputs, charts) -> Body:
    from capprof.reports.charts import importance_chart

    frame = inputs.table("importances", ("feature", "importance")).copy()
    frame["importance"] = pd.to_numeric(frame["importance"], errors="coerce")
    frame = frame.dropna(subset=["importance"])
    if frame.empty:
        raise Absent("importances has no numeric importance")
    return Body("How much each demand feature helps the assessor predict scores.",
                (charts.image(importance_chart(frame), "importances", "assessor feature importances"),))


SECTION = Section("importances", "Assessor feature importances", build, order=80, collapsed=True)
