"""Population specs, the build contract and the built-in registry (no substrate stepped)."""

from __future__ import annotations

import dataclasses
import inspect

import dm_env
import numpy as np
import pytest

pytestmark = pytest.mark.runners


def test_every_builtin_is_a_documented_module_level_class():
    from capprof.runners.populations import builtins

    assert set(builtins.BUILTINS) == {
        "random", "noop", "aggressor", "harvester", "consumer", "cleaner", "cooperator", "defector",
        "planter_red", "planter_green", "restrained_harvester", "claimer", "prosocial"}
    for name, cls in builtins.BUILTINS.items():
        assert getattr(builtins, cls.__name__) is cls and cls.name == name
        assert inspect.getdoc(cls) and "\n" not in builtins.describe(name)
    assert "restrained_harvester" in builtins.describe("prosocial")


def test_a_new_builtin_is_one_class():
    from capprof.runners.populations import builtins
    from capprof.runners.populations.populations import parse_population
    from capprof.runners.populations.substrate_info import substrate_info

    class Spinner(builtins.Scripted):
        """Turns left forever."""

        name = "test_spinner"

        def step(self, timestep, prev_state):
            return self.info.action(turn=-1), prev_state + 1

    try:
        info = substrate_info("commons_harvest__open")
        policy = parse_population("test_spinner").members[0].build(info, 0)
        assert policy.step(dm_env.restart({}), policy.initial_state())[0] == info.action(turn=-1)
        assert builtins.describe("test_spinner") == "Turns left forever."
    finally:
        del builtins.BUILTINS["test_spinner"]


def test_substrate_info_takes_only_the_substrate():
    from capprof.runners.populations.substrate_info import substrate_info

    assert list(inspect.signature(substrate_info.__wrapped__).parameters) == ["substrate"]
    info = substrate_info("prisoners_dilemma_in_the_matrix__arena")
    assert info.action(interact=1) is not None and info.num_actions == len(info.action_set)


