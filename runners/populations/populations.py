"""Populations: named sets of policies that fill focal slots.

A population spec (``capprof run --population SPEC``) is::

    [TEAM=]MEMBER[+MEMBER...]

where each MEMBER is

* a built-in: ``random``, ``noop`` or a scripted behaviour
  (``capprof.runners.populations.builtins.BUILTINS``, one class each);
* ``package.module:Name`` or ``path/to/file.py:Name``: a policy class (a
  meltingpot ``Policy`` or anything with ``initial_state``, ``step`` and
  ``close``) or a function returning one; ``path/to/file.py`` alone picks the
  file's only policy class. A constructor taking one positional argument gets
  the slot's policy id (``agent_<i>``, as the 2023 contest kit built them);
  a zero-argument one is called with none;
* ``submission:DIR``: a 2023-contest starter-kit directory
  (``DIR/my_policies/user_config.py``; see ``capprof.runners.populations.submission``);
* ``rllib:CHECKPOINT_DIR[:MODULE_ID][#greedy|#sample|#sample=T]``: an RLModule
  from an RLlib (new API stack, torch) checkpoint, acting through
  ``capprof.runners.populations.rllib_policy`` (greedily, by sampling, or
  sampling at temperature T);
* ``rllib-legacy:CHECKPOINT[:POLICY_ID][#greedy|#sample]@PYTHON``: an RLlib 2.x
  old-API-stack checkpoint (the 2023 contest's), always in another
  interpreter (``capprof.runners.populations.rllib_legacy``, ``make legacy-env``);
* ``shipped:NAME[#greedy|#sample|#sample=T]``: a population trained by
  ``capprof train`` that capprof ships
  (``capprof.runners.populations.shipped_populations``), played as ``rllib:``;
* any of the imported forms followed by ``@PYTHON`` (the path of another
  environment's interpreter, e.g. ``mine.py:Agent@/opt/old/bin/python``): the
  member runs in that interpreter (``capprof.runners.populations.venv_member``).

Slots are filled as meltingpot fills them: each focal slot independently draws
a member uniformly (with replacement), but from a ``random.Random`` seeded per
episode, so a run fills its slots reproducibly.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from capprof.errors import CapprofError, did_you_mean
from capprof.runners.context import current
from capprof.runners.populations import rllib_policy, shipped_populations
from capprof.runners.populations.bridge import LEGACY_PREFIX, SUBMISSION_PREFIX, SpecError, load_target, open_policy
from capprof.runners.populations.builtins import BUILTINS
from capprof.runners.populations.kinds import MemberKind, MemberKinds
from capprof.runners.populations.submission import SubmissionSource
from capprof.runners.populations.venv_member import VenvSource, legacy_python

__all__ = ["KINDS", "Member", "PolicySlot", "Population", "SubstrateInfo", "check_covers", "parse_population",
           "policy_slots", "substrate_info"]

# MEMBER@PYTHON: the interpreter is the part after the last "@", a path (it
# holds a "/") with no ":" in it.
_IN_VENV = re.compile(r"(?P<spec>.+)@(?P<python>[^@:]*/[^@:]*)")


# ------------------------------------------------------------ slots and members


@dataclass(frozen=True)
class PolicySlot:
    """The slot a policy is built for: the player's index in the scenario's
    roles (which follow the substrate's default roles), its role, and its
    policy id ``agent_<player_index>``, as the 2023 contest kit named them."""

    player_index: int
    role: str
    policy_id: str

    @classmethod
    def of(cls, player_index: int, role: str) -> PolicySlot:
        return cls(player_index=player_index, role=role, policy_id=f"agent_{player_index}")


def policy_slots(roles) -> tuple[PolicySlot, ...]:
    """One slot per player of a scenario's ``roles`` (slot order)."""
    return tuple(PolicySlot.of(i, role) for i, role in enumerate(roles))


@dataclass(frozen=True)
class Member:
    """One policy of a population: a display name and how to build it."""

    name: str
    spec: str

    def build(self, info: SubstrateInfo, seed: int, slot: PolicySlot | None = None):
        """A new policy for one slot of one episode.

        Returns an object with meltingpot's Policy protocol (``initial_state()``,
        ``step(timestep, state) -> (action, state)``, ``close()``). Call
        ``close()`` on it when the episode ends, also when it failed: for a
        policy that is a context manager it exits the context (meltingpot's
        ``Policy.__exit__`` calls ``close()``). Every call builds a new object;
        what is costly to load (RLlib modules, imported files, submission
        directories, another interpreter) is loaded once per process or
        per ``ExecutionContext`` (runners/context.py) and kept there, so the
        loop needs no cache of its own. ``seed`` seeds the
        built-ins' generators and a submission's id choice; ``slot`` (default:
        player 0, role ``default``) gives the policy id and role. Raises
        whatever building raises (the loop records it as the episode's failure).
        """
        return _source(self.spec).build(info, seed, slot or PolicySlot.of(0, "default"))


@dataclass(frozen=True)
class Population:
    team: str
    members: tuple[Member, ...]

    def sample(self, n_slots: int, rng) -> list[Member]:
        """Members for ``n_slots`` slots, drawn uniformly with replacement."""
        return [rng.choice(self.members) for _ in range(n_slots)]


# ------------------------------------------------------------ the member kinds


class _Builtin:
    def __init__(self, spec: str):
        self.cls = BUILTINS[spec]

    def build(self, info, seed, slot):
        return self.cls(info, seed)


class _Imported:
    """``module:Name`` / ``file.py[:Name]``: a class or function, imported once."""

    def __init__(self, spec: str):
        from capprof.meltingpot_import import import_meltingpot

        # Submissions import meltingpot (hence TensorFlow) themselves: import
        # it quietly first, or TensorFlow's start-up lines reach the terminal.
        import_meltingpot()
        try:
            self.factory = load_target(spec)
        except SpecError as exc:
            raise CapprofError(str(exc)) from None

    def build(self, info, seed, slot):
        return open_policy(self.factory, slot.policy_id)


def _looks_imported(spec: str) -> bool:
    return ":" in spec or spec.endswith(".py") or "/" in spec


# Every kind of member, in the order --help and the error texts list them.
# Adding a kind is one record here (and the module that builds it).
KINDS = MemberKinds([
    MemberKind("builtin", spelling=lambda: f"a built-in ({', '.join(BUILTINS)})",
               help="a built-in (random, noop, aggressor, ...)", recognise=BUILTINS.__contains__,
               resolve=_Builtin),
    MemberKind("imported", spelling="module:Class, FILE.py[:Class]",
               help="module:Class, FILE.py[:Class] (a policy class or a function returning one)",
               recognise=_looks_imported, resolve=_Imported, remote=True),
    MemberKind("submission", prefix=SUBMISSION_PREFIX, spelling="submission:DIR",
               help="submission:DIR (a 2023 contest starter-kit directory)",
               resolve=lambda spec: SubmissionSource(spec[len(SUBMISSION_PREFIX):]), remote=True),
    MemberKind("rllib", prefix=rllib_policy.PREFIX, spelling="rllib:CHECKPOINT_DIR[:MODULE_ID]",
               help="rllib:CHECKPOINT_DIR[:MODULE_ID][#greedy|#sample|#sample=T] (an RLlib new-API-stack "
                    "checkpoint, e.g. a capprof train directory; T: sampling temperature)",
               resolve=rllib_policy.RLlibSource),
    MemberKind("rllib-legacy", prefix=LEGACY_PREFIX, spelling="rllib-legacy:CHECKPOINT",
               help="rllib-legacy:CHECKPOINT[:POLICY_ID][#greedy|#sample]@PYTHON (an RLlib 2.x old-stack, 2023 "
                    "contest, checkpoint, played in another interpreter, e.g. @.venv-legacy/bin/python from "
                    "`make legacy-env`)",
               remote=True,
               only_remote="rllib-legacy: members play in the contest's interpreter; write "
                           "{spec}@" + legacy_python() + " (build it with `make legacy-env`) or @ another python "
                           "with ray 2.x's old API stack"),
    MemberKind("shipped", prefix=shipped_populations.PREFIX, spelling="shipped:NAME",
               help=lambda: "shipped:NAME[#greedy|#sample|#sample=T] (a trained population capprof ships: "
                            f"{', '.join(shipped_populations.shipped_names()) or 'none'})",
               resolve=shipped_populations.source),
])


def _source(spec: str):
    """How ``spec`` builds, resolved once per ``ExecutionContext`` (its
    classes imported, its submission loaded; runners/context.py), so a run
    does not hold them past its end; a bad spec: CapprofError (not kept)."""
    sources = current().sources
    source = sources.get(spec)
    if source is None:
        source = sources[spec] = _resolve(spec)
    return source


def _resolve(spec: str):
    venv = _IN_VENV.fullmatch(spec)
    if venv and KINDS.kind_of(spec) is not KINDS["builtin"]:
        inner = venv.group("spec")
        kind = KINDS.kind_of(inner)
        if kind is None or not kind.remote:
            raise CapprofError(f'"{spec}": only {KINDS.remote_forms()} members can run in another interpreter; '
                               f'{inner} runs in capprof\'s own (drop "@...")')
        return VenvSource(inner, venv.group("python"))
    kind = KINDS.kind_of(spec)
    if kind is None:
        raise CapprofError(f'unknown population member "{spec}"{did_you_mean(spec, BUILTINS)}; use '
                           f"{KINDS.forms()}, optionally followed by @/path/to/other/python")
    if kind.only_remote:
        raise CapprofError(f'"{spec}": ' + kind.only_remote.format(spec=spec))
    return kind.resolve(spec)


def _check_interpreter_path(spec: str) -> None:
    """``MEMBER@NAME`` with a bare name after the last "@" (``P@python3``):
    one line asking for the interpreter's path, instead of reading it as a
    missing class."""
    inner, at, python = spec.rpartition("@")
    if not at or _IN_VENV.fullmatch(spec) or ":" in python:
        return
    import shutil

    if not python.strip():
        raise CapprofError(f'"{spec}": nothing after "@"; give the path of the member\'s interpreter, '
                           f"e.g. {inner}@/path/to/venv/bin/python")
    found = shutil.which(python)
    raise CapprofError(f'"{spec}": the interpreter after "@" must be a path, not a name ({python!r}); write '
                       f"{inner}@{found or '/path/to/' + python}")


def split_team(text: str) -> tuple[str, str]:
    """``TEAM=MEMBER...`` -> (TEAM, MEMBER...); text without ``TEAM=`` is
    its own team name. An "=" after a "#" is the member's own play mode
    (``shipped:open#sample=0.5``), not a team name's end."""
    team, sep, body = text.partition("=")
    if not sep or "#" in team:
        return text, text
    return team, body


def parse_population(text: str, check: bool = True) -> Population:
    """Parse ``[TEAM=]MEMBER[+MEMBER...]``; with ``check`` every member is
    resolved now (imported, its directory or interpreter checked), so a typo
    fails before any episode starts."""
    team, body = split_team(text)
    team = team.strip()
    specs = [m.strip() for m in body.split("+")]
    if not team or not any(specs):
        raise CapprofError(f'empty population "{text}"; write e.g. --population random or '
                           '--population mine=pkg.module:MyPolicy')
    if not all(specs):
        raise CapprofError(f'population "{text}" has an empty member (a "+" with nothing beside it); '
                           'join members as A+B, e.g. --population mix=random+noop')
    members = []
    for spec in specs:
        _check_interpreter_path(spec)
        if check:
            source = _source(spec)
            if hasattr(source, "check"):  # e.g. another interpreter: proven once, here
                source.check()
        elif KINDS.kind_of(spec) is None:
            _source(spec)  # the unknown member's one line
        members.append(Member(name=spec, spec=spec))
    return Population(team=team, members=tuple(members))


def check_covers(population, scenarios) -> None:
    """Fail with one line, before any episode, when a member cannot play one
    of ``scenarios`` (a submission that does not cover the scenario's
    substrate, or whose SubmissionRoles allow no id for a focal role).
    ``population`` is a Population or a spec; ``scenarios`` Scenario records."""
    if isinstance(population, str):
        population = parse_population(population)
    for member in population.members:
        source = _source(member.spec)
        declared = _declared_roles(source)
        if declared is not None:
            for substrate in dict.fromkeys(s.substrate for s in scenarios):
                check_role_names(member.spec, substrate, (declared.get(substrate) or {}).keys())
        check = getattr(source, "check_scenario", None)
        if check is not None:
            for scenario in scenarios:
                check(scenario)


@functools.lru_cache(maxsize=None)
def substrate_roles(substrate: str) -> tuple[str, ...]:
    """The roles meltingpot's config of ``substrate`` allows (``valid_roles``), sorted."""
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from meltingpot import substrate as mp_substrate

    return tuple(sorted(mp_substrate.get_config(substrate).valid_roles))


def check_role_names(member: str, substrate: str, roles) -> None:
    """One line naming the first of ``roles`` (a member's role names for
    ``substrate``, e.g. a submission's SubmissionRoles keys) that the
    substrate does not have, and the roles it has."""
    valid = substrate_roles(substrate)
    for role in roles:
        if role not in valid:
            allowed = ", ".join(repr(r) for r in valid)
            raise CapprofError(f"{member}: role {role!r} (SubmissionRoles[{substrate!r}]) is not a role of "
                               f"{substrate}{did_you_mean(str(role), valid)}; its roles are {allowed}")


def _declared_roles(source) -> dict | None:
    """substrate -> {role: ids} that a member declares (a submission's
    SubmissionRoles, in capprof's interpreter or another), or None."""
    submission = getattr(source, "submission", None)
    if submission is not None:
        return dict(submission.roles)
    if isinstance(source, VenvSource) and KINDS.kind_of(source.spec) is KINDS["submission"]:
        return dict(source.check()["ok"].get("roles") or {})
    return None

