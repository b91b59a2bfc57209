"""Episodes as Ray actor tasks, on this machine or a cluster (``--address``).

Ray workers run episodes in a child process they start once (spawned, so a
fresh interpreter; runners/execution/isolation.py). Measured on this machine, dmlab2d's
C++/Lua substrate code runs ~7x slower (clean_up: ~230 vs ~1,700 steps/s, and
4.6 s vs 0.8 s per build) in any process that has started many threads, as
every Ray worker (and even a Ray driver after ``ray.init``) has; a forked
child inherits the slowness, a spawned one does not. The child imports
meltingpot once, when its actor starts, so episodes pay no start-up either,
and a child that hangs in native code or dies is replaced.

A worker lost with its episode (its node died or was removed, the actor
process was killed) is not the policy's doing: the episode is queued again
and runs on another actor, at most ``MAX_ATTEMPTS`` times in all; the driver
writes each episode once, when its record arrives.
"""

from __future__ import annotations

import logging
import os
from collections import deque

from capprof.errors import CapprofError, note
from capprof.runners.context import ExecutionContext, current
from capprof.runners.constants import STATUS_ERROR
from capprof.runners.episode.records import EpisodeRecord, EpisodeTask, exception_line, failed_record

MAX_ATTEMPTS = 3  # runs of one episode whose worker was lost, before it is recorded as failed
WAIT_SECONDS = 30.0  # how often a driver waiting for records checks that the cluster still has a node


class EpisodeWorker:
    """A Ray actor that runs ``run_episode`` in its own watched child process."""

    def __init__(self):
        from capprof.runners.execution.isolation import EpisodeProcess

        self._process = EpisodeProcess()

    def run(self, task: EpisodeTask) -> EpisodeRecord:
        return self._process.run(task)


def _new_actor(ray):
    return ray.remote(num_cpus=1, max_restarts=0, max_concurrency=1)(EpisodeWorker).remote()


def _actors(ray, count: int, context: ExecutionContext) -> list:
    """The session's episode actors in ``context`` (a list kept in
    ``context.actors``, so a dead actor removed from it stays removed for
    later runs in the same context); killed when the context closes."""
    key = (ray.get_runtime_context().get_session_name(), ray.get_runtime_context().get_job_id(), count)
    for old in [k for k in context.actors if k != key]:
        _release(ray, context, old)
    if key not in context.actors:
        context.actors[key] = [_new_actor(ray) for _ in range(count)]
        context.at_close(lambda: _release(ray, context, key))
    return context.actors[key]


def _release(ray, context: ExecutionContext, key) -> None:
    """Kill the actors ``context`` holds under ``key`` (their episode
    processes die with them) and forget them."""
    actors = context.actors.pop(key, None)
    if not actors or not ray.is_initialized() or ray.get_runtime_context().get_session_name() != key[0]:
        return  # gone with their session
    for actor in actors:
        try:
            ray.kill(actor)
        except Exception:  # already dead
            pass


def _connect(ray, workers: int | None, address: str | None, runtime_env: dict | None) -> bool:
    """``ray.init`` unless already connected; True if this call connected."""
    if ray.is_initialized():
        if runtime_env:
            note("Ray was already initialised in this process, so the runtime environment given to "
                 "execute() is not used; pass it to ray.init instead")
        return False
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            # A private local instance: Ray's notice that it enabled token
            # authentication for it is noise on the user's terminal.
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            ray.init(num_cpus=workers or os.cpu_count(), **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TypeError) as exc:
        where = f"at {address}" if address else "locally"
        raise CapprofError(f"could not start Ray {where} ({str(exc).splitlines()[0]}); "
                           "check --address or run without --ray") from None
    return True


def execute_ray(tasks, finished, workers: int | None, address: str | None,
                runtime_env: dict | None = None) -> list[tuple[str, str, int]]:
    """Run ``tasks`` on Ray actors, calling ``finished(record)`` for each as
    it arrives; returns the keys of episodes run again after a lost worker.
    ``runtime_env`` is Ray's runtime environment for the run's workers (e.g.
    ``{"working_dir": "."}`` ships the policies' files to every node).
    The actors belong to the current ``ExecutionContext`` (runners/context.py):
    the run's own, so they are killed when ``execute()`` ends, or one its
    caller entered, whose later runs in the same Ray session reuse them."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
    except ImportError:
        raise CapprofError("--ray needs ray; install the runners extra (`make install-runners`)") from None
    context = current()
    started_here = _connect(ray, workers, address, runtime_env)
    try:
        count = max(1, int(ray.cluster_resources().get("CPU", 1)))
        if workers:
            count = min(count, workers)
        actors = _actors(ray, min(count, max(1, len(tasks))) if started_here else count, context)
        return _drive(ray, actors, tasks, finished)
    finally:
        if started_here:
            for key in list(context.actors):
                _release(ray, context, key)
            ray.shutdown()


def _drive(ray, actors: list, tasks, finished) -> list[tuple[str, str, int]]:
    """One episode in flight per actor: records stream back (and are written)
    as they finish; a free actor takes the next task."""
    queue = deque(tasks)
    in_flight: dict = {}
    idle = list(actors)
    lost: dict[tuple, int] = {}
    retried: list[tuple[str, str, int]] = []
    while queue or in_flight:
        while queue and idle:
            actor, task = idle.pop(0), queue.popleft()
            in_flight[actor.run.remote(task)] = (actor, task)
        if not in_flight:  # every actor was lost: start one (it waits for a free CPU)
            actors.append(_new_actor(ray))
            idle.append(actors[-1])
            continue
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=WAIT_SECONDS)
        if not ready:
            _check_cluster(ray)
        for ref in ready:
            actor, task = in_flight.pop(ref)
            try:
                record = ray.get(ref)
            except Exception as exc:  # the actor or its node died: not the policy's doing
                actors.remove(actor)
                replacement = _replacement(ray)
                if replacement is not None:
                    actors.append(replacement)
                    idle.append(replacement)
                lost[task.key] = lost.get(task.key, 0) + 1
                if lost[task.key] < MAX_ATTEMPTS:
                    retried.append(task.key)
                    queue.appendleft(task)
                    continue
                record = failed_record(task, STATUS_ERROR, f"the worker running this episode was lost "
                                                           f"{MAX_ATTEMPTS} times: {exception_line(exc)}")
            else:
                idle.append(actor)
            finished(record)
    return retried


def _check_cluster(ray) -> None:
    """Refuse to wait on a cluster with no node left (its raylets were
    stopped): the episodes in flight would never return."""
    try:
        alive = [node for node in ray.nodes() if node.get("Alive")]
    except Exception:  # the cluster does not answer: keep waiting, Ray gives up by itself
        return
    if not alive:
        raise CapprofError("the Ray cluster has no node left (were its nodes stopped?); the finished episodes "
                           "are kept: start Ray again and continue the run with --resume")


def _replacement(ray):
    """A new actor where a CPU is free now; None when the cluster shrank (a
    node was lost), so the run goes on with the actors it has."""
    try:
        free = ray.available_resources().get("CPU", 0)
    except Exception:
        free = 0
    return _new_actor(ray) if free >= 1 else None
