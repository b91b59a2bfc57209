"""The front door: ``capprof <command>``.

Every command prints machine-readable output on stdout when asked
(``--format csv|json``) and, on bad input, one line per problem on stderr
with exit code 2 (never a traceback). A file the command cannot read or write
is also one line, exit 2. Anything else is a bug in capprof: one
``capprof: internal error: ...`` line, exit 70; ``CAPPROF_DEBUG=1`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from capprof.errors import CapprofError, CapprofNote
from capprof.output import write_table

EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h): capprof itself failed
DEBUG_ENV = "CAPPROF_DEBUG"  # set to 1: a bug shows its traceback instead of one line
STAGE_CLIS = ("capprof.runners.cli", "capprof.runners.training.train_cli", "capprof.profiling.cli",
              "capprof.reports.cli", "capprof.study_cli")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the fix, exit 2."""

    def error(self, message):  # noqa: D401 - argparse API
        sys.stderr.write(f"capprof: error: {message}; see `{self.prog} --help`\n")
        sys.exit(EXIT_USAGE)


# ------------------------------------------------------------------ commands


def cmd_tags(args) -> int:
    from capprof.tagging.catalog import filter_catalog, load_catalog

    catalog = filter_catalog(load_catalog(), args.substrate, args.tag)
    if catalog.empty:
        raise CapprofError("no scenario matches those filters; loosen --substrate / --tag")
    if args.format == "json":
        sys.stdout.write(json.dumps(catalog.to_dict(orient="records"), indent=1) + "\n")
        return 0
    view = catalog[["scenario", "substrate", "n_focal", "n_background", "tags", "description"]].copy()
    view["tags"] = view["tags"].map(";".join)
    write_table(view, args.format, max_colwidth=60)
    return 0


def cmd_catalog(args) -> int:
    from pathlib import Path

    from capprof.tagging.catalog import build_catalog_records, shipped_catalog_path, write_catalog

    if args.check and args.out:
        raise CapprofError("--out applies to --regenerate; --check compares the shipped catalog and writes nothing")
    records = build_catalog_records()
    target = Path(args.out) if args.out else shipped_catalog_path()
    if args.check:
        shipped = json.loads(shipped_catalog_path().read_text())
        if shipped != json.loads(json.dumps(records)):
            print(
                "capprof: the shipped catalog differs from the installed meltingpot; "
                "run `capprof catalog --regenerate` and commit tagging/data/scenarios.json",
                file=sys.stderr,
            )
            return 1
        print(f"catalog matches meltingpot {records[0]['meltingpot_version']} ({len(records)} scenarios)")
        return 0
    write_catalog(records, target)
    print(f"wrote {len(records)} scenarios to {target}")
    return 0


def cmd_scores(args) -> int:
    from capprof.profiling.normalise import aggregate, normalise

    from capprof.scores import load_scores
    from capprof.tagging.demands import custom_demands_for, known_scenarios

    custom = custom_demands_for(args.path, args.demands)
    scores = load_scores(
        args.path,
        known_scenarios=known_scenarios(custom),
        min_teams=1 if args.normalise == "none" else 2,
    )
    normalised = normalise(scores, args.normalise)
    write_table(aggregate(normalised, args.by), args.format)
    return 0


