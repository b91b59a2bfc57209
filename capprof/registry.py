"""One registry pattern: named entries, listed in registration order.

A ``Registry`` maps names to entries (classes or records). Entries come in
through ``register`` (a call, or a decorator: ``@REGISTRY.register``); names
used elsewhere for the same entry go in as aliases. ``lookup`` gives the
entry of a name or alias, or one ``CapprofError`` line naming the closest
known name ("did you mean") and every name.

Used for the built-in populations, the score predictors and the member
kinds.
"""

from __future__ import annotations

from typing import Callable, Iterator, Mapping

from capprof.errors import CapprofError, did_you_mean


class Registry(Mapping):
    """Named entries of one sort. ``what`` is how the errors name the sort
    ("model", "built-in population"); ``key`` gives an entry's name when
    ``register`` is not told it (default: the entry's ``name`` attribute)."""

    def __init__(self, what: str, key: Callable[[object], str] | None = None):
        self.what = what
        self._key = key or (lambda entry: getattr(entry, "name"))
        self._entries: dict[str, object] = {}
        self.aliases: dict[str, str] = {}

    def register(self, entry=None, *, name: str | None = None, aliases=()):
        """Record ``entry`` under ``name`` (default from ``key``) and its
        ``aliases``; returns the entry, so it serves as a decorator. A name
        taken by another entry is a programming error (ValueError)."""
        if entry is None:
            return lambda e: self.register(e, name=name, aliases=aliases)
        name = name or self._key(entry)
        if not name:
            raise ValueError(f"{self.what} {entry!r} has no name to register under")
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"two {self.what}s are named {name!r}: {self._entries[name]!r} and {entry!r}")
        self._entries[name] = entry
        for alias in aliases:
            self.aliases[alias] = name
        return entry

    def canonical(self, name: str, fix: str | None = None) -> str:
        """``name`` itself, or the name an alias stands for; an unknown name
        is one CapprofError line: the closest known name, then ``fix``
        (default: "use any of" every registered name)."""
        if name in self._entries:
            return name
        if name in self.aliases:
            return self.aliases[name]
        fix = fix if fix is not None else f"use any of {', '.join(self.names())}"
        raise CapprofError(f'unknown {self.what} "{name}"{did_you_mean(name, [*self._entries, *self.aliases])}; '
                           f"{fix}")

    def lookup(self, name: str, fix: str | None = None):
        """The entry of ``name`` or an alias (``canonical`` for the error)."""
        return self._entries[self.canonical(name, fix)]

    def names(self) -> list[str]:
        """The registered names (aliases not included), in registration order."""
        return list(self._entries)

    # Mapping: registry[name], name in registry, iteration over names
    def __getitem__(self, name: str):
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __delitem__(self, name: str) -> None:
        del self._entries[name]
        for alias in [a for a, target in self.aliases.items() if target == name]:
            del self.aliases[alias]

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"
