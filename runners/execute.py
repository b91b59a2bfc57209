"""Plan a run (one task per episode) and execute it serially or on Ray.

Both backends run the same ``run_episode`` on the same tasks, and every seed
an episode uses is derived from (run seed, scenario, episode), so whichever
backend or worker runs an episode fills its slots with the same members and
seeds them alike (the substrate itself does not replay an episode from its
seed; docs/runners.md, "Seeds and backends"). The driver writes
each finished episode atomically as it arrives, so a killed run keeps every
finished episode and ``resume`` skips them.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from capprof.errors import CapprofError
from capprof.runners.assets import require_bots
from capprof.runners.episode import run_episode
from capprof.runners.records import EpisodeRecord, EpisodeTask, Limits, exception_line, failed_record
from capprof.runners.populations import parse_population
from capprof.runners.results import finished_keys, remove_partial_files, write_record
from capprof.runners.scenarios import Scenario, get_scenario, suite_names


@dataclass
class RunSummary:
    planned: int
    skipped: int
    ok: int
    failed: int
    out_dir: Path
    seconds: float
    steps: int


def plan(populations, scenarios, episodes: int, seed: int = 0, max_steps: int | None = None,
         limits: Limits = Limits(), series_every: int | None = None, run_id: str | None = None
         ) -> list[EpisodeTask]:
    """Tasks for every (population, scenario, episode). Fails before any
    episode if a population or scenario is unknown or a needed bot is missing."""
    if episodes < 1:
        raise CapprofError(f"--episodes must be at least 1 (got {episodes})")
    if max_steps is not None and max_steps < 1:
        raise CapprofError(f"--max-steps must be at least 1 (got {max_steps})")
    parsed = [parse_population(p) for p in populations]
    teams = [p.team for p in parsed]
    if len(set(teams)) != len(teams):
        raise CapprofError("two populations share a team name; name them with TEAM=SPEC")
    records: list[Scenario] = [s if isinstance(s, Scenario) else get_scenario(s) for s in scenarios]
    for scenario in records:
        if scenario.bots:
            require_bots(scenario.name, scenario.bots)
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


def _progress(total: int, initial: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="ep", disable=quiet, file=sys.stderr,
                dynamic_ncols=True, desc="episodes")


def execute(tasks: list[EpisodeTask], out_dir, resume: bool = False, backend: str = "serial",
            workers: int | None = None, address: str | None = None, quiet: bool = False,
            isolate: bool = False) -> RunSummary:
    """Run ``tasks`` (serially, or on Ray with ``backend="ray"``), writing each
    record to ``out_dir`` as it finishes. ``isolate`` runs serial episodes in a
    watched child process (always so under Ray): a policy that hangs in native
    code or crashes the interpreter fails its episode, not the run."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CapprofError(f"--out {out_dir} is a file; give a directory")
    done = set()
    if out_dir.is_dir():
        remove_partial_files(out_dir)
        done = finished_keys(out_dir)
        if done and not resume:
            mine = {t.key for t in tasks} & done
            if mine:
                raise CapprofError(
                    f"{out_dir} already holds {len(mine)} of these episodes; pass --resume to skip them "
                    "or choose another --out directory"
                )
    todo = [t for t in tasks if t.key not in done]
    skipped = len(tasks) - len(todo)
    start = time.perf_counter()
    counts = {"ok": 0, "failed": 0, "steps": 0}
    bar = _progress(len(tasks), skipped, quiet)

    def finished(record: EpisodeRecord) -> None:
        write_record(out_dir, record)
        counts["ok" if record.ok else "failed"] += 1
        counts["steps"] += record.steps
        elapsed = time.perf_counter() - start
        bar.set_postfix(steps_per_s=f"{counts['steps'] / max(elapsed, 1e-9):.0f}", failed=counts["failed"])
        bar.update(1)

    try:
        if backend == "ray":
            _execute_ray(todo, finished, workers, address)
        elif isolate and todo:
            from capprof.runners.isolation import EpisodeProcess

            process = EpisodeProcess()
            try:
                for task in todo:
                    finished(process.run(task))
            finally:
                process.close()
        else:
            for task in todo:
                finished(run_episode(task))
    finally:
        bar.close()
    return RunSummary(planned=len(tasks), skipped=skipped, ok=counts["ok"], failed=counts["failed"],
                      out_dir=out_dir, seconds=time.perf_counter() - start, steps=counts["steps"])


# Ray workers run episodes in a child process they start once (spawned, so a
# fresh interpreter; runners/isolation.py). Measured on this machine, dmlab2d's
# C++/Lua substrate code runs ~7x slower (clean_up: ~230 vs ~1,700 steps/s, and
# 4.6 s vs 0.8 s per build) in any process that has started many threads, as
# every Ray worker (and even a Ray driver after ``ray.init``) has; a forked
# child inherits the slowness, a spawned one does not. The child imports
# meltingpot once, when its actor starts, so episodes pay no start-up either,
# and a child that hangs in native code or dies is replaced.
_ACTORS: dict = {}  # (ray session, job, count) -> episode actors, reused across execute() calls


class EpisodeWorker:
    """A Ray actor that runs ``run_episode`` in its own watched child process."""

    def __init__(self):
        from capprof.runners.isolation import EpisodeProcess

        self._process = EpisodeProcess()

    def run(self, task: EpisodeTask) -> EpisodeRecord:
        return self._process.run(task)


def _new_actor(ray):
    return ray.remote(num_cpus=1, max_restarts=0, max_concurrency=1)(EpisodeWorker).remote()


def _actors(ray, count: int) -> list:
    """The session's episode actors (a list kept in ``_ACTORS``, so a dead
    actor replaced in it stays replaced for later calls)."""
    key = (ray.get_runtime_context().get_session_name(), ray.get_runtime_context().get_job_id(), count)
    for old in [k for k in _ACTORS if k != key]:
        _ACTORS.pop(old)
    if key not in _ACTORS:
        _ACTORS[key] = [_new_actor(ray) for _ in range(count)]
    return _ACTORS[key]


def _execute_ray(tasks, finished, workers: int | None, address: str | None) -> None:
    import os

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
    except ImportError:
        raise CapprofError("--ray needs ray; install the runners extra (`make install-runners`)") from None
    started_here = False
    if not ray.is_initialized():
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=workers or os.cpu_count(), **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"at {address}" if address else "locally"
            raise CapprofError(f"could not start Ray {where} ({str(exc).splitlines()[0]}); "
                               "check --address or run without --ray") from None
        started_here = True
    try:
        count = max(1, int(ray.cluster_resources().get("CPU", 1)))
        if workers:
            count = min(count, workers)
        actors = _actors(ray, min(count, max(1, len(tasks))) if started_here else count)
        # One episode in flight per actor: results stream back (and are
        # written) as they finish; a free actor takes the next task.
        queue = list(tasks)
        in_flight: dict = {}
        idle = list(actors)
        while queue or in_flight:
            while queue and idle:
                actor, task = idle.pop(0), queue.pop(0)
                in_flight[actor.run.remote(task)] = (actor, task)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                actor, task = in_flight.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as exc:  # the actor died: record it, replace the actor
                    record = failed_record(task, "error", "the worker running this episode died: "
                                                          f"{exception_line(exc)}")
                    actors[actors.index(actor)] = actor = _new_actor(ray)
                idle.append(actor)
                finished(record)
    finally:
        if started_here:
            _ACTORS.clear()
            ray.shutdown()
