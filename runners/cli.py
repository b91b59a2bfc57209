"""``capprof scenarios`` and ``capprof run``.

Heavy modules (meltingpot, ray, torch) are imported inside the command
functions so ``capprof --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from capprof.arguments import positive_float, positive_int, seed_int
from capprof.errors import CapprofError
from capprof.runners.constants import EXIT_ALL_FAILED, EXIT_INTERRUPTED, SUITES

STEP_TIMEOUT, MEMORY_GB = 10.0, 3.0  # defaults of --step-timeout and --memory-gb


def cmd_scenarios(args) -> int:
    import pandas as pd

    from capprof.runners.scenarios.scenarios import scenarios_table

    table = scenarios_table(args.suite)
    if args.format == "csv":
        from capprof.output import spreadsheet_safe

        spreadsheet_safe(table).to_csv(sys.stdout, index=False, lineterminator="\n")
    else:
        view = table.drop(columns=["description"])
        with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 70):
            sys.stdout.write(view.to_string(index=False) + "\n")
    return 0


def runtime_env(text: str) -> dict:
    """--runtime-env: a JSON object (Ray's runtime environment)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}); write e.g. '{{\"working_dir\": \".\"}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("give a JSON object, e.g. '{\"working_dir\": \".\"}'")
    return value


def resume_command(args) -> str:
    """The `capprof run` command line of ``args`` with ``--resume``: what
    continues an interrupted run."""
    parts = ["capprof", "run"]
    for population in args.population:
        parts += ["--population", population]
    for scenario in args.scenario or ():
        parts += ["--scenario", scenario]
    if args.suite:
        parts += ["--suite", args.suite]
    parts += ["--episodes", str(args.episodes)]
    if args.max_steps is not None:
        parts += ["--max-steps", str(args.max_steps)]
    parts += ["--out", str(args.out), "--seed", str(args.seed)]
    for flag, value, default in (("--workers", args.workers, None), ("--address", args.address, None),
                                 ("--step-timeout", args.step_timeout, STEP_TIMEOUT),
                                 ("--episode-timeout", args.episode_timeout, None),
                                 ("--memory-gb", args.memory_gb, MEMORY_GB),
                                 ("--series-every", args.series_every, None)):
        if value is not None and value != default:
            parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if args.runtime_env:
        parts += ["--runtime-env", json.dumps(args.runtime_env)]
    if args.ray:
        parts.append("--ray")
    if args.isolate is not None:
        parts.append("--isolate" if args.isolate else "--no-isolate")
    if args.quiet:
        parts.append("--quiet")
    return shlex.join(parts + ["--resume"])


def _kept(out) -> str:
    from capprof.runners.execution.results import finished_keys

    return f"{len(finished_keys(out))} finished episode(s) are kept in {out}"


def interrupted_line(out, resume: str) -> str:
    """What a run (or a study's run) stopped by Ctrl-C or SIGTERM prints: how
    many episodes it kept and the command that continues it."""
    return f"capprof: interrupted; {_kept(out)}; continue with: {resume}"


def stopped_by_the_file_system(exc: OSError, out, resume: str) -> CapprofError | None:
    """The one-line error for a run the file system stopped mid-way (a full
    disk, a directory removed or turned read-only): where, why, how many
    episodes are kept and the ``resume`` command; None if ``exc`` is not one."""
    from capprof.io import disk_error

    found = exc if exc.filename is not None else disk_error(exc)
    if found is None:
        return None
    where = found.filename or out
    return CapprofError(f"{where}: {found.strerror or type(found).__name__}; {_kept(out)}; "
                        f"free space or fix the directory, then continue with: {resume}")


def cmd_run(args) -> int:
    from capprof.interrupts import sigterm_as_interrupt
    from capprof.runners.context import ExecutionContext
    from capprof.runners.execution.execute import execute, expand_scenarios, plan
    from capprof.runners.episode.records import Limits

    if args.workers is not None and not args.ray:
        raise CapprofError("--workers needs --ray; add --ray or drop --workers")
    if args.address and not args.ray:
        raise CapprofError("--address needs --ray; add --ray or drop --address")
    if args.isolate is False and args.ray:
        raise CapprofError("--no-isolate does not apply with --ray (Ray workers always play episodes in a watched "
                           "child process); drop --no-isolate")
    if args.runtime_env and not args.ray:
        raise CapprofError("--runtime-env needs --ray; add --ray or drop --runtime-env")
    limits = Limits(step_seconds=args.step_timeout, episode_seconds=args.episode_timeout,
                    memory_gb_per_focal=args.memory_gb)
    scenarios = expand_scenarios(args.scenario, args.suite)
    try:
        # one context for planning and playing: a member resolved while
        # planning (an imported submission) is the one the episodes play
        with ExecutionContext(), sigterm_as_interrupt():  # `kill PID`: as Ctrl-C (Ray may install its own)
            tasks = plan(args.population, scenarios, args.episodes, seed=args.seed, max_steps=args.max_steps,
                         limits=limits, series_every=args.series_every)
            summary = execute(tasks, args.out, resume=args.resume, backend="ray" if args.ray else "serial",
                              workers=args.workers, address=args.address, quiet=args.quiet, isolate=args.isolate,
                              runtime_env=args.runtime_env)
    except KeyboardInterrupt:
        sys.stderr.write(interrupted_line(args.out, resume_command(args)) + "\n")
        return EXIT_INTERRUPTED
    except OSError as exc:  # mid-run (a full disk, a removed directory): what was written is kept
        problem = stopped_by_the_file_system(exc, args.out, resume_command(args))
        if problem is None:
            raise
        raise problem from None
    print(f"capprof: {summary.counts()}; results in {summary.out_dir} "
          f"(read with `capprof scores {summary.out_dir}`)")
    if summary.retried:
        again = sorted(set(summary.retried))
        shown = ", ".join(f"{team}/{scenario}/ep{episode}" for team, scenario, episode in again[:5])
        more = f" and {len(again) - 5} more" if len(again) > 5 else ""
        print(f"capprof: {len(again)} episode(s) were run again after their Ray worker was lost "
              f"({shown}{more}); each is recorded once")
    if summary.demands_file is not None:
        print(f"capprof: scenarios outside the catalog are described in {summary.demands_file}; "
              f"`capprof scores`, `evaluate` and `profile` read it from {summary.out_dir} by themselves")
    if summary.all_failed:
        sys.stderr.write(f"capprof: error: every episode failed ({summary.failed} of {summary.failed}; "
                         f"the first: {summary.first_error}); fix the policy and run again\n")
        return EXIT_ALL_FAILED
    return 0


def register(sub) -> None:
    p = sub.add_parser("scenarios", help="list runnable scenarios (official, offline, variants)")
    p.add_argument("--suite", choices=SUITES, default="offline")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("run", help="evaluate populations on Melting Pot scenarios")
    from capprof.runners.populations.populations import KINDS

    p.add_argument("--population", action="append", required=True, metavar="SPEC",
                   help=KINDS.help() + " (repeatable)")
    p.add_argument("--scenario", action="append", metavar="NAME", help="scenario name (repeatable)")
    p.add_argument("--suite", choices=SUITES, help="every scenario of a suite")
    p.add_argument("--episodes", type=positive_int, required=True, metavar="N", help="episodes per scenario")
    p.add_argument("--max-steps", type=positive_int, metavar="K", help="cut episodes after K steps")
    p.add_argument("--out", default="capprof-out", metavar="DIR", help="results directory (Parquet dataset)")
    p.add_argument("--seed", type=seed_int, default=0,
                   help="run seed, 0 to 2147483647; every episode's seeds derive from it")
    p.add_argument("--resume", action="store_true", help="skip episodes already in --out")
    p.add_argument("--ray", action="store_true", help="run episodes as Ray tasks")
    p.add_argument("--workers", type=positive_int, metavar="W", help="local Ray CPUs (default: all)")
    p.add_argument("--address", metavar="A", help="address of a running Ray cluster (e.g. HOST:6379)")
    p.add_argument("--runtime-env", type=runtime_env, metavar="JSON",
                   help="Ray runtime environment for the workers, e.g. '{\"working_dir\": \".\"}' to ship "
                        "the policies' files to every node")
    p.add_argument("--step-timeout", type=positive_float, default=STEP_TIMEOUT, metavar="SEC",
                   help=f"per-step time limit for a focal policy (default {STEP_TIMEOUT:g})")
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                   help="run episodes in a watched child process, so a policy that hangs in native code, "
                   "crashes or exits the interpreter fails its episode, not the run (default: on when a member "
                   "is not a built-in; always so with --ray)")
    p.add_argument("--episode-timeout", type=positive_float, metavar="SEC", help="per-episode time limit")
    p.add_argument("--memory-gb", type=positive_float, default=MEMORY_GB, metavar="GB",
                   help=f"memory limit per focal player (default {MEMORY_GB:g}, as in the contest)")
    p.add_argument("--series-every", type=positive_int, metavar="N",
                   help="also record every player's cumulative return every N steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)
