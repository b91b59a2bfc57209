"""Posterior predictive checks of the measurement layout: does data
replicated from the posterior look like the scores it was fitted on?"""

from __future__ import annotations

from capprof.reports import tables
from capprof.reports.markup import esc, html_table
from capprof.reports.sections.base import Body, Section


def build(inputs, charts) -> Body:
    from capprof.profiling.checks import ppc_disagreements, ppc_table
    from capprof.reports.charts import pit_chart

    table = ppc_table(inputs.posterior())
    checks = tables.predictive_checks(table)
    problems = ppc_disagreements(table)
    if problems:
        verdict = (f'<p class="warn">The posterior does not reproduce the data: {esc("; ".join(problems))}. '
                   "Read the profiles with this misfit in mind.</p>")
    else:
        verdict = ('<p class="ok">Data replicated from the posterior reproduce the observed floor and ceiling '
                   "shares, and the PIT is consistent with uniform.</p>")
    shares = checks.shares.assign(
        interval=[f"[{low:.1%}, {high:.1%}]" for low, high in zip(checks.shares["low"], checks.shares["high"])],
        agrees=checks.shares["agrees"].map({True: "yes", False: "no"}),
    )[["check", "observed", "replicated", "interval", "agrees"]]
    bad = {(i, "agrees"): "bad" for i, ok in enumerate(checks.shares["agrees"]) if not ok}
    ks = checks.ks.assign(agrees=checks.ks["agrees"].map({True: "yes", False: "no"}))
    intro = ("Scores replicated from the fitted layout (posterior predictive) against the observed cell scores: "
             "the share of cells at the floor (0) and the ceiling (1), observed vs replicated (mean and 95% "
             "interval of the replicated shares), and the probability integral transform (PIT) of every cell, "
             "uniform when the model describes the data (Kolmogorov-Smirnov test; it agrees when p &ge; 0.01).")
    return Body(intro, (
        verdict,
        html_table(shares, bad, formats={"observed": ".1%", "replicated": ".1%"}),
        html_table(ks, {(i, "agrees"): "bad" for i, ok in enumerate(checks.ks["agrees"]) if not ok},
                   formats={"observed": ".3g"}),
        charts.image(pit_chart(checks.bins), "pit", "PIT histogram of the fitted cells"),
    ))


SECTION = Section("predictive-checks", "Posterior predictive checks", build, order=70, collapsed=True)
