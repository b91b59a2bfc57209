"""Train a tiny RLlib 2.6 (old API stack) checkpoint in the contest's environment.

Run it with the legacy interpreter (``make legacy-env``), not capprof's::

    .venv-legacy/bin/python runners/training/rllib_legacy_train.py OUT [--lstm] [--flat] [--steps 400]

It writes what the 2023 contest's baseline trainer left behind, so that
``rllib-legacy:`` can be tried without a contest checkpoint at hand:

* ``OUT/params.json``: the trial's config, ``env_config.scaled`` the RGB
  downsampling factor (8: 88x88 -> 11x11), as Tune wrote it;
* ``OUT/checkpoint_000001/``: the Algorithm checkpoint, ``policies/agent_i/``
  one policy per player (``Algorithm.save``);
* ``OUT/policy_agent_0/``: ``agent_0`` alone as a Policy checkpoint
  (``Policy.export_checkpoint``).

The environment is a stand-in with one Melting Pot substrate's per-player
observation spec (commons_harvest__open without ``WORLD.RGB``: ``RGB`` as the
contest's wrapper downsampled it, uint8, ``READY_TO_SHOOT`` and
``COLLECTIVE_REWARD`` as float64 scalars) and its 8 actions; observations are
random, rewards favour moving forward. The point is a checkpoint of the real
format and model classes (the contest's ModelV2 MLP, or its LSTM with
``lstm_use_prev_action``), not a good agent. ``--flat`` trains instead on the
RGB view alone, scaled to [-1, 1] and flattened (a Box of 363 floats), as some
contest teams did.

Standard library, NumPy, gymnasium and ray only: no capprof import.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _parse(argv) -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--lstm", action="store_true", help="the contest baseline's LSTM (prev action in)")
    parser.add_argument("--flat", action="store_true", help="RGB scaled to [-1, 1] and flattened, no dict")
    parser.add_argument("--steps", type=int, default=400, help="env steps to train (default 400)")
    parser.add_argument("--players", type=int, default=2)
    parser.add_argument("--actions", type=int, default=8)
    parser.add_argument("--scaled", type=int, default=8, help="RGB downsampling factor (env_config.scaled)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _observation_space(flat: bool, side: int):
    """One player's observation space: the substrate's spec (RGB downsampled
    to ``side`` x ``side``), or with ``flat`` that view scaled and flattened."""
    import gymnasium as gym
    import numpy as np

    if flat:
        return gym.spaces.Box(-1.0, 1.0, (side * side * 3,), np.float32)
    return gym.spaces.Dict({
        "COLLECTIVE_REWARD": gym.spaces.Box(-np.inf, np.inf, (), np.float64),
        "READY_TO_SHOOT": gym.spaces.Box(-np.inf, np.inf, (), np.float64),
        "RGB": gym.spaces.Box(0, 255, (side, side, 3), np.uint8),
    })


def _stand_in_class(obs_space, act_space, agents, seed: int):
    """The stand-in environment's class: ``agents`` each seeing ``obs_space``
    and acting in ``act_space``."""
    import gymnasium as gym
    import numpy as np
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    class StandIn(MultiAgentEnv):
        """Random views of the substrate's spec; reward 1 for moving forward."""

        def __init__(self, config=None):
            super().__init__()
            self._agent_ids = set(agents)
            self.observation_space = gym.spaces.Dict({a: obs_space for a in agents})
            self.action_space = gym.spaces.Dict({a: act_space for a in agents})
            self._obs_space_in_preferred_format = self._action_space_in_preferred_format = True
            self._rng = np.random.default_rng(seed)
            self._t = 0

        def _obs(self):
            return {a: obs_space.sample() for a in agents}

        def reset(self, *, seed=None, options=None):
            self._t = 0
            return self._obs(), {}

        def step(self, actions):
            self._t += 1
            rewards = {a: float(actions[a] == 1) for a in actions}
            done = self._t >= 100
            return self._obs(), rewards, {"__all__": done}, {"__all__": False}, {}

    return StandIn


def _model(lstm: bool, side: int) -> dict:
    """The model config: the contest baseline's MLP, or with ``lstm`` its LSTM."""
    # The contest baseline's shape of model: convolutions over the 11x11 view
    # (the last one "valid", down to 1x1), then a fully connected head.
    model = {"fcnet_hiddens": [32, 32], "conv_filters": [[8, [3, 3], 1], [16, [side, side], 1]]}
    if lstm:
        model.update(use_lstm=True, lstm_cell_size=16, lstm_use_prev_action=True, lstm_use_prev_reward=False,
                     max_seq_len=20)
    return model


def _ppo_config(args, env_config: dict, model: dict):
    """PPO on the old API stack (ModelV2, no RLModule or Learner), in this
    process, one policy ``agent_i`` per ``player_i``."""
    from ray.rllib.algorithms.ppo import PPOConfig

    batch = max(100, min(args.steps, 400))
    return (PPOConfig()
            .environment("standin", env_config=env_config, disable_env_checking=True)
            .framework("torch")
            .rl_module(_enable_rl_module_api=False)
            .training(_enable_learner_api=False, model=model, train_batch_size=batch,
                      sgd_minibatch_size=min(batch, 100), num_sgd_iter=1)
            .rollouts(num_rollout_workers=0, rollout_fragment_length="auto")
            .resources(num_gpus=0)
            .debugging(seed=args.seed)
            .multi_agent(policies={"agent_%d" % i for i in range(args.players)},
                         policy_mapping_fn=lambda agent_id, *a, **k: "agent_" + agent_id.split("_")[1]))


def _save(algo, out: str, params: dict) -> str:
    """Writes what the contest's trainer left in ``out`` (the module
    docstring lists it) and returns the Algorithm checkpoint's path."""
    os.makedirs(out, exist_ok=True)
    checkpoint = algo.save(out)  # OUT/checkpoint_<iteration>, as Tune names them
    algo.get_policy("agent_0").export_checkpoint(os.path.join(out, "policy_agent_0"))
    with open(os.path.join(out, "params.json"), "w") as f:
        json.dump(params, f, indent=2)
    return checkpoint


def main(argv=None) -> int:
    args = _parse(argv)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # read when ray is first imported
    import gymnasium as gym
    import ray
    from ray.tune.registry import register_env

    side = 88 // args.scaled
    agents = ["player_%d" % i for i in range(args.players)]
    stand_in = _stand_in_class(_observation_space(args.flat, side), gym.spaces.Discrete(args.actions), agents,
                               args.seed)
    register_env("standin", lambda config: stand_in(config))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    model = _model(args.lstm, side)
    env_config = {"substrate": "commons_harvest__open", "roles": ["default"] * args.players,
                  "scaled": args.scaled}
    algo = _ppo_config(args, env_config, model).build()
    began, steps = time.time(), 0
    while steps < args.steps:
        steps = int(algo.train()["num_env_steps_sampled"])
    params = {"env_config": env_config, "model": model, "framework": "torch", "env": "standin"}
    checkpoint = _save(algo, args.out, params)
    sys.stdout.write("trained %d env steps in %.1f s: %s\n" % (steps, time.time() - began, checkpoint))
    algo.stop()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
