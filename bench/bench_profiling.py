"""Profiling benchmark on the published Melting Pot results (docs/evaluation.md).

Runs ``capprof.profiling.evaluate`` (K-fold cross-validation, normalising
constants per fold from training or anchor rows, docs/evaluation.md) on the
raw published scores (team = MAPLA) and prints, per split:

1. pooled test MSE of every predictor with its 95% interval (standard error
   clustered by scenario; by substrate for the substrate split), the ratio
   to AggMean, the paired per-cell difference against AggMean with its
   interval, and, for models with intervals, coverage and mean width;
2. per-team MSE (teams with fewer than 20 test cells are flagged, no value);
3. the layouts' sampling diagnostics over the folds.

Parts: ``random``, ``scenario``, ``substrate`` (splits); ``leak`` (the old
protocol, min-max over the whole table before splitting, on the same folds:
how much the leak flattered each model); ``full`` (one joint layout fit on
every scenario with the ``--baseline`` configuration (the layout's former
default) and with each ``--candidates`` parameter list in the same
run, each compiling its model afresh, and after the default the default once more on a random
90% of the cells, as one fold of ``evaluate`` does, which reuses the default's
compiled model: wall time with its compile and sampling seconds, max R-hat,
min bulk/tail ESS, leapfrog steps per draw, bulk ESS per second, their ratios
to the baseline's, and whether each meets the target of <= 20 s at R-hat <=
1.01 and bulk ESS >= 400). ``--skip`` leaves parts out;
``--models`` picks the predictors (default: every registered one);
``--out DIR`` keeps the tidy tables (cells, summary, differences, fits,
diagnostics) per split as CSV.
Usage: python bench/bench_profiling.py [--folds 10] [--draws 300 --tune 300]
       [--models aggmean,ridge,...] [--skip leak,full] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT.parent / "shared" / "data" / "meltingpot-results-2.1.1.feather"
PARTS = ("random", "scenario", "substrate", "leak", "full")
# the joint layout's former default configuration (no scenario residual)
BASELINE = "draws=1000,tune=500,scenario_effect=false"
CANDIDATES = ("default", "draws=1000,tune=500", "tune=300,draws=300", "tune=300,draws=300,mass_matrix=low-rank",
              "tune=300,draws=300,quadrature=8")


def _candidate(spec: str):
    """A ``ModelSpec`` of layout-joint from KEY=VALUE,... or TUNExDRAWS (or 'default')."""
    from capprof.profiling.predictors import parse_model_spec

    spec = spec.strip()
    if spec == "default":
        return parse_model_spec("layout-joint")
    if "x" in spec and "=" not in spec:
        tune, draws = spec.split("x")
        spec = f"tune={tune},draws={draws}"
    return parse_model_spec(f"layout-joint({spec})")


def _fmt(v: float) -> str:
    return f"{v:.4f}"


def report(result, split: str, out: Path | None) -> pd.DataFrame:
    """Print the pooled and per-team tables of one Evaluation; return the pooled table."""
    summary, diffs = result.summary, result.differences
    pooled = summary[summary["team"] == "ALL"].set_index("model")
    base = pooled.loc["aggmean", "mse"] if "aggmean" in pooled.index else float("nan")
    pooled["x_aggmean"] = pooled["mse"] / base
    d = diffs.set_index("model")
    pooled["diff"] = d["diff"]
    pooled["diff_low"] = d["diff_low"]
    pooled["diff_high"] = d["diff_high"]
    protocol = result.protocol
    anchors = ", ".join(protocol["anchors"]) or "none"
    print(f"\n== {split} split: {protocol['folds']}-fold, {protocol['repeats']} repeat(s), "
          f"{pooled['n_cells'].iloc[0]} test cells, anchors {anchors}, SE clustered by {protocol['cluster']} "
          f"({pooled['clusters'].iloc[0]} clusters); unscored cells {protocol['unscored_cells']} ==")
    shown = ["mse", "mse_low", "mse_high", "x_aggmean", "diff", "diff_low", "diff_high", "coverage", "width",
             "fit_s"]
    print(pooled[shown].to_string(float_format=_fmt))
    per_team = summary[summary["team"] != "ALL"]
    table = per_team.pivot(index="team", columns="model", values="mse")
    flags = per_team.drop_duplicates("team").set_index("team")["flag"]
    table["flag"] = flags
    print(f"\n-- {split} split: MSE per team (NaN = flagged) --")
    print(table.to_string(float_format=_fmt))
    layouts = [m for m in pooled.index if str(m).startswith("layout")]
    baselines = [m for m in pooled.index if not str(m).startswith("layout")]
    if layouts and baselines:
        # each layout against each baseline, cell by cell (negative: the layout is better)
        from capprof.profiling.evaluate import differences

        best = min(baselines, key=lambda m: pooled.loc[m, "mse"])
        print(f"\n-- {split} split: each layout vs each baseline, paired per-cell difference in squared error "
              f"(negative: the layout is better; 95% interval clustered by {protocol['cluster']}); best baseline "
              f"{best} --")
        rows = []
        for reference in baselines:
            table = differences(result.cells, reference).set_index("model")
            for model in layouts:
                rows.append({"layout": model, "vs": reference, "diff": table.loc[model, "diff"],
                             "diff_low": table.loc[model, "diff_low"], "diff_high": table.loc[model, "diff_high"],
                             "mse_ratio": pooled.loc[model, "mse"] / pooled.loc[reference, "mse"]})
        paired = pd.DataFrame(rows)
        print(paired.to_string(index=False, float_format=_fmt))
        for model in layouts:
            ratio = pooled.loc[model, "mse"] / pooled.loc[best, "mse"]
            print(f"{model}: MSE {ratio:.3f}x the best baseline ({best}); 90% interval coverage "
                  f"{pooled.loc[model, 'coverage']:.3f} (target 0.85-0.95), width {pooled.loc[model, 'width']:.3f}")
        if out is not None:
            paired.to_csv(out / f"{split}_layout_vs_baselines.csv", index=False, float_format="%.6g")
    diag = result.diagnostics
    if len(diag):
        print(f"\nlayout sampling over {len(diag)} fit(s): max R-hat {diag['max_rhat'].max():.3f}, "
              f"min bulk ESS {diag['min_ess_bulk'].min():.0f}, divergences {int(diag['divergences'].sum())}")
    if out is not None:
        for name in ("cells", "summary", "differences", "fits", "diagnostics"):
            frame = getattr(result, name)
            if len(frame):
                frame.to_csv(out / f"{split}_{name}.csv", index=False, float_format="%.6g")
    sys.stdout.flush()
    return pooled


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", default=str(PUBLISHED))
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--models", default=None, help="comma-separated (default: every registered predictor "
                        "except layout-per-team, the slowest)")
    parser.add_argument("--draws", type=int, default=300, help="layout draws per chain in the folds")
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--baseline", default=BASELINE,
                        help="layout-joint parameters of the configuration every candidate is compared to in part "
                        f"full (default: the layout's former default, {BASELINE})")
    parser.add_argument("--candidates", default=";".join(CANDIDATES),
                        help="semicolon-separated layout-joint parameter lists (KEY=VALUE,...; TUNExDRAWS is "
                        "short for tune=TUNE,draws=DRAWS) timed against the baseline in part full; 'default' is "
                        "today's layout-joint defaults")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to skip: {','.join(PARTS)}")
    parser.add_argument("--splits", default="random,scenario,substrate",
                        help="the cross-validation splits to run (parts random, scenario, substrate)")
    parser.add_argument("--out", default=None, help="directory for the tidy CSVs (default: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="a progress bar per split on stderr")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    from capprof.profiling.evaluate import evaluate
    from capprof.profiling.normalise import normalise
    from capprof.profiling.predictors import make_predictor, parse_model_list, predictor_names
    from capprof.scores import load_scores
    from capprof.tagging.demands import demand_matrix

    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    raw = load_scores(args.scores, min_teams=2)
    demands = demand_matrix(sorted(raw["scenario"].unique()), tags="all")
    # NAME or NAME(KEY=VALUE,...) (commas inside parentheses belong to the spec)
    models = [s.label for s in parse_model_list(args.models)] if args.models else \
        [m for m in predictor_names() if m != "layout-per-team"]
    if "aggmean" in models:
        models.remove("aggmean")
    models.insert(0, "aggmean")
    skip = set(filter(None, args.skip.split(",")))
    print(f"data: {raw['team'].nunique()} teams, {raw['scenario'].nunique()} scenarios, {len(raw)} rows, "
          f"{demands.shape[1]} demands; models {', '.join(models)}; layout draws={args.draws} tune={args.tune}")
    common = dict(folds=args.folds, repeats=args.repeats, seed=args.seed, draws=args.draws, tune=args.tune,
                  progress=args.progress)
    pooled = {}
    for split in ("random", "scenario", "substrate"):
        if split in skip or split not in args.splits.split(","):
            continue
        start = time.perf_counter()
        result = evaluate(raw, demands, models, split=split, **common)
        pooled[split] = report(result, split, out)
        print(f"({split} part: {time.perf_counter() - start:.0f} s)")
    if "leak" not in skip:
        # the old protocol: min-max over the whole table (test cells included) before splitting
        leaky = normalise(raw, "minmax").drop(columns="raw_score")
        fast = [m for m in models if not m.startswith("layout")]
        result = evaluate(leaky, demands, fast, split="random", normalisation="none", **common)
        leak = report(result, "random (leaky whole-table min-max, old protocol)", None)
        if "random" in pooled:
            ratio = (pooled["random"]["mse"] / leak["mse"]).dropna()
            print("\nMSE under the per-fold protocol / under the leaky one (random split): "
                  + ", ".join(f"{m} {v:.2f}" for m, v in ratio.items()))
    if "full" not in skip:
        scores = normalise(raw, "minmax")
        configs = [("baseline", _candidate(args.baseline))]
        configs += [(spec.strip(), _candidate(spec)) for spec in args.candidates.split(";") if spec.strip()]
        print(f"\n== joint layout on all {scores['scenario'].nunique()} scenarios, nutpie: each configuration "
              f"against the baseline ({args.baseline}), in this run (target: <= 20 s at R-hat <= 1.01, "
              f"min bulk ESS >= 400); wall time includes compilation ==")
        rows, posteriors = [], {}
        from capprof.profiling import layout as maths

        # after the default: the default again on a random 90% of the cells (as one
        # fold of evaluate), which samples with the default's compiled model
        fold = scores[~scores.set_index(["team", "scenario"]).index.isin(
            scores[["team", "scenario"]].drop_duplicates().sample(frac=0.1, random_state=args.seed)
            .set_index(["team", "scenario"]).index)]
        labels = [label for label, _ in configs]
        configs.insert(labels.index("default") + 1 if "default" in labels else len(configs),
                       ("default, another fold (reuses the compiled model)", _candidate("default")))
        for label, spec in configs:
            data = fold if label.startswith("default, another fold") else scores
            if data is scores:
                maths.clear_compiled()  # each configuration's own fit compiles, as a first fit does
            counts = dict(maths.compile_counts)
            start = time.perf_counter()
            layout = spec.make(seed=args.seed).fit(data, demands)
            wall = time.perf_counter() - start
            compile_s = maths.compile_counts["compile_seconds"] - counts["compile_seconds"]
            reused = maths.compile_counts["reused"] > counts["reused"]
            sample_s = float(layout.posterior_.posterior.attrs.get("sampling_time", float("nan")))
            d = layout.diagnostics_
            stats = layout.posterior_.sample_stats
            steps = float(stats["n_steps"].mean()) if "n_steps" in stats else float("nan")
            meets = d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400 and wall <= 20
            params = layout.get_params()
            rows.append({"config": label, "tune": params["tune"], "draws": params["draws"], "wall_s": wall,
                         "compile_s": compile_s, "sample_s": sample_s, "reused": reused,
                         "max_rhat": d["max_rhat"], "min_ess_bulk": d["min_ess_bulk"],
                         "min_ess_tail": d["min_ess_tail"], "divergences": d["divergences"],
                         "leapfrog_per_draw": steps, "ess_per_s": d["min_ess_bulk"] / wall, "meets_target": meets,
                         "loo_elpd": d.get("loo_elpd"), "loo_se": d.get("loo_se"), "loo_bad_k": d.get("loo_bad_k")})
            if data is scores:
                posteriors[label] = layout.posterior_
            print(f"{label}: wall {wall:.1f} s (compile {compile_s:.1f} s{', reused' if reused else ''}, sampling "
                  f"{sample_s:.1f} s), max R-hat {d['max_rhat']:.4f}, min bulk ESS "
                  f"{d['min_ess_bulk']:.0f}, min tail ESS {d['min_ess_tail']:.0f}, divergences "
                  f"{d['divergences']}, leapfrog steps per draw {steps:.0f}, bulk ESS/s {d['min_ess_bulk'] / wall:.1f}"
                  + ("" if meets else "  (misses the target: "
                     + "; ".join(w for w, bad in (("R-hat > 1.01", d["max_rhat"] > 1.01),
                                                  ("bulk ESS < 400", d["min_ess_bulk"] < 400),
                                                  ("wall > 20 s", wall > 20)) if bad) + ")"))
            sys.stdout.flush()
        table = pd.DataFrame(rows)
        table["wall_x_baseline"] = table["wall_s"] / table["wall_s"].iloc[0]
        table["ess_per_s_x_baseline"] = table["ess_per_s"] / table["ess_per_s"].iloc[0]
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        if out is not None:
            table.to_csv(out / "full_fit.csv", index=False, float_format="%.6g")
        if len(posteriors) > 1:
            compared = _loo_comparison(posteriors)
            print("\n-- PSIS-LOO of the configurations fitted on all cells (az.compare; elpd_diff against "
                  "the best, with its standard error dse; higher elpd_loo predicts the fitted cells better) --")
            print(compared.to_string(float_format=lambda v: f"{v:.2f}"))
            if out is not None:
                compared.to_csv(out / "full_fit_loo.csv", float_format="%.6g")
    return 0


def _loo_comparison(posteriors: dict) -> pd.DataFrame:
    """``az.compare`` (PSIS-LOO, log scale) of posteriors fitted on the same cells."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Pareto k counts are in the table
        compared = az.compare(posteriors, ic="loo")
    return compared[["rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse", "weight", "warning"]]


if __name__ == "__main__":
    sys.exit(main())
