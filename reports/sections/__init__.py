"""The report's sections, in page order.

A section is one module here defining ``SECTION = Section(key, title,
build)`` (see ``base``); adding one means writing that module and naming it
in ``SECTIONS`` below.
"""

from __future__ import annotations

from capprof.reports.sections import (
    comparison,
    depletion,
    diagnostics,
    focal_background,
    gini,
    importances,
    overlay,
    predictive,
    predictive_checks,
    profiles,
    substrate_scores,
)
from capprof.reports.sections.base import Body, Section

SECTIONS: tuple[Section, ...] = (
    diagnostics.SECTION,
    predictive_checks.SECTION,
    profiles.SECTION,
    overlay.SECTION,
    predictive.SECTION,
    importances.SECTION,
    substrate_scores.SECTION,
    comparison.SECTION,
    focal_background.SECTION,
    gini.SECTION,
    depletion.SECTION,
)

__all__ = ["SECTIONS", "Body", "Section"]
