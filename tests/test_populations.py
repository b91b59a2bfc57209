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
    from capprof.runners.populations.populations import parse_population, substrate_info

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
    from capprof.runners.populations.populations import substrate_info

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
    from capprof.runners.populations.populations import PolicySlot, parse_population, substrate_info

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
