"""ExecutionContext (runners/context.py): what a run holds, closed when it ends,
and the Ray backend's actors in it (a stand-in for Ray, no cluster)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from capprof.runners.context import ExecutionContext, current, default_context, run_scope


def test_close_stops_everything_last_first_even_when_one_stop_fails():
    stopped = []
    context = ExecutionContext()
    context.bridges["python"] = "child"
    context.at_close(lambda: stopped.append("first"))

    def broken():
        stopped.append("broken")
        raise OSError("pipe closed")

    context.at_close(broken)
    context.at_close(lambda: stopped.append("last"))
    with pytest.raises(OSError, match="pipe closed"):
        context.close()
    assert stopped == ["last", "broken", "first"]
    assert not context.bridges
    context.close()  # again: nothing left to stop
    assert stopped == ["last", "broken", "first"]


def test_with_blocks_nest_and_a_failing_stop_does_not_hide_the_blocks_own_error():
    outer, inner = ExecutionContext(), ExecutionContext()
    assert current() is default_context()
    with outer:
        assert current() is outer
        with pytest.raises(KeyboardInterrupt):
            with inner:
                assert current() is inner
                inner.at_close(lambda: 1 / 0)
                raise KeyboardInterrupt
        assert current() is outer
    assert current() is default_context()


def test_execute_runs_in_a_new_context_unless_its_caller_entered_one():
    with run_scope() as own:
        assert current() is own and own is not default_context()
        own.at_close(lambda: own.sources.setdefault("stopped", True))
    assert own.sources == {}  # closed: its stop ran, then it was emptied
    with ExecutionContext() as lent:
        with run_scope() as scope:
            assert scope is lent
            lent.sources["kept"] = True
        assert lent.sources == {"kept": True}  # left open for the caller


class FakeRay:
    """Enough of Ray for execute_ray: a session the caller started, actors
    that play an episode by returning its record, and a record of kills."""

    def __init__(self):
        self.made, self.killed = [], []
        self.session = "session_1"

    def is_initialized(self):
        return True

    def get_runtime_context(self):
        return SimpleNamespace(get_session_name=lambda: self.session, get_job_id=lambda: "01000000")

    def cluster_resources(self):
        return {"CPU": 2}

    def remote(self, **options):
        from capprof.runners.episode.records import EpisodeRecord

        def make():
            actor = SimpleNamespace(run=SimpleNamespace(remote=lambda task: EpisodeRecord.for_task(task, steps=3)))
            self.made.append(actor)
            return actor

        return lambda cls: SimpleNamespace(remote=make)

    def wait(self, refs, num_returns, timeout=None):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref

    def kill(self, actor):
        self.killed.append(actor)


@pytest.fixture
def fake_ray(monkeypatch):
    ray = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    return ray


def _tasks(n: int):
    from capprof.runners.episode.records import EpisodeTask
    from capprof.runners.scenarios.scenarios import get_scenario

    scenario = get_scenario("prisoners_dilemma_in_the_matrix__arena__visitor_defector")
    return [EpisodeTask(run_id="r", population="random", team="random", scenario=scenario, episode=e, seed=0)
            for e in range(n)]


def test_a_ray_run_kills_its_actors_when_execute_returns(fake_ray, tmp_path):
    """On a Ray session the caller started, execute() kills the actors it
    made for the run (and their episode processes with them) when it ends."""
    from capprof.runners.execution.execute import execute

    summary = execute(_tasks(3), tmp_path / "out", backend="ray", quiet=True)
    assert summary.ok == 3
    assert len(fake_ray.made) == 2 and fake_ray.killed == fake_ray.made


def test_runs_in_the_callers_context_share_the_actors_until_it_closes(fake_ray, tmp_path):
    from capprof.runners.execution.execute import execute

    with ExecutionContext():
        assert execute(_tasks(2), tmp_path / "a", backend="ray", quiet=True).ok == 2
        assert execute(_tasks(2), tmp_path / "b", backend="ray", quiet=True).ok == 2
        assert len(fake_ray.made) == 2 and not fake_ray.killed  # the second run reused them
    assert fake_ray.killed == fake_ray.made


def test_actors_of_an_ended_session_are_dropped_not_killed(fake_ray):
    from capprof.runners.execution import ray_backend

    context = ExecutionContext()
    first = ray_backend._actors(fake_ray, 1, context)
    fake_ray.session = "session_2"  # ray.shutdown() and ray.init() since
    second = ray_backend._actors(fake_ray, 1, context)
    assert second is not first and not fake_ray.killed
    context.close()
    assert fake_ray.killed == second
