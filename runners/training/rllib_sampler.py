"""The array sampler of ``capprof train`` (``sampler="array"``, the default
with one shared module): RLlib's single-agent env runner with its sampling
loop replaced by one that keeps every player's experience in arrays.

RLlib's own loop (``SingleAgentEnvRunner._sample``) runs its connector
pipelines and appends to one episode object per player at every step, in
Python: with 8 substrates of 7 players that is 56 episode appends, a batch
and an unbatch per step, about a quarter of sampling time
(docs/training.md, "Where the time went"). Here a step is one forward pass
over all players' views, one draw from the categorical distribution and the
substrates' steps; the step's observations, actions, log-probabilities,
logits and rewards are written into preallocated arrays. Episode objects
are built once per ``sample`` call, from slices of those arrays: one
``SingleAgentEpisode`` per player per episode chunk, numpy already, with the
same columns RLlib's loop stores (``obs``, ``actions``, ``rewards``,
``action_logp``, ``action_dist_inputs``, the weights' sequence number), so
PPO's learner pipeline (GAE, value bootstrapping of cut chunks) reads them
as it reads its own.

A substrate whose episode ended restarts at once (its last observation
closes the ended chunk, its first opens the next): no step is spent on an
autoreset. Each player's view goes through the environment's conversion
(``ObsConvention.convert_many``), the one ``rllib:`` members play with.

What it does not do, and falls back to RLlib's loop for: recurrent modules
(state in and out), random actions, and sampling whole episodes
(``num_episodes``). It makes no per-episode callbacks (capprof trains with
none).
"""

from __future__ import annotations

import math
import time
import uuid

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO


class _Steps:
    """One ``sample`` call's experience: ``T`` steps of ``N`` players.
    Row ``t`` of ``obs`` is what the players saw before acting at step
    ``t``; row ``T`` what they saw after the last step. A chunk that ended
    at step ``t`` (its substrate's episode ended there) has its last
    observation in ``final[(t, k)]`` (substrate ``k``), because row
    ``t + 1`` already holds the restarted episode's first."""

    def __init__(self, steps: int, players: int, obs_shape: tuple, actions: int):
        self.obs = np.empty((steps + 1, players, *obs_shape), dtype=np.float32)
        self.actions = np.empty((steps, players), dtype=np.int64)
        self.logp = np.empty((steps, players), dtype=np.float32)
        self.logits = np.empty((steps, players, actions), dtype=np.float32)
        self.rewards = np.zeros((steps, players), dtype=np.float32)
        self.final: dict[tuple[int, int], np.ndarray] = {}
        self.terminated: dict[tuple[int, int], bool] = {}  # else truncated (max_steps)


class _Chunk:
    """Where one player's current episode stands: its id, the env step it
    started at, the step of this call its current chunk starts at, and its
    return, length and start time so far (for the episode metrics)."""

    __slots__ = ("id_", "t_started", "start", "ret", "length", "began")

    def __init__(self, t_started: int = 0):
        self.id_ = uuid.uuid4().hex
        self.t_started, self.start, self.ret, self.length = t_started, 0, 0.0, 0
        self.began = time.perf_counter()


