"""Cost of running a member in another interpreter (``SPEC@PYTHON``).

The same policy (``Walker`` below: one NumPy reduction of its RGB view per
step, a cheap policy, so the bridge's share is near its largest) plays the
same scenario in-process (``bench/bench_bridge.py:Walker``) and through the
bridge (``bench/bench_bridge.py:Walker@PYTHON``), in interleaved pairs of whole
episodes (capprof's episode loop, build included). Printed: the median of the
per-pair wall-time ratios (bridge / in-process; target <= 1.10) with a
bootstrap 95% interval, and the bridge's cost per focal player-step.

PYTHON defaults to capprof's own interpreter (it has NumPy and dm_env; the
child still runs the bridge by file path with no capprof import); pass
``--python`` for another environment's.

Usage: .venv/bin/python bench/bench_bridge.py [--scenario NAME] [--steps N] [--reps R] [--python PATH]

This file is also the policy module the child imports, so it imports only
NumPy at module level.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


class Walker:
    """Forward while its view is bright, else turn; a policy-id constructor."""

    def __init__(self, policy_id):
        self.policy_id = policy_id

    def initial_state(self):
        return 0

    def step(self, timestep, prev_state):
        brightness = float(np.asarray(timestep.observation["RGB"]).mean())
        return (1 if brightness > 40 or prev_state % 3 else 5), prev_state + 1

    def close(self):
        pass


_LAST: list = []  # the last episode's record


def _field(record, name):
    return record[name] if isinstance(record, dict) else getattr(record, name)


def episode(spec: str, scenario, steps: int, episode_index: int) -> tuple[float, int, str]:
    """Wall seconds, steps and status of one capprof episode of ``spec``."""
    from capprof.runners.episode import EpisodeTask, run_episode

    task = EpisodeTask(run_id="bench", population=spec, team="bench", scenario=scenario,
                       episode=episode_index, seed=0, max_steps=steps)
    record = run_episode(task)
    _LAST[:] = [record]
    return float(_field(record, "wall_seconds")), int(_field(record, "steps")), str(_field(record, "error"))


def step_seconds(spec: str, substrate: str, calls: int) -> np.ndarray:
    """Seconds of each of ``calls`` policy steps on an 88x88 RGB view (no substrate)."""
    import dm_env

    from capprof.runners.populations import PolicySlot, parse_population, substrate_info

    policy = parse_population(spec).members[0].build(substrate_info(substrate), 0, PolicySlot.of(0, "default"))
    timestep = dm_env.transition(0.0, {"RGB": np.full((88, 88, 3), 50, np.uint8), "READY_TO_SHOOT": np.float64(1)})
    state = policy.initial_state()
    times = np.empty(calls)
    try:
        for i in range(calls):
            start = time.perf_counter()
            _, state = policy.step(timestep, state)
            times[i] = time.perf_counter() - start
    finally:
        policy.close()
    return times


def bootstrap_median(ratios, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    ratios = np.asarray(ratios, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(ratios, size=(reps, len(ratios))), axis=1)
    return float(np.median(ratios)), float(np.quantile(medians, 0.025)), float(np.quantile(medians, 0.975))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="commons_harvest__open__resident_harvester")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)

    from capprof.runners.populations import parse_population
    from capprof.runners.scenarios import get_scenario

    scenario = get_scenario(args.scenario)
    local = f"{HERE}:Walker"
    remote = f"{HERE}:Walker@{args.python}"
    parse_population(remote)  # checks the interpreter once, as a run does
    episode(local, scenario, 10, 0)  # warm-up: imports, substrate config, the child started
    episode(remote, scenario, 10, 0)
    # Per-step cost, medians of single calls (robust to a loaded machine's spikes).
    local_step = float(np.median(step_seconds(local, scenario.substrate, 3000)))
    remote_step = float(np.median(step_seconds(remote, scenario.substrate, 3000)))
    ratios, extra, env_step = [], [], []
    for rep in range(args.reps):
        order = [(local, "local"), (remote, "remote")] if rep % 2 == 0 else [(remote, "remote"), (local, "local")]
        walls = {}
        for spec, kind in order:
            wall, steps, error = episode(spec, scenario, args.steps, rep)
            if error:
                print(f"{kind} episode failed: {error}", file=sys.stderr)
                return 1
            walls[kind] = wall
            if kind == "local":
                env_step.append(1.0 / _field(_LAST[0], "steps_per_second"))
        ratios.append(walls["remote"] / walls["local"])
        extra.append((walls["remote"] - walls["local"]) / (steps * scenario.n_focal))
        print(f"  pair {rep}: in-process {walls['local']:.2f} s, bridge {walls['remote']:.2f} s, "
              f"ratio {ratios[-1]:.3f}", flush=True)
    median, low, high = bootstrap_median(ratios)
    per_step = np.median(extra) * 1e6
    per_env_step = float(np.median(env_step))
    implied = (per_env_step + scenario.n_focal * (remote_step - local_step)) / per_env_step
    print(f"per step  one policy step: in-process {local_step * 1e6:.0f} us, through the bridge "
          f"{remote_step * 1e6:.0f} us (medians of 3000 calls); in-process episode step {per_env_step * 1e3:.2f} ms; "
          f"implied ratio with {scenario.n_focal} focal players {implied:.3f}")
    print(f"bridge    {scenario.name}: {args.steps}-step episodes, {scenario.n_focal} focal players; "
          f"wall-time ratio bridge/in-process {median:.3f} [95% CI {low:.3f}-{high:.3f}] over {args.reps} pairs "
          f"(target <= 1.10); bridge cost {per_step:.0f} us per focal player-step (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
