"""Fill an episode's slots: sample the members, build one policy per slot,
close every policy built.

Focal slots draw members from the population with the episode's focal
generator, background slots from the scenario's background members with the
background generator (``capprof.runners.episode.episode.episode_seeds``). Every slot
gets its own policy, built for that episode by ``Member.build(info, seed,
slot)`` with the slot's ``PolicySlot`` (player index, role, ``agent_<i>``).
"""

from __future__ import annotations

import random

from capprof.runners.constants import BOT_PREFIX, STATUS_ERROR
from capprof.runners.episode.guard import GuardedPolicy, StepWatchdog
from capprof.runners.populations.populations import Member, parse_population, policy_slots
from capprof.runners.episode.records import EpisodeTask, PolicyFailure, exception_line

BACKGROUND_SEED_OFFSET, BACKGROUND_SEED_STRIDE = 1000, 7919


def build_policy(member: Member, info, seed: int, slot):
    """One slot's new policy (the one place the loop's policies are built)."""
    return member.build(info, seed, slot)


class Slots:
    """The policies of one episode, in slot order; ``close()`` closes every
    policy built so far, whatever happened."""

    def __init__(self, task: EpisodeTask, focal_seed: int):
        self.task = task
        scenario = task.scenario
        population = parse_population(task.population, check=False)
        self.focal_members = population.sample(scenario.n_focal, random.Random(focal_seed))
        self.background_members: list[str] = []
        self.policies: list = [None] * scenario.n_players
        self.names: list[str] = [""] * scenario.n_players
        self._built: list = []

    @property
    def focal_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.focal_members)

    def build(self, info, policy_seed: int, background_seed: int) -> None:
        """Build every slot's policy: focal ones first (a failure names the
        member), then the background."""
        scenario = self.task.scenario
        slots = policy_slots(scenario.roles)
        focal_slots = [s for s, f in zip(slots, scenario.is_focal) if f]
        background_slots = [s for s, f in zip(slots, scenario.is_focal) if not f]
        for k, (slot, member) in enumerate(zip(focal_slots, self.focal_members)):
            try:
                policy = build_policy(member, info, policy_seed + k, slot)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                raise PolicyFailure(STATUS_ERROR, f"building focal policy {member.name} raised "
                                                  f"{exception_line(exc)}") from None
            self._place(slot.player_index, member.name, policy)
        rng = random.Random(background_seed)
        for k, slot in enumerate(background_slots):
            name = rng.choice(sorted(scenario.background_members(slot.role)))
            self.background_members.append(name)
            seed = policy_seed + BACKGROUND_SEED_OFFSET + BACKGROUND_SEED_STRIDE * (k + 1)
            self._place(slot.player_index, name, self._background_policy(name, info, seed, slot))

    @staticmethod
    def _background_policy(name: str, info, seed: int, slot):
        if name.startswith(BOT_PREFIX):
            from meltingpot import bot as mp_bot

            return mp_bot.build(name[len(BOT_PREFIX):])
        return build_policy(Member(name=name, spec=name), info, seed, slot)

    def _place(self, index: int, name: str, policy) -> None:
        self._built.append(policy)
        self.policies[index] = policy
        self.names[index] = name

    def guarded(self, num_actions: int, watchdog: StepWatchdog, clocks=None) -> list:
        """Slot policies with every focal one wrapped in a ``GuardedPolicy``."""
        return [GuardedPolicy(policy, name, num_actions, watchdog, clocks) if focal else policy
                for policy, name, focal in zip(self.policies, self.names, self.task.scenario.is_focal)]

    def close(self) -> None:
        for policy in self._built:
            close_quietly(policy)
        self._built.clear()


def close_quietly(thing) -> None:
    """``thing.close()``, ignoring anything it raises (SystemExit included)."""
    try:
        thing.close()
    except KeyboardInterrupt:
        raise
    except BaseException:
        pass
