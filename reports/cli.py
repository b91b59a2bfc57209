"""``capprof compare`` and ``capprof report``.

Heavy libraries (matplotlib, scipy) are imported inside the command functions
so that ``capprof --help`` stays fast.
"""

from __future__ import annotations

from capprof.arguments import bounded_int, seed_int
from capprof.errors import CapprofError

# the bootstrap keeps every resample in memory
MAX_REPS = 1_000_000


def cmd_compare(args) -> int:
    import pandas as pd

    from capprof.profiling.normalise import normalise
    from capprof.reports.compare import check_options, compare_teams, select_common, summary_tables
    from capprof.scores import load_scores

    check_options(args.reps, args.rank_by)  # before the table is read (and noted on)
    scores = load_scores(args.scores, min_teams=2)
    select_common(scores, args.teams)  # an unknown --teams name: one line, before normalising
    # Normalise over every team in the file, then pick: a team's numbers must
    # not move when a different set of teams is chosen for comparison.
    normalised = normalise(scores, args.normalise)
    comparison = compare_teams(normalised, teams=args.teams, reps=args.reps, seed=args.seed, rank_by=args.rank_by)
    if args.format == "csv":
        from capprof.output import write_table

        write_table(comparison.table, "csv")  # spreadsheet-safe: team names come from the user's scores
        return 0
    aggregates, poi = summary_tables(comparison)
    c = comparison
    print(
        f"{len(c.teams)} teams on {c.n_scenarios} scenarios, {args.normalise} normalisation; "
        f"point estimate [{c.level:.0%} stratified bootstrap interval, {c.reps} resamples, seed {c.seed}]"
    )
    with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 40):
        print(aggregates.to_string(index=False))
        print()
        print("probability of improvement: a run of the row team beats a run of the column team on a random scenario")
        print(poi.to_string(index=False))
    return 0


def cmd_report(args) -> int:
    from pathlib import Path

    from capprof.reports.report import build_report, charts_dir

    from capprof.io import refuse_clashing_paths

    final = Path(args.out)
    # the profile directory itself may hold the report; the other inputs may not
    refuse_clashing_paths({"--out": args.out}, {"--scores": args.scores, "--evaluate": args.evaluate,
                                                "--episodes": args.episodes, "--timeseries": args.timeseries,
                                                "--predictions": args.predictions})
    written = build_report(
        Path(args.dir),
        final,
        teams=args.teams,
        scores_path=args.scores,
        evaluate_path=args.evaluate,
        episodes_path=args.episodes,
        timeseries_path=args.timeseries,
        predictions_path=args.predictions,
        normalisation=args.normalise,
    )
    print(f"wrote {final} and {len(written) - 1} chart(s) in {charts_dir(final)}")
    return 0


def register(sub) -> None:
    """Add ``compare`` and ``report`` to the ``capprof`` command parser."""
    from capprof.profiling.normalise import NORMALISATIONS
    from capprof.reports.compare import DEFAULT_REPS, METRICS

    p = sub.add_parser(
        "compare",
        help="per-team mean, median and IQM with bootstrap intervals, ranks and probabilities of improvement",
    )
    p.add_argument("scores", metavar="SCORES", help="score table (CSV, Parquet, feather, or the published results)")
    p.add_argument("--teams", nargs="+", metavar="TEAM", help="teams to compare (default: all)")
    p.add_argument("--normalise", choices=NORMALISATIONS, default="minmax",
                   help="normalisation applied over all teams before comparing (default: minmax)")
    p.add_argument("--reps", type=bounded_int(1, MAX_REPS, why_high="the bootstrap keeps every resample in memory"),
                   default=DEFAULT_REPS, help=f"bootstrap resamples (default {DEFAULT_REPS})")
    p.add_argument("--seed", type=seed_int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--rank-by", choices=METRICS, default="iqm", help="aggregate that ranks teams (default iqm)")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="one self-contained HTML report of a profile directory")
    p.add_argument("dir", metavar="DIR", help="profile directory (profiles.csv, diagnostics.csv, ...)")
    p.add_argument("--out", default="report.html", help="HTML file to write; charts go next to it (default report.html)")
    p.add_argument("--teams", nargs="+", metavar="TEAM", help="teams overlaid on one radar (default: up to 4)")
    p.add_argument("--scores", help="score table (default: DIR/scores.* if present)")
    p.add_argument("--evaluate", help="`capprof evaluate` output: the directory `--save` wrote (its summary is shown "
                   "as is), or the `--summary` or per-repeat CSV (default: DIR/evaluation/, else "
                   "DIR/evaluate_summary.csv, else DIR/evaluate.csv)")
    p.add_argument("--episodes", help="runner episode records (default: DIR/episodes.* if present)")
    p.add_argument("--timeseries", help="per-player cumulative returns over time (default: DIR/timeseries.* if present)")
    p.add_argument("--predictions", help="`capprof predict --format csv` output: predicted scores on new scenarios "
                                         "(default: DIR/predictions.* if present)")
    p.add_argument("--normalise", choices=NORMALISATIONS, default=None,
                   help="normalisation of the score sections (default: the one the profile was fitted on, else "
                   "minmax)")
    p.set_defaults(func=cmd_report)


__all__ = ["register", "cmd_compare", "cmd_report", "CapprofError"]
