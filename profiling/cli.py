"""`capprof evaluate`, `capprof profile` and `capprof predict`.

Heavy libraries (pymc, xgboost, arviz) are imported inside the command
functions so that `capprof --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from capprof.errors import CapprofError
from capprof.output import write_table

PROFILE_FILES = {
    "profiles": "profiles.csv",
    "posterior": "posterior.nc",
    "diagnostics": "diagnostics.csv",
    "assessor": "assessor.json",
    "importances": "importances.csv",
    "demands": "demands.csv",
    "meta": "model.json",
}
PREDICT_MODELS = ("layout", "assessor")


def _quiet_library_warnings() -> None:
    """Library chatter (PyTensor's BLAS notice, ArviZ's refactor notice) is not
    the user's problem; the CLI's own notes say what matters."""
    import warnings

    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")


def _note(message: str) -> None:
    print(f"capprof: note: {message}", file=sys.stderr)


def load_scores_and_demands(args):
    """Scores (validated against catalog + custom scenarios), normalised, and
    the demand matrix of the scored scenarios."""
    from capprof.profiling.normalise import normalise
    from capprof.scores import load_scores
    from capprof.tagging.catalog import load_catalog
    from capprof.tagging.demands import custom_demands_for, demand_matrix, known_scenarios

    catalog = load_catalog()
    custom = custom_demands_for(args.scores, args.demands, catalog)
    known = known_scenarios(custom, catalog)
    scores = load_scores(args.scores, known_scenarios=known, min_teams=2)
    scores = normalise(scores, args.normalise)
    if scores.empty:
        raise CapprofError("no scores remain after normalisation; every scenario was degenerate")
    demands = demand_matrix(sorted(scores["scenario"].unique()), tags=args.tags, custom=custom, catalog=catalog)
    return scores, demands


def _models(text: str) -> list[str]:
    from capprof.profiling.evaluate import make_predictor

    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise CapprofError("--models is empty; name at least one model")
    for name in names:
        make_predictor(name)
    return list(dict.fromkeys(names))


def _check_sampling(args) -> None:
    if args.draws < 10 or args.tune < 10:
        raise CapprofError("--draws and --tune must be at least 10")


# ------------------------------------------------------------------ evaluate


def cmd_evaluate(args) -> int:
    """Cross-validate the predictors (docs/evaluation.md). The scores are
    loaded raw: ``evaluate`` normalises them per fold, from rows that hold no
    test cell, so a held-out cell never sets its own scale."""
    _quiet_library_warnings()
    import argparse

    import pandas as pd

    from capprof.profiling.evaluate import RESULT_COLUMNS, evaluate

    models = _models(args.models)
    _check_sampling(args)
    anchors = [a.strip() for a in args.anchors.split(",") if a.strip()] if args.anchors is not None else None
    raw_args = argparse.Namespace(**{**vars(args), "normalise": "none"})
    scores, demands = load_scores_and_demands(raw_args)
    scores = scores.drop(columns="raw_score", errors="ignore")
    result = evaluate(scores, demands, models, split=args.split, folds=args.folds, repeats=args.repeats,
                      seed=args.seed, normalisation=args.normalise, anchors=anchors, range_floor=args.range_floor,
                      reference=args.reference, draws=args.draws, tune=args.tune, progress=not args.quiet)
    diag = result.diagnostics
    if len(diag):
        worst = diag.sort_values("max_rhat").iloc[-1]
        _note(f"layout sampling: max R-hat {diag['max_rhat'].max():.3f}, min bulk ESS "
              f"{diag['min_ess_bulk'].min():.0f}, {int(diag['divergences'].sum())} divergence(s) over "
              f"{len(diag)} fit(s) (worst: {worst['model']} repeat {worst['repeat']} fold {worst['fold']})")
    protocol = result.protocol
    anchors_text = f", anchors {','.join(protocol['anchors'])} (never scored)" if protocol["anchors"] else ""
    _note(f"{protocol['folds']}-fold cross-validation by {args.split}, {protocol['repeats']} repeat(s), "
          f"{args.normalise} constants per fold from "
          f"{'anchor' if protocol['anchors'] else 'training'} rows{anchors_text}; "
          f"standard errors clustered by {protocol['cluster']}")
    per_repeat = result.results[list(RESULT_COLUMNS)]
    if args.out:
        # the per-repeat table `capprof report` reads as DIR/evaluate.csv
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        per_repeat.to_csv(args.out, index=False, float_format="%.6g")
    if args.cells:
        Path(args.cells).parent.mkdir(parents=True, exist_ok=True)
        result.cells.to_csv(args.cells, index=False, float_format="%.6g")
    if args.format == "csv":
        write_table(per_repeat, "csv")
    else:
        shown = ["model", "split", "team", "n_cells", "mse", "mse_low", "mse_high", "coverage", "width", "fit_s",
                 "flag"]
        write_table(result.summary[shown], "table")
        if len(result.differences):
            sys.stdout.write(f"\npaired difference in squared error per cell vs {protocol['reference']} "
                             f"(negative: better; 95% interval, clustered by {protocol['cluster']})\n")
            diffs = result.differences[["model", "split", "n_cells", "diff", "diff_low", "diff_high", "clusters"]]
            write_table(pd.DataFrame(diffs), "table")
    return 0


# ------------------------------------------------------------------ profile


def cmd_profile(args) -> int:
    _quiet_library_warnings()
    import pandas as pd

    from capprof.profiling.predictors import Assessor, MeasurementLayout

    _check_sampling(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CapprofError(f"--out {out} is a file; give a directory")
    scores, demands = load_scores_and_demands(args)
    out.mkdir(parents=True, exist_ok=True)

    print(f"fitting the measurement layout ({args.mode}) on {scores['team'].nunique()} teams x "
          f"{scores['scenario'].nunique()} scenarios x {demands.shape[1]} demands ...", file=sys.stderr)
    layout = MeasurementLayout(mode=args.mode, draws=args.draws, tune=args.tune, seed=args.seed,
                               progressbar=not args.quiet and sys.stderr.isatty())
    layout.fit(scores, demands)
    layout.abilities().to_csv(out / PROFILE_FILES["profiles"], index=False, float_format="%.6g")
    tmp = out / (PROFILE_FILES["posterior"] + ".tmp")
    layout.idata_.to_netcdf(str(tmp))
    tmp.replace(out / PROFILE_FILES["posterior"])
    diag = {"model": layout.name, **layout.diagnostics_, "fit_s": layout.fit_seconds_}
    pd.DataFrame([diag]).to_csv(out / PROFILE_FILES["diagnostics"], index=False, float_format="%.6g")

    assessor = Assessor(seed=args.seed).fit(scores, demands)
    assessor.save(out / PROFILE_FILES["assessor"])
    assessor.feature_importances_.to_csv(out / PROFILE_FILES["importances"], index=False, float_format="%.6g")
    demands.to_csv(out / PROFILE_FILES["demands"], float_format="%.6g")

    meta = {
        "format": 1,
        "normalisation": args.normalise,
        "tags": args.tags,
        "demands_file": str(args.demands) if args.demands else None,
        "teams": layout.teams_,
        "demand_columns": list(demands.columns),
        "layout": {"mode": args.mode, "squeeze": layout.squeeze, "scale": layout.scale,
                   "chance": layout.chance, "interval": layout.interval, "seed": args.seed},
        "dropped_scenarios": list(scores.attrs.get("dropped_scenarios", [])),
    }
    (out / PROFILE_FILES["meta"]).write_text(json.dumps(meta, indent=1) + "\n")

    d = layout.diagnostics_
    print(f"wrote {', '.join(PROFILE_FILES.values())} to {out}")
    print(f"sampling: max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
          f"{d['divergences']} divergence(s), {layout.fit_seconds_:.1f} s")
    if d["max_rhat"] > 1.01 or d["divergences"] > 0:
        _note("the sampler has not clearly converged (R-hat > 1.01 or divergences); "
              "rerun with more --tune and --draws before trusting the profiles")
    return 0


# ------------------------------------------------------------------ predict


def _read_scenarios_file(path: Path, catalog):
    """Scenario names listed in ``path`` and, for a demands file, the custom
    demands it describes (else None)."""
    import pandas as pd

    from capprof.tagging.demands import load_custom_demands

    if not path.exists():
        raise CapprofError(f"scenarios file {path} does not exist; check the path")
    suffix = path.suffix.lower()
    described = suffix in (".yaml", ".yml")
    if suffix == ".csv":
        header = pd.read_csv(path, nrows=0).columns
        if "scenario" not in header:
            raise CapprofError(f"{path}: missing the `scenario` column")
        described = any(c not in ("scenario", "substrate") for c in header)
    if described:
        custom = load_custom_demands(path, catalog)
        return list(custom.index), custom
    if suffix == ".csv":
        names = pd.read_csv(path, dtype=str)["scenario"].dropna().str.strip().tolist()
    else:
        names = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise CapprofError(f"{path}: names no scenario; list one scenario per line")
    return names, None


def _scenarios_to_predict(path: Path | None, named: list[str], meta: dict, fitted_demands):
    """Names and demand rows of the scenarios to predict: those listed or
    described in ``path`` (``--scenarios``), then those in ``named``
    (``--scenario``), each once, in first-seen order.

    A scenario's demands come from the demands file when it describes it,
    else from the profile (which keeps scenarios the profile was fitted on,
    custom ones included), else from the catalog.
    """
    import pandas as pd

    from capprof.tagging.catalog import load_catalog
    from capprof.tagging.demands import demand_matrix

    catalog = load_catalog()
    listed, custom = _read_scenarios_file(path, catalog) if path is not None else ([], None)
    names = list(dict.fromkeys([*listed, *named]))
    described = [n for n in names if custom is not None and n in custom.index]
    stored = [n for n in names if n not in described and n in fitted_demands.index]
    from_catalog = [n for n in names if n not in described and n not in stored]
    parts = [fitted_demands.loc[stored]]
    if described:
        parts.append(demand_matrix(described, tags=meta["tags"], custom=custom, catalog=catalog,
                                   drop_unused=False))
    if from_catalog:
        parts.append(demand_matrix(from_catalog, tags=meta["tags"], catalog=catalog, drop_unused=False))
    # a demand absent from a part (e.g. a catalog substrate the profile never
    # saw) is simply not demanded there
    return names, pd.concat(parts).fillna(0.0).loc[names]


def cmd_predict(args) -> int:
    _quiet_library_warnings()
    import itertools

    import pandas as pd

    named = [n.strip() for n in args.scenario or [] if n.strip()]
    if not named and not args.scenarios:
        raise CapprofError("predict needs scenarios; name them with --scenario NAME (repeatable) "
                           "and/or --scenarios FILE")
    directory = Path(args.dir)
    meta_path = directory / PROFILE_FILES["meta"]
    if not meta_path.exists():
        raise CapprofError(f"{directory} holds no profile ({PROFILE_FILES['meta']} missing); "
                           "run `capprof profile SCORES --out DIR` first")
    meta = json.loads(meta_path.read_text())
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in PREDICT_MODELS]
    if bad or not models:
        raise CapprofError(f'unknown model "{bad[0] if bad else ""}" for predict; use {" and/or ".join(PREDICT_MODELS)}')
    fitted_demands = pd.read_csv(directory / PROFILE_FILES["demands"], index_col="scenario")
    scenarios_file = Path(args.scenarios) if args.scenarios else None
    names, rows = _scenarios_to_predict(scenarios_file, named, meta, fitted_demands)
    teams = meta["teams"]
    pairs = list(itertools.product(teams, names))
    pair_teams, pair_scenarios = [p[0] for p in pairs], [p[1] for p in pairs]
    frames = []
    if "layout" in models:
        import arviz as az

        from capprof.profiling.predictors import MeasurementLayout

        params = {k: meta["layout"][k] for k in ("mode", "squeeze", "scale", "chance", "interval", "seed")}
        idata = az.from_netcdf(str(directory / PROFILE_FILES["posterior"]))
        layout = MeasurementLayout.from_posterior(idata, fitted_demands, **params)
        frame = layout.predict(pair_teams, pair_scenarios, demands=rows)
        frame.insert(2, "model", layout.name)
        frames.append(frame)
    if "assessor" in models:
        from capprof.profiling.predictors import Assessor

        assessor = Assessor.from_booster(directory / PROFILE_FILES["assessor"], teams, fitted_demands)
        frame = assessor.predict(pair_teams, pair_scenarios, demands=rows)
        frame.insert(2, "model", assessor.name)
        frames.append(frame)
    write_table(pd.concat(frames, ignore_index=True)[["team", "scenario", "model", "predicted", "low", "high"]],
           args.format)
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
    p.add_argument("--draws", type=int, default=1000, help="NUTS draws per chain for the layout (default 1000)")
    p.add_argument("--tune", type=int, default=500, help="NUTS tuning steps per chain (default 500)")
    p.add_argument("--seed", type=int, default=0)


def register(sub) -> None:
    from capprof.profiling.evaluate import MODEL_NAMES, SPLITS

    p = sub.add_parser("evaluate", help="cross-validate score predictors on held-out cells, scenarios or substrates")
    _score_arguments(p)
    from capprof.arguments import positive_int
    from capprof.profiling.evaluate import DEFAULT_FOLDS, DEFAULT_REFERENCE, RANGE_FLOOR, SPLITS
    from capprof.profiling.predictors import predictor_names

    p.add_argument("--split", choices=SPLITS, default="random",
                   help="what is held out: cells (random), whole scenarios or whole substrates")
    p.add_argument("--folds", type=positive_int, default=DEFAULT_FOLDS,
                   help=f"K of K-fold cross-validation; every cell is held out once per repeat (default {DEFAULT_FOLDS})")
    p.add_argument("--repeats", type=positive_int, default=1,
                   help="repeated K-fold with different shuffles (default 1)")
    p.add_argument("--reference", default=DEFAULT_REFERENCE,
                   help=f"model the others are compared to cell by cell (default {DEFAULT_REFERENCE})")
    p.add_argument("--anchors", metavar="TEAM,TEAM", default=None,
                   help="teams whose cells set each scenario's scale and are never scored (default: none for "
                   "random splits; random and exploiter* for scenario and substrate splits)")
    p.add_argument("--range-floor", type=float, default=RANGE_FLOOR,
                   help=f"raise a scenario's range to this share of its substrate's median range (default {RANGE_FLOOR})")
    p.add_argument("--models", default="aggmean,ridge,assessor,layout-joint",
                   help=f"comma-separated, from {', '.join(predictor_names())}")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", metavar="FILE", help="also write the per-repeat CSV to FILE (e.g. PROFILE_DIR/evaluate.csv "
                   "for `capprof report`)")
    p.add_argument("--cells", metavar="FILE", help="also write every test cell's prediction and error to FILE (CSV)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("profile", help="fit capability profiles (measurement layout) and the assessor")
    _score_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="directory for profiles.csv, posterior.nc, ...")
    p.add_argument("--quiet", action="store_true", help="no sampling progress display")
    p.add_argument("--mode", choices=("joint", "per-team"), default="joint",
                   help="joint: abilities pooled across teams (default); per-team: one model per team")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("predict", help="predict profiled teams' scores on new scenarios")
    p.add_argument("dir", metavar="DIR", help="a directory written by `capprof profile`")
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help="a catalog or profiled scenario to predict (repeatable)")
    p.add_argument("--scenarios", metavar="FILE",
                   help="scenario names (one per line, or a CSV `scenario` column) or a demands file; "
                   "combined with --scenario, the union is predicted")
    p.add_argument("--models", default="layout,assessor", help="layout and/or assessor (default both)")
    p.add_argument("--format", choices=("table", "csv"), default="csv")
    p.set_defaults(func=cmd_predict)
