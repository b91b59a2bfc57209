"""Member kinds: the forms a population member spec takes, one record each.

A ``MemberKind`` says how a spec of its kind is recognised (its prefix, or a
test for the kinds without one), how it resolves to a source that builds
policies, whether it may run in another interpreter (``SPEC@PYTHON``) or
only there, and how ``capprof run --help`` and the error texts spell it.
``MemberKinds`` holds the registered records and answers "which kind is this
spec" and the texts that list the kinds; the records themselves are
registered in ``capprof.runners.populations.populations``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from capprof.registry import Registry


def _text(value) -> str:
    return value() if callable(value) else value


@dataclass(frozen=True)
class MemberKind:
    name: str
    # As the error texts write it (e.g. "rllib:CHECKPOINT_DIR[:MODULE_ID]"); a
    # callable when it names things only known at run time (the built-ins).
    spelling: str | Callable[[], str]
    # As ``capprof run --help`` writes it: the spelling and what it plays.
    help: str | Callable[[], str]
    # spec -> a source with ``build(info, seed, slot)`` (and optionally
    # ``check()``, ``check_scenario(scenario)``), in capprof's interpreter;
    # a bad spec raises a one-line CapprofError.
    resolve: Callable[[str], object] | None = None
    prefix: str = ""
    recognise: Callable[[str], bool] | None = None  # for the kinds without a prefix
    remote: bool = False  # may run in another interpreter: SPEC@PYTHON
    # Why it cannot run in capprof's interpreter, and the fix ("{spec}" is
    # the member); empty for the kinds that can.
    only_remote: str = ""

    def claims(self, spec: str) -> bool:
        if self.prefix:
            return spec.startswith(self.prefix)
        return self.recognise is not None and self.recognise(spec)

    def body(self, spec: str) -> str:
        """``spec`` without the kind's prefix."""
        return spec[len(self.prefix):]

    def spell(self) -> str:
        return _text(self.spelling)

    def describe(self) -> str:
        return _text(self.help)


def _listing(words: list[str], last: str) -> str:
    return ", ".join(words[:-1]) + f" {last} " + words[-1] if len(words) > 1 else "".join(words)


class MemberKinds:
    """The registered kinds, in the order the texts list them."""

    def __init__(self, kinds=()):
        self._kinds = Registry("member kind")
        for kind in kinds:
            self.register(kind)

    def register(self, kind: MemberKind) -> MemberKind:
        if kind.name in self._kinds:
            raise ValueError(f"member kind {kind.name!r} is registered already")
        if not kind.prefix and kind.recognise is None:
            raise ValueError(f"member kind {kind.name!r} needs a prefix or a recognise test")
        if kind.resolve is None and not kind.only_remote:
            raise ValueError(f"member kind {kind.name!r} resolves nowhere: give resolve or only_remote")
        return self._kinds.register(kind)

    def __iter__(self):
        return iter(self._kinds.values())

    def __getitem__(self, name: str) -> MemberKind:
        return self._kinds[name]

    def kind_of(self, spec: str) -> MemberKind | None:
        """The kind ``spec`` is: a prefix claims it first (the longest, if
        two would), then the kinds without one; None when no kind does."""
        prefixed = [k for k in self if k.prefix and k.claims(spec)]
        if prefixed:
            return max(prefixed, key=lambda k: len(k.prefix))
        return next((k for k in self if not k.prefix and k.claims(spec)), None)

    def forms(self) -> str:
        """Every kind as a member is written, for "unknown member" errors."""
        return _listing([k.spell() + ("@PYTHON" if k.only_remote else "") for k in self], "or")

    def remote_forms(self) -> str:
        """The kinds that may run in another interpreter."""
        return _listing([k.spell() for k in self if k.remote], "and")

    def help(self) -> str:
        """``--population``'s help: every kind, then what ``@PYTHON`` does."""
        remote = _listing([k.spell() for k in self if k.remote and not k.only_remote], "or")
        return ("[TEAM=]MEMBER[+MEMBER...]; MEMBER is " + _listing([k.describe() for k in self], "or")
                + f"; SPEC@PYTHON runs a {remote} member in another environment's interpreter")
