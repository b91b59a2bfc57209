"""Ship finished ``capprof train`` runs as package data and write their README.

    .venv/bin/python scripts/ship_populations.py open=/runs/open no_zap=/runs/no_zap --replace
    .venv/bin/python scripts/ship_populations.py            # only replay and rewrite the README

Each NAME=TRAIN_DIR is copied to capprof/data/populations/NAME (only what
plays: runners/shipped_populations.py). With ``--select-episodes N`` the
checkpoint it plays is chosen first: every snapshot ``capprof train`` kept
(``TRAIN_DIR/snapshots/step_<N>``) plays N episodes on the home scenario with
run seed ``--select-seed``, and the one with the highest mean focal
per-capita return is shipped (``selection.json``); the comparison below uses
``--seed``, which must differ, so the choice is not scored on the episodes
it was made on. Then every shipped population, the
``random`` and the ``harvester`` built-ins play every population's home
scenario (the all-focal variant it trained on, scored by the substrate's own
rewards) in full-length episodes with the same run seed (paired), and
capprof/data/populations/README.md is written from the training records, the
learning curves and those episodes, so every number in it comes from a run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from capprof.io import atomic_write_text, replace_directory, temporary_directory
from capprof.profiling.cellstats import mean_interval
from capprof.runners.populations.rllib_obs import SNAPSHOTS, read_train_file
from capprof.runners.populations.shipped_populations import (Selection, ShippedPopulation, ship, shipped_dir,
                                                              shipped_populations)

BASELINES = ("random", "harvester")
CURVE_ROWS = 8
REWARD_KEYS = ("farmer", "prosocial")  # training rewards, not the game a population is scored on


def _interval(values) -> str:
    m, low, high = mean_interval(values)
    return f"{m:.2f} [{low:.2f}, {high:.2f}]"


def home_scenario(directory: Path) -> str:
    """The all-focal scenario a population trained on, scored by the
    substrate's own rewards (its farmer / prosocial shaping left out)."""
    record = read_train_file(directory)
    target = record["target"]
    substrate, colon, body = target.partition(":")
    if not colon and substrate != record["substrate"]:
        return target  # a named all-focal scenario (e.g. commons_harvest__open__no_zap)
    keys = [part for part in body.split(",") if part and part.partition("=")[0] not in REWARD_KEYS]
    return f"{substrate}:{','.join(keys) or 'regrowth=1'}"


def _run(members: list[str], scenario: str, episodes: int, max_steps: int | None, seed: int, out: Path,
         workers: int | None) -> None:
    """``capprof run`` of ``members`` (TEAM=SPEC or built-in names) on one
    scenario, into the resumable run directory ``out``."""
    cmd = [sys.executable, "-m", "capprof", "run", "--episodes", str(episodes), "--seed", str(seed),
           "--out", str(out), "--quiet", "--resume", "--scenario", scenario]
    if max_steps:
        cmd += ["--max-steps", str(max_steps)]
    if workers:
        cmd += ["--ray", "--workers", str(workers)]
    for member in members:
        cmd += ["--population", member]
    subprocess.run(cmd, check=True)


def _read_runs(out: Path) -> pd.DataFrame:
    table = pd.read_parquet(out)
    bad = table[table["status"] != "ok"]
    if len(bad):
        sys.exit(f"ship_populations: {len(bad)} episode(s) failed: {bad['error'].iloc[0]}")
    return table


def play(episodes: int, max_steps: int | None, seed: int, out: Path,
         workers: int | None = None) -> tuple[pd.DataFrame, list[str], dict]:
    """Every shipped population on its home scenario beside the baselines,
    paired by run seed (one resumable run directory ``out``); the table, the
    team order and each population's home scenario."""
    from capprof.runners.scenarios.scenarios import get_scenario

    homes = {p.name: get_scenario(home_scenario(p.directory)).name for p in shipped_populations()}
    for home in dict.fromkeys(homes.values()):
        members = [f"{name}=shipped:{name}" for name, h in homes.items() if h == home]
        _run(members + list(BASELINES), home, episodes, max_steps, seed, out, workers)
    return _read_runs(out), [*homes, *BASELINES], homes


