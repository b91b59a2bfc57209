"""`capprof demo`: the main job, end to end, on an embedded default.

Offline (default): run capprof's built-in populations on the offline suite on
real Melting Pot substrates (short episodes), evaluate the predictors on
held-out cells, fit capability profiles, write the HTML report, and print a
short summary. ``--published PATH`` starts from the published Melting Pot 2.0
results instead of running episodes.

Every step is the same command a user would type (``capprof run``,
``evaluate``, ``profile``, ``report``), called in-process, so the demo shows
the real front door and adds no logic of its own beyond choosing defaults.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from capprof.errors import CapprofError
from capprof.scores import PUBLISHED_NAME, PUBLISHED_URL

# Where the published results sit beside a checkout (../shared/data), tried
# before downloading them.
LOCAL_CANDIDATES = (
    Path("..") / "shared" / "data" / PUBLISHED_NAME,
    Path(__file__).resolve().parents[2] / "shared" / "data" / PUBLISHED_NAME,
)

# The embedded default: four built-in teams whose behaviours differ in ways
# the offline suite's tags capture (zapping, foraging, and the substrate's
# cooperative act: cleaning, cooperating, planting, claiming, restraint).
DEMO_POPULATIONS = (
    "random=random",
    "aggressor=aggressor",
    "forager=harvester",
    "prosocial=prosocial",
)
# The offline suite minus what costs most and shows least in short episodes:
# territory__rooms resets take ~8 s, so only its two aggressor scenarios stay
# (the defense demand); allelopathic_harvest runs 16 players at ~650 steps/s,
# so its planter_green pair goes. Measured on 2 cores: ~3.5 min of episodes.
DEMO_SCENARIOS = (
    "clean_up__resident_cleaner", "clean_up__visitor_cleaner",
    "clean_up__resident_consumer", "clean_up__visitor_consumer",
    "clean_up__resident_aggressor", "clean_up__visitor_aggressor",
    "prisoners_dilemma_in_the_matrix__arena__resident_cooperator",
    "prisoners_dilemma_in_the_matrix__arena__visitor_cooperator",
    "prisoners_dilemma_in_the_matrix__arena__resident_defector",
    "prisoners_dilemma_in_the_matrix__arena__visitor_defector",
    "commons_harvest__open__resident_harvester", "commons_harvest__open__visitor_harvester",
    "commons_harvest__open__resident_aggressor", "commons_harvest__open__visitor_aggressor",
    "allelopathic_harvest__open__resident_planter_red", "allelopathic_harvest__open__visitor_planter_red",
    "allelopathic_harvest__open__resident_aggressor", "allelopathic_harvest__open__visitor_aggressor",
    "territory__rooms__resident_aggressor", "territory__rooms__visitor_aggressor",
)
# --quick: the cheapest substrates only; a smoke test of the chain, not a result.
QUICK_SCENARIOS = tuple(s for s in DEMO_SCENARIOS if s.startswith(("prisoners", "commons", "clean_up__visitor_cleaner")))
DEMO_EPISODES = 1
DEMO_MAX_STEPS = 300
# clean_up's apples only regrow once the river is cleaned: at 300 steps every
# team scored 0 on five of its six scenarios (dropped as degenerate); at 1,000
# the cleaning and harvesting teams separate (e.g. visiting cleaners: forager
# 164, cleaner 30 per capita), and a 1,000-step clean_up episode takes ~2 s.
DEMO_MAX_STEPS_BY_SUBSTRATE = {"clean_up": 1000}
QUICK_MAX_STEPS = 100
DEMO_SERIES_EVERY = 10
DEMO_MODELS = "aggmean,ridge,assessor,layout-joint"
DEMO_SAMPLING = ("--draws", "500", "--tune", "500")
QUICK_SAMPLING = ("--draws", "100", "--tune", "100")
# K-fold over cells: every cell is held out once, each fold refits every model
# (the layout too), so few folds keep the demo's minutes down.
DEMO_FOLDS = 5
QUICK_FOLDS = 3
# written by the demo's evaluate step beside evaluate.csv (`--summary`)
EVALUATION_SUMMARY = "evaluate_summary.csv"


def find_published(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    for candidate in LOCAL_CANDIDATES:
        if candidate.exists():
            return str(candidate)
    return PUBLISHED_URL


def _step(title: str, argv: list[str]) -> None:
    from capprof.cli import main

    print(f"\n== {title}\n$ capprof {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    code = main(argv)
    if code != 0:
        raise CapprofError(f"demo step `capprof {argv[0]}` failed (exit {code}); see the lines above")
    print(f"({time.perf_counter() - start:.0f} s)", flush=True)


def summarise(profile_dir: Path, out=sys.stdout, top: int = 3) -> None:
    """Top abilities per team (behaviour and mode demands) and the MSE table."""
    import pandas as pd

    from capprof.profiling.constants import POOLED_TEAM
    from capprof.profiling.evaluate import summarise as summarise_evaluation
    from capprof.profiling.profile import PROFILE_FILES
    from capprof.tagging.demands import demand_groups

    profiles = pd.read_csv(profile_dir / PROFILE_FILES["profiles"])
    profiles["group"] = profiles["ability"].map(demand_groups(profiles["ability"].unique()))
    behaviours = profiles[profiles["group"] != "substrate"].copy()
    print("\nTop abilities per team (posterior mean [90% HDI], behaviour and mode demands):", file=out)
    for team, rows in behaviours.groupby("team"):
        best = rows.sort_values("mean", ascending=False).head(top)
        text = ", ".join(f"{r.ability} {r.mean:.2f} [{r.hdi_low:.2f}, {r.hdi_high:.2f}]" for r in best.itertuples())
        print(f"  {team}: {text}", file=out)
    if behaviours["team"].nunique() > 1:
        # Demands every team meets rank high for all of them; what sets a team
        # apart is its ability minus the other teams' mean on the same demand.
        totals = behaviours.groupby("ability")["mean"].agg(["sum", "count"])
        n = behaviours["ability"].map(totals["count"])
        behaviours["lead"] = behaviours["mean"] - (behaviours["ability"].map(totals["sum"]) - behaviours["mean"]) / (n - 1)
        print("\nWhere each team stands out (ability minus the other teams' mean):", file=out)
        for team, rows in behaviours.groupby("team"):
            best = rows.sort_values("lead", ascending=False).head(top)
            print(f"  {team}: " + ", ".join(f"{r.ability} {r.lead:+.2f}" for r in best.itertuples()), file=out)
    summary, evaluation = profile_dir / EVALUATION_SUMMARY, profile_dir / "evaluate.csv"
    if summary.exists():
        table = pd.read_csv(summary)
        columns = [c for c in ("model", "n_cells", "mse", "mse_low", "mse_high", "coverage", "width") if c in table]
        print("\nHeld-out MSE (K-fold over cells, every cell held out once; 95% interval clustered by scenario):",
              file=out)
        pooled = table.loc[table["team"] == POOLED_TEAM, columns]
        print(pooled.to_string(index=False, float_format=lambda v: f"{v:.4f}"), file=out)
    elif evaluation.exists():
        table = summarise_evaluation(pd.read_csv(evaluation))
        pooled = table[table["team"] == POOLED_TEAM] if "team" in table.columns else table
        print("\nHeld-out MSE (mean and 95% interval over repeats):", file=out)
        print(pooled.to_string(index=False, float_format=lambda v: f"{v:.4f}"), file=out)


def demo_runs(quick: bool = False) -> list[tuple[int, tuple[str, ...]]]:
    """(max steps, scenarios) per `capprof run` the demo makes: one run per
    episode length, all writing to the same directory."""
    if quick:
        return [(QUICK_MAX_STEPS, QUICK_SCENARIOS)]
    from capprof.runners.scenarios import get_scenario

    by_steps: dict[int, list[str]] = {}
    for name in DEMO_SCENARIOS:
        substrate = get_scenario(name).substrate
        by_steps.setdefault(DEMO_MAX_STEPS_BY_SUBSTRATE.get(substrate, DEMO_MAX_STEPS), []).append(name)
    return [(steps, tuple(names)) for steps, names in sorted(by_steps.items())]


def run_demo(published: str | None = None, out_dir: str = "capprof-demo", quick: bool = False) -> int:
    out = Path(out_dir)
    profile = out / "profile"
    start = time.perf_counter()
    sampling = list(QUICK_SAMPLING if quick else DEMO_SAMPLING)
    if published is None:
        runs = out / "runs"
        population_args = [arg for spec in DEMO_POPULATIONS for arg in ("--population", spec)]
        for max_steps, scenarios in demo_runs(quick):
            scenario_args = [arg for name in scenarios for arg in ("--scenario", name)]
            _step(f"run the built-in populations on the offline suite (real substrates, {max_steps}-step episodes)",
                  ["run", *population_args, *scenario_args, "--episodes", str(DEMO_EPISODES),
                   "--max-steps", str(max_steps), "--series-every", str(DEMO_SERIES_EVERY),
                   "--out", str(runs), "--resume"])
        scores = str(runs)
        report_inputs = ["--episodes", str(runs)]
    else:
        scores = find_published(published or None)
        print(f"capprof demo: published Melting Pot 2.0 results from {scores}")
        report_inputs = ["--scores", scores]
    folds = str(QUICK_FOLDS if quick else DEMO_FOLDS)
    _step("compare predictors on held-out cells",
          ["evaluate", scores, "--split", "random", "--folds", folds, "--models", DEMO_MODELS,
           *sampling, "--out", str(profile / "evaluate.csv"), "--summary", str(profile / EVALUATION_SUMMARY)])
    _step("fit capability profiles (joint measurement layout) and the assessor",
          ["profile", scores, "--out", str(profile), *sampling])
    html = out / "report.html"
    _step("write the report", ["report", str(profile), "--out", str(html), *report_inputs])
    summarise(profile)
    print(f"\nReport: {html.resolve()}")
    print(f"Demo finished in {time.perf_counter() - start:.0f} s.")
    return 0
