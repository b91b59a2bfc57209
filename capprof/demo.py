"""`capprof demo`: the main job, end to end, on an embedded default.

Offline (default): run capprof's built-in populations on the offline suite on
real Melting Pot substrates (short episodes), evaluate the predictors on
held-out cells, fit capability profiles, write the HTML report, and print a
short summary. ``--published PATH`` starts from the published Melting Pot 2.0
results instead of running episodes.

Every step calls the stage function behind a command (``capprof run``,
``evaluate``, ``profile``, ``report``) and prints that command, so a user can
rerun any step by hand; the demo adds no logic of its own beyond choosing
defaults.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from capprof.errors import CapprofError
from capprof.scores import PUBLISHED_NAME, PUBLISHED_URL

# Where the published results sit beside a checkout (../shared/data), tried
# before downloading them.
LOCAL_CANDIDATES = (
    Path("..") / "shared" / "data" / PUBLISHED_NAME,
    Path(__file__).resolve().parents[2] / "shared" / "data" / PUBLISHED_NAME,
)

# The embedded default: the populations trained by `capprof train` (shipped
# as package data, capprof/data/populations/) beside two scripted built-ins.
# A trained population plays only the substrate it was trained on (its
# observations and actions mean nothing elsewhere); the scripted teams play
# every demo scenario, so the layout sees the same demands across substrates
# and treats the trained teams' missing cells as missing, not as zeros.
# The study's populations in the order the report lists them (docs/study.md);
# the demo plays every shipped population, these first.
SHIPPED_ORDER = ("open", "no_zap", "scarcity", "farmer", "prosocial", "selfish")
SCRIPTED_TEAMS = (("forager", "harvester"), ("random", "random"))
# Every commons_harvest__open scenario capprof has that needs no downloaded
# bots: the offline suite's residents and visitors beside four scripted
# backgrounds, and the variants (scarce and abundant regrowth, no zapping).
# All four teams play them, so every scenario has four cells and min-max
# normalisation stays defined when one is held out. prisoners_dilemma_in_the
# _matrix__arena adds a second substrate the scripted teams alone play: the
# trained teams' abilities there are left out (0 cells), not guessed. (clean_up
# needs a cleaning team to score at all; territory__rooms and
# allelopathic_harvest cost the most time per cell.)
COMMONS = "commons_harvest__open"
DEMO_SCENARIOS = tuple(
    f"{COMMONS}__{mode}_{background}"
    for background in ("harvester", "aggressor", "restrained_harvester", "noop") for mode in ("resident", "visitor")
) + (
    f"{COMMONS}__regrowth_x0p01", f"{COMMONS}__regrowth_x0p1", f"{COMMONS}__regrowth_x10", f"{COMMONS}__no_zap",
    "prisoners_dilemma_in_the_matrix__arena__resident_cooperator",
    "prisoners_dilemma_in_the_matrix__arena__visitor_cooperator",
    "prisoners_dilemma_in_the_matrix__arena__resident_defector",
    "prisoners_dilemma_in_the_matrix__arena__visitor_defector",
)
# --quick: a smoke test of the chain on the cheapest scenarios, not a result.
QUICK_SCENARIOS = (f"{COMMONS}__resident_harvester", f"{COMMONS}__visitor_harvester", f"{COMMONS}__no_zap",
                   *(s for s in DEMO_SCENARIOS if s.startswith("prisoners")))
DEMO_MAX_STEPS = 300
# Episodes per cell: two on the trained teams' substrate (their sampled play,
# and every team's apples, vary from episode to episode); one elsewhere.
DEMO_EPISODES = 1
DEMO_EPISODES_BY_SUBSTRATE = {COMMONS: 2}
QUICK_MAX_STEPS = 100
DEMO_SERIES_EVERY = 10
# Episodes play on Ray with one worker per core (at most 2): the trained
# teams' forward passes make them cost several times a scripted team's.
DEMO_WORKERS = max(1, min(2, os.cpu_count() or 1))
DEMO_MODELS = "aggmean,ridge,assessor,layout-joint"
# Held-out folds refit the layout five times, so they sample less; the
# profile itself samples enough for R-hat <= 1.01 and a stable posterior.
EVALUATE_SAMPLING = (500, 500)  # (draws, tune) per chain
PROFILE_SAMPLING = (1000, 1000)
QUICK_SAMPLING = (100, 100)
# A quick run's layout fits are tiny and short, so compiling is most of their
# time: nutpie's JAX backend compiles such a model in ~2 s against numba's
# 20-100 s (a cold numba cache), and samples 200 draws in ~10 s against ~2 s
# (docs/evaluation.md, "Speed"). The full demo keeps the default numba.
QUICK_LAYOUT = "layout-joint(backend=jax)"
QUICK_MODELS = DEMO_MODELS.replace("layout-joint", QUICK_LAYOUT)
# K-fold over cells: every cell is held out once, each fold refits every model
# (the layout too), so few folds keep the demo's minutes down.
DEMO_FOLDS = 5
QUICK_FOLDS = 3
# The demo's evaluate step saves the whole evaluation (`--save`) beside the
# profile directory, and the report and the console both show that
# evaluation's summary.
EVALUATION_DIR = "evaluation"


def find_published(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    for candidate in LOCAL_CANDIDATES:
        if candidate.exists():
            return str(candidate)
    return PUBLISHED_URL


@contextmanager
def _step(title: str, argv: list[str]):
    """Print the step and the command that does the same by hand, then its time."""
    print(f"\n== {title}\n$ capprof {shlex.join(argv)}", flush=True)
    start = time.perf_counter()
    yield
    print(f"({time.perf_counter() - start:.0f} s)", flush=True)


def _run(run: "DemoRun", runs: Path) -> None:
    from capprof.runners.execution.execute import execute, expand_scenarios, plan

    tasks = plan([team.spec for team in run.teams], expand_scenarios(run.scenarios), run.episodes, seed=0,
                 max_steps=run.max_steps, series_every=DEMO_SERIES_EVERY)
    summary = execute(tasks, runs, resume=True, backend="ray" if DEMO_WORKERS > 1 else "serial",
                      workers=DEMO_WORKERS if DEMO_WORKERS > 1 else None)
    if summary.ok + summary.skipped == 0:
        raise CapprofError(f"every demo episode failed; the first: {summary.first_error}")
    print(f"capprof: {summary.counts()}; results in {summary.out_dir}")


def _evaluate(scores: str, evaluation: Path, folds: int, sampling: tuple[int, int], models: str = DEMO_MODELS):
    from capprof.profiling.evaluate import evaluate
    from capprof.profiling.inputs import load_scores_and_demands
    from capprof.profiling.predictors import parse_model_list

    raw = load_scores_and_demands(scores, normalisation=None)  # evaluate normalises per fold
    result = evaluate(raw.scores, raw.demands, parse_model_list(models), split="random", folds=folds,
                      draws=sampling[0], tune=sampling[1])
    result.save(evaluation)
    return result


def _profile(scores: str, profile_dir: Path, sampling: tuple[int, int], layout: str | None = None):
    from capprof.profiling.inputs import load_scores_and_demands
    from capprof.profiling.predictors import parse_model_spec
    from capprof.profiling.profile import Profile

    inputs = load_scores_and_demands(scores)
    layout_params = parse_model_spec(layout).kwargs if layout else None
    profile = Profile.fit(inputs.scores, inputs.demands, draws=sampling[0], tune=sampling[1],
                          progressbar=sys.stderr.isatty(), metadata=inputs.metadata(), layout_params=layout_params)
    profile.save(profile_dir)
    return profile


def summarise(profile_dir: Path, out=sys.stdout, top: int = 3, evaluation: Path | None = None) -> None:
    """Top abilities per team (behaviour and mode demands) and the held-out
    MSE table of the saved ``evaluation`` (default: beside ``profile_dir``),
    the summary the report shows."""
    import pandas as pd

    from capprof.profiling.constants import POOLED_TEAM
    from capprof.profiling.evaluate import Evaluation
    from capprof.profiling.files import read_csv
    from capprof.profiling.profile import PROFILE_FILES, Profile
    from capprof.tagging.constants import SETTING_GROUPS
    from capprof.tagging.demands import demand_groups

    profiles = read_csv(profile_dir / PROFILE_FILES["profiles"], "run the demo again")  # names unguarded
    profiles["group"] = profiles["ability"].map(demand_groups(profiles["ability"].unique()))
    behaviours = profiles[~profiles["group"].isin(SETTING_GROUPS)].copy()
    if "cells" in behaviours:
        # an ability no cell of the team informs is its prior: not a finding
        behaviours = behaviours[behaviours["cells"] > 0]
    diagnostics = profile_dir / PROFILE_FILES["diagnostics"]
    if diagnostics.exists():
        fit = pd.read_csv(diagnostics).iloc[0]
        print(f"\nProfile fit: max R-hat {fit['max_rhat']:.3f}, min bulk ESS {fit['min_ess_bulk']:.0f}, "
              f"{int(fit['divergences'])} divergent transitions ({int(fit['chains'])} chains x "
              f"{int(fit['draws'])} draws)", file=out)
    print("\nTop abilities per team (posterior mean [90% HDI], behaviour and mode demands the team met):",
          file=out)
    for team, rows in behaviours.groupby("team"):
        best = rows.sort_values("mean", ascending=False).head(top)
        text = ", ".join(f"{r.ability} {r.mean:.2f} [{r.hdi_low:.2f}, {r.hdi_high:.2f}]" for r in best.itertuples())
        print(f"  {team}: {text}", file=out)
    if behaviours["team"].nunique() > 1:
        # Demands every team meets rank high for all of them; what sets a team
        # apart is its ability minus the other teams' mean on the same demand,
        # a contrast taken draw by draw (so its interval is the contrast's own)
        # (the report's strengths table, tables.standouts, computes the same)
        from capprof.reports.tables import standouts

        has_posterior = (profile_dir / PROFILE_FILES["meta"]).exists()
        found = standouts(profiles, Profile.load(profile_dir).contrasts() if has_posterior else None)
        print("\nWhere each team stands out (ability minus the other teams' mean"
              + (", posterior mean [90% HDI]; * the interval excludes 0" if has_posterior else "") + "):", file=out)
        for team, rows in found.groupby("team"):
            best = rows.head(top)  # sorted by lead, largest first
            print(f"  {team}: " + ", ".join(
                f"{r.ability} {r.lead:+.2f}" + (f" [{r.lead_low:+.2f}, {r.lead_high:+.2f}]{'*' if r.clear else ''}"
                                                if has_posterior else "") for r in best.itertuples()), file=out)
    evaluation = profile_dir.parent / EVALUATION_DIR if evaluation is None else evaluation
    if evaluation.exists():
        table = Evaluation.load(evaluation).summary
        columns = ["model", "n_cells", "mse", "mse_low", "mse_high", "coverage", "width"]
        print("\nHeld-out MSE (K-fold over cells, every cell held out once; 95% interval clustered by scenario):",
              file=out)
        pooled = table.loc[table["team"] == POOLED_TEAM, columns]
        print(pooled.to_string(index=False, float_format=lambda v: f"{v:.4f}"), file=out)


@dataclass(frozen=True)
class DemoTeam:
    """One team of the demo: its population spec, what it is, and the
    substrates it plays (None: every demo scenario)."""

    name: str
    spec: str
    description: str
    substrates: tuple[str, ...] | None = None

    @property
    def trained(self) -> bool:
        return self.substrates is not None

    def plays(self, substrate: str) -> bool:
        return self.substrates is None or substrate in self.substrates


@dataclass(frozen=True)
class DemoRun:
    """One `capprof run` of the demo (all write to the same directory)."""

    teams: tuple[DemoTeam, ...]
    scenarios: tuple[str, ...]
    max_steps: int
    episodes: int


def demo_teams() -> tuple[DemoTeam, ...]:
    """The shipped trained populations, then the scripted built-ins."""
    from capprof.runners.populations.builtins import describe
    from capprof.runners.populations.shipped_populations import shipped_populations

    teams = []
    order = {name: k for k, name in enumerate(SHIPPED_ORDER)}
    for population in sorted(shipped_populations(), key=lambda p: (order.get(p.name, len(order)), p.name)):
        name = population.name
        teams.append(DemoTeam(name, f"{name}=shipped:{name}", f"trained: {population.describe()}",
                              (population.substrate,)))
    for name, builtin in SCRIPTED_TEAMS:
        teams.append(DemoTeam(name, f"{name}={builtin}", f"scripted (built-in `{builtin}`): {describe(builtin)}"))
    return tuple(teams)


def demo_runs(teams: tuple[DemoTeam, ...], quick: bool = False) -> list[DemoRun]:
    """The `capprof run` calls the demo makes: one per (teams, episode
    length, episodes) group of scenarios, so each team plays exactly the
    scenarios of the substrates it plays."""
    from capprof.runners.scenarios.scenarios import get_scenario

    groups: dict[tuple, list[str]] = {}
    for name in QUICK_SCENARIOS if quick else DEMO_SCENARIOS:
        substrate = get_scenario(name).substrate
        players = tuple(team for team in teams if team.plays(substrate))
        if quick:
            key = (players, QUICK_MAX_STEPS, 1)
        else:
            key = (players, DEMO_MAX_STEPS, DEMO_EPISODES_BY_SUBSTRATE.get(substrate, DEMO_EPISODES))
        groups.setdefault(key, []).append(name)
    return [DemoRun(players, tuple(names), steps, episodes)
            for (players, steps, episodes), names in groups.items()]


def _describe_teams(teams: tuple[DemoTeam, ...], out=sys.stdout) -> None:
    print("Teams:", file=out)
    for team in teams:
        where = f"; plays {', '.join(team.substrates)} only" if team.trained else ""
        print(f"  {team.name}: {team.description}{where}", file=out)


def run_demo(published: str | None = None, out_dir: str = "capprof-demo", quick: bool = False) -> int:
    out = Path(out_dir)
    profile, evaluation = out / "profile", out / EVALUATION_DIR
    from capprof.profiling.evaluate import check_save_target

    from capprof.io import file_in_the_way

    blocking = file_in_the_way(out)  # --out, or a folder on its way, may be a file
    if blocking is not None:
        raise CapprofError(f"--out {out}: {blocking} is a file; give a directory for the demo")
    check_save_target(evaluation)  # before the runs, not after them
    start = time.perf_counter()
    if published is None:
        runs = out / "runs"
        teams = demo_teams()
        _describe_teams(teams)
        for run in demo_runs(teams, quick):
            population_args = [arg for team in run.teams for arg in ("--population", team.spec)]
            scenario_args = [arg for name in run.scenarios for arg in ("--scenario", name)]
            names = ", ".join(team.name for team in run.teams)
            with _step(f"run {names} on {len(run.scenarios)} scenario(s) (real substrates, {run.episodes} "
                       f"episode(s) of {run.max_steps} steps each)",
                       ["run", *population_args, *scenario_args, "--episodes", str(run.episodes),
                        "--max-steps", str(run.max_steps), "--series-every", str(DEMO_SERIES_EVERY),
                        "--out", str(runs), "--resume",
                        *(["--ray", "--workers", str(DEMO_WORKERS)] if DEMO_WORKERS > 1 else [])]):
                _run(run, runs)
        scores = str(runs)
        report_inputs = {"episodes_path": str(runs)}
    else:
        scores = find_published(published or None)
        print(f"capprof demo: published Melting Pot 2.0 results from {scores}")
        report_inputs = {"scores_path": scores}
    folds = QUICK_FOLDS if quick else DEMO_FOLDS
    evaluate_sampling = QUICK_SAMPLING if quick else EVALUATE_SAMPLING
    models = QUICK_MODELS if quick else DEMO_MODELS
    with _step("compare predictors on held-out cells",
               ["evaluate", scores, "--split", "random", "--folds", str(folds), "--models", models,
                "--draws", str(evaluate_sampling[0]), "--tune", str(evaluate_sampling[1]),
                "--save", str(evaluation)]):
        _evaluate(scores, evaluation, folds, evaluate_sampling, models)
    profile_sampling = QUICK_SAMPLING if quick else PROFILE_SAMPLING
    layout = QUICK_LAYOUT if quick else None
    with _step("fit capability profiles (joint measurement layout) and the assessor",
               ["profile", scores, "--out", str(profile), "--draws", str(profile_sampling[0]),
                "--tune", str(profile_sampling[1]), *(["--models", f"{layout},assessor"] if layout else [])]):
        fitted = _profile(scores, profile, profile_sampling, layout)
        d = fitted.layout.diagnostics_
        from capprof.profiling import checks
        print(checks.describe_fit(d, fitted.layout.fit_seconds_))
    html = out / "report.html"
    report_flag = "--episodes" if "episodes_path" in report_inputs else "--scores"
    with _step("write the report", ["report", str(profile), "--out", str(html), report_flag,
                                    next(iter(report_inputs.values())), "--evaluate", str(evaluation)]):
        from capprof.reports.report import build_report

        written = build_report(profile, html, evaluate_path=str(evaluation), **report_inputs)
        print(f"wrote {html} and {len(written) - 1} chart(s)")
    summarise(profile, evaluation=evaluation)
    if published is None:
        trained = [team for team in teams if team.trained]
        print("\nTrained teams (capprof/data/populations/README.md has their commands and learning curves): "
              + "; ".join(f"{team.name}: {team.description.removeprefix('trained: ')}" for team in trained))
    print(f"\nReport: {html.resolve()}")
    print(f"Demo finished in {time.perf_counter() - start:.0f} s.")
    return 0
