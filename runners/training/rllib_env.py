"""The environment ``capprof train`` trains in: which all-focal scenario a
name means (a substrate with its default roles, or a capprof variant), and
that scenario wrapped as an RLlib ``MultiAgentEnv`` (agents ``player_0`` ..
``player_{n-1}``, observations by ``capprof.runners.populations.rllib_obs.ObsConvention``),
its rewards as the scenario's substrate pays them (reward shaping such as
``prosocial`` is a scenario override, ``capprof.runners.episode.substrate``). Also
``torch_only_rllib``, which must run before RLlib is first imported.

Part of the library behind ``capprof train`` (``capprof.runners.training.rllib_train``);
it never prints.
"""

from __future__ import annotations

import os

import numpy as np

from capprof.errors import CapprofError, did_you_mean
from capprof.runners.populations.rllib_obs import ObsConvention
from capprof.runners.training.substrate_processes import LocalSubstrates, SubstrateProcesses, num_actions


def torch_only_rllib() -> None:
    """Keep RLlib from using TensorFlow. meltingpot imports TensorFlow (for
    its bots), and RLlib then checks every logged metric for a TF tensor
    through a typing Protocol, which cost ~12% of sampling time; RLlib reads
    this variable when its modules are first imported."""
    os.environ.setdefault("RLLIB_TEST_NO_TF_IMPORT", "1")


# ------------------------------------------------------------ what to train on


def _substrate_names() -> list[str]:
    from capprof.tagging.catalog import load_catalog

    return sorted(set(load_catalog()["substrate"]))


def resolve_target(name: str):
    """The all-focal ``Scenario`` record to train on: a substrate (its default
    roles, no overrides), a declarative variant (``SUBSTRATE:key=value,...``)
    or a capprof scenario whose slots are all focal (the ``variants`` suite). One-line CapprofError
    otherwise, with a did-you-mean."""
    from capprof.runners.scenarios.scenarios import Scenario, default_roles, get_scenario, suite_names

    substrates = _substrate_names()
    if name in substrates:
        roles = default_roles(name)
        return Scenario(name=name, substrate=name, roles=roles, is_focal=tuple(True for _ in roles),
                        description="the substrate as meltingpot defines it", suite="substrate")
    variants = suite_names("variants")
    if ":" in name:  # SUBSTRATE:key=value: its own one-line errors name the allowed keys
        scenario = get_scenario(name)
    else:
        try:
            scenario = get_scenario(name)
        except CapprofError:
            raise CapprofError(
                f'unknown substrate or scenario "{name}"{did_you_mean(name, substrates + variants)}; train on a '
                "substrate (`capprof tags` lists them) or a variant (`capprof scenarios --suite variants`)") from None
    if scenario.n_background and ":" in name:
        raise CapprofError(
            f'variant "{name}" has {scenario.n_background} background player(s); capprof train takes an all-focal '
            f"variant without background= and focal=, e.g. {_all_focal_spelling(name)}")
    if scenario.n_background:
        raise CapprofError(
            f'scenario "{name}" has {scenario.n_background} background player(s); capprof train takes a substrate '
            f"(e.g. {scenario.substrate}) or an all-focal variant: {', '.join(variants)}")
    return scenario


def _all_focal_spelling(name: str) -> str:
    """``SUBSTRATE:key=value,...`` without its ``background``/``focal`` items."""
    substrate, _, items = name.partition(":")
    kept = [item.strip() for item in items.split(",")
            if item.strip() and item.partition("=")[0].strip() not in ("background", "focal")]
    return f"{substrate}:{','.join(kept)}" if kept else substrate


# ------------------------------------------------------------ the environment


def _convention(cfg: dict) -> ObsConvention:
    """The observation convention ``env_config`` asks for (RGB downsampled by 8
    and scaled to [0, 1] unless it says otherwise)."""
    return ObsConvention(downsample=int(cfg.get("downsample", 8)), scale=bool(cfg.get("scale", True)))


def _substrate_seeds(cfg: dict, env_config, count: int, *salt: int) -> list[int]:
    """Build seeds of ``count`` substrates, drawn from the run's ``seed``, the
    env runner's index and ``salt``, so that no two envs of a run start alike."""
    # RLlib's EnvContext carries the runner's index; a plain dict is the local runner.
    worker = int(getattr(env_config, "worker_index", 0) or 0)
    states = np.random.SeedSequence([int(cfg.get("seed", 0)), worker, *salt]).generate_state(count)
    return [int(s) % (2**31 - 1) + 1 for s in states]


