"""What a report section is: a key, a title and a function that builds its body.

A section's ``build(inputs, charts)`` reads what it needs from ``inputs``
(capprof.reports.inputs.Inputs), draws charts through ``charts``
(capprof.reports.markup.Charts) and returns a ``Body``; when its input is
absent or unusable it raises ``Absent`` (or a CapprofError) with the reason,
and the report shows "Not shown: <reason>." in its place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from capprof.reports.inputs import Inputs
    from capprof.reports.markup import Charts


@dataclass(frozen=True)
class Body:
    """A section's content: ``intro`` (HTML for one paragraph, may be empty)
    and ``parts`` (HTML blocks shown after it, in order)."""

    intro: str = ""
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """One report section: ``key`` is its HTML anchor (and what tests look
    for), ``title`` its heading, ``build`` makes its body, ``order`` its place
    on the page (ascending; the built-ins use multiples of 10 so a new section
    can go between two); ``collapsed`` sections (details, long tables) are
    drawn closed (an HTML ``<details>``) below the open ones."""

    key: str
    title: str
    build: Callable[["Inputs", "Charts"], Body]
    order: int
    collapsed: bool = False
