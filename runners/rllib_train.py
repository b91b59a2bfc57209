"""Train a small PPO population on a Melting Pot substrate with RLlib and save
a checkpoint that ``capprof run --population rllib:DIR`` plays.

The substrate is wrapped as an RLlib ``MultiAgentEnv`` (agents ``player_0`` ..
``player_{n-1}``, one per slot of the substrate's default roles), each agent
observing its RGB view through ``capprof.runners.rllib_obs.ObsConvention`` (by
default downsampled x8 to 11x11x3 and scaled to [0, 1]). All agents share one
module (``shared``) unless ``--per-player`` gives each its own. The new API
stack is used throughout (RLModule, torch); the model is a tiny CNN (with
``--lstm``, followed by a 32-cell LSTM).

    python -m capprof.runners.rllib_train commons_harvest__open --iterations 2 --out ckpt/

writes an Algorithm checkpoint into ``ckpt/`` plus ``ckpt/capprof_rllib.json``
(the observation convention and the substrate).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from capprof.errors import CapprofError
from capprof.runners.rllib_obs import CONVENTION_FILE, ObsConvention

SHARED_MODULE = "shared"


def _env_class():
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    class MeltingPotMultiAgentEnv(MultiAgentEnv):
        """A Melting Pot substrate as an RLlib multi-agent env.

        ``env_config``: ``substrate`` (name), ``downsample``, ``scale`` (the
        observation convention) and ``max_steps`` (truncate episodes; the
        substrate's own episode end applies too).
        """

        def __init__(self, env_config=None):
            super().__init__()
            from capprof.runners._meltingpot import import_meltingpot

            import_meltingpot()
            from meltingpot import substrate as mp_substrate

            import gymnasium as gym

            cfg = dict(env_config or {})
            self.substrate_name = cfg.get("substrate", "commons_harvest__open")
            self.convention = ObsConvention(downsample=int(cfg.get("downsample", 8)),
                                            scale=bool(cfg.get("scale", True)))
            self.max_steps = cfg.get("max_steps")
            config = mp_substrate.get_config(self.substrate_name)
            self.roles = tuple(config.default_player_roles)
            self.num_actions = len(config.action_set)
            self._env = mp_substrate.build(self.substrate_name, roles=self.roles)
            self.agents = self.possible_agents = [f"player_{i}" for i in range(len(self.roles))]
            space = self.convention.space()
            self.observation_spaces = {a: space for a in self.agents}
            self.action_spaces = {a: gym.spaces.Discrete(self.num_actions) for a in self.agents}
            self._steps = 0

        def _observations(self, timestep) -> dict:
            return {a: self.convention.convert(o) for a, o in zip(self.agents, timestep.observation)}

        def reset(self, *, seed=None, options=None):
            # meltingpot reseeds each episode from the seed drawn at build.
            timestep = self._env.reset()
            self._steps = 0
            return self._observations(timestep), {a: {} for a in self.agents}

        def step(self, action_dict):
            actions = [int(action_dict.get(a, 0)) for a in self.agents]
            timestep = self._env.step(actions)
            self._steps += 1
            obs = self._observations(timestep)
            rewards = {a: float(r) for a, r in zip(self.agents, timestep.reward)}
            done = timestep.last()
            cut = not done and self.max_steps is not None and self._steps >= self.max_steps
            terminateds = {a: done for a in self.agents} | {"__all__": done}
            truncateds = {a: cut for a in self.agents} | {"__all__": cut}
            return obs, rewards, terminateds, truncateds, {a: {} for a in self.agents}

        def close(self):
            self._env.close()

    return MeltingPotMultiAgentEnv


def ppo_config(substrate: str, downsample: int = 8, scale: bool = True, per_player: bool = False,
               batch_size: int = 400, minibatch_size: int = 200, epochs: int = 1,
               max_episode_steps: int | None = 200, seed: int = 0, lstm: bool = False):
    """A PPO config (new API stack) with a tiny CNN; ``batch_size`` counts env
    steps (every env step gives one agent step per player)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from capprof.runners._meltingpot import import_meltingpot

    import_meltingpot()
    from meltingpot import substrate as mp_substrate

    n_players = len(mp_substrate.get_config(substrate).default_player_roles)
    agents = [f"player_{i}" for i in range(n_players)]
    modules = agents if per_player else [SHARED_MODULE]
    side = ObsConvention(downsample=downsample).shape()[0]
    # Two strided 3x3 convolutions (11x11 -> 6x6 -> 3x3) for downsampled views;
    # full 88x88 views get a larger first stride.
    first_stride = 1 if side <= 22 else 4
    model = DefaultModelConfig(
        conv_filters=[[16, [3, 3], 2 * first_stride], [32, [3, 3], 2]],
        head_fcnet_hiddens=[64], vf_share_layers=True,
        use_lstm=lstm, lstm_cell_size=32, max_seq_len=20)
    env_config = {"substrate": substrate, "downsample": downsample, "scale": scale, "max_steps": max_episode_steps}
    config = (
        PPOConfig()
        .environment(_env_class(), env_config=env_config)
        .framework("torch")
        .env_runners(num_env_runners=0, rollout_fragment_length="auto", num_cpus_per_env_runner=1)
        .learners(num_learners=0)
        .multi_agent(
            policies=set(modules),
            policy_mapping_fn=(lambda agent_id, episode, **kw: agent_id) if per_player
            else (lambda agent_id, episode, **kw: SHARED_MODULE),
        )
        .rl_module(rl_module_spec=MultiRLModuleSpec(
            rl_module_specs={m: RLModuleSpec(model_config=model) for m in modules}))
        .training(train_batch_size_per_learner=batch_size, minibatch_size=minibatch_size,
                  num_epochs=epochs, lr=3e-4)
        .debugging(seed=seed, log_level="ERROR")
    )
    return config


def train(substrate: str, out: Path, iterations: int = 2, downsample: int = 8, scale: bool = True,
          per_player: bool = False, batch_size: int = 400, minibatch_size: int = 200, epochs: int = 1,
          max_episode_steps: int | None = 200, seed: int = 0, lstm: bool = False, quiet: bool = False) -> Path:
    """Train PPO for ``iterations`` and save an Algorithm checkpoint into ``out``
    with ``capprof_rllib.json`` beside it. Returns ``out``."""
    if iterations < 1:
        raise CapprofError(f"--iterations must be at least 1 (got {iterations})")
    if downsample < 1 or 88 % downsample:
        raise CapprofError(f"--downsample must divide 88 (got {downsample}); use 1, 2, 4, 8 or 11")
    if minibatch_size > batch_size:
        raise CapprofError(f"--minibatch-size {minibatch_size} exceeds --batch-size {batch_size}")
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise CapprofError(f"--out {out} is not empty; choose a new directory")
    from capprof.runners._meltingpot import import_meltingpot

    import_meltingpot()
    from meltingpot import substrate as mp_substrate

    if substrate not in mp_substrate.SUBSTRATES:
        from capprof.errors import did_you_mean

        raise CapprofError(f'unknown substrate "{substrate}"{did_you_mean(substrate, mp_substrate.SUBSTRATES)}')
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=max(1, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        started = True
    try:
        algo = ppo_config(substrate, downsample, scale, per_player, batch_size, minibatch_size, epochs,
                          max_episode_steps, seed, lstm).build_algo()
        try:
            for i in range(iterations):
                start = time.perf_counter()
                result = algo.train()
                if not quiet:
                    runners = result.get("env_runners", {})
                    steps = runners.get("num_env_steps_sampled_lifetime", float("nan"))
                    ret = runners.get("episode_return_mean", float("nan"))
                    print(f"iteration {i + 1}/{iterations}: {time.perf_counter() - start:.1f} s, "
                          f"env steps so far {steps}, mean episode return {ret}", file=sys.stderr)
            out.mkdir(parents=True, exist_ok=True)
            algo.save_to_path(str(out))
        finally:
            algo.stop()
    finally:
        if started:
            ray.shutdown()
    n_actions = len(mp_substrate.get_config(substrate).action_set)
    (out / CONVENTION_FILE).write_text(ObsConvention(downsample=downsample, scale=scale).to_json(
        substrate=substrate, num_actions=n_actions, iterations=iterations,
        modules=sorted({SHARED_MODULE} if not per_player else
                       {f"player_{i}" for i in range(len(mp_substrate.get_config(substrate).default_player_roles))})))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m capprof.runners.rllib_train",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("substrate", help="Melting Pot substrate, e.g. commons_harvest__open")
    parser.add_argument("--out", required=True, metavar="DIR", help="checkpoint directory (new or empty)")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--downsample", type=int, default=8, help="RGB downsampling factor (1 = full 88x88)")
    parser.add_argument("--no-scale", action="store_true", help="feed uint8 0..255 instead of [0, 1] floats")
    parser.add_argument("--per-player", action="store_true", help="one module per player instead of one shared")
    parser.add_argument("--batch-size", type=int, default=400, help="env steps per iteration")
    parser.add_argument("--minibatch-size", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-episode-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lstm", action="store_true", help="a recurrent module (LSTM of 32 cells)")
    args = parser.parse_args(argv)
    try:
        out = train(args.substrate, Path(args.out), args.iterations, args.downsample, not args.no_scale,
                    args.per_player, args.batch_size, args.minibatch_size, args.epochs,
                    args.max_episode_steps, args.seed, args.lstm)
    except CapprofError as exc:
        print(f"capprof: error: {exc}", file=sys.stderr)
        return 2
    print(f"capprof: checkpoint in {out}; play it with --population rllib:{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
