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
        return get_scenario(name)
    try:
        scenario = get_scenario(name)
    except CapprofError:
        raise CapprofError(
            f'unknown substrate or scenario "{name}"{did_you_mean(name, substrates + variants)}; train on a '
            "substrate (`capprof tags` lists them) or a variant (`capprof scenarios --suite variants`)") from None
    if scenario.n_background:
        raise CapprofError(
            f'scenario "{name}" has {scenario.n_background} background player(s); capprof train takes a substrate '
            f"(e.g. {scenario.substrate}) or an all-focal variant: {', '.join(variants)}")
    return scenario


# ------------------------------------------------------------ the environment


def _env_class():
    torch_only_rllib()
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    class MeltingPotMultiAgentEnv(MultiAgentEnv):
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
            from capprof.runners.episode.substrate import build_substrate

            import_meltingpot()
            cfg = dict(env_config or {})
            self.scenario = cfg["scenario"]
            self.convention = ObsConvention(downsample=int(cfg.get("downsample", 8)),
                                            scale=bool(cfg.get("scale", True)))
            self.max_steps = cfg.get("max_steps")
            worker = int(getattr(env_config, "worker_index", 0) or 0)
            type(self)._built += 1
            state = np.random.SeedSequence([int(cfg.get("seed", 0)), worker, type(self)._built]).generate_state(1)
            self._env = build_substrate(self.scenario, int(state[0]) % (2**31 - 1) + 1)
            self.num_actions = int(self._env.action_spec()[0].num_values)
            n = self.scenario.n_players
            self.agents = self.possible_agents = [f"player_{i}" for i in range(n)]
            space = self.convention.space()
            self.observation_spaces = {a: space for a in self.agents}
            self.action_spaces = {a: gym.spaces.Discrete(self.num_actions) for a in self.agents}
            self._steps = 0

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

    return MeltingPotMultiAgentEnv


def _vector_env_class():
    """The vectorised sampler's environment (``sampler="vector"``): with one
    shared module every player is an independent single-agent env, so RLlib's
    single-agent runner batches all their forward passes and keeps one small
    episode record per player instead of a multi-agent episode per step."""
    torch_only_rllib()
    import gymnasium as gym

    class MeltingPotPlayersVectorEnv(gym.vector.VectorEnv):
        """``substrates`` Melting Pot substrates x ``n`` players as one vector of
        ``substrates * n`` single-agent envs (sub-env ``k * n + i`` is player
        ``i`` of substrate ``k``), as SuperSuit's Markov vector env presents a
        parallel multi-agent env. Observations are converted for all players
        of a substrate at once (``ObsConvention.convert_many``, identical to
        the per-player conversion ``rllib:`` members play with).

        ``env_config`` is that of ``MeltingPotMultiAgentEnv`` plus ``num_envs``
        (RLlib passes ``num_envs_per_env_runner``; a multiple of the players).
        Episodes of a substrate end together; the next ``step`` resets it and
        returns its first observations (gymnasium's NEXT_STEP autoreset, which
        RLlib's single-agent runner expects).
        """

        metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

        def __init__(self, env_config=None):
            from capprof.meltingpot_import import import_meltingpot
            from capprof.runners.episode.substrate import build_substrate

            import_meltingpot()
            cfg = dict(env_config or {})
            self.scenario = cfg["scenario"]
            self.players = self.scenario.n_players
            total = int(cfg.get("num_envs", self.players))
            if total % self.players:
                raise ValueError(f"num_envs {total} is not a multiple of the {self.players} players")
            self.substrates = total // self.players
            self.num_envs = total
            self.convention = ObsConvention(downsample=int(cfg.get("downsample", 8)),
                                            scale=bool(cfg.get("scale", True)))
            self.max_steps = cfg.get("max_steps")
            worker = int(getattr(env_config, "worker_index", 0) or 0)
            seeds = np.random.SeedSequence([int(cfg.get("seed", 0)), worker]).generate_state(self.substrates)
            self._envs = [build_substrate(self.scenario, int(s) % (2**31 - 1) + 1) for s in seeds]
            self.num_actions = int(self._envs[0].action_spec()[0].num_values)
            self.single_observation_space = self.convention.space()
            self.single_action_space = gym.spaces.Discrete(self.num_actions)
            self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, total)
            self.action_space = gym.spaces.MultiDiscrete(np.full(total, self.num_actions))
            self._steps = np.zeros(self.substrates, dtype=np.int64)
            self._ended = np.zeros(self.substrates, dtype=bool)
            shape = (total, *self.single_observation_space.shape)
            self._obs = np.zeros(shape, dtype=self.single_observation_space.dtype)

        def _put(self, k: int, timestep) -> None:
            rows = slice(k * self.players, (k + 1) * self.players)
            self._obs[rows] = self.convention.convert_many(timestep.observation)

        def reset(self, *, seed=None, options=None):
            # meltingpot draws each episode's seed from the one given at build.
            for k, env in enumerate(self._envs):
                self._put(k, env.reset())
            self._steps[:] = 0
            self._ended[:] = False
            return self._obs.copy(), {}

        def step(self, actions):
            actions = np.asarray(actions, dtype=np.int64).reshape(self.substrates, self.players)
            rewards = np.zeros((self.substrates, self.players), dtype=np.float32)
            terminated = np.zeros(self.substrates, dtype=bool)
            truncated = np.zeros(self.substrates, dtype=bool)
            for k, env in enumerate(self._envs):
                if self._ended[k]:  # NEXT_STEP autoreset: this step starts a new episode
                    self._put(k, env.reset())
                    self._steps[k] = 0
                    self._ended[k] = False
                    continue
                timestep = env.step(actions[k])
                self._steps[k] += 1
                self._put(k, timestep)
                rewards[k] = np.asarray(timestep.reward, dtype=np.float32)
                terminated[k] = timestep.last()
                truncated[k] = (not terminated[k] and self.max_steps is not None
                                and self._steps[k] >= self.max_steps)
                self._ended[k] = terminated[k] or truncated[k]
            spread = np.repeat  # every player of a substrate shares its end
            return (self._obs.copy(), rewards.reshape(-1), spread(terminated, self.players),
                    spread(truncated, self.players), {})

        def close_extras(self, **kwargs):
            for env in self._envs:
                env.close()

    return MeltingPotPlayersVectorEnv
