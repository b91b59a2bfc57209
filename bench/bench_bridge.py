"""Cost of running a member in another interpreter (``SPEC@PYTHON``).

The same policy (``Walker`` below: one NumPy reduction of its RGB view per
step, a cheap policy, so the bridge's share is near its largest) plays the
same scenario in-process (``bench/bench_bridge.py:Walker``) and through the
bridge (``bench/bench_bridge.py:Walker@PYTHON``), in interleaved pairs of whole
episodes (capprof's episode loop, build included). Printed: the median of the
per-pair wall-time ratios (bridge / in-process; target <= 1.10) with a
bootstrap 95% interval, the same for the stepping time alone (build
excluded), the cost of one episode step's worth of policy steps (all focal
players, sent ahead as the loop does) in and out of process, and the load
average around the pairs. Each pair also plays a third episode in-process
with a 1-byte round trip to another process before every substrate step
(``RoundTrip``; that process waits as the bridge's child does): its
stepping-time ratio is the least that an exchange with another process per
episode step costs on the machine, the floor for the bridge's.

PYTHON defaults to capprof's own interpreter (it has NumPy and dm_env; the
child still runs the bridge by file path with no capprof import); pass
``--python`` for another environment's (``.venv-legacy/bin/python``: the
contest's Python 3.10).

``--legacy [CHECKPOINT]`` adds a fourth episode to each pair: an old-stack
RLlib checkpoint played as ``rllib-legacy:CHECKPOINT@LEGACY_PYTHON`` (without
CHECKPOINT, a tiny one ``runners/training/rllib_legacy_train.py`` trains first, 7
policies, the contest baseline's model). Its policy cannot run in capprof's
interpreter (ray 2.6 in the other), so its in-process time is estimated in
the same pair: the in-process episode's stepping time (loop and substrate)
plus the policy's own compute, as timed inside the child for every step. The
line prints that ratio, the policy's compute per player-step and the
exchange's cost per episode step.

Usage: .venv/bin/python bench/bench_bridge.py [--scenario NAME] [--steps N] [--reps R] [--python PATH]
       [--legacy [CHECKPOINT]] [--legacy-python PATH]

This file is also the policy module the child imports, so it imports only
NumPy at module level.
"""

from __future__ import annotations

import argparse
import os
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
    from capprof.runners.episode.episode import EpisodeTask, run_episode

    task = EpisodeTask(run_id="bench", population=spec, team="bench", scenario=scenario,
                       episode=episode_index, seed=0, max_steps=steps)
    record = run_episode(task)
    _LAST[:] = [record]
    return float(_field(record, "wall_seconds")), int(_field(record, "steps")), str(_field(record, "error"))


class RoundTrip:
    """While on: every substrate step of capprof's episodes first sends one
    byte to another process, which waits for it as the bridge's child waits
    for a frame, and waits for it to come back: the least an exchange with
    another process per episode step can cost."""

    def __init__(self):
        import subprocess

        import capprof.runners.episode.episode as episode_module

        self.episode_module, self.build = episode_module, episode_module.build_substrate
        # The echo waits for its byte as the bridge's child waits for a frame.
        echo = ("import os\nfrom capprof.runners.populations.bridge import wait_readable\n"
                "while wait_readable(0) or os.write(1, os.read(0, 1)): pass")
        self.echo = subprocess.Popen([sys.executable, "-c", echo], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     bufsize=0)
        self.on = False

        def build_substrate(scenario, env_seed):
            env = self.build(scenario, env_seed)
            step = env.step

            def stepped(actions):
                if self.on:
                    os.write(self.echo.stdin.fileno(), b"x")
                    os.read(self.echo.stdout.fileno(), 1)
                return step(actions)

            env.step = stepped
            return env

        episode_module.build_substrate = build_substrate

    def close(self) -> None:
        self.episode_module.build_substrate = self.build
        self.echo.stdin.close()
        self.echo.wait()