def test_slots_carry_the_contest_policy_ids():
    from capprof.runners.populations.populations import PolicySlot, policy_slots

    slots = policy_slots(("default", "default", "other"))
    assert [s.policy_id for s in slots] == ["agent_0", "agent_1", "agent_2"]
    assert slots[2] == PolicySlot(player_index=2, role="other", policy_id="agent_2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        slots[0].role = "x"


def test_builtins_build_fresh_seeded_policies_per_call():
    from capprof.runners.populations.populations import PolicySlot, parse_population
    from capprof.runners.populations.substrate_info import substrate_info

    info = substrate_info("commons_harvest__open")
    member = parse_population("random").members[0]
    first, again = (member.build(info, 5, PolicySlot.of(0, "default")) for _ in range(2))
    assert first is not again
    timestep = dm_env.restart({"RGB": np.zeros((88, 88, 3), np.uint8)})
    actions = [[p.step(timestep, 0)[0] for _ in range(20)] for p in (first, again)]
    assert actions[0] == actions[1]  # same seed, same actions


@pytest.mark.parametrize("text, team, spec", [
    ("mine=agent.py:Agent@/opt/v/bin/python", "mine", "agent.py:Agent@/opt/v/bin/python"),
    ("kit=submission:DIR@/opt/v/bin/python", "kit", "submission:DIR@/opt/v/bin/python"),
])
def test_member_in_another_interpreter_keeps_its_spec_as_name(text, team, spec):
    from capprof.runners.populations.populations import parse_population

    population = parse_population(text, check=False)
    assert population.team == team and population.members[0].spec == spec


def test_unknown_member_names_every_form():
    from capprof.errors import CapprofError
    from capprof.runners.populations.populations import parse_population

    with pytest.raises(CapprofError) as info:
        parse_population("harvestr")
    message = str(info.value)
    assert 'did you mean "harvester"' in message
    assert "submission:DIR" in message and "@/path/to/other/python" in message
    for kind in ("module:Class", "FILE.py[:Class]", "rllib:CHECKPOINT_DIR[:MODULE_ID]",
                 "rllib-legacy:CHECKPOINT@PYTHON", "shipped:NAME", "a built-in (random, noop"):
        assert kind in message, kind


@pytest.mark.parametrize("spec, kind", [
    ("random", "builtin"), ("pkg.mod:Policy", "imported"), ("agents/mine.py", "imported"),
    ("submission:/kits/a", "submission"), ("rllib:/pops/open:shared#greedy", "rllib"),
    ("rllib-legacy:/old/ckpt", "rllib-legacy"), ("shipped:open", "shipped"), ("harvestr", None),
])
def test_every_spec_is_one_kind(spec, kind):
    from capprof.runners.populations.populations import KINDS

    found = KINDS.kind_of(spec)
    assert (found.name if found else None) == kind


def test_the_help_lists_every_kind_and_what_may_run_elsewhere(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")  # one line per option: no wrapping inside a spelling
    res = cli("run", "--help")
    text = " ".join(res.out.split())
    for spelling in ("a built-in (random, noop, aggressor, ...)", "submission:DIR", "rllib:CHECKPOINT_DIR[:MODULE_ID]",
                     "rllib-legacy:CHECKPOINT[:POLICY_ID][#greedy|#sample]@PYTHON", "shipped:NAME",
                     "farmer, no_zap, open, prosocial, scarcity"):
        assert spelling in text, spelling
    assert ("SPEC@PYTHON runs a module:Class, FILE.py[:Class] or submission:DIR member in another environment's "
            "interpreter") in text


def test_a_new_member_kind_is_one_record(monkeypatch):
    """A kind registered in KINDS parses, builds, may run elsewhere when its
    record says so, and is named by the help and the error texts."""
    from capprof.errors import CapprofError
    from capprof.runners.context import ExecutionContext
    from capprof.runners.populations import populations
    from capprof.runners.populations.builtins import RandomPolicy
    from capprof.runners.populations.kinds import MemberKind, MemberKinds
    from capprof.runners.populations.substrate_info import SubstrateInfo

    class Echo:
        def __init__(self, spec):
            self.name = spec.partition(":")[2]

        def build(self, info, seed, slot):
            return RandomPolicy(info, seed)

    kinds = MemberKinds([*populations.KINDS, MemberKind("echo", prefix="echo:", spelling="echo:NAME",
                                                        help="echo:NAME (a test kind)", resolve=Echo)])
    monkeypatch.setattr(populations, "KINDS", kinds)
    with ExecutionContext():  # the kind's members resolve in a context of the test's own
        member = populations.parse_population("e=echo:hello").members[0]
        info = SubstrateInfo("x", ({"move": 0},) * 3, ())
        assert member.build(info, 0).step(dm_env.restart({}), 0)[0] in range(3)
        assert "echo:NAME (a test kind)" in kinds.help()
        with pytest.raises(CapprofError, match=r"or echo:NAME, optionally followed by @/path/to/other/python"):
            populations.parse_population("nothing_like_a_member")
        with pytest.raises(CapprofError, match=r'"echo:x@/usr/bin/python": only module:Class, FILE.py\[:Class\], '
                                               r"submission:DIR and rllib-legacy:CHECKPOINT members can run"):
            populations.parse_population("echo:x@/usr/bin/python")


def test_a_kind_needs_a_way_to_be_recognised_and_resolved():
    from capprof.runners.populations.kinds import MemberKind, MemberKinds

    with pytest.raises(ValueError, match="needs a prefix or a recognise test"):
        MemberKinds([MemberKind("x", spelling="x", help="x", resolve=str)])
    with pytest.raises(ValueError, match="resolves nowhere"):
        MemberKinds([MemberKind("x", spelling="x:", help="x", prefix="x:")])
    with pytest.raises(ValueError, match="registered already"):
        MemberKinds([MemberKind("x", spelling="x:", help="x", prefix="x:", resolve=str)] * 2)
