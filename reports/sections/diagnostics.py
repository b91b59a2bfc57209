"""Sampling diagnostics: the diagnostics table, failing cells marked."""

from __future__ import annotations

from capprof.profiling.constants import RHAT_MAX
from capprof.reports import tables
from capprof.reports.markup import esc, html_table
from capprof.reports.sections.base import Body, Section


def build(inputs, charts) -> Body:
    frame = inputs.table("diagnostics")
    flags = tables.diagnostic_flags(frame)
    if flags.problems:
        verdict = (f'<p class="warn">Sampling problems: {esc("; ".join(flags.problems))}. '
                   "Treat the profiles below with care (more draws or a reparameterisation may help).</p>")
    else:
        verdict = (f'<p class="ok">No sampling problems flagged (R-hat &le; {RHAT_MAX}, '
                   f"bulk ESS &ge; {tables.ESS_MIN}, no divergences, where reported).</p>")
    return Body(parts=(verdict, html_table(frame, {cell: "bad" for cell in flags.cells})))


SECTION = Section("diagnostics", "Sampling diagnostics", build, order=60, collapsed=True)