def step_seconds(spec: str, substrate: str, players: int, calls: int) -> np.ndarray:
    """Seconds of each of ``calls`` episode steps' worth of policy steps:
    ``players`` policies of ``spec`` each stepping on an 88x88 RGB view (no
    substrate), sent ahead as the episode loop does for bridged policies."""
    import dm_env

    from capprof.runners.populations.populations import PolicySlot, parse_population

    from capprof.runners.populations.substrate_info import substrate_info

    member, info = parse_population(spec).members[0], substrate_info(substrate)
    policies = [member.build(info, i, PolicySlot.of(i, "default")) for i in range(players)]
    ahead = [policy.step_ahead for policy in policies if getattr(policy, "step_ahead", None)]
    timestep = dm_env.transition(np.array(0.0), {"RGB": np.full((88, 88, 3), 50, np.uint8),
                                                 "READY_TO_SHOOT": np.array(1.0)})
    states = [policy.initial_state() for policy in policies]
    times = np.empty(calls)
    try:
        for i in range(calls):
            start = time.perf_counter()
            for k, step_ahead in enumerate(ahead):
                step_ahead(timestep, states[k])
            for k, policy in enumerate(policies):
                _, states[k] = policy.step(timestep, states[k])
            times[i] = time.perf_counter() - start
    finally:
        for policy in policies:
            policy.close()
    return times


class ChildCompute:
    """While installed: the seconds bridged policies' steps took in their
    child (``RemotePolicy.step_seconds``), summed."""

    def __init__(self):
        from capprof.runners.populations.venv_member import RemotePolicy

        self.cls, self.step, self.total = RemotePolicy, RemotePolicy.step, 0.0
        outer = self

        def step(policy, timestep, prev_state):
            out = outer.step(policy, timestep, prev_state)
            outer.total += policy.step_seconds
            return out

        RemotePolicy.step = step

    def close(self) -> None:
        self.cls.step = self.step