def cmd_demo(args) -> int:
    from capprof.demo import run_demo
    from capprof.profiling.cli import quiet_library_warnings

    quiet_library_warnings()  # as `capprof evaluate` and `profile` do
    return run_demo(args.published, out_dir=args.out, quick=args.quick)


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    from capprof.profiling.normalise import NORMALISATIONS

    parser = _Parser(prog="capprof", description="Capability profiles for Melting Pot populations.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("tags", help="list scenarios with their substrate, counts and tags")
    p.add_argument("--substrate", action="append", help="keep scenarios of this substrate (repeatable)")
    p.add_argument("--tag", action="append", help="keep scenarios carrying this tag (repeatable: all must match)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=cmd_tags)

    p = sub.add_parser("catalog", help="regenerate or check the shipped scenario catalog (needs [runners])")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--regenerate", action="store_true", help="rewrite the catalog from the installed meltingpot")
    group.add_argument("--check", action="store_true", help="exit 1 if the shipped catalog differs from meltingpot")
    p.add_argument("--out", help="write the regenerated catalog here instead of the package")
    p.set_defaults(func=cmd_catalog)

    p = sub.add_parser("scores", help="load, normalise and aggregate a score table")
    p.add_argument("path", metavar="PATH_OR_URL")
    p.add_argument("--normalise", choices=NORMALISATIONS, default="none")
    p.add_argument("--by", choices=("scenario", "substrate", "overall"), default="overall")
    p.add_argument("--demands", metavar="FILE", help="custom demands (CSV/YAML) that describe scenarios not in the catalog "
                   "(a `capprof run` directory brings its own _demands.yaml)")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(func=cmd_scores)

    p = sub.add_parser("demo", help="run the main job on an embedded default")
    p.add_argument("--published", metavar="PATH", nargs="?", const="",
                   help="start from the published Melting Pot 2.0 results instead of running episodes "
                        "(PATH, or ../shared/data, or download)")
    p.add_argument("--out", default="capprof-demo", metavar="DIR", help="where runs, profile and report go")
    p.add_argument("--quick", action="store_true",
                   help="fewer scenarios, steps, folds and draws, the layout on the JAX backend (a smoke test, not a result)")
    p.set_defaults(func=cmd_demo)

    # Each stage adds its own commands (stage/cli.py: register(subparsers)).
    # Those modules import heavy libraries inside their command functions only,
    # so `capprof --help` and `capprof tags` stay fast.
    import importlib

    for module_name in STAGE_CLIS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(sub)
    return parser


def _show_note(message, category, filename, lineno, file=None, line=None) -> None:
    """Render library warnings as one line each: ``capprof: note: ...`` for
    capprof's own notes, ``capprof: warning: ...`` for anything else."""
    prefix = "note" if issubclass(category, CapprofNote) else "warning"
    text = " ".join(str(message).split())
    (file or sys.stderr).write(f"capprof: {prefix}: {text}\n")


def _chosen_parser(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The (sub)command parser that read ``args``, following subcommands down."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or getattr(args, subs[0].dest, None) not in subs[0].choices:
            return parser
        parser = subs[0].choices[getattr(args, subs[0].dest)]


def _refuse_empty_values(parser: argparse.ArgumentParser, args) -> None:
    """An option or argument given as an empty (or blank) text, e.g. ``--out ""``
    from an unset shell variable, is one usage line: an empty path would
    otherwise mean the current directory, a default, or nothing written."""
    chosen = _chosen_parser(parser, args)
    for action in chosen._actions:
        if not action.dest or action.dest == argparse.SUPPRESS or action.const == "" or action.default == "":
            continue
        value = getattr(args, action.dest, None)
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            if action.option_strings:
                name = action.option_strings[-1]
                chosen.error(f"{name} is empty; give a value, or drop {name}")
            chosen.error(f"{action.metavar or action.dest} is empty; give a value")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _refuse_empty_values(parser, args)
    with warnings.catch_warnings():
        warnings.simplefilter("default", CapprofNote)  # once per distinct note and place
        warnings.showwarning = _show_note
        return _dispatch(args)


def _dispatch(args) -> int:
    try:
        return args.func(args)
    except CapprofError as exc:
        for line in str(exc).splitlines():
            sys.stderr.write(f"capprof: error: {line}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("capprof: interrupted\n")
        return 130
    except BrokenPipeError:  # e.g. `capprof tags | head`
        return 0
    except OSError as exc:
        problem = _disk_problem(args, exc)
        if problem is not None:  # a full, read-only or quota-bound file system: one line naming the directory
            sys.stderr.write(f"capprof: error: {problem}\n")
            return EXIT_USAGE
        if exc.filename is None:
            if _debug():
                raise
            return _internal_error(exc)
        # a file or directory the command needed (an --out it cannot write, a
        # disk that filled up): the environment's problem, named in one line
        reason = exc.strerror or type(exc).__name__
        sys.stderr.write(f"capprof: error: {exc.filename}: {reason}; check the path, its permissions and free space\n")
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on request
        problem = _disk_problem(args, exc)
        if problem is not None:  # a library's error (NetCDF, Ray) raised from a full disk
            sys.stderr.write(f"capprof: error: {problem}\n")
            return EXIT_USAGE
        if _debug():
            raise
        return _internal_error(exc)


OUTPUT_ARGUMENTS = ("out", "cells", "summary")  # the options that name what a command writes


def _disk_problem(args, exc: BaseException) -> str | None:
    """The one line for a write the file system refused (capprof.io.write_problem),
    naming the command's output; None for other errors. An exception that is
    not an OSError counts when one caused it, or when the output's file system
    is nearly full (libraries such as NetCDF raise their own types)."""
    from capprof import io

    found = io.disk_error(exc)
    outputs = [getattr(args, name) for name in OUTPUT_ARGUMENTS if getattr(args, name, None)]
    if found is None:
        if isinstance(exc, OSError) or not outputs:
            return None
        return io.write_problem(exc, outputs[0])
    if found.filename is not None and found.errno not in (28, 122):
        return None  # a file the command could not read or open: the generic line below
    return io.write_problem(found, outputs[0] if outputs else found.filename)


def _debug() -> bool:
    import os

    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _internal_error(exc: BaseException) -> int:
    """A bug in capprof (not the user's input): one line naming the exception
    and how to get the traceback, exit 70 (with CAPPROF_DEBUG=1 the caller
    lets the exception propagate with its full traceback instead)."""
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    sys.stderr.write(
        f"capprof: internal error: {type(exc).__name__}: {first}; this is a bug in capprof, please report it "
        f"with the command you ran (run again with {DEBUG_ENV}=1 to see the traceback)\n"
    )
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
