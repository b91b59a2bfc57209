"""One episode: build the substrate and its slots, step it, measure it.

``run_episode(task)`` never raises for a problem caused by a policy: a focal
policy that raises (``SystemExit`` included), returns an invalid action,
exceeds the per-step or per-episode time limit or the memory limit gives a
record with ``status`` set (``error``, ``invalid_action``, ``timeout``,
``memory``), a one-line ``error`` and the steps it completed. The pieces:

* building: ``substrate.build_substrate`` and ``slots.Slots`` (one policy per
  slot, all closed at the end);
* the loop: ``play``, meltingpot's evaluation loop plus a step cap and
  observers;
* measuring: ``observers`` (returns, Gini, depletion, series, timing) and the
  limits (``guard.GuardedPolicy`` around focal policies, memory and episode
  time observers).

The record is a ``records.EpisodeRecord`` (docs/runners.md).
"""

from __future__ import annotations

import random
import zlib

import numpy as np

from capprof.runners.constants import STATUS_ERROR, STATUS_OK
from capprof.runners.episode.guard import StepWatchdog
from capprof.runners.episode.observers import (
    DepletionStep,
    EpisodeTimeLimit,
    MemoryLimit,
    Observer,
    Returns,
    ReturnSeries,
    Timing,
)
from capprof.runners.populations.substrate_info import substrate_info
from capprof.runners.episode.records import (
    EpisodeRecord,
    EpisodeTask,
    Limits,
    PolicyFailure,
    exception_line,
    failed_record,
)
from capprof.runners.episode.slots import Slots, close_quietly
from capprof.runners.episode.substrate import build_substrate

__all__ = ["EpisodeRecord", "EpisodeTask", "Limits", "PolicyFailure", "episode_seeds", "failed_record",
           "play", "run_episode"]


def episode_seeds(seed: int, scenario: str, episode: int) -> dict[str, int]:
    """Independent seeds for the substrate, slot sampling and policies,
    derived from the run seed, scenario and episode alone (so any backend and
    any order give the same episode)."""
    state = np.random.SeedSequence([seed, zlib.crc32(scenario.encode()), episode]).generate_state(4)
    env, focal, background, policies = (int(s) for s in state)
    return {"env": env % (2**31 - 1) + 1, "focal": focal, "background": background, "policies": policies}


def play(env, policies, is_focal, observers: list[Observer], max_steps: int | None = None) -> int:
    """Step ``env`` with one policy per slot until its last timestep (or
    ``max_steps``); returns the steps played. Focal slots see only the
    observations meltingpot permits focal players. Policies that offer
    ``step_ahead`` (bridged ones, runners/populations/venv_member.py) get each step's
    timestep through it first and are asked for their actions last, so they
    work while the other slots step."""
    from meltingpot.scenario import PERMITTED_OBSERVATIONS

    timestep = env.reset()
    states = [policy.initial_state() for policy in policies]
    permitted = tuple(k for k in timestep.observation[0] if k in PERMITTED_OBSERVATIONS)
    keys = [permitted if focal else None for focal in is_focal]
    ahead = [(i, policy.step_ahead) for i, policy in enumerate(policies) if getattr(policy, "step_ahead", None)]
    stepping = sorted(enumerate(policies), key=lambda slot: getattr(slot[1], "step_ahead", None) is not None)
    actions = [0] * len(policies)
    for observer in observers:
        observer.reset(timestep)
    steps = 0
    while not timestep.last() and (max_steps is None or steps < max_steps):
        observations, rewards = timestep.observation, timestep.reward
        players = [timestep._replace(observation=observations[i] if seen is None else
                                     {k: observations[i][k] for k in seen},
                                     reward=0.0 if rewards is None else rewards[i])
                   for i, seen in enumerate(keys)]
        for i, step_ahead in ahead:
            step_ahead(players[i], states[i])
        for i, policy in stepping:
            actions[i], states[i] = policy.step(players[i], states[i])
        timestep = env.step(actions)
        steps += 1
        for observer in observers:
            observer.step(steps, timestep)
    return steps


def limit_observers(limits: Limits, n_focal: int, start: float) -> list[Observer]:
    """The episode-wide limits as observers (memory is measured from now)."""
    observers: list[Observer] = []
    if limits.episode_seconds is not None:
        observers.append(EpisodeTimeLimit(limits.episode_seconds, start))
    if limits.memory_gb_per_focal is not None:
        observers.append(MemoryLimit(limits.memory_gb_per_focal, n_focal))
    return observers


def run_episode(task: EpisodeTask, clocks=None) -> EpisodeRecord:
    """Run one episode and return its record (never raises for policy faults).

    ``clocks`` is optional shared memory an outside watcher reads (see
    runners/execution/isolation.py)."""
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    timing = Timing(clocks)
    scenario = task.scenario
    seeds = episode_seeds(task.seed, scenario.name, task.episode)
    measured: dict = {}
    slots, env = None, None
    try:
        info = substrate_info(scenario.substrate)
        slots = Slots(task, seeds["focal"])
        # Submissions may use the global generators; make them reproducible too.
        random.seed(seeds["policies"])
        np.random.seed(seeds["policies"] % 2**32)
        limits = limit_observers(task.limits, scenario.n_focal, timing.start)
        slots.build(info, seeds["policies"], seeds["background"])
        env = build_substrate(scenario, seeds["env"])
        returns = Returns(scenario.is_focal)
        measures: list[Observer] = [returns, DepletionStep(returns)]
        if task.series_every:
            measures.append(ReturnSeries(returns, task.series_every))
        with StepWatchdog(task.limits.step_seconds) as watchdog:
            policies = slots.guarded(env.action_spec()[0].num_values, watchdog, clocks)
            play(env, policies, scenario.is_focal, [timing, *measures, *limits], task.max_steps)
            timing.finish()
        for observer in measures:
            measured.update(observer.fields())
        status, error = STATUS_OK, ""
    except PolicyFailure as failure:
        status, error = failure.status, str(failure)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # substrate or background bot: still recorded, the run goes on
        status, error = STATUS_ERROR, exception_line(exc)
    finally:
        if slots is not None:
            slots.close()
        if env is not None:
            close_quietly(env)
    members = {} if slots is None else {"focal_members": slots.focal_names,
                                        "background_members": tuple(slots.background_members)}
    return EpisodeRecord.for_task(task, **members, **measured, **timing.fields(), status=status, error=error)