def trained_legacy_checkpoint(python: str) -> str:
    """A tiny old-stack checkpoint (7 policies) trained in ``python``."""
    import subprocess
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="capprof-bench-legacy-")) / "trial"
    script = HERE.parents[1] / "runners" / "training" / "rllib_legacy_train.py"
    subprocess.run([python, str(script), str(out), "--players", "7", "--steps", "200"], check=True,
                   capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return str(out)


def bootstrap_median(ratios, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    ratios = np.asarray(ratios, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(ratios, size=(reps, len(ratios))), axis=1)
    return float(np.median(ratios)), float(np.quantile(medians, 0.025)), float(np.quantile(medians, 0.975))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="commons_harvest__open__resident_harvester")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=12)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--legacy", nargs="?", const="", default=None, metavar="CHECKPOINT",
                        help="also play an old-stack RLlib checkpoint (none given: train a tiny one)")
    parser.add_argument("--legacy-python", default=str(HERE.parents[1] / ".venv-legacy" / "bin" / "python"))
    args = parser.parse_args(argv)

    from capprof.runners.populations.populations import parse_population
    from capprof.runners.scenarios.scenarios import get_scenario

    scenario = get_scenario(args.scenario)
    local = f"{HERE}:Walker"
    remote = f"{HERE}:Walker@{args.python}"
    parse_population(remote)  # checks the interpreter once, as a run does
    legacy = None
    if args.legacy is not None:
        legacy = f"rllib-legacy:{args.legacy or trained_legacy_checkpoint(args.legacy_python)}@{args.legacy_python}"
        parse_population(legacy)
    episode(local, scenario, 10, 0)  # warm-up: imports, substrate config, the child started
    episode(remote, scenario, 10, 0)
    if legacy:
        episode(legacy, scenario, 10, 0)
    compute = ChildCompute()
    legacy_ratios, legacy_compute, legacy_exchange = [], [], []
    load_before = os.getloadavg()
    ratios, stepping, floor, extra, env_step, builds = [], [], [], [], [], {"local": [], "remote": []}
    round_trip = RoundTrip()
    try:
        for rep in range(args.reps):
            kinds = ["local", "remote", "floor"] + (["legacy"] if legacy else [])
            walls, steps_seconds = {}, {}
            for kind in kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]:
                round_trip.on = kind == "floor"
                compute.total = 0.0
                wall, steps, error = episode({"remote": remote, "legacy": legacy}.get(kind, local), scenario,
                                             args.steps, rep)
                if kind == "legacy":
                    child_seconds = compute.total
                if error:
                    print(f"{kind} episode failed: {error}", file=sys.stderr)
                    return 1
                walls[kind] = wall
                steps_seconds[kind] = steps / _field(_LAST[0], "steps_per_second")
                builds.setdefault(kind, []).append(_field(_LAST[0], "build_seconds"))
            env_step.append(steps_seconds["local"] / steps)
            ratios.append(walls["remote"] / walls["local"])
            stepping.append(steps_seconds["remote"] / steps_seconds["local"])
            floor.append(steps_seconds["floor"] / steps_seconds["local"])
            extra.append((walls["remote"] - walls["local"]) / (steps * scenario.n_focal))
            if legacy:
                in_process = steps_seconds["local"] + child_seconds  # loop and substrate + the policy's compute
                legacy_ratios.append(steps_seconds["legacy"] / in_process)
                legacy_compute.append(child_seconds / (steps * scenario.n_focal))
                legacy_exchange.append((steps_seconds["legacy"] - in_process) / steps)
                print(f"          rllib-legacy: stepping {steps_seconds['legacy']:.2f} s against an in-process "
                      f"estimate of {in_process:.2f} s, ratio {legacy_ratios[-1]:.3f}", flush=True)
            print(f"  pair {rep}: in-process {walls['local']:.2f} s, bridge {walls['remote']:.2f} s, "
                  f"ratio {ratios[-1]:.3f} (stepping only {stepping[-1]:.3f}; in-process with a round trip "
                  f"{floor[-1]:.3f})", flush=True)
    finally:
        round_trip.close()
        compute.close()
    load_after = os.getloadavg()
    # One episode step's worth of policy steps, medians (robust to a loaded machine's spikes).
    local_step = float(np.median(step_seconds(local, scenario.substrate, scenario.n_focal, 3000)))
    remote_step = float(np.median(step_seconds(remote, scenario.substrate, scenario.n_focal, 3000)))
    median, low, high = bootstrap_median(ratios)
    s_median, s_low, s_high = bootstrap_median(stepping)
    per_env_step = float(np.median(env_step))
    implied = (per_env_step + remote_step - local_step) / per_env_step
    print(f"per step  {scenario.n_focal} focal players' steps per episode step: in-process {local_step * 1e6:.0f} us, "
          f"through the bridge {remote_step * 1e6:.0f} us (medians of 3000); in-process episode step "
          f"{per_env_step * 1e3:.2f} ms; implied ratio {implied:.3f}")
    print(f"bridge    {scenario.name}: {args.steps}-step episodes, {scenario.n_focal} focal players; "
          f"wall-time ratio bridge/in-process {median:.3f} [95% CI {low:.3f}-{high:.3f}] over {args.reps} pairs "
          f"(target <= 1.15); stepping only {s_median:.3f} [95% CI {s_low:.3f}-{s_high:.3f}]; "
          f"bridge cost {np.median(extra) * 1e6:.0f} us per focal player-step (median); build "
          f"(substrate, policies, reset) {np.median(builds['local']):.2f} s in-process, "
          f"{np.median(builds['remote']):.2f} s bridge (medians)")
    f_median, f_low, f_high = bootstrap_median(floor)
    print(f"floor     in-process episodes with a 1-byte round trip to another process every episode step: "
          f"stepping time ratio {f_median:.3f} [95% CI {f_low:.3f}-{f_high:.3f}] (the bridge's stepping only, "
          f"above, against this)")
    if legacy:
        l_median, l_low, l_high = bootstrap_median(legacy_ratios)
        print(f"legacy    {legacy.split('@')[0]}: stepping time ratio bridge / in-process estimate (in-process "
              f"stepping + the policy's compute timed in the child) {l_median:.3f} [95% CI {l_low:.3f}-{l_high:.3f}] "
              f"over {args.reps} pairs; the policy's compute {np.median(legacy_compute) * 1e3:.2f} ms per focal "
              f"player-step, the exchange {np.median(legacy_exchange) * 1e3:.2f} ms per episode step (medians)")
    print(f"load      load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} before the "
          f"pairs, {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} after (1 / 5 / 15 min; "
          f"{os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
