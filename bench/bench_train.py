"""Does a population trained by ``capprof train`` beat ``random``?

On commons_harvest__open: train a shared-module PPO population for a budget
that fits in about 30 minutes on 2 idle cores (``capprof train``, the real
command), then play it (sampling from its policy, and greedily) and the ``random``
built-in on the same scenarios with
the same run seed (``capprof run``: episode e of both teams gets the same
substrate seed and slot draws), and compare focal per-capita return on those
paired episodes. Prints the learning curve, training steps/s, both teams'
mean returns with 95% t intervals and the paired difference with its interval.

Usage:
    .venv/bin/python bench/bench_train.py                       # the full run (~30 min, 2 cores)
    .venv/bin/python bench/bench_train.py --steps 400 --batch-size 200 --minibatch-size 100 \\
        --episodes 2 --max-steps 100                            # a smoke test (minutes)
    .venv/bin/python bench/bench_train.py --reuse DIR           # play an existing training directory

Without --out the training directory and the runs go to a temporary
directory that is removed at the end (pass --out to keep them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SUBSTRATE = "commons_harvest__open"
# Trained players fill the focal majority beside a scripted resident harvester,
# and visit a population of harvesters; neither needs downloaded bot assets.
SCENARIOS = ("commons_harvest__open__resident_harvester", "commons_harvest__open__visitor_harvester")
# Sampling and learning cost ~11 ms of CPU per env step of 7 players (measured
# with RLlib's TensorFlow checks off, 1000-step episodes; a reset rebuilds the
# substrate, ~1.3 s): ~90 env steps/s, so ~22 min of training, plus start-up
# and the paired episodes, on 2 idle cores.
FULL_STEPS = 120_000


def capprof(*args, quiet_output: bool = False) -> None:
    cmd = [sys.executable, "-m", "capprof", *map(str, args)]
    print("$ " + " ".join(["capprof", *map(str, args)]), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE if quiet_output else None)
    if proc.returncode != 0:
        sys.exit(f"bench_train: `capprof {args[0]}` exited {proc.returncode}")


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval (capprof.profiling.cellstats.mean_interval)."""
    from capprof.profiling.cellstats import mean_interval

    return mean_interval(values, level)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=FULL_STEPS, help=f"training budget in env steps "
                        f"(default {FULL_STEPS})")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--minibatch-size", type=int, default=500)
    parser.add_argument("--max-episode-steps", type=int, default=None, help="truncate training episodes")
    parser.add_argument("--envs-per-runner", type=int, default=None)
    parser.add_argument("--prosocial", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=10, help="paired episodes per scenario (default 10)")
    parser.add_argument("--max-steps", type=int, default=None, help="cut evaluation episodes (default: full)")
    parser.add_argument("--out", help="keep the training directory and runs here")
    parser.add_argument("--reuse", metavar="DIR", help="skip training; play this training directory")
    args = parser.parse_args(argv)

    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_train_"))
    work.mkdir(parents=True, exist_ok=True)
    trained = Path(args.reuse) if args.reuse else work / "ppo"
    runs = work / "runs"
    try:
        started = time.perf_counter()
        if not args.reuse:
            train = ["train", SUBSTRATE, "--out", trained, "--steps", args.steps, "--batch-size", args.batch_size,
                     "--minibatch-size", args.minibatch_size, "--seed", args.seed, "--checkpoint-every", args.steps]
            if args.max_episode_steps:
                train += ["--max-episode-steps", args.max_episode_steps]
            if args.envs_per_runner:
                train += ["--envs-per-runner", args.envs_per_runner]
            if args.prosocial:
                train.append("--prosocial")
            capprof(*train)
        train_wall = time.perf_counter() - started

        import pandas as pd

        curve = pd.read_csv(trained / "learning_curve.csv")
        shown = curve.iloc[np.unique(np.linspace(0, len(curve) - 1, min(len(curve), 15)).round().astype(int))]
        print(f"\nLearning curve ({len(curve)} iterations; {len(shown)} shown):")
        print(shown[["iteration", "env_steps", "episode_return_mean", "per_capita_return_mean", "entropy",
                     "steps_per_second", "wall_seconds"]].to_string(index=False))
        total = curve["wall_seconds"].iloc[-1]
        print(f"\nTraining: {curve['env_steps'].iloc[-1]} env steps in {total:.0f} s of iterations = "
              f"{curve['env_steps'].iloc[-1] / total:.0f} env steps/s "
              f"({curve['agent_steps'].iloc[-1] / total:.0f} agent steps/s); "
              + (f"{train_wall:.0f} s with start-up" if not args.reuse else "reused"))

        if runs.exists():
            shutil.rmtree(runs)
        # "ppo" samples from the policy, as PPO acted while it learnt; "ppo_greedy"
        # takes its most likely action (the default of rllib: members).
        from capprof.runners.populations.shipped_populations import played_as

        shutil.rmtree(work / "ppo_sampled", ignore_errors=True)
        sampled = played_as(trained, work / "ppo_sampled", explore=True)
        run = ["run", "--population", f"ppo=rllib:{sampled}", "--population", f"ppo_greedy=rllib:{trained}",
               "--population", "random", "--episodes", args.episodes, "--seed", args.seed, "--out", runs, "--quiet"]
        for scenario in SCENARIOS:
            run += ["--scenario", scenario]
        if args.max_steps:
            run += ["--max-steps", args.max_steps]
        started = time.perf_counter()
        capprof(*run, quiet_output=True)
        play_wall = time.perf_counter() - started

        table = pd.read_parquet(runs)
        bad = table[table["status"] != "ok"]
        if len(bad):
            print(f"\n{len(bad)} episode(s) failed: {bad['error'].iloc[0]}")
        ok = table[table["status"] == "ok"]
        wide = ok.pivot_table(index=["scenario", "episode"], columns="team",
                              values="focal_per_capita_return").dropna()
        print(f"\nFocal per-capita return, {len(wide)} paired episodes ({args.episodes} per scenario, "
              f"same run seed {args.seed}; played in {play_wall:.0f} s), mean [95% t interval]:")
        rows = []
        for scope, part in [*wide.groupby(level="scenario"), ("all scenarios", wide)]:
            row = {"scenario": scope, "n": len(part)}
            for team in ("ppo", "ppo_greedy", "random"):
                m, low, high = t_interval(part[team])
                row[team] = f"{m:.2f} [{low:.2f}, {high:.2f}]"
            for team in ("ppo", "ppo_greedy"):
                m, low, high = t_interval(part[team] - part["random"])
                row[f"{team} - random"] = f"{m:+.2f} [{low:+.2f}, {high:+.2f}]"
            rows.append(row)
        print(pd.DataFrame(rows).to_string(index=False))
        for team, how in (("ppo", "sampling from its policy"), ("ppo_greedy", "greedily")):
            overall = t_interval(wide[team] - wide["random"])
            verdict = "beats random" if overall[1] > 0 else "does not beat random (interval includes 0 or below)"
            print(f"The trained population, played {how}, {verdict}: paired difference {overall[0]:+.2f} "
                  f"[{overall[1]:+.2f}, {overall[2]:+.2f}].")
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