def select_snapshot(train_dir: Path, episodes: int, max_steps: int | None, seed: int, out: Path,
                    workers: int | None = None) -> Selection:
    """The snapshot of ``train_dir`` with the highest mean focal per-capita
    return over ``episodes`` episodes on its home scenario (run seed ``seed``)."""
    from capprof.runners.scenarios.scenarios import get_scenario

    snapshots = sorted(p for p in (train_dir / SNAPSHOTS).glob("step_*") if (p / "capprof_rllib.json").is_file())
    if not snapshots:
        sys.exit(f"ship_populations: {train_dir} has no {SNAPSHOTS}/step_*; train it with this capprof "
                 "(capprof train keeps a playable snapshot at every checkpoint) or drop --select-episodes")
    home = get_scenario(home_scenario(train_dir)).name
    _run([f"{p.name}=rllib:{p}" for p in snapshots], home, episodes, max_steps, seed, out, workers)
    table = _read_runs(out)
    means = table.groupby("team")["focal_per_capita_return"].mean().reindex([p.name for p in snapshots])
    best = str(means.idxmax())
    return Selection(snapshot=best, scenario=home, episodes=episodes,
                     max_steps=max_steps, seed=seed, means={k: round(float(v), 4) for k, v in means.items()})


def curve_table(directory: Path) -> str:
    curve = pd.read_csv(directory / "learning_curve.csv")
    curve = curve[np.isfinite(curve["episode_return_mean"])]  # iterations in which episodes ended
    rows = curve.iloc[np.unique(np.linspace(0, len(curve) - 1, min(len(curve), CURVE_ROWS)).round().astype(int))]
    lines = ["| iteration | env steps | mean episode return (7 players) | per capita | entropy | env steps/s |",
             "|---|---|---|---|---|---|"]
    for r in rows.itertuples():
        lines.append(f"| {r.iteration} | {r.env_steps} | {r.episode_return_mean:.1f} | {r.per_capita_return_mean:.2f} "
                     f"| {r.entropy:.3f} | {r.steps_per_second:.0f} |")
    return "\n".join(lines)


def play_table(table: pd.DataFrame, teams: list[str], homes: dict) -> str:
    wide = table.pivot_table(index=["scenario", "episode"], columns="team", values="focal_per_capita_return")
    lines = ["| scenario | " + " | ".join(teams) + " |", "|---" * (len(teams) + 1) + "|"]
    for scope, part in wide.groupby(level="scenario"):
        cells = [_interval(part[t].dropna()) if part[t].notna().any() else "-" for t in teams]
        lines.append(f"| {scope} | " + " | ".join(cells) + " |")
    lines += ["", "On each population's home scenario (the one it trained on, scored by the substrate's own "
              "rewards), paired differences (same scenario, episode and seed), mean [95% t interval], and the "
              "ratio of its mean to random's:", ""]
    for name, home in homes.items():
        part = wide.xs(home, level="scenario")
        ratio = part[name].mean() / part["random"].mean() if part["random"].mean() > 0 else float("nan")
        diffs = "; ".join(f"{name} - {b}: {_interval(part[name] - part[b])}" for b in BASELINES)
        lines.append(f"- {name} on {home}: {diffs}; {ratio:.2f}x random's mean")
    return "\n".join(lines)