def _seeded_substrates(scenario, cfg: dict, env_config, count: int, *salt: int) -> list:
    """``count`` substrates of ``scenario`` built with ``_substrate_seeds``."""
    from capprof.runners.episode.substrate import build_substrate

    return [build_substrate(scenario, s) for s in _substrate_seeds(cfg, env_config, count, *salt)]


class _SubstrateAgents:
    """How ``MeltingPotMultiAgentEnv`` plays its one substrate: observations,
    rewards and episode ends as dicts by agent id. Kept apart from the class
    ``_env_class`` builds, which needs RLlib imported for its base class;
    that class's ``__init__`` sets ``_env``, ``agents``, ``convention``,
    ``max_steps`` and ``_steps``."""

    def _observations(self, timestep) -> dict:
        return {a: self.convention.convert(o) for a, o in zip(self.agents, timestep.observation)}

    def reset(self, *, seed=None, options=None):
        # meltingpot draws each episode's seed from the one given at build.
        timestep = self._env.reset()
        self._steps = 0
        return self._observations(timestep), {a: {} for a in self.agents}

    def step(self, action_dict):
        actions = [int(action_dict.get(a, 0)) for a in self.agents]
        timestep = self._env.step(actions)
        self._steps += 1
        rewards = np.asarray(timestep.reward, dtype=np.float64)
        done = timestep.last()
        cut = not done and self.max_steps is not None and self._steps >= self.max_steps
        terminateds = {a: done for a in self.agents} | {"__all__": done}
        truncateds = {a: cut for a in self.agents} | {"__all__": cut}
        return (self._observations(timestep), {a: float(r) for a, r in zip(self.agents, rewards)},
                terminateds, truncateds, {a: {} for a in self.agents})

    def close(self):
        self._env.close()


def _env_class():
    """The multi-agent sampler's environment class (``sampler="multi-agent"``),
    built on first use because its base class is RLlib's."""
    torch_only_rllib()
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    class MeltingPotMultiAgentEnv(_SubstrateAgents, MultiAgentEnv):
        """A Melting Pot substrate (with a capprof scenario's overrides) as an
        RLlib multi-agent env.

        ``env_config``: ``scenario`` (the all-focal Scenario record),
        ``downsample``, ``scale`` (the observation convention), ``max_steps``
        (truncate episodes; the substrate's own end applies too) and ``seed``.
        """

        _built = 0  # envs built in this process: each gets its own seed

        def __init__(self, env_config=None):
            super().__init__()
            import gymnasium as gym

            from capprof.meltingpot_import import import_meltingpot

            import_meltingpot()
            cfg = dict(env_config or {})
            self.scenario = cfg["scenario"]
            self.convention = _convention(cfg)
            self.max_steps = cfg.get("max_steps")
            type(self)._built += 1
            self._env, = _seeded_substrates(self.scenario, cfg, env_config, 1, type(self)._built)
            self.num_actions = num_actions(self._env)
            self.agents = self.possible_agents = [f"player_{i}" for i in range(self.scenario.n_players)]
            space = self.convention.space()
            self.observation_spaces = {a: space for a in self.agents}
            self.action_spaces = {a: gym.spaces.Discrete(self.num_actions) for a in self.agents}
            self._steps = 0

    return MeltingPotMultiAgentEnv


def _num_envs(cfg: dict, players: int) -> int:
    """The vector's length ``env_config`` asks for (one substrate's players by
    default); ValueError unless it is a whole number of substrates."""
    total = int(cfg.get("num_envs", players))
    if total % players:
        raise ValueError(f"num_envs {total} is not a multiple of the {players} players")
    return total


