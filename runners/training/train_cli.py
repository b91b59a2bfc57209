"""``capprof train``: train a PPO population (RLlib, new API stack) on a
substrate or an all-focal capprof variant, into a directory that
``capprof run --population TEAM=rllib:DIR`` plays.

The library is ``capprof.runners.training.rllib_train``; this module only parses,
prints and draws the progress bar. Heavy modules (ray, torch, meltingpot) are
imported inside the command.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from capprof.arguments import non_negative_int, positive_float, positive_int, seed_int
from capprof.errors import CapprofError
from capprof.interrupts import install_sigterm_as_interrupt

DEFAULT_STEPS = 100_000
DEFAULT_CHECKPOINT_EVERY = 50_000
# Options that shape the training (recorded in train.json; --resume keeps them).
SETTING_OPTIONS = ("per_player", "prosocial", "seed", "batch_size", "minibatch_size", "epochs", "lr",
                   "entropy_coeff", "gamma", "max_episode_steps", "downsample", "scale", "lstm",
                   "env_runners", "envs_per_runner", "sampler", "torch_threads", "substrate_processes")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a number') from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number >= 0")
    return value


def _fraction(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} is above 1; give a number in [0, 1]")
    return value


def _given_settings(args) -> dict:
    """The training settings the user passed explicitly (None = not given)."""
    given = {name: getattr(args, name) for name in SETTING_OPTIONS if name != "scale"}
    given["scale"] = False if args.no_scale else None
    for flag in ("per_player", "prosocial", "lstm"):
        given[flag] = True if given[flag] else None
    return given


class _Bar:
    """tqdm on a terminal; one line per iteration otherwise (logs, CI)."""

    def __init__(self, steps: int, quiet: bool, batch: int):
        self.steps, self.quiet, self.batch = steps, quiet, batch
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.total_iterations = None
        self.last_return = (float("nan"), None)  # the latest iteration's that ended episodes

    def start(self, progress) -> None:
        remaining = max(0, self.steps - progress.env_steps)
        self.total_iterations = progress.iteration + -(-remaining // self.batch)
        if self.quiet:
            return
        if progress.env_steps:
            print(f"capprof: resuming at iteration {progress.iteration}, {progress.env_steps} env steps "
                  f"({progress.wall_seconds:.0f} s of training so far)", file=sys.stderr)
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=self.steps, initial=progress.env_steps, unit="step", unit_scale=True,
                            desc="training", dynamic_ncols=True, file=sys.stderr)

    def update(self, row: dict) -> None:
        if self.quiet:
            return
        import math

        # Episodes last --max-episode-steps env steps in every sampled
        # substrate, so most iterations end none: show the latest that did.
        if math.isfinite(row["episode_return_mean"]):
            self.last_return = (row["episode_return_mean"], row["iteration"])
        ret, at = self.last_return
        said = f"mean episode return {ret:.2f}" if at == row["iteration"] else (
            f"mean episode return {ret:.2f} (episodes ended at iteration {at})" if at is not None
            else "no episode has ended yet")
        if self.bar is not None:
            self.bar.set_postfix_str(f"return {ret:.1f}, {row['steps_per_second']:.0f} steps/s", refresh=False)
            self.bar.update(row["env_steps"] - self.bar.n)
            return
        total = max(self.total_iterations or 0, row["iteration"])
        print(f"iteration {row['iteration']}/{total}: {row['env_steps']}/{self.steps} env steps, "
              f"{row['iteration_seconds']:.1f} s ({row['steps_per_second']:.0f} env steps/s), "
              f"{said}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _quiet_libraries() -> None:
    """Import meltingpot (TensorFlow's start-up lines hidden) and ray, and keep
    Ray's and RLlib's informational logging (new-API-stack banners, token
    authentication, deprecations inside RLlib) off the terminal."""
    import logging
    import os

    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from capprof.runners.training.rllib_env import torch_only_rllib

    torch_only_rllib()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray  # noqa: F401

    for name in ("ray", "ray.rllib", "ray.tune", "ray._common.deprecation"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _resumed_settings(args, out, given: dict) -> tuple:
    """``--resume``: the recorded settings (with the options given again) and
    the budget, the recorded one unless --steps is given."""
    from capprof.runners.populations import rllib_obs
    from capprof.runners.training import rllib_train_dir
    from capprof.runners.training import rllib_train as lib

    rllib_train_dir.check_out(out, resume=True)  # a clear line before reading train.json
    settings = lib.resume_settings(out, args.target, given)
    recorded = rllib_obs.read_train_file(out)
    steps = args.steps if args.steps is not None else int(recorded.get("budget_env_steps", DEFAULT_STEPS))
    return settings, steps


def _new_settings(args, out, given: dict) -> tuple:
    """A new run: its settings and budget, checked together with --out and
    the name of what to train on before Ray starts."""
    from capprof.runners.training import rllib_env, rllib_train_dir
    from capprof.runners.training import rllib_train as lib

    if args.target is None:
        raise CapprofError("name a substrate or scenario to train on, e.g. `capprof train commons_harvest__open "
                           "--out DIR` (or continue a run with --resume)")
    settings = lib.TrainSettings(args.target, **{k: v for k, v in given.items() if v is not None})
    steps = args.steps if args.steps is not None else DEFAULT_STEPS
    settings.check()
    rllib_train_dir.check_out(out, resume=False)
    if steps < lib.minimum_steps(settings):
        raise CapprofError(f"--steps {steps} is below one iteration ({lib.minimum_steps(settings)} env steps, "
                           f"--batch-size); give --steps {lib.minimum_steps(settings)} or more, or lower "
                           "--batch-size")
    rllib_env.resolve_target(settings.target)
    return settings, steps


def _say_training(settings, steps: int, out) -> None:
    """The line that opens a run: what trains, for how long, where."""
    modules = "one module per player" if settings.per_player else "one shared module"
    reward = ", prosocial rewards" if settings.prosocial else ""
    print(f"capprof: training {settings.target} ({modules}{reward}) for {steps} env steps, "
          f"{settings.batch_size} per iteration, into {out}", file=sys.stderr, flush=True)


def _disk_error(exc: Exception, out) -> CapprofError | None:
    """The one-line error for a disk that filled (or failed) mid-training,
    naming the resume command; None when ``exc`` is something else or no
    checkpoint was kept to resume from."""
    from capprof.io import disk_problem
    from capprof.runners.training import rllib_train_dir

    problem = disk_problem(exc, out)  # what failed, where and why; the fix is ours
    if problem is None or not rllib_train_dir.checkpoints(out):
        return None
    remedy = "free space there" if problem.space else "fix that"
    return CapprofError(f"{problem.what}; the last checkpoint is kept: {remedy}, then continue with "
                        f"`capprof train --out {shlex.quote(str(out))} --resume`")


def _train(args, settings, out, steps: int, command: list[str], bar: _Bar):
    """The library's ``TrainResult``; the bar is closed and SIGTERM's handler
    restored whatever happens."""
    from capprof.runners.training import rllib_train as lib

    def on_start(progress) -> None:
        if not args.quiet:
            _say_training(settings, steps, out)
        _quiet_libraries()
        bar.start(progress)

    previous = []

    def on_ready() -> None:  # after Ray started (it installs its own SIGTERM handler)
        previous.append(install_sigterm_as_interrupt())

    try:
        return lib.train(settings, out, steps, checkpoint_every=args.checkpoint_every, resume=args.resume,
                         command=command, on_start=on_start, on_iteration=bar.update, on_ready=on_ready)
    except Exception as exc:  # a disk that fills mid-training: the last whole checkpoint is kept
        error = _disk_error(exc, out)
        if error is None:
            raise
        raise error from None
    finally:
        bar.close()
        if previous and previous[0] is not None:
            import signal

            signal.signal(signal.SIGTERM, previous[0])


def _member(settings, where: str) -> str:
    """The ``--population TEAM=...`` member spec that plays the trained run
    at ``where`` (one ``rllib:`` member per module with --per-player)."""
    from capprof.runners.training import rllib_env
    from capprof.runners.training import rllib_train as lib

    if not settings.per_player:
        return f"rllib:{where}"
    scenario = rllib_env.resolve_target(settings.target)
    return "+".join(f"rllib:{where}:{m}" for m in lib.module_ids(settings, scenario.n_players))


def _report(result, settings, steps: int) -> int:
    """Says how the run ended (unless there was nothing to do) and returns the
    exit code: 130 when interrupted, else 0."""
    from capprof.runners.training import rllib_train_dir

    p = result.progress
    if result.progress.env_steps >= steps and not result.curve and not result.interrupted:
        return 0  # nothing to do (the library's note said so)
    if result.interrupted:
        print(f"capprof: interrupted at {p.env_steps} env steps; checkpoint saved in {result.checkpoint}; "
              f"continue with `capprof train --out {shlex.quote(str(result.out))} --resume`", file=sys.stderr)
        return 130
    member = _member(settings, shlex.quote(str(result.out)))
    print(f"capprof: trained {p.env_steps} env steps in {p.iteration} iterations ({p.wall_seconds:.0f} s); "
          f"learning curve in {result.out / rllib_train_dir.CURVE_FILE}; play it with --population TEAM={member}")
    return 0


def run(args, command: list[str]) -> int:
    from pathlib import Path

    out = Path(args.out).expanduser()
    given = _given_settings(args)
    settings, steps = (_resumed_settings if args.resume else _new_settings)(args, out, given)
    bar = _Bar(steps, args.quiet, settings.batch_size)
    result = _train(args, settings, out, steps, command, bar)
    return _report(result, settings, steps)


def _command(args) -> list[str]:
    """The command as typed when capprof was started from the shell, else
    (capprof.cli.main called from Python) rebuilt from the parsed options."""
    from pathlib import Path

    if sys.argv and Path(sys.argv[0]).name in ("capprof", "__main__.py") and "train" in sys.argv[1:]:
        return ["capprof", *sys.argv[1:]]
    parts = ["capprof", "train"] + ([args.target] if args.target else []) + ["--out", str(args.out)]
    for name, value in sorted(vars(args).items()):
        if name in ("target", "out", "func", "command") or value in (None, False):
            continue
        flag = "--" + name.replace("_", "-")
        parts += [flag] if value is True else [flag, str(value)]
    return parts


def cmd_train(args) -> int:
    return run(args, _command(args))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from capprof.runners.training.rllib_train import SAMPLERS
    p.add_argument("target", nargs="?", metavar="SUBSTRATE_OR_SCENARIO",
                   help="a Melting Pot substrate (e.g. commons_harvest__open) or an all-focal capprof variant "
                        "(`capprof scenarios --suite variants`); optional with --resume")
    p.add_argument("--out", required=True, metavar="DIR", help="training directory (new or empty; with --resume, "
                   "an earlier run's)")
    p.add_argument("--steps", type=positive_int, metavar="N",
                   help=f"budget in env steps, in all (default {DEFAULT_STEPS}; with --resume, the recorded one)")
    p.add_argument("--resume", action="store_true", help="continue from DIR's last checkpoint with its settings")
    p.add_argument("--checkpoint-every", type=positive_int, default=DEFAULT_CHECKPOINT_EVERY, metavar="N",
                   help=f"save a checkpoint every N env steps (default {DEFAULT_CHECKPOINT_EVERY}); "
                        "one is always saved at the end")
    g = p.add_argument_group("population")
    g.add_argument("--per-player", action="store_true", help="one module per player instead of one shared")
    g.add_argument("--prosocial", action="store_true",
                   help="reward every player with the mean reward of all players")
    g.add_argument("--seed", type=seed_int, help="RLlib's seed and the substrates' (default 0)")
    g.add_argument("--lstm", action="store_true", help="a recurrent module (LSTM of 32 cells)")
    g.add_argument("--downsample", type=positive_int, help="RGB downsampling factor (default 8; 1 = full 88x88)")
    g.add_argument("--no-scale", action="store_true", help="feed uint8 0..255 instead of [0, 1] floats")
    g = p.add_argument_group("PPO")
    g.add_argument("--batch-size", type=positive_int, metavar="N", help="env steps per iteration (default 2000)")
    g.add_argument("--minibatch-size", type=positive_int, metavar="N", help="default 500")
    g.add_argument("--epochs", type=positive_int, help="passes over each batch (default 2)")
    g.add_argument("--lr", type=positive_float, help="learning rate (default 3e-4)")
    g.add_argument("--entropy-coeff", type=_non_negative_float, help="default 0.01")
    g.add_argument("--gamma", type=_fraction, help="discount (default 0.99)")
    g.add_argument("--max-episode-steps", type=positive_int, metavar="N",
                   help="truncate training episodes (default 1000, the substrates' own length)")
    g.add_argument("--env-runners", type=non_negative_int, metavar="N",
                   help="remote sampling processes (default 0: sample in this process)")
    g.add_argument("--sampler", choices=SAMPLERS,
                   help="array (default with one shared module): every player's experience kept in arrays, one "
                        "forward pass per step; vector: each player a single-agent env of RLlib's own runner; "
                        "multi-agent: RLlib's multi-agent runner (the default with --per-player)")
    g.add_argument("--substrate-processes", type=non_negative_int, metavar="N",
                   help="worker processes stepping the substrates (default 2 with the array sampler, else 0: "
                        "the sampler steps them itself)")
    g.add_argument("--envs-per-runner", type=positive_int, metavar="N",
                   help="substrates stepped together per sampler (default 8 with the array and vector samplers, "
                        "1 with multi-agent)")
    g.add_argument("--torch-threads", type=non_negative_int, metavar="N",
                   help="torch threads in the training process (default 1, fastest for the small CNN; "
                        "0 = one per core)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a PPO population (RLlib) on a substrate or variant (needs [runners])",
                       description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(func=cmd_train)