def readme(table: pd.DataFrame, teams: list[str], homes: dict, episodes: int, max_steps: int | None,
           seed: int) -> str:
    populations = shipped_populations()
    parts = ["# Trained populations shipped with capprof", "",
             "Each directory is an `rllib:` population member trained by `capprof train` (docs/training.md):",
             "the modules (`learner_group/learner/rl_module/`), the observation convention (`capprof_rllib.json`),",
             "the exact commands, versions and budget (`train.json`) and the learning curve (`learning_curve.csv`).",
             "The full checkpoints (for `--resume`) are not shipped. `capprof demo` plays them; so does",
             "`capprof run --population NAME=rllib:capprof/data/populations/NAME`. This file is written by",
             "`scripts/ship_populations.py` from the records and from the episodes below.", ""]
    for population in populations:
        record = read_train_file(population.directory)
        parts += [f"## {population.name}", "", "```sh"]
        parts += [" ".join(str(a) for a in session["command"]) for session in record["sessions"]]
        parts += ["```", "", f"{population.describe()}; ended {record['sessions'][-1]['ended']}; "
                  f"ray {record['sessions'][-1]['versions'].get('ray')}, torch "
                  f"{record['sessions'][-1]['versions'].get('torch')}, dm-meltingpot "
                  f"{record['sessions'][-1]['versions'].get('dm-meltingpot')}.", "",
                  "Learning curve (rows spread over the run; `episode_return_mean` is the mean over about one "
                  "iteration's completed episodes; with --prosocial the return trained on is the mean of all "
                  "players' rewards, and this column is still the sum of the substrate's own rewards):", "",
                  curve_table(population.directory), ""]
        if population.selection:
            chosen = population.selection
            parts += [f"Checkpoint chosen: mean focal per-capita return of each snapshot in {chosen.episodes} "
                      f"episodes of {chosen.max_steps or 'full-length'} steps on {chosen.scenario}, run seed "
                      f"{chosen.seed} (not the comparison's seed below):", "",
                      "| env steps | " + " | ".join(f"{int(k.removeprefix('step_')):,}" for k in chosen.means) + " |",
                      "|---" * (len(chosen.means) + 1) + "|",
                      "| mean | " + " | ".join(f"{v:.2f}" for v in chosen.means.values()) + " |", ""]
    parts += ["## How they play", "",
              f"Focal per-capita return, {episodes} episodes per scenario of "
              f"{f'{max_steps} steps' if max_steps else 'full length (the substrate’s own end: 1,000 steps, then a random stop at a 100-step boundary; 1,099 to 5,000 steps here)'}"
              f", run seed {seed} "
              "(every team meets the same substrate seeds and slot draws; the substrates do not replay an episode "
              "from its seed, docs/runners.md, so pairs share seeds, not trajectories), mean [95% t interval]; "
              "a shipped population plays as its capprof_rllib.json says (`\"explore\": true`: sampling from "
              "its policy):", "",
              play_table(table, teams, homes), "",
              f"Played on {platform.machine()} with {os.cpu_count()} CPUs; numbers are returns, not times.", ""]
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", metavar="NAME=TRAIN_DIR", help="finished capprof train directories")
    parser.add_argument("--replace", action="store_true", help="replace a shipped population of the same name")
    parser.add_argument("--greedy", action="store_true",
                        help="ship them to play greedily (default: sampling from the policy, as trained)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=1000,
                        help="steps per episode (default 1000: the episode length the populations train "
                             "on; 0: the substrate's own random end, 1,099 to 5,000 steps)")
    parser.add_argument("--seed", type=int, default=0, help="run seed of the comparison (default 0)")
    parser.add_argument("--select-episodes", type=int, default=0, metavar="N",
                        help="choose the checkpoint to ship: every snapshot of the run plays N episodes on its "
                             "home scenario, the best mean is shipped (default 0: the run's last modules)")
    parser.add_argument("--select-seed", type=int, default=1, help="run seed of the choice (default 1)")
    parser.add_argument("--runs-dir", metavar="DIR", help="keep the episodes in DIR (resumable; default: a temporary one)")
    parser.add_argument("--workers", type=int, default=None, help="play on Ray with this many workers (default: serially)")
    args = parser.parse_args(argv)
    if args.select_episodes and args.select_seed == args.seed:
        parser.error("--select-seed must differ from --seed: the comparison must not reuse the episodes "
                     "a checkpoint was chosen on")
    for item in args.runs:
        name, _, train_dir = item.partition("=")
        if not train_dir:
            parser.error(f"{item}: give NAME=TRAIN_DIR")
        destination = shipped_dir() / name
        if destination.exists() and not args.replace:
            parser.error(f"{destination} exists; add --replace to replace it")
        selection = None
        if args.select_episodes:
            runs = Path(f"{args.runs_dir}_select_{name}") if args.runs_dir else None  # beside, not inside
            with tempfile.TemporaryDirectory(prefix="ship_select_") as work:
                selection = select_snapshot(Path(train_dir), args.select_episodes, args.max_steps, args.select_seed,
                                            runs or Path(work) / "runs", args.workers)
            print(f"{name}: {selection.describe()}", flush=True)
        # shipped beside the old one and swapped in whole: a failure leaves the old population
        staging = temporary_directory(destination)
        try:
            ship(train_dir, staging / name, explore=not args.greedy, selection=selection)
            replace_directory(staging / name, destination)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        shipped = ShippedPopulation.read(destination)
        print(f"shipped {shipped.describe()}", flush=True)
    if args.runs_dir:
        table, teams, homes = play(args.episodes, args.max_steps, args.seed, Path(args.runs_dir), args.workers)
    else:
        with tempfile.TemporaryDirectory(prefix="ship_populations_") as work:
            table, teams, homes = play(args.episodes, args.max_steps, args.seed, Path(work) / "runs", args.workers)
    text = readme(table, teams, homes, args.episodes, args.max_steps, args.seed)
    atomic_write_text(shipped_dir() / "README.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
