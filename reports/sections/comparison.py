"""Aggregate scores with bootstrap intervals: the `capprof compare` tables."""

from __future__ import annotations

from capprof.errors import CapprofError
from capprof.reports.inputs import Absent
from capprof.reports.markup import esc, html_table
from capprof.reports.sections.base import Body, Section

SEED = 0


def build(inputs, charts) -> Body:
    from capprof.reports.compare import DEFAULT_REPS, compare_teams, summary_tables

    scores = inputs.scores()
    if scores["team"].nunique() < 2:
        raise Absent("the score table has a single team; a comparison needs two")
    normalised = inputs.normalised_scores()
    # The overlay teams, when chosen and all scored, are the ones to compare:
    # fewer teams usually share more scenarios.
    chosen = inputs.teams if inputs.teams and set(inputs.teams) <= set(scores["team"]) else None
    try:
        comparison = compare_teams(normalised, teams=chosen, reps=DEFAULT_REPS, seed=SEED)
    except CapprofError as exc:
        raise Absent(str(exc)) from None
    aggregates, poi = summary_tables(comparison)
    intro = (
        f"{esc(inputs.normalisation)}-normalised scores of {esc(', '.join(comparison.teams))} "
        f"on the {comparison.n_scenarios} scenarios they all have"
        + ("" if chosen else " (choose teams with --teams)") + ": "
        f"point estimate [{comparison.level:.0%} stratified bootstrap interval, {comparison.reps} resamples, "
        f"seed {comparison.seed}] (as `capprof compare`)."
    )
    return Body(intro, (
        html_table(aggregates),
        "<p>Probability that a run of the row team beats a run of the column team on a random scenario:</p>",
        html_table(poi),
    ))


SECTION = Section("comparison", "Aggregate scores with bootstrap intervals", build, order=80)
