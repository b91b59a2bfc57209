"""``capprof study NAME --out DIR``: run a study's design (``capprof.study``)
as one resumable run in DIR/runs, then write its tables (DIR/sweep.csv,
gini.csv, matrix.csv) and report (DIR/study.html)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from capprof.arguments import bounded_int, positive_int, seed_int
from capprof.errors import CapprofError
from capprof.profiling.cli import MIN_SAMPLING_STEPS
from capprof.runners.constants import EXIT_INTERRUPTED


def resume_command(args) -> str:
    parts = ["capprof", "study", args.study, "--out", str(args.out)]
    for population in args.population or ():
        parts += ["--population", population]
    if args.episodes is not None:
        parts += ["--episodes", str(args.episodes)]
    if args.max_steps is not None:
        parts += ["--max-steps", str(args.max_steps)]
    parts += ["--seed", str(args.seed)]
    if args.ray:
        parts.append("--ray")
    if args.workers is not None:
        parts += ["--workers", str(args.workers)]
    if not args.profile:
        parts.append("--no-profile")
    if args.draws != 500:
        parts += ["--draws", str(args.draws)]
    if args.quiet:
        parts.append("--quiet")
    return shlex.join(parts + ["--resume"])


def _facts(tasks) -> dict[str, str]:
    from capprof.runners.populations.shipped_populations import shipped_populations

    teams = list(dict.fromkeys(t.team for t in tasks))
    trained = {p.name: p for p in shipped_populations()}
    facts = {"populations": ", ".join(teams),
             "episodes per (population, scenario)": str(max(t.episode for t in tasks) + 1),
             "steps per episode": str(tasks[0].max_steps or "the substrate's own (1000)"),
             "run seed": str(tasks[0].seed)}
    from capprof.runners.populations.populations import split_team

    shipped = sorted({split_team(t.population)[1] for t in tasks} & {f"shipped:{n}" for n in trained})
    if shipped:
        facts["training"] = "; ".join(f"{s[len('shipped:'):]}: {trained[s[len('shipped:'):]].describe()}"
                                      for s in shipped)
    return facts


def cmd_study(args) -> int:
    from capprof.interrupts import sigterm_as_interrupt
    from capprof.io import atomic_write_text
    from capprof.reports.study import study_report
    from capprof.runners.cli import interrupted_line, stopped_by_the_file_system
    from capprof.runners.execution.execute import execute
    from capprof.study import REPORT_FILE, RUNS_DIR, get_study, plan_study, study_tables

    if args.workers is not None and not args.ray:
        raise CapprofError("--workers needs --ray; add --ray or drop --workers")
    design = get_study(args.study)
    tasks = plan_study(design, args.population, episodes=args.episodes, seed=args.seed, max_steps=args.max_steps)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CapprofError(f"--out {out} is a file; give a directory")
    try:
        with sigterm_as_interrupt():
            summary = execute(tasks, out / RUNS_DIR, resume=args.resume, backend="ray" if args.ray else "serial",
                              workers=args.workers, quiet=args.quiet, command="capprof study")
    except KeyboardInterrupt:
        sys.stderr.write(interrupted_line(out / RUNS_DIR, resume_command(args)) + "\n")
        return EXIT_INTERRUPTED
    except OSError as exc:
        problem = stopped_by_the_file_system(exc, out / RUNS_DIR, resume_command(args))
        if problem is None:
            raise
        raise problem from None
    tables = study_tables(design, out / RUNS_DIR)
    written = tables.write(out)
    profiles = []
    if args.profile:
        from capprof.reports.study import profiles_section
        from capprof.study import study_profile

        import warnings

        warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")  # PyTensor's, not the user's
        print("capprof: fitting the populations' capability profiles on the study's episodes ...", file=sys.stderr)
        profile = study_profile(out / RUNS_DIR, draws=args.draws, tune=args.draws, seed=args.seed)
        from capprof.output import write_csv

        written.append(write_csv(profile.abilities, out / "abilities.csv", float_format=None))
        profiles.append(profiles_section(profile))
    page = study_report(f"capprof study {design.name}", design.description, tables, _facts(tasks),
                        profiles)
    report = atomic_write_text(out / REPORT_FILE, page)
    failed = f", {summary.failed} failed" if summary.failed else ""
    print(f"capprof: {summary.ok} episode(s) ok{failed}, {summary.skipped} already done; "
          f"tables {', '.join(p.name for p in written)} and report {report}")
    return 0


def register(sub) -> None:
    from capprof.study import STUDIES

    p = sub.add_parser("study", help="run a study's whole design (commons-safety) and write its report")
    p.add_argument("study", metavar="STUDY", help=f"the study: {', '.join(STUDIES)}")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="study directory: runs/ (a capprof run directory), sweep.csv, gini.csv, matrix.csv, "
                        "study.html")
    p.add_argument("--population", action="append", metavar="SPEC",
                   help="the populations instead of the design's (repeatable; TEAM=SPEC as capprof run); "
                        "built-ins and shipped:NAME also sit in the focal x background matrix")
    p.add_argument("--episodes", type=positive_int, metavar="N",
                   help="episodes per population and scenario (default: the design's, 10)")
    p.add_argument("--max-steps", type=positive_int, metavar="K", help="cut episodes after K steps")
    p.add_argument("--seed", type=seed_int, default=0, help="run seed, 0 to 2147483647")
    p.add_argument("--resume", action="store_true", help="skip episodes already in DIR/runs")
    p.add_argument("--ray", action="store_true", help="run episodes as Ray tasks")
    p.add_argument("--workers", type=positive_int, metavar="W", help="local Ray CPUs (default: all)")
    p.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                   help="fit the populations' capability profiles on the study's episodes (default on)")
    p.add_argument("--draws", type=bounded_int(MIN_SAMPLING_STEPS, 1_000_000, why_low="the profile fit needs at least 10 draws per chain"),
                   default=500, metavar="N",
                   help="draws (and tuning steps) per chain of the profile fit (default 500)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_study)
