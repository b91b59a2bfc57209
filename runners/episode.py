"""One episode: build the substrate, fill its slots, step it, measure it.

``run_episode(task)`` never raises for a problem caused by a policy: a focal
policy that raises, returns an invalid action, exceeds the per-step or
per-episode time limit or the memory limit gives a record with ``status`` set
(``error``, ``invalid_action``, ``timeout``, ``memory``) and a one-line
``error``. The record schema is documented in docs/runners.md and
``capprof.runners.results.EPISODE_SCHEMA``.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import zlib
from dataclasses import dataclass

import numpy as np

from capprof.runners.populations import parse_population, substrate_info
from capprof.runners.scenarios import (
    BOT_PREFIX,
    ComponentKwarg,
    ConfigValue,
    DisableAction,
    Scenario,
)

DEPLETION_WINDOW = 50  # steps without any collective reward increase


@dataclass(frozen=True)
class Limits:
    """Resource limits for focal policies (the contest used 1 vCPU and 3 GB
    per focal agent). ``None`` disables a limit."""

    step_seconds: float | None = 10.0
    episode_seconds: float | None = None
    memory_gb_per_focal: float | None = 3.0


@dataclass(frozen=True)
class EpisodeTask:
    run_id: str
    population: str  # the population spec, re-parsed in the worker
    team: str
    scenario: Scenario
    episode: int
    seed: int
    max_steps: int | None = None
    limits: Limits = Limits()
    series_every: int | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.team, self.scenario.name, self.episode)


class PolicyFailure(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


class _StepTimeout(BaseException):
    """Raised by SIGALRM inside a focal policy's step (BaseException so a
    submission's own ``except Exception`` cannot swallow it)."""


def episode_seeds(seed: int, scenario: str, episode: int) -> dict[str, int]:
    """Independent seeds for the substrate, slot sampling and policies,
    derived from the run seed, scenario and episode alone (so any backend and
    any order give the same episode)."""
    state = np.random.SeedSequence([seed, zlib.crc32(scenario.encode()), episode]).generate_state(4)
    env, focal, background, policies = (int(s) for s in state)
    return {"env": env % (2**31 - 1) + 1, "focal": focal, "background": background, "policies": policies}


# ------------------------------------------------------------ substrate


def _apply_component_kwarg(node, override: ComponentKwarg) -> int:
    hits = 0
    if isinstance(node, dict):
        if node.get("component") == override.component and override.kwarg in node.get("kwargs", {}):
            old = node["kwargs"][override.kwarg]
            if override.scale is not None:
                if isinstance(old, (list, tuple)):
                    new = type(old)(min(1.0, float(v) * override.scale) for v in old)
                else:
                    new = float(old) * override.scale
            else:
                new = override.value
            node["kwargs"][override.kwarg] = new
            hits += 1
        for value in node.values():
            hits += _apply_component_kwarg(value, override)
    elif isinstance(node, list):
        for value in node:
            hits += _apply_component_kwarg(value, override)
    return hits


def build_substrate(scenario: Scenario, env_seed: int):
    """Build the scenario's substrate with its overrides, seeded.

    meltingpot draws the lab2d seed from Python's ``random`` when it builds a
    substrate, so we seed it here and restore its state afterwards.
    """
    from meltingpot import substrate as mp_substrate
    from meltingpot.utils.substrates import substrate_factory

    config = mp_substrate.get_config(scenario.substrate)
    action_set = tuple(dict(a) for a in config.action_set)
    settings_overrides = []
    for override in scenario.overrides:
        if isinstance(override, ConfigValue):
            with config.unlocked():
                config[override.key] = override.value
        elif isinstance(override, DisableAction):
            noop = next(a for a in action_set if not any(a.values()))
            action_set = tuple(dict(noop) if a.get(override.key) else a for a in action_set)
        elif isinstance(override, ComponentKwarg):
            settings_overrides.append(override)

    def lab2d_settings(roles):
        settings = config.lab2d_settings_builder(roles=roles, config=config)
        for override in settings_overrides:
            if not _apply_component_kwarg(settings, override):
                raise ValueError(f"{scenario.name}: substrate has no component {override.component} "
                                 f"with kwarg {override.kwarg}")
        return settings

    factory = substrate_factory.SubstrateFactory(
        lab2d_settings_builder=lab2d_settings,
        individual_observations=config.individual_observation_names,
        global_observations=config.global_observation_names,
        action_table=action_set,
        timestep_spec=config.timestep_spec,
        action_spec=config.action_spec,
        valid_roles=config.valid_roles,
        default_player_roles=config.default_player_roles,
    )
    saved = random.getstate()
    random.seed(env_seed)
    try:
        return factory.build(scenario.roles)
    finally:
        random.setstate(saved)


