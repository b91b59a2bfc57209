"""``capprof scenarios`` and ``capprof run``.

Heavy modules (meltingpot, ray, torch) are imported inside the command
functions so ``capprof --help`` stays fast.
"""

from __future__ import annotations

import sys

from capprof.errors import CapprofError


def cmd_scenarios(args) -> int:
    import pandas as pd

    from capprof.runners.scenarios import scenarios_table

    table = scenarios_table(args.suite)
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False, lineterminator="\n")
    else:
        view = table.drop(columns=["description"])
        with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 70):
            sys.stdout.write(view.to_string(index=False) + "\n")
    return 0


def cmd_run(args) -> int:
    from capprof.runners.episode import Limits
    from capprof.runners.execute import execute, expand_scenarios, plan

    if args.workers is not None and not args.ray:
        raise CapprofError("--workers needs --ray; add --ray or drop --workers")
    if args.address and not args.ray:
        raise CapprofError("--address needs --ray; add --ray or drop --address")
    if args.workers is not None and args.workers < 1:
        raise CapprofError(f"--workers must be at least 1 (got {args.workers})")
    for flag, value in (("--step-timeout", args.step_timeout), ("--episode-timeout", args.episode_timeout),
                        ("--memory-gb", args.memory_gb)):
        if value is not None and value <= 0:
            raise CapprofError(f"{flag} must be positive (got {value:g}); pass 0 nowhere, omit it instead")
    limits = Limits(step_seconds=args.step_timeout, episode_seconds=args.episode_timeout,
                    memory_gb_per_focal=args.memory_gb)
    scenarios = expand_scenarios(args.scenario, args.suite)
    tasks = plan(args.population, scenarios, args.episodes, seed=args.seed, max_steps=args.max_steps,
                 limits=limits, series_every=args.series_every)
    summary = execute(tasks, args.out, resume=args.resume, backend="ray" if args.ray else "serial",
                      workers=args.workers, address=args.address, quiet=args.quiet, isolate=args.isolate)
    skipped = f", {summary.skipped} already done" if summary.skipped else ""
    failed = f", {summary.failed} failed (see `status` / `error`)" if summary.failed else ""
    print(f"capprof: {summary.ok} episode(s) ok{failed}{skipped}; results in {summary.out_dir} "
          f"(read with `capprof scores {summary.out_dir}`)")
    if any(t.scenario.suite != "official" for t in tasks):
        from capprof.runners.scenarios import write_demands_yaml
        from capprof.tagging.demands import RUN_DEMANDS_FILE

        # Underscore-prefixed: Parquet readers skip it inside the dataset.
        path = write_demands_yaml(summary.out_dir / RUN_DEMANDS_FILE)
        print(f"capprof: scenarios outside the catalog are described in {path}; "
              f"`capprof scores`, `evaluate` and `profile` read it from {summary.out_dir} by themselves")
    return 0


def register(sub) -> None:
    p = sub.add_parser("scenarios", help="list runnable scenarios (official, offline, variants)")
    p.add_argument("--suite", choices=("official", "offline", "variants"), default="offline")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("run", help="evaluate populations on Melting Pot scenarios")
    p.add_argument("--population", action="append", required=True, metavar="SPEC",
                   help="[TEAM=]MEMBER[+MEMBER...]; MEMBER is a built-in (random, noop, aggressor, ...), "
                        "module:Class, FILE.py[:Class] or rllib:CHECKPOINT_DIR[:MODULE_ID] (repeatable)")
    p.add_argument("--scenario", action="append", metavar="NAME", help="scenario name (repeatable)")
    p.add_argument("--suite", choices=("official", "offline", "variants"), help="every scenario of a suite")
    p.add_argument("--episodes", type=int, required=True, metavar="N", help="episodes per scenario")
    p.add_argument("--max-steps", type=int, metavar="K", help="cut episodes after K steps")
    p.add_argument("--out", default="capprof-out", metavar="DIR", help="results directory (Parquet dataset)")
    p.add_argument("--seed", type=int, default=0, help="run seed; every episode's seeds derive from it")
    p.add_argument("--resume", action="store_true", help="skip episodes already in --out")
    p.add_argument("--ray", action="store_true", help="run episodes as Ray tasks")
    p.add_argument("--workers", type=int, metavar="W", help="local Ray CPUs (default: all)")
    p.add_argument("--address", metavar="A", help="address of a running Ray cluster")
    p.add_argument("--step-timeout", type=float, default=10.0, metavar="SEC",
                   help="per-step time limit for a focal policy (default 10)")
    p.add_argument("--isolate", action="store_true",
                   help="run episodes in a watched child process, so a policy that hangs in native code or "
                   "crashes the interpreter fails its episode, not the run (always so with --ray)")
    p.add_argument("--episode-timeout", type=float, metavar="SEC", help="per-episode time limit")
    p.add_argument("--memory-gb", type=float, default=3.0, metavar="GB",
                   help="memory limit per focal player (default 3, as in the contest)")
    p.add_argument("--series-every", type=int, metavar="N",
                   help="also record every player's cumulative return every N steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)
