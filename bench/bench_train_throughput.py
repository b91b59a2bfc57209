"""How fast does ``capprof train`` sample and learn? Env steps per second of
training configurations on commons_harvest__open, measured in one run on this
machine, beside the raw substrate with random actions (the ceiling: no
policy, no learner).

Each configuration builds the real PPO algorithm ``capprof train`` builds
(``capprof.runners.training.rllib_train.ppo_config``), runs one warm-up iteration, then
times ``--iterations`` iterations of ``--batch-size`` env steps (sampling and
the PPO update, what the learning curve's ``steps_per_second`` counts) and
prints where the time went (RLlib's sampling and learner timers).

Configurations (``--configs``, comma-separated):
    before        the configuration before this bench's changes: RLlib's
                  multi-agent runner, one substrate, sampling in the trainer,
                  each player's view downsampled by one integer sum over two
                  strided axes (the conversion as it was; same numbers)
                  and torch's own thread count (one per core)
    multi-agent   the multi-agent runner with today's conversion (1 torch thread)
    vector        the players as a vector of single-agent envs in RLlib's
                  own single-agent runner, one substrate, in the trainer
    vector-8      the same with 8 substrates (the default before the array
                  sampler)
    threads-per-core  the default with a torch thread per core
    16-substrates the default with 16 substrates per sampler
    2-runners     the vectorised sampler in 2 remote env runners of 8
                  substrates each (one per core), the learner in the trainer
    array         the array sampler (one forward pass and numpy episode
                  records for all players), 8 substrates in the trainer
    array-1-process, array-2-processes
                  the array sampler with its 8 substrates in 1 or 2 worker
                  processes (``--substrate-processes``)
    array-16-2-processes  the same with 16 substrates
    default       what `capprof train` uses today without options (the array
                  sampler, 8 substrates in 2 worker processes that build
                  and start each substrate's next reset while the learner
                  updates)
    default-unprepared  the default with every reset built when its episode
                  ends (as before the workers prepared them)

Usage:
    .venv/bin/python bench/bench_train_throughput.py                 # ~10 min on 2 idle cores
    .venv/bin/python bench/bench_train_throughput.py --iterations 8 --configs before,vector-8,array,default
    .venv/bin/python bench/bench_train_throughput.py --iterations 1 --configs multi-agent,default
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from capprof.runners.training import substrate_processes

SUBSTRATE = "commons_harvest__open"
DEFAULT_IDLE_SECONDS = substrate_processes.IDLE_SECONDS
CONFIGS = {
    "before": {"sampler": "multi-agent", "torch_threads": 0},
    "multi-agent": {"sampler": "multi-agent"},
    "vector": {"sampler": "vector", "env_runners": 0, "envs_per_runner": 1},
    "threads-per-core": {"torch_threads": 0},
    "16-substrates": {"envs_per_runner": 16},
    "2-runners": {"env_runners": 2, "envs_per_runner": 8},
    "vector-8": {"sampler": "vector"},
    "array": {"sampler": "array", "substrate_processes": 0},
    "array-1-process": {"sampler": "array", "substrate_processes": 1},
    "array-2-processes": {"sampler": "array", "substrate_processes": 2},
    "array-16-2-processes": {"sampler": "array", "substrate_processes": 2, "envs_per_runner": 16},
    "default": {},
    "default-unprepared": {"prepare_resets": False},
}


def _integer_block_mean(self, observation: dict) -> np.ndarray:
    """ObsConvention.convert as it was before the float32 block sums (the
    same numbers; the "before" configuration plays with it)."""
    rgb = np.asarray(observation[self.observation])
    f = self.downsample
    if f > 1:
        h, w, c = rgb.shape
        blocks = rgb[: h - h % f, : w - w % f].reshape(h // f, f, w // f, f, c)
        rgb = blocks.sum(axis=(1, 3), dtype=np.uint32) / float(f * f)
    if self.scale:
        return (rgb / 255.0).astype(np.float32)
    return np.rint(rgb).astype(np.uint8) if f > 1 else rgb.astype(np.uint8)


def raw_steps_per_second(scenario, steps: int, seed: int = 0) -> float:
    """Random actions on the bare substrate, resets included (the ceiling)."""
    from capprof.runners.episode.substrate import build_substrate

    env = build_substrate(scenario, seed + 1)
    n_actions = int(env.action_spec()[0].num_values)
    rng = np.random.default_rng(seed)
    env.reset()
    start = time.perf_counter()
    for _ in range(steps):
        if env.step(rng.integers(0, n_actions, scenario.n_players)).last():
            env.reset()
    seconds = time.perf_counter() - start
    env.close()
    return steps / seconds


def train_steps_per_second(lib, overrides: dict, batch_size: int, iterations: int) -> dict:
    """One configuration: env steps/s over ``iterations`` timed iterations."""
    from capprof.runners.training.rllib_env import resolve_target

    overrides = dict(overrides)
    prepare = overrides.pop("prepare_resets", True)
    # read by the substrate worker processes when they start (the algorithm's build)
    substrate_processes.IDLE_SECONDS = DEFAULT_IDLE_SECONDS if prepare else None
    settings = lib.TrainSettings(SUBSTRATE, batch_size=batch_size, minibatch_size=batch_size // 4, **overrides)
    settings.check()
    scenario = resolve_target(settings.target)
    lib.set_torch_threads(settings.torch_threads)
    algo = lib.ppo_config(settings, scenario).build_algo()
    try:
        algo.train()  # warm-up: builds the substrates and the first episodes
        sample = learn = 0.0
        start = time.perf_counter()
        for _ in range(iterations):
            timers = algo.train().get("timers", {})
            sample += float(timers.get("env_runner_sampling_timer", float("nan")))
            learn += float(timers.get("learner_update_timer", float("nan")))
        seconds = time.perf_counter() - start
    finally:
        algo.stop()
    steps = iterations * batch_size
    return {"settings": settings, "steps_per_second": steps / seconds, "seconds": seconds,
            "sampling_ms_per_step": 1e3 * sample / iterations / batch_size * 1.0 if iterations else float("nan"),
            "learning_ms_per_step": 1e3 * learn / iterations / batch_size * 1.0 if iterations else float("nan")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=2000, help="env steps per iteration (default 2000)")
    parser.add_argument("--iterations", type=int, default=8,
                        help="timed iterations per configuration (8: with 8 substrates an episode, and its"
                             " ~0.9 s reset, ends every 4 iterations)")
    parser.add_argument("--raw-steps", type=int, default=5000, help="env steps of the raw ceiling")
    parser.add_argument("--configs", default="before,vector-8,array,array-1-process,default-unprepared,default",
                        help="comma-separated configurations (the module docstring lists them)")
    args = parser.parse_args(argv)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")

    from capprof.meltingpot_import import import_meltingpot
    from capprof.runners.training import rllib_train as lib
    from capprof.runners.training.rllib_env import resolve_target

    import_meltingpot()
    scenario = resolve_target(SUBSTRATE)
    raw = raw_steps_per_second(scenario, args.raw_steps)
    print(f"raw substrate, random actions: {raw:.0f} env steps/s ({args.raw_steps} steps, resets included)",
          flush=True)
    started = lib._ray_init()
    results = {}
    try:
        for name in names:
            from capprof.runners.populations.rllib_obs import ObsConvention

            today = ObsConvention.convert
            if name == "before":
                ObsConvention.convert = _integer_block_mean
            try:
                r = train_steps_per_second(lib, CONFIGS[name], args.batch_size, args.iterations)
            finally:
                ObsConvention.convert = today
            results[name] = r
            s = r["settings"]
            print(f"{name:12s} sampler={s.sampler} env_runners={s.env_runners} envs_per_runner={s.envs_per_runner} "
                  f"substrate_processes={s.substrate_processes} torch_threads={s.torch_threads}: "
                  f"{r['steps_per_second']:.0f} env steps/s (sampling {r['sampling_ms_per_step']:.2f} ms, "
                  f"learning {r['learning_ms_per_step']:.2f} ms per env step; {args.iterations} x "
                  f"{args.batch_size} env steps in {r['seconds']:.1f} s)", flush=True)
    finally:
        if started:
            import ray

            ray.shutdown()
    base = results.get("before")
    print()
    for name, r in results.items():
        ratio = f", {r['steps_per_second'] / base['steps_per_second']:.2f}x before" if base else ""
        print(f"{name:12s} {r['steps_per_second']:7.0f} env steps/s{ratio}, "
              f"{100 * r['steps_per_second'] / raw:.0f}% of the raw ceiling")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
