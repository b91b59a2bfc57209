"""`capprof evaluate`, `capprof profile` and `capprof predict`: glue around
``capprof.profiling.profile.Profile`` and the predictor registry.

Heavy libraries (pymc, xgboost, arviz) are imported inside the command
functions so that `capprof --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

from capprof.arguments import bounded_int, positive_int, seed_int
from capprof.errors import CapprofError, note
from capprof.output import write_csvs, write_table

MIN_SAMPLING_STEPS = 10
# repeats beyond this add nothing to the intervals but hours of fitting
MAX_REPEATS = 100


def quiet_library_warnings() -> None:
    """Library chatter (PyTensor's BLAS notice, ArviZ's refactor notice) is not
    the user's problem; the CLI's own notes say what matters."""
    import warnings

    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")


def _model_list(text: str):
    """Comma-separated models, NAME or NAME(KEY=VALUE,...) (the predictor's
    ``__init__`` parameters), each known to the registry, each once: a list
    of ``ModelSpec``. Unknown names, parameters or bad values are one line."""
    from capprof.profiling.predictors import parse_model_list

    return parse_model_list(text)


def _check_sampling(args) -> None:
    if args.draws < MIN_SAMPLING_STEPS or args.tune < MIN_SAMPLING_STEPS:
        raise CapprofError(f"--draws and --tune must be at least {MIN_SAMPLING_STEPS}")


# ------------------------------------------------------------------ disk space

# What evaluate's CSVs and a profile's files other than the posterior need free
# (the demo's are each below 1 MiB), with margin.
SPACE_FLOOR = 16 << 20


def _check_outputs(*paths) -> None:
    """Refuse before the cross-validation an output file whose directory
    cannot be made or written, or whose file system is nearly full."""
    from capprof.io import file_in_the_way, require_space

    for path in paths:
        if path:
            if Path(path).is_dir():
                raise CapprofError(f"{path} is a directory; give a file name for the CSV")
            blocking = file_in_the_way(Path(path).parent)  # a folder on the way may be a file
            if blocking is not None:
                raise CapprofError(f"{path}: {blocking} is a file, so the CSV cannot be written there; "
                                   "choose another file")
            require_space(Path(path).parent, SPACE_FLOOR, "capprof evaluate", fix="choose another file")


def profile_space_bytes(scores, demands, draws: int, chains: int = 2) -> int:
    """What `capprof profile` needs free beside --out: the floor plus the
    posterior (8-byte floats per chain and draw for each ability, scenario
    and cell, doubled for NetCDF's sample statistics and overhead)."""
    teams, scenarios = scores["team"].nunique(), scores["scenario"].nunique()
    per_draw = teams * (demands.shape[1] + 1) + scenarios + teams * scenarios
    return SPACE_FLOOR + 16 * chains * draws * per_draw


# ------------------------------------------------------------------ evaluate


def cmd_evaluate(args) -> int:
    """Cross-validate the predictors (docs/evaluation.md). The scores are
    loaded raw: ``evaluate`` normalises them per fold, from rows that hold no
    test cell, so a held-out cell never sets its own scale."""
    quiet_library_warnings()
    from capprof.profiling.evaluate import evaluate
    from capprof.profiling.inputs import load_scores_and_demands
    from capprof.profiling.predictors import parse_model_spec

    models = _model_list(args.models)
    reference = parse_model_spec(args.reference)
    _check_sampling(args)
    anchors = [a.strip() for a in args.anchors.split(",") if a.strip()] if args.anchors is not None else None
    from capprof.io import refuse_clashing_paths

    refuse_clashing_paths({"--out": args.out, "--cells": args.cells, "--summary": args.summary, "--save": args.save},
                          {"SCORES": args.scores, "--demands": args.demands})
    _check_outputs(args.out, args.cells, args.summary)
    _check_save(args.save)
    raw = load_scores_and_demands(args.scores, args.demands, args.tags, normalisation=None)
    result = evaluate(raw.scores, raw.demands, models, split=args.split, folds=args.folds, repeats=args.repeats,
                      seed=args.seed, normalisation=args.normalise, anchors=anchors, range_floor=args.range_floor,
                      reference=reference, draws=args.draws, tune=args.tune, progress=not args.quiet)
    _note_evaluation(result)
    if args.save:
        _save(result, args.save)
    # --out: the per-repeat table; spreadsheet-safe, and the three files
    # renamed in together (all or none)
    outputs = [(frame, path) for path, frame in ((args.out, result.results), (args.cells, result.cells),
                                                 (args.summary, result.summary)) if path]
    for _, path in outputs:  # made now, not before the work, so a failed run leaves no empty folders
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_csvs(outputs)
    if args.format == "csv":
        write_table(result.results, "csv")
    else:
        _print_evaluation(result)
    return 0


def _check_save(directory) -> None:
    """Refuse before the cross-validation a --save directory that cannot
    take the evaluation (``check_save_target``, then the space test)."""
    from capprof.io import require_space
    from capprof.profiling.evaluate import check_save_target

    if directory:
        check_save_target(directory)
        require_space(Path(directory), SPACE_FLOOR, "capprof evaluate", fix="choose another --save")


def _save(result, directory) -> None:
    """``result.save``: atomic, so a full disk leaves the old directory and is
    one line naming the --save directory."""
    from capprof.io import write_problem

    try:
        result.save(directory)
    except OSError as exc:
        problem = write_problem(exc, directory, fix="choose another --save")
        if problem is None:
            raise
        raise CapprofError(problem) from None


def _note_evaluation(result) -> None:
    """The layouts' sampling diagnostics and the protocol, as notes."""
    diag, protocol = result.diagnostics, result.protocol
    if len(diag):
        worst = diag.sort_values("max_rhat").iloc[-1]
        note(f"layout sampling: max R-hat {diag['max_rhat'].max():.3f}, min bulk ESS "
             f"{diag['min_ess_bulk'].min():.0f}, {int(diag['divergences'].sum())} divergence(s) over "
             f"{len(diag)} fit(s) (worst: {worst['model']} repeat {worst['repeat']} fold {worst['fold']})")
    anchors_text = f", anchors {','.join(protocol['anchors'])} (never scored)" if protocol["anchors"] else ""
    note(f"{protocol['folds']}-fold cross-validation by {protocol['split']}, {protocol['repeats']} repeat(s), "
         f"{protocol['normalisation']} constants per fold from "
         f"{'anchor' if protocol['anchors'] else 'training'} rows{anchors_text}; "
         f"standard errors clustered by {protocol['cluster']}")


def _print_evaluation(result) -> None:
    """The summary, then the paired differences against the reference."""
    shown = ["model", "split", "team", "n_cells", "mse", "mse_low", "mse_high", "coverage", "width", "fit_s", "flag"]
    write_table(result.summary[shown], "table")
    if len(result.differences):
        protocol = result.protocol
        sys.stdout.write(f"\npaired difference in squared error per cell vs {protocol['reference']} "
                         f"(negative: better; 95% interval, clustered by {protocol['cluster']})\n")
        write_table(result.differences[["model", "split", "n_cells", "diff", "diff_low", "diff_high", "clusters"]],
                    "table")


# ------------------------------------------------------------------ profile


def cmd_profile(args) -> int:
    quiet_library_warnings()
    from capprof.profiling.profile import Profile, check_writable

    _check_sampling(args)
    mode, layout_params, assessor_params, with_assessor = _profile_models(args)
    out = Path(args.out)
    from capprof.io import refuse_clashing_paths

    refuse_clashing_paths({"--out": args.out}, {"SCORES": args.scores, "--demands": args.demands})
    if out.exists() and not out.is_dir():
        raise CapprofError(f"--out {out} is a file; give a directory")
    check_writable(out)
    from capprof.profiling.inputs import load_scores_and_demands

    inputs = load_scores_and_demands(args.scores, args.demands, args.tags, args.normalise)
    scores, demands = inputs.scores, inputs.demands
    from capprof.io import require_space

    require_space(out.parent if not out.is_dir() else out, profile_space_bytes(scores, demands, args.draws),
                  "capprof profile")
    print(f"fitting the measurement layout ({mode}) on {scores['team'].nunique()} teams x "
          f"{scores['scenario'].nunique()} scenarios x {demands.shape[1]} demands ...", file=sys.stderr)
    profile = Profile.fit(scores, demands, mode=mode, draws=args.draws, tune=args.tune, seed=args.seed,
                          progressbar=not args.quiet and sys.stderr.isatty(), metadata=inputs.metadata(),
                          layout_params=layout_params, assessor_params=assessor_params, assessor=with_assessor)
    profile.save(out)  # atomic: nothing appears at --out until the profile is whole
    d = profile.layout.diagnostics_
    print(f"wrote {', '.join(profile.file_names())} to {out}")
    from capprof.profiling import checks
    print(checks.describe_fit(d, profile.layout.fit_seconds_))
    return 0


def _profile_models(args):
    """What `capprof profile` fits: (mode, layout parameters, assessor
    parameters, whether to fit the assessor). ``--models`` names one layout
    (its mode: layout-joint or layout-per-team) and optionally the assessor,
    each with parameters; without it, the layout of ``--mode`` and the
    assessor with their defaults."""
    from capprof.profiling.constants import DEFAULT_LAYOUT_MODE
    from capprof.profiling.predictors import predictor_class

    if args.models is None:
        return args.mode or DEFAULT_LAYOUT_MODE, {}, {}, True
    specs = _model_list(args.models)
    layouts = [s for s in specs if s.name.startswith("layout")]
    others = [s for s in specs if not s.name.startswith("layout") and s.name != "assessor"]
    if others:
        raise CapprofError(f'profile fits a layout and the assessor, not "{others[0].label}"; '
                           "use --models layout-joint,assessor (parameters in parentheses)")
    if len(layouts) != 1:
        raise CapprofError("profile --models needs exactly one layout (layout-joint or layout-per-team), "
                           f"got {len(layouts)}")
    mode = predictor_class(layouts[0].name).mode
    if args.mode is not None and args.mode != mode:
        raise CapprofError(f"--mode {args.mode} contradicts --models {layouts[0].label}; give one of them")
    layout_params = {k: v for k, v in layouts[0].params if k != "mode"}
    assessor = [s for s in specs if s.name == "assessor"]
    return mode, layout_params, assessor[0].kwargs if assessor else {}, bool(assessor)


# ------------------------------------------------------------------ predict


def cmd_predict(args) -> int:
    quiet_library_warnings()
    from capprof.profiling.profile import Profile, read_scenarios_file

    named = [n.strip() for n in args.scenario or [] if n.strip()]
    if not named and not args.scenarios:
        raise CapprofError("predict needs scenarios; name them with --scenario NAME (repeatable) "
                           "and/or --scenarios FILE")
    models = _model_list(args.models) if args.models is not None else None
    listed, custom = read_scenarios_file(args.scenarios) if args.scenarios else ([], None)
    profile = Profile.load(args.dir)
    table = profile.predict(scenarios=[*listed, *named], demands=custom, models=models)
    write_table(table, args.format)
    return 0


# ------------------------------------------------------------------ parser


def _score_arguments(p) -> None:
    from capprof.profiling.normalise import NORMALISATIONS

    p.add_argument("scores", metavar="SCORES", help="score table (path or URL; see docs/schema.md)")
    p.add_argument("--normalise", choices=NORMALISATIONS, default="minmax",
                   help="per-scenario normalisation before modelling (default: minmax)")
    p.add_argument("--demands", metavar="FILE", help="custom demands file (CSV/YAML, docs/demands.md)")
    p.add_argument("--tags", default="all", metavar="all|contest|LIST",
                   help="behavioural tags used as demands (default: all)")
    p.add_argument("--draws", type=positive_int, default=1000,
                   help="NUTS draws per chain for the layout (default 1000)")
    p.add_argument("--tune", type=positive_int, default=500, help="NUTS tuning steps per chain (default 500)")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed, 0 to 2147483647 (default 0)")


def _format_argument(p, default: str) -> None:
    """Add --format (table or csv) with the command's own default; returns nothing."""
    p.add_argument("--format", choices=("table", "csv"), default=default)


def _cross_validation_arguments(p) -> None:
    """Add evaluate's protocol options: what is held out, how often, against
    which reference, with which anchors and range floor; returns nothing."""
    from capprof.profiling.evaluate import DEFAULT_FOLDS, DEFAULT_REFERENCE, SPLITS
    from capprof.profiling.folds import RANGE_FLOOR

    p.add_argument("--split", choices=SPLITS, default="random",
                   help="what is held out: cells (random), whole scenarios or whole substrates")
    p.add_argument("--folds", type=bounded_int(2, 10_000, why_low="K-fold needs at least 2 folds"), default=DEFAULT_FOLDS,
                   help=f"K of K-fold cross-validation; every cell is held out once per repeat (default {DEFAULT_FOLDS})")
    p.add_argument("--repeats", type=bounded_int(1, MAX_REPEATS, why_high="each repeat refits every model on every fold"), default=1,
                   help="repeated K-fold with different shuffles (default 1)")
    p.add_argument("--reference", default=DEFAULT_REFERENCE,
                   help=f"model the others are compared to cell by cell (default {DEFAULT_REFERENCE})")
    p.add_argument("--anchors", metavar="TEAM,TEAM", default=None,
                   help="teams whose cells set each scenario's scale and are never scored (default: none for "
                   "random splits; random and exploiter* for scenario and substrate splits)")
    p.add_argument("--range-floor", type=float, default=RANGE_FLOOR,
                   help=f"raise a scenario's range to this share of its substrate's median range (default {RANGE_FLOOR})")


def _evaluation_output_arguments(p) -> None:
    """Add evaluate's optional files: --out, --cells, --summary and the
    --save directory; returns nothing."""
    p.add_argument("--out", metavar="FILE", help="also write the per-repeat CSV to FILE (e.g. PROFILE_DIR/evaluate.csv "
                   "for `capprof report`)")
    p.add_argument("--cells", metavar="FILE", help="also write every test cell's prediction and error to FILE (CSV)")
    p.add_argument("--summary", metavar="FILE", help="also write the summary (clustered intervals, coverage, flags) "
                   "to FILE (CSV)")
    p.add_argument("--save", metavar="DIR", help="also save the whole evaluation (every table and the protocol) to "
                   "the directory DIR, atomically; `capprof report` shows its summary as is (PROFILE_DIR/evaluation, "
                   "or --evaluate DIR)")


def _register_evaluate(sub) -> None:
    """Add `capprof evaluate` to the subparsers ``sub``; returns nothing."""
    from capprof.profiling.predictors import predictor_names

    p = sub.add_parser("evaluate", help="cross-validate score predictors on held-out cells, scenarios or substrates")
    # the option order below is the order --help lists them in
    _score_arguments(p)
    _cross_validation_arguments(p)
    p.add_argument("--models", default="aggmean,ridge,assessor,lltm,lowrank,layout-joint",
                   help=f"comma-separated, from {', '.join(predictor_names())}; each NAME or NAME(KEY=VALUE,...) "
                   "to set its __init__ parameters (true/false, none, numbers or text), e.g. "
                   "'layout-joint(scenario_effect=false,draws=500)'; a model given parameters is reported under "
                   "that spec, so variants compare in one run (docs/evaluation.md)")
    _format_argument(p, "table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _evaluation_output_arguments(p)
    p.set_defaults(func=cmd_evaluate)


def _register_profile(sub) -> None:
    """Add `capprof profile` to the subparsers ``sub``; returns nothing."""
    from capprof.profiling.constants import DEFAULT_LAYOUT_MODE, LAYOUT_MODES

    p = sub.add_parser("profile", help="fit capability profiles (measurement layout) and the assessor")
    _score_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="directory for profiles.csv, posterior.nc, ... (written atomically)")
    p.add_argument("--quiet", action="store_true", help="no sampling progress display")
    p.add_argument("--mode", choices=LAYOUT_MODES, default=None,
                   help=f"joint: abilities pooled across teams (default: {DEFAULT_LAYOUT_MODE}; model layout-joint); "
                   "per-team: one model per team (model layout-per-team)")
    p.add_argument("--models", default=None, metavar="LIST",
                   help="the layout and (optionally) the assessor to fit, each NAME or NAME(KEY=VALUE,...) with its "
                   "__init__ parameters, e.g. 'layout-joint(scenario_effect=false,draws=500),assessor' "
                   "(default: layout of --mode, and the assessor; a list without assessor fits none; "
                   "docs/evaluation.md)")
    p.set_defaults(func=cmd_profile)


def _register_predict(sub) -> None:
    """Add `capprof predict` to the subparsers ``sub``; returns nothing."""
    p = sub.add_parser("predict", help="predict profiled teams' scores on new scenarios")
    p.add_argument("dir", metavar="DIR", help="a directory written by `capprof profile`")
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help="a catalog or profiled scenario to predict (repeatable)")
    p.add_argument("--scenarios", metavar="FILE",
                   help="scenario names (one per line, or a CSV `scenario` column) or a demands file; "
                   "combined with --scenario, the union is predicted")
    p.add_argument("--models", default=None, metavar="LIST",
                   help="the profile's layout (layout-joint, alias layout, or layout-per-team) and/or assessor "
                   "(default: both); the layout takes the parameters that still matter after fitting, e.g. "
                   "'layout-joint(interval=0.5,seed=1)'")
    _format_argument(p, "csv")
    p.set_defaults(func=cmd_predict)


def register(sub) -> None:
    """Add `capprof evaluate`, `capprof profile` and `capprof predict` to the
    subparsers ``sub``; returns nothing."""
    _register_evaluate(sub)
    _register_profile(sub)
    _register_predict(sub)