def categorical_draw(logits: torch.Tensor, explore: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Actions and their log-probabilities under ``softmax(logits)``: a draw
    when ``explore`` (what RLlib's TorchCategorical samples), else the most
    probable action (its ``forward_inference`` choice).

    log p(a) = logits[a] - logsumexp(logits)"""
    logp_all = torch.log_softmax(logits, dim=-1)
    actions = torch.multinomial(logp_all.exp(), 1).squeeze(-1) if explore else logits.argmax(-1)
    return actions, logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)


class ArraySampler(SingleAgentEnvRunner):
    """``SingleAgentEnvRunner`` whose sampling of timesteps keeps the
    experience in arrays (the module's docstring says how). Its env is
    ``MeltingPotPlayersVectorEnv`` (``capprof.runners.training.rllib_env``),
    whose ``substrates`` it steps directly (in this process or in worker
    processes, ``capprof.runners.training.substrate_processes``)."""

    def __init__(self, *, config, **kwargs):
        super().__init__(config=config, **kwargs)
        self._chunks: list[_Chunk] = []
        self._current_obs: np.ndarray | None = None

    # ---------------------------------------------------------------- sampling

    def _sample(self, *, num_timesteps=None, num_episodes=None, explore, random_actions=False,
                force_reset=False):
        if num_timesteps is None or random_actions or self.module.is_stateful():
            return super()._sample(num_timesteps=num_timesteps, num_episodes=num_episodes, explore=explore,
                                   random_actions=random_actions, force_reset=force_reset)
        env = self.env.unwrapped
        if force_reset or self._needs_initial_reset or self._current_obs is None:
            self._restart_all(env)
        steps = max(1, math.ceil(num_timesteps / self.num_envs))
        record = _Steps(steps, self.num_envs, env.single_observation_space.shape, env.num_actions)
        record.obs[0] = self._current_obs
        ended = self._play(env, record, explore)
        episodes, done = self._episodes(env, record, ended)
        self._current_obs = record.obs[steps].copy()
        sampled = steps * self.num_envs
        self._log_env_steps(metric=self._metrics_num_env_steps_sampled, num_steps=sampled)
        self._increase_sampled_metrics(sampled, done)
        return episodes

    def _restart_all(self, env) -> None:
        """Every substrate at the first step of a new episode; new chunks."""
        self._current_obs, _ = env.reset()
        self._chunks = [_Chunk() for _ in range(self.num_envs)]
        self._ongoing_episodes_for_metrics.clear()
        self._needs_initial_reset = False

    def _play(self, env, record: _Steps, explore: bool) -> list[list[int]]:
        """Step all substrates ``len(record.actions)`` times, acting with the
        module; which substrates ended at each step."""
        module, substrates = self.module, env.substrates
        forward = module.forward_exploration if explore else module.forward_inference
        shape, everyone = (env.n_substrates, env.players), np.ones(env.n_substrates, dtype=bool)
        ended: list[list[int]] = []
        for t in range(len(record.actions)):
            with torch.no_grad():
                logits = forward({Columns.OBS: torch.from_numpy(record.obs[t])})[Columns.ACTION_DIST_INPUTS]
                actions, logp = categorical_draw(logits, explore)
            record.logits[t], record.actions[t], record.logp[t] = logits.numpy(), actions.numpy(), logp.numpy()
            rewards, here = substrates.advance(record.actions[t].reshape(shape), everyone)
            record.rewards[t] = rewards.reshape(-1)
            for e in here:
                record.final[(t, e.k)], record.terminated[(t, e.k)] = e.final, e.terminated
            record.obs[t + 1] = substrates.obs
            ended.append([e.k for e in here])
        return ended

    def _episodes(self, env, record: _Steps, ended: list[list[int]]) -> tuple[list, int]:
        """The call's episode chunks, built from the arrays: the chunks that
        ended (their substrate's episode ended) in step order, then one
        ongoing chunk per player (cut at the call's end, as RLlib cuts
        them); and how many episodes ended."""
        players, steps = env.players, len(record.actions)
        episodes, done = [], 0
        for t, substrates in enumerate(ended):
            for k in substrates:
                terminated = record.terminated[(t, k)]
                for i in range(k * players, (k + 1) * players):
                    chunk = self._chunks[i]
                    last = record.final[(t, k)][i - k * players]
                    obs = np.concatenate([record.obs[chunk.start:t + 1, i], last[None]])
                    episodes.append(self._episode(record, chunk, i, obs, chunk.start, t + 1,
                                                  terminated=terminated, truncated=not terminated))
                    self._finish(chunk, record.rewards[chunk.start:t + 1, i])
                    self._chunks[i] = fresh = _Chunk()
                    fresh.start = t + 1
                done += players
        for i, chunk in enumerate(self._chunks):
            if chunk.start < steps:
                episodes.append(self._episode(record, chunk, i, record.obs[chunk.start:steps + 1, i], chunk.start,
                                              steps, terminated=False, truncated=False))
                chunk.ret += float(record.rewards[chunk.start:steps, i].sum())
                chunk.length += steps - chunk.start
                chunk.t_started += steps - chunk.start
            chunk.start = 0
        return episodes, done

    def _episode(self, record: _Steps, chunk: _Chunk, i: int, obs: np.ndarray, start: int, stop: int, *,
                 terminated: bool, truncated: bool) -> SingleAgentEpisode:
        """Player ``i``'s chunk of steps ``start`` .. ``stop - 1`` of this
        call as a numpy ``SingleAgentEpisode`` (``obs`` holds its
        ``stop - start + 1`` observations)."""
        n = stop - start
        outputs = {
            Columns.ACTION_LOGP: InfiniteLookbackBuffer(record.logp[start:stop, i].copy()),
            Columns.ACTION_DIST_INPUTS: InfiniteLookbackBuffer(record.logits[start:stop, i].copy()),
            WEIGHTS_SEQ_NO: InfiniteLookbackBuffer(np.full(n, self._weights_seq_no, dtype=np.int64)),
        }
        return SingleAgentEpisode(
            chunk.id_, observations=InfiniteLookbackBuffer(np.ascontiguousarray(obs)),
            observation_space=self.env.single_observation_space,
            infos=InfiniteLookbackBuffer([{} for _ in range(n + 1)]),
            actions=InfiniteLookbackBuffer(record.actions[start:stop, i].copy()),
            action_space=self.env.single_action_space,
            rewards=InfiniteLookbackBuffer(record.rewards[start:stop, i].astype(np.float32)),
            terminated=terminated, truncated=truncated, extra_model_outputs=outputs,
            t_started=chunk.t_started, len_lookback_buffer=0)

    def _finish(self, chunk: _Chunk, rewards: np.ndarray) -> None:
        """Log an ended episode's length, return and duration, as RLlib's
        runner logs them when its episodes end."""
        self._log_episode_metrics(chunk.length + len(rewards), chunk.ret + float(rewards.sum()),
                                  time.perf_counter() - chunk.began)
