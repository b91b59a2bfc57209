"""Plan a run (one task per episode) and execute it serially or on Ray.

Both backends run the same ``run_episode`` on the same tasks, and every seed
an episode uses is derived from (run seed, scenario, episode), so whichever
backend or worker runs an episode fills its slots with the same members and
seeds them alike (the substrate itself does not replay an episode from its
seed; docs/runners.md, "Seeds and backends").

``execute`` keeps these promises (docs/runners.md, "Guarantees"):

* one run at a time per results directory (``runners.lock.RunLock``); an
  --out that cannot be written, or whose file system has less free space
  than ``run_space_bytes`` of the episodes to play, fails before any episode;
* ``_demands.yaml`` is written first, so an interrupted run's directory is
  readable by ``capprof scores``;
* every finished episode is written atomically as it arrives, so a killed
  run keeps every finished episode and ``resume`` skips them;
* runs whose members include imported code run isolated by default, so a
  policy that kills its process fails its episode, not the run.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from capprof.errors import CapprofError
from capprof.io import require_space
from capprof.runners.context import run_scope
from capprof.runners.scenarios.assets import require_bots
from capprof.runners.constants import BOT_PREFIX, CUSTOM_SUITES
from capprof.runners.episode.episode import run_episode
from capprof.runners.execution.lock import RunLock, unwritable
from capprof.runners.populations.builtins import BUILTINS
from capprof.runners.populations.populations import check_covers, parse_population
from capprof.runners.episode.records import EpisodeRecord, EpisodeTask, Limits
from capprof.runners.execution.results import finished_keys, remove_partial_files, write_record
from capprof.runners.scenarios.scenarios import Scenario, get_scenario, suite_names


@dataclass
class RunSummary:
    planned: int
    skipped: int
    ok: int
    failed: int
    out_dir: Path
    seconds: float
    steps: int
    isolated: bool = False
    retried: list[tuple[str, str, int]] = field(default_factory=list)  # episodes re-run after a lost worker
    first_error: str = ""  # the first failed episode's error, for the message when all failed
    demands_file: Path | None = None

    def counts(self) -> str:
        """"N episode(s) ok, M failed (see ...), K already done": what a run says when it ends."""
        failed = f", {self.failed} failed (see `status` / `error`)" if self.failed else ""
        skipped = f", {self.skipped} already done" if self.skipped else ""
        return f"{self.ok} episode(s) ok{failed}{skipped}"

    @property
    def all_failed(self) -> bool:
        """Episodes were played and none was ok."""
        return self.failed > 0 and self.ok == 0


def plan(populations, scenarios, episodes: int, seed: int = 0, max_steps: int | None = None,
         limits: Limits = Limits(), series_every: int | None = None, run_id: str | None = None
         ) -> list[EpisodeTask]:
    """Tasks for every (population, scenario, episode). Fails before any
    episode if a population or scenario is unknown, a member cannot play a
    scenario or a needed bot is missing."""
    if episodes < 1:
        raise CapprofError(f"--episodes must be at least 1 (got {episodes})")
    if max_steps is not None and max_steps < 1:
        raise CapprofError(f"--max-steps must be at least 1 (got {max_steps})")
    if seed < 0:
        raise CapprofError(f"--seed must be 0 or more (got {seed})")
    parsed = [parse_population(p) for p in populations]
    teams = [p.team for p in parsed]
    if len(set(teams)) != len(teams):
        raise CapprofError("two populations share a team name; name them with TEAM=SPEC")
    records: list[Scenario] = []
    given: dict[str, str] = {}
    for text in scenarios:
        scenario = text if isinstance(text, Scenario) else get_scenario(text)
        if scenario.name in given:
            # two spellings of one scenario (e.g. regrowth=1 and regrowth=1.0) would write
            # the same episodes twice, the second over the first
            raise CapprofError(f'--scenario "{text}" is the scenario "{given[scenario.name]}" again '
                               f"({scenario.name}); give it once")
        given[scenario.name] = text if isinstance(text, str) else scenario.name
        records.append(scenario)
    for scenario in records:
        if scenario.bots:
            require_bots(scenario.name, scenario.bots)
        for member in {m for _, ms in scenario.background for m in ms if not m.startswith(BOT_PREFIX)}:
            parse_population(member)  # a background member that cannot play fails here, before any episode
    for population in parsed:
        check_covers(population, records)
    run_id = run_id or uuid.uuid4().hex[:12]
    return [
        EpisodeTask(run_id=run_id, population=text, team=pop.team, scenario=scenario, episode=e,
                    seed=seed, max_steps=max_steps, limits=limits, series_every=series_every)
        for text, pop in zip(populations, parsed)
        for scenario in records
        for e in range(episodes)
    ]


def expand_scenarios(names=(), suite: str | None = None) -> list[str]:
    chosen = list(names or [])
    if suite:
        chosen += suite_names(suite)
    if not chosen:
        raise CapprofError("no scenario chosen; pass --scenario NAME (repeatable) or --suite offline")
    return list(dict.fromkeys(chosen))


def runs_imported_code(tasks) -> bool:
    """Whether any focal or background member is not a built-in (imported
    files and modules, submissions, checkpoints, other interpreters)."""
    for task in tasks:
        members = [m.spec for m in parse_population(task.population, check=False).members]
        members += [m for _, ms in task.scenario.background for m in ms if not m.startswith(BOT_PREFIX)]
        if any(spec not in BUILTINS for spec in members):
            return True
    return False


def _progress(total: int, initial: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="ep", disable=quiet, file=sys.stderr,
                dynamic_ncols=True, desc="episodes")


def _prepare(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise CapprofError(f"--out {out_dir} is a file; give a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(out_dir, exc) from None


def write_run_demands(tasks, out_dir: Path) -> Path | None:
    """``OUT_DIR/_demands.yaml`` (atomically) when the run has scenarios
    outside the catalog; ``capprof scores OUT_DIR`` reads it by itself."""
    if not any(t.scenario.suite in CUSTOM_SUITES for t in tasks):
        return None
    from capprof.runners.scenarios.scenarios import write_demands_yaml
    from capprof.tagging.demands import RUN_DEMANDS_FILE

    try:
        return write_demands_yaml(out_dir / RUN_DEMANDS_FILE,
                                  [t.scenario for t in tasks if t.scenario.suite in CUSTOM_SUITES])
    except OSError as exc:
        raise unwritable(out_dir, exc) from None


# What a run needs free in --out before its first episode: a floor for the
# lock, _demands.yaml and a margin, plus each episode's Parquet file (8-9 KB
# measured for 1,000 steps; 64 KiB leaves room for --series-every).
RUN_SPACE_FLOOR, EPISODE_SPACE = 16 << 20, 64 << 10


def run_space_bytes(episodes: int) -> int:
    return RUN_SPACE_FLOOR + episodes * EPISODE_SPACE


def _todo(tasks: list[EpisodeTask], out_dir: Path, resume: bool) -> list[EpisodeTask]:
    """The tasks whose episodes ``out_dir`` does not hold yet, after removing
    any partial file a killed run left. Without ``resume``, a directory that
    holds some of these episodes is refused."""
    remove_partial_files(out_dir)
    done = finished_keys(out_dir)
    mine = {t.key for t in tasks} & done
    if mine and not resume:
        raise CapprofError(f"{out_dir} already holds {len(mine)} of these episodes; pass --resume to skip "
                           "them or choose another --out directory")
    return [t for t in tasks if t.key not in done]


def _recorder(out_dir: Path, summary: RunSummary, bar, start: float):
    """The callback each finished episode goes to: it writes the record,
    counts it into ``summary`` and moves the progress bar on."""

    def finished(record: EpisodeRecord) -> None:
        write_record(out_dir, record)
        if record.ok:
            summary.ok += 1
        else:
            summary.failed += 1
            summary.first_error = summary.first_error or record.error
        summary.steps += record.steps
        elapsed = time.perf_counter() - start
        bar.set_postfix(steps_per_s=f"{summary.steps / max(elapsed, 1e-9):.0f}", failed=summary.failed)
        bar.update(1)

    return finished


def _play_isolated(todo: list[EpisodeTask], finished) -> None:
    """Plays ``todo`` one after another in one watched child process."""
    from capprof.runners.execution.isolation import EpisodeProcess

    process = EpisodeProcess()
    try:
        for task in todo:
            finished(process.run(task))
    except BaseException:  # Ctrl-C: stop the child now, not after its episode
        process.kill()
        raise
    process.close()


def _play(todo: list[EpisodeTask], finished, backend: str, isolate: bool, workers: int | None,
          address: str | None, runtime_env: dict | None) -> list[tuple[str, str, int]]:
    """Plays ``todo``, each record to ``finished``, on the chosen backend;
    returns the episodes re-run after a lost Ray worker (none when serial)."""
    if backend == "ray":
        from capprof.runners.execution.ray_backend import execute_ray

        return execute_ray(todo, finished, workers, address, runtime_env)
    if isolate and todo:
        _play_isolated(todo, finished)
    else:
        for task in todo:
            finished(run_episode(task))
    return []


def execute(tasks: list[EpisodeTask], out_dir, resume: bool = False, backend: str = "serial",
            workers: int | None = None, address: str | None = None, quiet: bool = False,
            isolate: bool | None = None, runtime_env: dict | None = None, command: str = "capprof run"
            ) -> RunSummary:
    """Run ``tasks`` (serially, or on Ray with ``backend="ray"``), writing each
    record to ``out_dir`` as it finishes.

    ``isolate`` runs serial episodes in a watched child process (always so
    under Ray): a policy that hangs in native code, crashes or exits the
    interpreter fails its episode, not the run. ``None`` (the default)
    isolates exactly when some member is not a built-in. ``runtime_env`` is
    Ray's runtime environment for the workers (``backend="ray"`` only);
    ``command`` names the caller in the free-space refusal.

    The run plays in an ``ExecutionContext`` (runners/context.py) that is
    closed when it returns or raises, so every member interpreter it started
    is stopped by then; inside the caller's ``with ExecutionContext():`` it
    uses that one and leaves it open."""
    out_dir = Path(out_dir)
    if not out_dir.exists():  # refused before the directory is made: a full disk gets no empty folder
        require_space(out_dir, run_space_bytes(len(tasks)), command)
    _prepare(out_dir)
    with RunLock(out_dir), run_scope():
        todo = _todo(tasks, out_dir, resume)
        require_space(out_dir, run_space_bytes(len(todo)), command)
        demands_file = write_run_demands(tasks, out_dir)
        if isolate is None:
            isolate = runs_imported_code(todo)
        summary = RunSummary(planned=len(tasks), skipped=len(tasks) - len(todo), ok=0, failed=0,
                             out_dir=out_dir, seconds=0.0, steps=0, isolated=isolate or backend == "ray",
                             demands_file=demands_file)
        start = time.perf_counter()
        bar = _progress(len(tasks), summary.skipped, quiet)
        try:
            summary.retried = _play(todo, _recorder(out_dir, summary, bar, start), backend, isolate, workers,
                                    address, runtime_env)
        finally:
            bar.close()
            summary.seconds = time.perf_counter() - start
    return summary