# ------------------------------------------------------------ measurements


def gini(values) -> float:
    """Gini coefficient of returns: 0 for equal returns; NaN when the mean is
    not positive (the coefficient is undefined there) unless all are equal."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return float("nan")
    if np.all(x == x[0]):
        return 0.0
    mean = x.mean()
    if mean <= 0:
        return float("nan")
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * mean))


def depleted_at(collective_rewards: np.ndarray, window: int = DEPLETION_WINDOW) -> float:
    """First step from which the collective return did not increase for
    ``window`` steps; NaN if that never happened."""
    increased = np.asarray(collective_rewards) > 0
    run = 0
    for t, inc in enumerate(increased):
        run = 0 if inc else run + 1
        if run >= window:
            return float(t - window + 1)
    return float("nan")


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: no memory limit enforcement
        return 0


# ------------------------------------------------------------ policies

_SHARED_POLICIES: dict = {}  # imported / checkpoint policies, one per process


def _build_member(spec: str, info, seed: int):
    """Built-ins are cheap and seeded: one per slot per episode. Imported and
    checkpoint policies may be costly to load: one per process, shared by
    slots (meltingpot's Policy contract keeps all mutable state in `state`)."""
    from capprof.runners.populations import BUILTINS, _builder

    if spec in BUILTINS:
        return _builder(spec)(info, seed)
    key = (spec, info.name)  # checkpoints check the substrate's actions when built
    if key not in _SHARED_POLICIES:
        _SHARED_POLICIES[key] = _builder(spec)(info, seed)
    return _SHARED_POLICIES[key]


def _build_background(scenario: Scenario, info, rng: random.Random, seed: int):
    from meltingpot import bot as mp_bot

    policies, names = [], []
    for i, role in enumerate(scenario.background_roles):
        name = rng.choice(sorted(scenario.background_members(role)))
        names.append(name)
        if name.startswith(BOT_PREFIX):
            policies.append(mp_bot.build(name[len(BOT_PREFIX):]))
        else:
            policies.append(_build_member(name, info, seed + 7919 * (i + 1)))
    return policies, names


# ------------------------------------------------------------ the episode


def failed_record(task: EpisodeTask, status: str, error: str) -> dict:
    """The record of an episode that produced no returns (``run_episode``
    starts from it with status ``ok``)."""
    return {
        "run_id": task.run_id, "team": task.team, "population": task.population,
        "scenario": task.scenario.name, "substrate": task.scenario.substrate, "suite": task.scenario.suite,
        "episode": task.episode, "seed": task.seed,
        "focal_per_capita_return": float("nan"), "background_per_capita_return": float("nan"),
        "player_returns": [], "is_focal": list(task.scenario.is_focal),
        "focal_members": [], "background_members": [],
        "steps": 0, "wall_seconds": 0.0, "build_seconds": float("nan"), "steps_per_second": float("nan"),
        "social_welfare": float("nan"), "gini_focal": float("nan"), "gini_all": float("nan"),
        "depleted_at_step": float("nan"), "return_series": [], "gini_series": [],
        "series_every": task.series_every or None, "status": status, "error": error,
    }


# Shared memory an outside watcher reads (runners/isolation.py): index 0 holds
# when the current focal step began (time.monotonic(); 0 between steps).
_CLOCKS = None


def publish_clocks(clocks) -> None:
    global _CLOCKS
    _CLOCKS = clocks


def run_episode(task: EpisodeTask) -> dict:
    """Run one episode and return its record (never raises for policy faults)."""
    from capprof.runners._meltingpot import import_meltingpot

    import_meltingpot()
    from meltingpot.scenario import PERMITTED_OBSERVATIONS

    scenario = task.scenario
    seeds = episode_seeds(task.seed, scenario.name, task.episode)
    record = failed_record(task, "ok", "")
    start = time.perf_counter()
    limits = task.limits
    use_alarm = (limits.step_seconds is not None and threading.current_thread() is threading.main_thread()
                 and hasattr(signal, "setitimer"))
    previous_handler = None
    env = None
    focal_policies, background_policies = [], []
    try:
        info = substrate_info(scenario.substrate)
        population = parse_population(task.population, check=False)
        focal_members = population.sample(scenario.n_focal, random.Random(seeds["focal"]))
        record["focal_members"] = [m.name for m in focal_members]
        # Submissions may use the global generators; make them reproducible too.
        random.seed(seeds["policies"])
        np.random.seed(seeds["policies"] % 2**32)
        baseline_rss = _rss_bytes()
        memory_limit = (limits.memory_gb_per_focal * scenario.n_focal * 2**30
                        if limits.memory_gb_per_focal is not None else None)
        for i, member in enumerate(focal_members):
            try:
                focal_policies.append(_build_member(member.spec, info, seeds["policies"] + i))
            except Exception as exc:
                raise PolicyFailure("error", f"building focal policy {member.name} raised "
                                             f"{type(exc).__name__}: {_one_line(exc)}") from None
        background_policies, record["background_members"] = _build_background(
            scenario, info, random.Random(seeds["background"]), seeds["policies"] + 1000)
        env = build_substrate(scenario, seeds["env"])
        num_actions = env.action_spec()[0].num_values

        # Slot order: each slot's policy and whether it is focal.
        slot_policies, focal_iter, bg_iter = [], iter(focal_policies), iter(background_policies)
        slot_names, focal_names, bg_names = [], iter(record["focal_members"]), iter(record["background_members"])
        for is_focal in scenario.is_focal:
            slot_policies.append(next(focal_iter) if is_focal else next(bg_iter))
            slot_names.append(next(focal_names) if is_focal else next(bg_names))

        # A periodic watchdog instead of arming a timer around every policy
        # call: setitimer is a system call, and two per focal player per step
        # cost ~8% of stepping speed. Each focal step is timed exactly with
        # perf_counter in `act`; the watchdog only interrupts a step that has
        # not returned, within 1.25 x the limit.
        running_since = [None]  # perf_counter() when the current focal step began
        if use_alarm:
            def on_alarm(signum, frame):
                began = running_since[0]
                if began is not None and time.perf_counter() - began > limits.step_seconds:
                    running_since[0] = None
                    raise _StepTimeout()
            previous_handler = signal.signal(signal.SIGALRM, on_alarm)
            period = max(limits.step_seconds / 4, 0.01)
            signal.setitimer(signal.ITIMER_REAL, period, period)

        clocks = _CLOCKS

        def act(slot: int, timestep, state):
            policy = slot_policies[slot]
            if not scenario.is_focal[slot]:
                return policy.step(timestep, state)
            try:
                if clocks is not None:
                    clocks[0] = time.monotonic()
                step_start = running_since[0] = time.perf_counter()
                try:
                    action, new_state = policy.step(timestep, state)
                finally:
                    running_since[0] = None
                    if clocks is not None:
                        clocks[0] = 0.0
                slow = limits.step_seconds is not None and time.perf_counter() - step_start > limits.step_seconds
            except _StepTimeout:
                slow = True
            except PolicyFailure:
                raise
            except Exception as exc:
                raise PolicyFailure("error", f"focal policy {slot_names[slot]} raised "
                                             f"{type(exc).__name__}: {_one_line(exc)}") from None
            if slow:
                raise PolicyFailure("timeout", f"focal policy {slot_names[slot]} took longer than "
                                               f"{limits.step_seconds:g} s for one step")
            if type(action) is int:  # the common case, checked without conversions
                valid = 0 <= action < num_actions
            else:
                try:
                    valid = int(action) == action and 0 <= int(action) < num_actions
                except (TypeError, ValueError):
                    valid = False
            if not valid:
                raise PolicyFailure("invalid_action", f"focal policy {slot_names[slot]} returned action "
                                    f"{action!r}; actions are integers in 0..{num_actions - 1}")
            return int(action), new_state

        n = scenario.n_players
        returns = np.zeros(n)
        collective = []
        series, gini_series = [], []
        timestep = env.reset()
        states = [p.initial_state() for p in slot_policies]
        record["build_seconds"] = time.perf_counter() - start
        stepping_start = time.perf_counter()
        steps = 0
        # Observation keys are fixed for an episode: work out once which ones a
        # focal player may see, instead of filtering every dict every step.
        focal_keys = tuple(k for k in timestep.observation[0] if k in PERMITTED_OBSERVATIONS)
        is_focal_slot = tuple(scenario.is_focal)
        while True:
            actions = []
            rewards = timestep.reward
            for slot in range(n):
                obs = timestep.observation[slot]
                if is_focal_slot[slot]:
                    obs = {k: obs[k] for k in focal_keys}
                player_timestep = timestep._replace(
                    observation=obs, reward=0.0 if rewards is None else rewards[slot])
                action, states[slot] = act(slot, player_timestep, states[slot])
                actions.append(action)
            timestep = env.step(actions)
            steps += 1
            step_rewards = np.asarray(timestep.reward, dtype=float)
            returns += step_rewards
            collective.append(step_rewards.sum())
            if task.series_every and steps % task.series_every == 0:
                series.append(returns.tolist())
                gini_series.append(gini(returns))
            if limits.episode_seconds is not None and time.perf_counter() - start > limits.episode_seconds:
                raise PolicyFailure("timeout", f"episode exceeded the {limits.episode_seconds:g} s limit "
                                               f"after {steps} steps")
            if memory_limit is not None and steps % 10 == 0 and _rss_bytes() - baseline_rss > memory_limit:
                raise PolicyFailure("memory", f"memory grew by more than {memory_limit / 2**30:g} GB "
                                              f"({limits.memory_gb_per_focal:g} GB per focal player)")
            if timestep.last() or (task.max_steps is not None and steps >= task.max_steps):
                break
        is_focal = np.asarray(scenario.is_focal)
        record["steps_per_second"] = steps / max(time.perf_counter() - stepping_start, 1e-9)
        record.update(
            player_returns=returns.tolist(),
            focal_per_capita_return=float(returns[is_focal].mean()),
            background_per_capita_return=float(returns[~is_focal].mean()) if (~is_focal).any() else float("nan"),
            steps=steps,
            social_welfare=float(returns.sum()),
            gini_focal=gini(returns[is_focal]),
            gini_all=gini(returns),
            depleted_at_step=depleted_at(np.asarray(collective)),
            return_series=series,
            gini_series=gini_series,
        )
    except PolicyFailure as failure:
        record["status"], record["error"] = failure.status, str(failure)
    except Exception as exc:  # substrate or background bot: still recorded, run goes on
        record["status"], record["error"] = "error", f"{type(exc).__name__}: {_one_line(exc)}"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if previous_handler is not None:
                signal.signal(signal.SIGALRM, previous_handler)
        for policy in background_policies:
            _close_quietly(policy)
        for policy in focal_policies:
            if policy not in _SHARED_POLICIES.values():
                _close_quietly(policy)
        if env is not None:
            _close_quietly(env)
    record["wall_seconds"] = time.perf_counter() - start
    return record


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def _close_quietly(thing) -> None:
    try:
        thing.close()
    except Exception:
        pass
