"""Measurement layout: recovery, calibration and the published data (docs/layout.md).

Part ``recovery``: score tables simulated from the layout's own generative
model (capprof.profiling.simulate: floors and ceilings by clipping) in three
settings, each over several seeds:

* ``graded``: demand levels 0..5, abilities ~ Normal(2, 1.5): many floored cells;
* ``binary``: demands 0/1, abilities ~ Normal(1.5, 1.5);
* ``per-team``: graded levels, the per-team mode.

For every fit it prints the share of floored / ceiling cells, the 90% HDI
coverage of the true abilities (overall and for the lowest third, where the
floor hides most), the correlation of posterior means with the truth, max
R-hat, divergences, the number of failed posterior predictive checks and
the wall time. Target: coverage within 0.85-0.95.

Part ``published``: the published Melting Pot 2.0 results (per-scenario
min-max), joint mode, on random held-out cells (``--repeats`` splits of
10%): test MSE per model variant (``censored``; ``censored+scenario`` =
with a scenario residual difficulty; ``censored-nonoise`` = no chance
component), the paired per-cell MSE difference against the first, 90% predictive
interval coverage and width, max R-hat, divergences, fit time and the
posterior predictive checks of the fit.

Usage: python bench/bench_recovery.py [--parts recovery,published] [--seeds 0,1,2]
       [--repeats 2] [--variants censored,censored+scenario]
       [--generators layout,compensatory,team-slope,heavy-tails]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT.parent / "shared" / "data" / "meltingpot-results-2.1.1.feather"

SETTINGS = {
    # name: (mode, teams, scenarios, demands, max level, ability mean, ability sd)
    "graded": ("joint", 12, 60, 5, 5, 2.0, 1.5),
    "binary": ("joint", 12, 60, 5, 1, 1.5, 1.5),
    "per-team": ("per-team", 6, 60, 5, 5, 2.0, 1.5),
}
VARIANTS = {
    # name: build_layout_model options
    "censored": dict(noise=True),
    "censored+scenario": dict(noise=True, scenario_effect=True),
    "censored-nonoise": dict(noise=False),
}


def demand_levels(n_scenarios: int, n_demands: int, seed: int, max_level: int = 5,
                  density: float = 0.4) -> pd.DataFrame:
    """A random scenario x demand matrix: each demand present with probability
    ``density`` at a level drawn uniformly from 1..max_level; every scenario
    demands something."""
    rng = np.random.default_rng(seed)
    levels = np.where(rng.random((n_scenarios, n_demands)) < density,
                      rng.integers(1, max_level + 1, (n_scenarios, n_demands)), 0)
    levels[levels.sum(axis=1) == 0, 0] = 1
    return pd.DataFrame(levels.astype(float),
                        index=pd.Index([f"s{i:03d}" for i in range(n_scenarios)], name="scenario"),
                        columns=[f"d{k}" for k in range(n_demands)])


def fit(scores: pd.DataFrame, demands: pd.DataFrame, mode: str = "joint", groups=None, draws: int = 500,
        tune: int = 500, seed: int = 0, **options):
    """Fit the layout on cell means; returns (idata, diagnostics, teams, seconds)."""
    from capprof.profiling import checks, layout, likelihood

    start = time.perf_counter()
    cells = scores.groupby(["team", "scenario"], sort=True)["score"].mean().reset_index()
    teams = sorted(cells["team"].unique())
    index = layout.DemandIndex.from_matrix(demands)
    team_codes = pd.Categorical(cells["team"], categories=teams).codes.astype(int)
    scen_codes = pd.Categorical(cells["scenario"], categories=index.scenarios).codes.astype(int)
    model = layout.build_layout_model(team_codes, scen_codes, likelihood.squeeze(cells["score"].to_numpy(), 0.01),
                                      index, teams, mode=mode, demand_groups=groups, **options)
    idata = layout.sample_layout(model, draws=draws, tune=tune, seed=seed)
    seconds = time.perf_counter() - start
    return idata, checks.diagnostics(idata, seed=seed), teams, seconds


def recovery(settings, seeds, draws, tune, variant, generators=("layout",)) -> pd.DataFrame:
    import arviz as az

    from capprof.profiling.simulate import simulate_layout_scores

    rows = []
    for name, generator, seed in ((n, g, s) for n in settings for g in generators for s in seeds):
        mode, n_teams, n_scen, n_dem, max_level, mean, sd = SETTINGS[name]
        demands = demand_levels(n_scen, n_dem, seed=seed, max_level=max_level)
        scores, truth = simulate_layout_scores(demands, n_teams=n_teams, seed=seed + 1000,
                                               ability_mean=mean, ability_sd=sd, generator=generator)
        idata, diag, _, seconds = fit(scores, demands, mode=mode, draws=draws, tune=tune, seed=seed,
                                      **VARIANTS[variant])
        hdi = az.hdi(idata, var_names=["ability"], hdi_prob=0.9)["ability"]
        est = pd.DataFrame({
            "mean": idata.posterior["ability"].mean(("chain", "draw")).to_series(),
            "low": hdi.sel(hdi="lower").to_series(), "high": hdi.sel(hdi="higher").to_series(),
        }).reset_index().rename(columns={"demand": "ability"})
        merged = est.merge(truth, on=["team", "ability"])
        inside = (merged["value"] >= merged["low"]) & (merged["value"] <= merged["high"])
        lowest = merged["value"] <= merged["value"].quantile(1 / 3)
        rows.append({
            "setting": name, "generator": generator, "variant": variant, "seed": seed, "cells": len(scores),
            "floored": float((scores["score"] <= 0).mean()), "ceiling": float((scores["score"] >= 1).mean()),
            "coverage": float(inside.mean()), "coverage_low3": float(inside[lowest].mean()),
            "r": float(np.corrcoef(merged["mean"], merged["value"])[0, 1]),
            "max_rhat": diag["max_rhat"], "divergences": diag["divergences"],
            "ppc_fail": diag.get("ppc_disagreements", np.nan),
            "noise": float(idata.posterior["noise"].mean()) if "noise" in idata.posterior else 0.0,
            "fit_s": seconds,
        })
        print(pd.DataFrame([rows[-1]]).to_string(index=False, float_format=lambda v: f"{v:.3f}"),
              flush=True)
    return pd.DataFrame(rows)


def published(path, variants, repeats, draws, tune) -> pd.DataFrame:
    from capprof.profiling import checks, layout
    from capprof.profiling.normalise import normalise
    from capprof.scores import load_scores
    from capprof.tagging.demands import demand_groups, demand_matrix

    scores = normalise(load_scores(str(path), min_teams=2), "minmax")
    demands = demand_matrix(sorted(scores["scenario"].unique()), tags="all")
    groups = list(demand_groups(demands.columns).values())
    cells = scores.groupby(["team", "scenario"], sort=True)["score"].mean().reset_index()
    print(f"published: {cells['team'].nunique()} teams, {cells['scenario'].nunique()} scenarios, "
          f"{len(cells)} cells ({(cells['score'] <= 0).mean():.1%} at 0, {(cells['score'] >= 1).mean():.1%} at 1), "
          f"{demands.shape[1]} demands; draws={draws} tune={tune}", flush=True)
    rows, errors = [], {}
    for repeat in range(repeats):
        rng = np.random.default_rng(repeat)
        test = np.zeros(len(cells), dtype=bool)
        test[rng.choice(len(cells), int(round(0.1 * len(cells))), replace=False)] = True
        train_keys = cells.loc[~test, ["team", "scenario"]]
        train = scores.merge(train_keys, on=["team", "scenario"])
        held = cells[test]
        for variant in variants:
            idata, diag, teams, seconds = fit(train, demands, groups=groups, draws=draws, tune=tune,
                                              seed=repeat, **VARIANTS[variant])
            codes = pd.Index(teams).get_indexer(held["team"])
            rows_matrix = demands.loc[held["scenario"]]
            predicted, low, high = layout.predict_scores(idata, codes, rows_matrix, 0.9, seed=repeat)
            err = (predicted - held["score"].to_numpy()) ** 2
            errors[(variant, repeat)] = err
            reference = errors[(variants[0], repeat)]
            table = checks.ppc_table(idata, seed=repeat)
            rows.append({
                "variant": variant, "repeat": repeat, "n_test": int(test.sum()), "mse": float(err.mean()),
                "coverage90": float(((held["score"] >= low) & (held["score"] <= high)).mean()),
                "width90": float((high - low).mean()),
                "max_rhat": diag["max_rhat"], "min_ess_bulk": diag["min_ess_bulk"],
                "divergences": diag["divergences"], "fit_s": seconds,
                "floor_obs": diag["floor_observed"], "floor_rep": diag["floor_replicated"],
                "ceil_obs": diag["ceiling_observed"], "ceil_rep": diag["ceiling_replicated"],
                "pit_ks": diag["pit_ks"],
                "mse_diff_vs_first": float((err - reference).mean()),
                "se_diff": float((err - reference).std(ddof=1) / np.sqrt(len(err))),
                "noise": float(idata.posterior["noise"].mean()) if "noise" in idata.posterior else 0.0,
            })
            print(pd.DataFrame([rows[-1]]).to_string(index=False, float_format=lambda v: f"{v:.4f}"), flush=True)
            for line in checks.ppc_disagreements(table):
                print(f"  ppc: {line}", flush=True)
    result = pd.DataFrame(rows)
    reference = variants[0]
    paired = []
    for variant in variants[1:]:
        diffs = [errors[(variant, r)] - errors[(reference, r)] for r in range(repeats)]
        diff = np.concatenate(diffs)
        paired.append({"variant": variant, "reference": reference, "mse_diff": diff.mean(),
                       "se": diff.std(ddof=1) / np.sqrt(len(diff)), "cells": len(diff)})
    return result, pd.DataFrame(paired)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="recovery,published")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--recovery-variant", default="censored", choices=sorted(VARIANTS))
    parser.add_argument("--draws", type=int, default=300, help="draws per chain (2 chains)")
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--scores", default=str(PUBLISHED))
    parser.add_argument("--repeats", type=int, default=1, help="random 10%% held-out splits of the published data")
    parser.add_argument("--variants", default="censored,censored+scenario")
    parser.add_argument("--generators", default="layout,compensatory,team-slope,heavy-tails",
                        help="how the simulated scores are made (profiling.simulate.GENERATORS): the layout's "
                             "own model and misspecified ones")
    parser.add_argument("--out", default=None, help="directory for the raw result CSVs (default: none)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    fmt = lambda v: f"{v:.3f}"  # noqa: E731
    if "recovery" in parts:
        seeds = [int(s) for s in args.seeds.split(",")]
        table = recovery(args.settings.split(","), seeds, args.draws, args.tune, args.recovery_variant,
                         args.generators.split(","))
        print("\n== recovery: 90% HDI coverage of true abilities (target 0.85-0.95 under the layout's own "
              "generator, >= 0.80 under the misspecified ones; ppc_fail > 0 flags the fit) ==")
        print(table.to_string(index=False, float_format=fmt))
        summary = table.groupby(["setting", "generator"], sort=False)[
            ["floored", "coverage", "coverage_low3", "r", "max_rhat", "ppc_fail", "fit_s"]].mean()
        print("\n-- mean over seeds --")
        print(summary.to_string(float_format=fmt))
        if out is not None:
            table.to_csv(out / "recovery.csv", index=False)
    if "published" in parts:
        result, paired = published(args.scores, args.variants.split(","), args.repeats, args.draws, args.tune)
        print("\n== published data, random 10% held-out cells ==")
        summary = result.groupby("variant", sort=False).agg(
            mse=("mse", "mean"), coverage90=("coverage90", "mean"), width90=("width90", "mean"),
            max_rhat=("max_rhat", "max"), divergences=("divergences", "sum"), fit_s=("fit_s", "mean"),
            floor_obs=("floor_obs", "mean"), floor_rep=("floor_rep", "mean"),
            ceil_obs=("ceil_obs", "mean"), ceil_rep=("ceil_rep", "mean"), pit_ks=("pit_ks", "mean"))
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
        print("\n-- paired per-cell squared-error difference against the first variant (mean +- se) --")
        print(paired.to_string(index=False, float_format=lambda v: f"{v:.5f}"))
        if out is not None:
            result.to_csv(out / "published.csv", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