class _SubstratesPlayers:
    """How ``MeltingPotPlayersVectorEnv`` steps its substrates: the players of
    substrate ``k`` are rows ``k * players`` .. ``(k + 1) * players - 1`` of
    every batch. ``substrates`` (``capprof.runners.training.substrate_processes``)
    steps them, here or in worker processes, and restarts a substrate as soon
    as its episode ends; to gymnasium's NEXT_STEP autoreset, which RLlib's
    single-agent runner expects, the step that ended it reports its last
    views and the next step reports the restarted episode's first, without
    stepping it. Kept apart from the class ``_vector_env_class`` builds,
    whose ``__init__`` sets ``substrates`` (the stepper), ``players`` and
    ``n_substrates``, then calls ``_allocate``."""

    def _allocate(self) -> None:
        self._pending = np.zeros(self.n_substrates, dtype=bool)  # ended on the last step

    def reset(self, *, seed=None, options=None):
        self._pending[:] = False
        return self.substrates.restart_all().copy(), {}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.int64).reshape(self.n_substrates, self.players)
        rewards, ended = self.substrates.advance(actions, ~self._pending)
        obs = self.substrates.obs.copy()
        terminated = np.zeros(self.n_substrates, dtype=bool)
        truncated = np.zeros(self.n_substrates, dtype=bool)
        self._pending[:] = False
        for e in ended:
            obs[e.k * self.players:(e.k + 1) * self.players] = e.final
            terminated[e.k], truncated[e.k] = e.terminated, not e.terminated
            self._pending[e.k] = True
        spread = np.repeat  # every player of a substrate shares its end
        return (obs, rewards.reshape(-1), spread(terminated, self.players), spread(truncated, self.players), {})

    def close_extras(self, **kwargs):
        if hasattr(self, "substrates"):  # not when building them failed
            self.substrates.close()


def _substrates(scenario, cfg: dict, env_config, count: int, convention):
    """The vector env's stepper: its substrates in this process, or in
    ``cfg["processes"]`` worker processes."""
    processes, max_steps = int(cfg.get("processes", 0) or 0), cfg.get("max_steps")
    if processes:
        seeds = _substrate_seeds(cfg, env_config, count)
        return SubstrateProcesses(scenario, seeds, convention, max_steps, processes)
    envs = _seeded_substrates(scenario, cfg, env_config, count)
    return LocalSubstrates(envs, scenario.n_players, convention, max_steps)


def _vector_env_class():
    """The vectorised sampler's environment (``sampler="vector"``): with one
    shared module every player is an independent single-agent env, so RLlib's
    single-agent runner batches all their forward passes and keeps one small
    episode record per player instead of a multi-agent episode per step."""
    torch_only_rllib()
    import gymnasium as gym

    class MeltingPotPlayersVectorEnv(_SubstratesPlayers, gym.vector.VectorEnv):
        """``substrates`` Melting Pot substrates x ``n`` players as one vector of
        ``substrates * n`` single-agent envs (sub-env ``k * n + i`` is player
        ``i`` of substrate ``k``), as SuperSuit's Markov vector env presents a
        parallel multi-agent env. Observations are converted for all players
        of a substrate at once (``ObsConvention.convert_many``, identical to
        the per-player conversion ``rllib:`` members play with).

        ``env_config`` is that of ``MeltingPotMultiAgentEnv`` plus ``num_envs``
        (RLlib passes ``num_envs_per_env_runner``; a multiple of the players)
        and ``processes`` (worker processes stepping the substrates; 0: in
        this process). Episodes of a substrate end together; the next
        ``step`` returns the restarted episode's first observations
        (gymnasium's NEXT_STEP autoreset, which RLlib's single-agent runner
        expects). The array sampler (``rllib_sampler.ArraySampler``) steps
        ``substrates`` directly.
        """

        metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

        def __init__(self, env_config=None):
            from capprof.meltingpot_import import import_meltingpot

            import_meltingpot()
            cfg = dict(env_config or {})
            self.scenario = cfg["scenario"]
            self.players = self.scenario.n_players
            self.num_envs = total = _num_envs(cfg, self.players)
            self.n_substrates = total // self.players
            self.convention = _convention(cfg)
            self.substrates = _substrates(self.scenario, cfg, env_config, self.n_substrates, self.convention)
            self.num_actions = self.substrates.num_actions
            self.single_observation_space = self.convention.space()
            self.single_action_space = gym.spaces.Discrete(self.num_actions)
            self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, total)
            self.action_space = gym.spaces.MultiDiscrete(np.full(total, self.num_actions))
            self._allocate()

    return MeltingPotPlayersVectorEnv
