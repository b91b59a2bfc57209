"""Predicted scores on new scenarios: `capprof predict --format csv` output
(--predictions FILE, or DIR/predictions.*), per scenario every team's
predicted score with its interval."""

from __future__ import annotations

import numpy as np

from capprof.profiling.constants import INTERVAL_LEVEL
from capprof.reports import tables
from capprof.reports.inputs import Absent
from capprof.reports.markup import esc, html_table
from capprof.reports.sections.base import Body, Section

MAX_ROWS = 40  # scenarios charted; the table below has every one


def charted_model(predictions) -> str:
    """The model the chart shows: the first (in the file's order) whose
    predictions have intervals, else the first."""
    with_intervals = predictions[np.isfinite(predictions["low"]) & np.isfinite(predictions["high"])]
    source = with_intervals if len(with_intervals) else predictions
    return str(source["model"].iloc[0])


def build(inputs, charts) -> Body:
    from capprof.reports.charts import interval_chart

    predictions = tables.predictions_frame(inputs.table("predictions", tables.PREDICTIONS_COLUMNS))
    predictions = predictions[np.isfinite(predictions["predicted"])]
    if predictions.empty:
        raise Absent(f"{inputs.paths['predictions'].name} has no finite predicted score")
    model = charted_model(predictions)
    shown = predictions[predictions["model"] == model]
    scenarios = list(dict.fromkeys(shown["scenario"]))[:MAX_ROWS]
    teams = sorted(shown["team"].unique())
    frames = [shown[shown["team"] == t].drop_duplicates("scenario").set_index("scenario")
              .rename(columns={"predicted": "mean", "low": "hdi_low", "high": "hdi_high"}) for t in teams]
    has_intervals = bool(np.isfinite(shown["low"]).any())
    fig = interval_chart(frames, teams, scenarios, f"predicted scores ({model})", styles=charts.styles(),
                         xlabel="predicted score" + (f" (bar: {INTERVAL_LEVEL:.0%} predictive interval)"
                                                     if has_intervals else ""))
    n_scenarios = shown["scenario"].nunique()
    models = list(dict.fromkeys(predictions["model"]))
    intro = (
        f"Predicted score of {len(teams)} team(s) on {n_scenarios} scenario(s) by {esc(model)}"
        + (f" with its {INTERVAL_LEVEL:.0%} predictive interval" if has_intervals else " (no intervals)")
        + (f"; the first {MAX_ROWS} scenarios are charted" if n_scenarios > MAX_ROWS else "")
        + (f". Every model's predictions ({esc(', '.join(models))}) are in the table below." if len(models) > 1
           else ".")
    )
    table = predictions.sort_values(["scenario", "team", "model"], kind="stable")
    return Body(intro, (
        charts.image(fig, "predictions", f"predicted scores by {model}"),
        f"<details><summary>Every prediction ({len(table)} rows)</summary>"
        + html_table(table, formats={"predicted": ".3f", "low": ".3f", "high": ".3f"}) + "</details>",
    ))


SECTION = Section("predictions", "Predicted scores on new scenarios", build, order=30)
