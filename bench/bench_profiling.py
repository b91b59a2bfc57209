"""Profiling benchmark on the published Melting Pot results (docs/evaluation.md).

Measures, on per-scenario min-max normalised scores with team = MAPLA:

1. random 10% cell splits (``--repeats``, default 10): pooled MSE of every
   predictor, mean and 95% interval over repeats, and the ratios
   layout-joint / AggMean (target <= 0.5) and layout-joint / assessor
   (target <= 1.2);
2. held-out-scenario splits (``--scenario-repeats``): layout and assessor
   against AggMean (target: both lower);
3. held-out-substrate splits (``--substrate-repeats``, default 5): one whole
   substrate left out per repeat, substrates in a seeded random order;
   pooled MSE of every predictor and its ratio to AggMean;
4. one joint layout fit on every scenario: wall time (target <= 60 s on 2
   cores), max R-hat (<= 1.01) and divergences (0).

Prints one table per part; ``--skip`` leaves parts out; ``--out DIR`` also
keeps the raw result CSVs.
Usage: python bench/bench_profiling.py [--repeats 10] [--scenario-repeats 5]
       [--substrate-repeats 5] [--skip random,scenario,substrate,full]
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", default=str(PUBLISHED))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--scenario-repeats", type=int, default=5)
    # 49 substrates would cover them all, but each repeat refits both layouts
    # (~1.5 min on 2 cores); 5 keeps this part as long as the scenario part
    parser.add_argument("--substrate-repeats", type=int, default=5,
                        help="held-out substrates, one per repeat (default 5; 49 covers all)")
    parser.add_argument("--draws", type=int, default=500, help="layout draws per chain in the split repeats")
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--full-draws", type=int, default=1000, help="draws for the full fit (the CLI default)")
    parser.add_argument("--random-models", default="aggmean,additive,ridge,assessor,layout,layout-joint")
    parser.add_argument("--scenario-models", default="aggmean,ridge,assessor,layout,layout-joint")
    parser.add_argument("--substrate-models", default="aggmean,ridge,assessor,layout,layout-joint")
    parser.add_argument("--skip", default="",
                        help="comma-separated parts to skip: random,scenario,substrate,full")
    parser.add_argument("--out", default=None, help="directory for the raw result CSVs (default: none)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    warnings.filterwarnings("ignore", category=FutureWarning)

    from capprof.profiling.evaluate import evaluate, summarise
    from capprof.profiling.layout import MeasurementLayout
    from capprof.profiling.normalise import normalise
    from capprof.scores import load_scores
    from capprof.tagging.demands import demand_matrix

    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    scores = normalise(load_scores(args.scores, min_teams=2), "minmax")
    demands = demand_matrix(sorted(scores["scenario"].unique()), tags="all")
    skip = set(args.skip.split(","))
    print(f"data: {scores['team'].nunique()} teams, {scores['scenario'].nunique()} scenarios, "
          f"{len(scores)} rows, {demands.shape[1]} demands; draws={args.draws} tune={args.tune}")

    def part(split, models, repeats):
        result = evaluate(scores, demands, models.split(","), split=split, repeats=repeats, seed=0,
                          draws=args.draws, tune=args.tune)
        diag = result.attrs["diagnostics"]
        if out is not None:
            result.to_csv(out / f"evaluate_{split}.csv", index=False)
            if len(diag):
                diag.to_csv(out / f"diagnostics_{split}.csv", index=False)
        table = summarise(result)
        pooled = table[table["team"] == "ALL"].set_index("model")
        base = pooled.loc["aggmean", "mse"]
        pooled["x_aggmean"] = pooled["mse"] / base
        if "assessor" in pooled.index:
            pooled["x_assessor"] = pooled["mse"] / pooled.loc["assessor", "mse"]
        print(f"\n== {split} split, {repeats} repeats: pooled test MSE (95% interval over repeats) ==")
        shown = [c for c in ("mse", "mse_low", "mse_high", "x_aggmean", "x_assessor", "n_test", "fit_s")
                 if c in pooled.columns]
        print(pooled[shown]
              .to_string(float_format=lambda v: f"{v:.4f}"))
        per_team = table[table["team"] != "ALL"].pivot(index="team", columns="model", values="mse")
        print(f"\n-- {split} split: MSE per team (Table 2 shape) --")
        print(per_team[[m for m in models.split(",") if m in per_team.columns]].to_string(float_format=lambda v: f"{v:.4f}"))
        if split == "substrate":
            held = result.drop_duplicates("repeat")["held_out"]
            print(f"\nsubstrates left out, one per repeat: {', '.join(held)}")
        if len(diag):
            print(f"\nlayout sampling over repeats: max R-hat {diag['max_rhat'].max():.3f}, "
                  f"min bulk ESS {diag['min_ess_bulk'].min():.0f}, divergences {int(diag['divergences'].sum())}")
        return pooled

    if "random" not in skip:
        pooled = part("random", args.random_models, args.repeats)
        if {"layout-joint", "assessor"} <= set(pooled.index):
            print(f"\nTARGET layout-joint <= 0.5 x AggMean: {pooled.loc['layout-joint', 'x_aggmean']:.3f}; "
                  f"<= 1.2 x assessor: {pooled.loc['layout-joint', 'x_assessor']:.3f}")
    if "scenario" not in skip:
        pooled = part("scenario", args.scenario_models, args.scenario_repeats)
        for model in ("layout", "layout-joint", "assessor"):
            if model in pooled.index:
                verdict = "beats" if pooled.loc[model, "mse"] < pooled.loc["aggmean", "mse"] else "DOES NOT beat"
                print(f"TARGET held-out scenarios: {model} {verdict} AggMean "
                      f"({pooled.loc[model, 'mse']:.4f} vs {pooled.loc['aggmean', 'mse']:.4f})")
    if "substrate" not in skip:
        pooled = part("substrate", args.substrate_models, args.substrate_repeats)
        for model in pooled.index.drop("aggmean"):
            verdict = "beats" if pooled.loc[model, "mse"] < pooled.loc["aggmean", "mse"] else "DOES NOT beat"
            print(f"held-out substrates: {model} {verdict} AggMean "
                  f"({pooled.loc[model, 'mse']:.4f} vs {pooled.loc['aggmean', 'mse']:.4f}, "
                  f"x {pooled.loc[model, 'x_aggmean']:.2f})")
    if "full" not in skip:
        start = time.perf_counter()
        layout = MeasurementLayout(mode="joint", draws=args.full_draws, tune=args.tune, seed=0).fit(scores, demands)
        wall = time.perf_counter() - start
        d = layout.diagnostics_
        print(f"\n== joint layout on all {scores['scenario'].nunique()} scenarios "
              f"(tune {args.tune}, draws {args.full_draws}, 2 chains) ==")
        print(f"wall {wall:.1f} s (target <= 60), max R-hat {d['max_rhat']:.4f} (<= 1.01), "
              f"min bulk ESS {d['min_ess_bulk']:.0f}, min tail ESS {d['min_ess_tail']:.0f}, "
              f"divergences {d['divergences']} (0)")
        if out is not None:
            pd.DataFrame([{**d, "wall_s": wall}]).to_csv(out / "full_fit.csv", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
