"""The report's sections, in page order.

A section is one module in this package defining ``SECTION = Section(key,
title, build, order)`` (see ``base``); adding one means writing that module:
it is found here and placed by its ``order``.
"""

from __future__ import annotations

import importlib
import pkgutil

from capprof.reports.sections.base import Body, Section


def _discover() -> tuple[Section, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        section = getattr(module, "SECTION", None)
        if isinstance(section, Section):
            found.append(section)
    keys = [s.key for s in found]
    if len(set(keys)) != len(keys):
        raise RuntimeError(f"two report sections share a key: {sorted(keys)}")
    return tuple(sorted(found, key=lambda s: (s.order, s.key)))


SECTIONS: tuple[Section, ...] = _discover()

__all__ = ["SECTIONS", "Body", "Section"]
