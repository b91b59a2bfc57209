"""Studies: a fixed design of populations, substrate variants and sweeps, run
as one resumable ``capprof run`` and summarised as tidy tables and a report.

``commons-safety`` is the commons-harvest safety study (docs/study.md): every
population as focal on a 9-point apple regrowth sweep (x10^-2 .. x10^2, log
spaced) and a 5-point zap cooldown sweep, and a focal x background matrix
(each population as 5 focal players beside 2 of each other population).
Scenarios are declarative variants (``SUBSTRATE:key=value``), so the run
directory is an ordinary ``capprof run`` directory that ``capprof scores``,
``profile`` and ``report`` read.

Tables (docs/schema.md, "Study tables"):

* ``sweep``: one row per (team, sweep, value): episodes, the mean focal
  per-capita return with its 95% t interval, the share of fully depleted
  episodes with its 95% Wilson interval, the median step of depletion;
* ``gini``: one row per (team, zap cooldown, step): the mean Gini of all
  players' cumulative returns at that step with its 95% t interval;
* ``matrix``: one row per (focal team, background team): the mean focal and
  background per-capita returns with 95% t intervals.

Library code: it returns values and raises CapprofError; the CLI prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, did_you_mean

RUNS_DIR = "runs"  # the study's `capprof run` directory inside --out
REPORT_FILE = "study.html"
SERIES_EVERY = 50  # steps between the Gini samples (the depletion rule's window)


@dataclass(frozen=True)
class Sweep:
    """One variant key set to each of ``values`` in turn, everything else as
    the substrate defines it."""

    key: str
    values: tuple

    def scenario(self, substrate: str, value) -> str:
        return f"{substrate}:{self.key}={value:.3g}" if isinstance(value, float) else f"{substrate}:{self.key}={value}"


@dataclass(frozen=True)
class StudyDesign:
    name: str
    substrate: str
    populations: tuple[str, ...]  # TEAM=SPEC, as `capprof run --population`
    sweeps: tuple[Sweep, ...]
    matrix_focal: int  # focal players in each focal x background scenario
    episodes: int  # default episodes per (team, scenario)
    description: str


COMMONS_SAFETY = StudyDesign(
    name="commons-safety",
    substrate="commons_harvest__open",
    populations=("open=shipped:open", "no_zap=shipped:no_zap", "scarcity=shipped:scarcity",
                 "farmer=shipped:farmer", "prosocial=shipped:prosocial", "random"),
    sweeps=(Sweep("regrowth", tuple(float(f"{10 ** (k / 2):.3g}") for k in range(-4, 5))),
            Sweep("zap_cooldown", (1, 2, 10, 200, 2000))),
    matrix_focal=5,
    episodes=10,
    description="the commons-harvest safety study: regrowth x0.01..x100 and zap cooldown 1..2000 sweeps, "
                "every population as focal, and a focal x background matrix",
)
STUDIES = {COMMONS_SAFETY.name: COMMONS_SAFETY}


def get_study(name: str) -> StudyDesign:
    if name not in STUDIES:
        raise CapprofError(f'unknown study "{name}"{did_you_mean(name, list(STUDIES))}; studies: '
                           f"{', '.join(STUDIES)}")
    return STUDIES[name]


# ------------------------------------------------------------ planning


def _team_and_member(population: str) -> tuple[str, str]:
    from capprof.runners.populations.populations import split_team

    return split_team(population)


def _background_member(spec: str) -> str | None:
    """``spec`` when a variant can seat it in the background (a built-in or
    shipped:NAME, one member), else None."""
    from capprof.runners.populations.builtins import BUILTINS
    from capprof.runners.populations.shipped_populations import PREFIX as SHIPPED_PREFIX

    return spec if spec in BUILTINS or (spec.startswith(SHIPPED_PREFIX) and "+" not in spec) else None


def study_scenarios(design: StudyDesign) -> dict[str, list[str]]:
    """Sweep name -> scenario names, in sweep order."""
    return {s.key: [s.scenario(design.substrate, v) for v in s.values] for s in design.sweeps}


def matrix_scenario(design: StudyDesign, background: str) -> str:
    return f"{design.substrate}:background={background},focal={design.matrix_focal}"


def plan_study(design: StudyDesign, populations=None, episodes: int | None = None, seed: int = 0,
               max_steps: int | None = None):
    """Every episode of the study as ``EpisodeTask``s of one run: each
    population on every sweep scenario, and on the matrix scenario of every
    other population that can sit in the background. One-line CapprofError
    for an unknown or missing population before anything runs."""
    from capprof.runners.execution.execute import plan
    from capprof.runners.populations.shipped_populations import shipped_populations

    populations = list(populations or design.populations)
    if populations == list(design.populations):
        shipped = {p.name for p in shipped_populations()}
        missing = [p for p in populations if _team_and_member(p)[1].startswith("shipped:")
                   and _team_and_member(p)[1][len("shipped:"):] not in shipped]
        if missing:
            raise CapprofError(f"study {design.name}: {', '.join(missing)} not shipped with this capprof "
                               f"(shipped: {', '.join(sorted(shipped)) or 'none'}); name the populations with "
                               "--population TEAM=SPEC")
    sweep_scenarios = [n for names in study_scenarios(design).values() for n in names]
    episodes = episodes or design.episodes
    run_id = f"study-{design.name}-{seed}"
    tasks = plan(populations, sweep_scenarios, episodes, seed=seed, max_steps=max_steps,
                 series_every=SERIES_EVERY, run_id=run_id)
    teams = dict(_team_and_member(p) for p in populations)
    for population in populations:
        team, _ = _team_and_member(population)
        others = [matrix_scenario(design, member) for other, member in teams.items()
                  if other != team and _background_member(member)]
        if others:
            tasks += plan([population], others, episodes, seed=seed, max_steps=max_steps,
                          series_every=SERIES_EVERY, run_id=run_id)
    return tasks


# ------------------------------------------------------------ statistics


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval m +- t_{(1+level)/2, n-1} s / sqrt(n) of
    independent values (s with n-1 in the denominator); NaN bounds for n < 2."""
    from capprof.profiling.cellstats import mean_interval

    return mean_interval(values, level)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """Share p = k/n and Wilson's score interval
    (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z the normal
    (1+level)/2 quantile; it stays inside [0, 1] and is not empty at k = 0 or n."""
    from scipy import stats

    if n == 0:
        return float("nan"), float("nan"), float("nan")
    z = float(stats.norm.ppf((1 + level) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # rounding can put a bound a hair past p at k = 0 or n, where the bound is p itself
    return p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


# ------------------------------------------------------------ tables


def _sweep_of(design: StudyDesign) -> dict[str, tuple[str, object]]:
    return {name: (sweep.key, value) for sweep in design.sweeps
            for value, name in zip(sweep.values, (sweep.scenario(design.substrate, v) for v in sweep.values))}


def _canonical(name: str) -> str:
    from capprof.runners.scenarios.scenarios import get_scenario

    return get_scenario(name).name


def _ok_in(episodes: pd.DataFrame, names) -> pd.DataFrame:
    """The ok episodes of the scenarios ``names`` (canonical), every spelling
    of a scenario counted as that scenario."""
    ok = episodes[episodes["status"] == "ok"].copy()
    canonical = {n: _canonical(n) for n in ok["scenario"].unique() if ":" in n}  # other names are canonical
    ok["scenario"] = ok["scenario"].map(lambda n: canonical.get(n, n))
    return ok[ok["scenario"].isin(set(names))]


def sweep_table(design: StudyDesign, episodes: pd.DataFrame) -> pd.DataFrame:
    """The ``sweep`` table from the run's episode records (ok episodes only)."""
    where = {_canonical(n): kv for n, kv in _sweep_of(design).items()}
    ok = _ok_in(episodes, where)
    rows = []
    for (team, scenario), group in ok.groupby(["team", "scenario"], sort=False):
        key, value = where[scenario]
        mean, low, high = t_interval(group["focal_per_capita_return"].to_numpy())
        depleted = group["depleted_at_step"].notna()
        share, d_low, d_high = wilson_interval(int(depleted.sum()), len(group))
        rows.append({"team": team, "sweep": key, "value": float(value), "scenario": scenario,
                     "episodes": len(group), "per_capita_return": mean, "per_capita_low": low,
                     "per_capita_high": high, "depleted_share": share, "depleted_low": d_low,
                     "depleted_high": d_high,
                     "depleted_at_median": float(group.loc[depleted, "depleted_at_step"].median())
                     if depleted.any() else float("nan")})
    columns = ["team", "sweep", "value", "scenario", "episodes", "per_capita_return", "per_capita_low",
               "per_capita_high", "depleted_share", "depleted_low", "depleted_high", "depleted_at_median"]
    return pd.DataFrame(rows, columns=columns).sort_values(["sweep", "team", "value"], ignore_index=True)


def gini_table(design: StudyDesign, episodes: pd.DataFrame, sweep: str = "zap_cooldown") -> pd.DataFrame:
    """The ``gini`` table: Gini of all players' cumulative returns over time
    per (team, value of ``sweep``), from the episodes' ``gini_series``."""
    where = {_canonical(n): kv for n, kv in _sweep_of(design).items() if kv[0] == sweep}
    ok = _ok_in(episodes, where)
    rows = []
    for (team, scenario), group in ok.groupby(["team", "scenario"], sort=False):
        series = [np.asarray(s, float) for s in group["gini_series"] if len(s)]
        if not series:
            continue
        every = int(group["series_every"].dropna().iloc[0])
        length = max(len(s) for s in series)
        for k in range(length):
            values = [s[k] for s in series if len(s) > k]
            mean, low, high = t_interval(values)
            rows.append({"team": team, sweep: where[scenario][1], "step": (k + 1) * every,
                         "episodes": len(values), "gini": mean, "gini_low": low, "gini_high": high})
    columns = ["team", sweep, "step", "episodes", "gini", "gini_low", "gini_high"]
    return pd.DataFrame(rows, columns=columns)


def matrix_table(design: StudyDesign, episodes: pd.DataFrame) -> pd.DataFrame:
    """The ``matrix`` table: focal team x background team."""
    from capprof.runners.scenarios.scenarios import get_scenario

    ok = episodes[(episodes["status"] == "ok") & episodes["scenario"].str.contains(":background=", regex=False)]
    teams = {}
    for team, population in ok[["team", "population"]].drop_duplicates().itertuples(index=False):
        teams[_team_and_member(population)[1]] = team
    rows = []
    for (team, scenario), group in ok.groupby(["team", "scenario"], sort=False):
        member = get_scenario(scenario).background[0][1][0]
        focal = t_interval(group["focal_per_capita_return"].to_numpy())
        background = t_interval(group["background_per_capita_return"].to_numpy())
        rows.append({"focal": team, "background": teams.get(member, member), "episodes": len(group),
                     "focal_return": focal[0], "focal_low": focal[1], "focal_high": focal[2],
                     "background_return": background[0], "background_low": background[1],
                     "background_high": background[2]})
    columns = ["focal", "background", "episodes", "focal_return", "focal_low", "focal_high", "background_return",
               "background_low", "background_high"]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class StudyTables:
    sweep: pd.DataFrame
    gini: pd.DataFrame
    matrix: pd.DataFrame

    def write(self, out_dir: Path) -> list[Path]:
        from capprof.output import write_csv  # atomic and spreadsheet-safe

        return [write_csv(getattr(self, name), Path(out_dir) / f"{name}.csv", float_format=None)
                for name in ("sweep", "gini", "matrix")]


def study_tables(design: StudyDesign, runs_dir: Path) -> StudyTables:
    from capprof.runners.execution.results import read_results

    episodes = read_results(Path(runs_dir))
    if episodes.empty:
        raise CapprofError(f"{runs_dir} holds no episodes; run the study first")
    return StudyTables(sweep_table(design, episodes), gini_table(design, episodes), matrix_table(design, episodes))


# ------------------------------------------------------------ capability profiles


def study_profile(runs_dir: Path, draws: int = 500, tune: int = 500, seed: int = 0):
    """The populations' capability profiles from the study's own episodes:
    the joint measurement layout on the run's scores (minmax per scenario,
    the demands its ``_demands.yaml`` gives the variants), no assessor. A
    ``capprof.profiling.profile.Profile``."""
    from capprof.profiling.inputs import load_scores_and_demands
    from capprof.profiling.profile import Profile

    inputs = load_scores_and_demands(runs_dir, normalisation="minmax")
    return Profile.fit(inputs.scores, inputs.demands, draws=draws, tune=tune, seed=seed, assessor=False,
                       metadata={"normalisation": "minmax", "study": str(runs_dir)})
