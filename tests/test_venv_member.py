"""Members in another Python environment (``SPEC@PYTHON``).

The fast tests use capprof's own interpreter as the "other" one (the child
still runs the bridge by file path, in its own process). The slow test builds
a plain venv with numpy, dm-env and cowsay (which capprof's environment
lacks), cached under the temp directory by Python and package versions, and
proves the policies ran there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import dm_env
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.runners

FIXTURES = Path(__file__).parent / "fixtures"
SUBMISSION = FIXTURES / "submission"
RECORDER = SUBMISSION / "my_policies" / "recorder.py"
VENV_POLICIES = FIXTURES / "venv_policies.py"
PD_RESIDENT = "prisoners_dilemma_in_the_matrix__arena__resident_defector"
COMMONS_VISITOR = "commons_harvest__open__visitor_harvester"
PACKAGES = ("numpy==2.4.6", "dm-env==1.6", "cowsay==6.1")


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def observation() -> dm_env.TimeStep:
    return dm_env.restart({"RGB": np.zeros((88, 88, 3), np.uint8), "READY_TO_SHOOT": np.float64(1.0)})


# ------------------------------------------------------------ fast: capprof's interpreter as the other one


def plain_submission(root: Path) -> Path:
    """A starter-kit directory like tests/fixtures/submission whose policy
    does not import meltingpot (capprof's interpreter has it, and importing
    it in every child would take most of a fast test)."""
    (root / "my_policies").mkdir(parents=True)
    (root / "my_policies" / "__init__.py").write_text("")
    (root / "my_policies" / "user_config.py").write_text(textwrap.dedent("""
        import json, os

        class Logger:
            def __init__(self, policy_id):
                self.policy_id = policy_id
                self.log("init")

            def log(self, event):
                with open(os.environ["CAPPROF_SUBMISSION_LOG"], "a") as f:
                    f.write(json.dumps({"event": event, "policy_id": self.policy_id, "pid": os.getpid()}) + "\\n")

            def __enter__(self):
                self.log("enter")
                return self

            def __exit__(self, *exc):
                self.log("exit")

            def initial_state(self):
                return 0

            def step(self, timestep, state):
                return int(timestep.observation["RGB"].mean() > 1), state + 1

            def close(self):
                self.log("close")

        SubmissionPolicies = {"prisoners_dilemma_in_the_matrix__arena": Logger, "commons_harvest__open": Logger}
        SubmissionRoles = {"prisoners_dilemma_in_the_matrix__arena": {"default": ["agent_0", "agent_3"]},
                           "commons_harvest__open": {"default": ["agent_0"]}}
    """))
    return root


def test_submission_runs_in_a_child_interpreter(tmp_path, monkeypatch):
    from capprof.errors import CapprofError
    from capprof.runners.populations.populations import PolicySlot, check_covers, parse_population
    from capprof.runners.populations.substrate_info import substrate_info
    from capprof.runners.scenarios.scenarios import get_scenario

    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("CAPPROF_SUBMISSION_LOG", str(log))
    spec = f"kit=submission:{plain_submission(tmp_path / 'kit')}@{sys.executable}"
    population = parse_population(spec)
    with pytest.raises(CapprofError, match="does not cover substrate clean_up .*it covers commons_harvest__open, "
                                           "prisoners_dilemma_in_the_matrix__arena"):
        check_covers(population, [get_scenario("clean_up__visitor_cleaner")])
    policy = population.members[0].build(substrate_info("prisoners_dilemma_in_the_matrix__arena"), 11,
                                         PolicySlot.of(5, "default"))
    state = policy.initial_state()
    for _ in range(3):
        action, state = policy.step(observation(), state)
        assert action == 0 and type(action) is int
    policy.close()
    events = read_log(log)
    assert [e["event"] for e in events] == ["init", "enter", "exit"]  # a context manager is exited, not closed
    assert events[0]["policy_id"] in {"agent_0", "agent_3"}  # what SubmissionRoles allows
    assert events[0]["pid"] != os.getpid()


def reading_submission(root: Path, action: int) -> Path:
    """A kit whose policy reads its action from ``action.txt`` by a relative
    path, when built and at every step (as kits load their weights)."""
    (root / "my_policies").mkdir(parents=True)
    (root / "my_policies" / "__init__.py").write_text("")
    (root / "action.txt").write_text(str(action))
    (root / "my_policies" / "user_config.py").write_text(textwrap.dedent("""
        class Reader:
            def __init__(self, policy_id):
                self.action = int(open("action.txt").read())

            def initial_state(self):
                return 0

            def step(self, timestep, state):
                return int(open("action.txt").read()), state

            def close(self):
                pass

        SubmissionPolicies = {"prisoners_dilemma_in_the_matrix__arena": Reader}
        SubmissionRoles = {"prisoners_dilemma_in_the_matrix__arena": {"default": ["agent_0"]}}
    """))
    return root


def test_members_given_by_relative_paths_share_a_child_and_each_runs_in_its_own_directory(tmp_path, monkeypatch):
    # One child serves every member of an interpreter; a submission's policy
    # runs in its kit's root, so the relative paths of the next member (or of
    # the next slot of the same kit) must still be read against the run's
    # directory, and each kit's steps must read its own files.
    from capprof.runners.populations.populations import PolicySlot, parse_population
    from capprof.runners.populations.substrate_info import substrate_info

    reading_submission(tmp_path / "kit_a", 3)
    reading_submission(tmp_path / "kit_b", 5)
    (tmp_path / "echo.py").write_text(textwrap.dedent("""
        class Seven:
            def initial_state(self):
                return 0
            def step(self, timestep, state):
                return 7, state
            def close(self):
                pass
    """))
    monkeypatch.chdir(tmp_path)
    python = sys.executable
    population = parse_population(f"t=submission:kit_a@{python}+submission:kit_b@{python}+echo.py:Seven@{python}")
    info = substrate_info("prisoners_dilemma_in_the_matrix__arena")
    policies = []
    for slot, member in enumerate([0, 1, 0, 2, 1]):
        policies.append(population.members[member].build(info, slot, PolicySlot.of(slot, "default")))
    states = [p.initial_state() for p in policies]
    for _ in range(2):
        actions = []
        for i, policy in enumerate(policies):
            action, states[i] = policy.step(observation(), states[i])
            actions.append(action)
        assert actions == [3, 5, 3, 7, 5]
    for policy in policies:
        policy.close()
    assert Path.cwd() == tmp_path  # the parent's own directory is untouched


def test_a_child_that_exits_fails_the_step_and_the_next_build_restarts_it(tmp_path):
    from capprof.runners.populations.populations import PolicySlot, parse_population
    from capprof.runners.populations.substrate_info import substrate_info
    from capprof.runners.populations.venv_member import PolicyProcessError

    path = tmp_path / "quitter.py"
    path.write_text(textwrap.dedent("""
        import os, sys

        class Quitter:
            def initial_state(self):
                return 0

            def step(self, timestep, state):
                if state == 2:
                    sys.stderr.write("Quitter: bye\\n")
                    sys.stderr.flush()
                    os._exit(7)
                return 0, state + 1

            def close(self):
                pass
    """))
    member = parse_population(f"{path}:Quitter@{sys.executable}").members[0]
    info = substrate_info("commons_harvest__open")
    for _ in range(2):  # the second build starts a new child
        policy = member.build(info, 0, PolicySlot.of(0, "default"))
        state = policy.initial_state()
        with pytest.raises(PolicyProcessError) as failure:
            for _ in range(5):
                _, state = policy.step(observation(), state)
        message = str(failure.value)
        assert "\n" not in message
        assert f"{sys.executable} exited with code 7 during" in message and "(Quitter: bye)" in message
        policy.close()  # quiet: its child is gone


ECHO = """
import time

class Echo:
    \"\"\"Checks it sees its own player's view, then acts on it: (player + step) % 8.\"\"\"

    fail_at = hang_at = None

    def __init__(self, policy_id):
        self.index = int(policy_id.rsplit("_", 1)[1])

    def initial_state(self):
        return 0

    def step(self, timestep, state):
        seen, step = int(timestep.observation["RGB"][0, 0, 0]), int(timestep.observation["READY_TO_SHOOT"])
        reward = 0.0 if timestep.reward is None else float(timestep.reward)
        timestep.observation["RGB"][0, 0, 0] = 255  # the child's copy is writable and its own
        if (seen, step) != (self.index, state) or reward not in (0.0, 1.0):
            return -1, state  # an invalid action fails the episode
        if self.index == 3:
            time.sleep(0.003)  # slower than the 2 ms under which replies were held until 2026-12-03
        if state == self.fail_at and self.index == 1:
            raise ValueError("player 1 gives up")
        if state == self.hang_at and self.index == 3:
            time.sleep(60)
        return (seen + step) % 8, state + 1

class Failing(Echo):
    fail_at = 3

class Hanging(Echo):
    hang_at = 2
"""


class Checker:
    """A stub substrate: player i sees i in its RGB view and the step number
    in READY_TO_SHOOT, and gets reward 1 when its last action was
    (i + step) % 8; the focal returns thus count the correct actions."""

    def __init__(self, players: int):
        self.players, self.t = players, 0

    def _timestep(self, rewards):
        observation = [{"RGB": np.full((88, 88, 3), i, np.uint8), "READY_TO_SHOOT": np.array(float(self.t)),
                        "WORLD.RGB": np.zeros((8, 8, 3), np.uint8)} for i in range(self.players)]
        if rewards is None:
            return dm_env.restart(observation)
        return dm_env.transition([np.array(r) for r in rewards], observation)

    def reset(self):
        self.t = 0
        return self._timestep(None)

    def step(self, actions):
        rewards = [float(a == (i + self.t) % 8) for i, a in enumerate(actions)]
        self.t += 1
        return self._timestep(rewards)

    def action_spec(self):
        return [dm_env.specs.DiscreteArray(8)] * self.players

    def close(self):
        pass


def test_players_sharing_a_child_each_get_their_own_step(tmp_path, monkeypatch):
    """Four focal players in one child, a background slot among them: their
    steps are sent together and answered in one go (or not, for the slow
    player 3), and each player must see its own view and have its own action
    back, every step; a failure mid-step leaves no stray reply for the next
    episode in the same child, and a step that hangs is still a timeout."""
    from capprof.runners.episode.episode import EpisodeTask, Limits, run_episode
    from capprof.runners.scenarios.scenarios import Scenario

    path = tmp_path / "echo.py"
    path.write_text(ECHO)
    is_focal = (True, True, False, True, True)
    scenario = Scenario(name="commons_harvest__open__checker", substrate="commons_harvest__open",
                        roles=("default",) * 5, is_focal=is_focal, background=(("default", ("noop",)),),
                        suite="bench")
    monkeypatch.setattr("capprof.runners.episode.episode.build_substrate", lambda scenario, env_seed: Checker(5))

    def play(cls, steps=30, limits=Limits()):
        return run_episode(EpisodeTask(run_id="t", population=f"{path}:{cls}@{sys.executable}", team="t",
                                       scenario=scenario, episode=0, seed=0, max_steps=steps, limits=limits))

    for cls, status, steps, needle in [
        ("Echo", "ok", 30, ""),
        ("Failing", "error", 3, "focal policy {path}:Failing@{python} raised PolicyProcessError: ValueError: "
                                "player 1 gives up"),
        ("Echo", "ok", 30, ""),  # the same child: the replies the failure left unread are skipped
        ("Hanging", "timeout", 2, "took longer than 1 s for one step"),
        ("Echo", "ok", 30, ""),  # a new child
    ]:
        record = play(cls, limits=Limits(step_seconds=1.0) if cls == "Hanging" else Limits())
        assert (record.status, record.steps) == (status, steps), record.error
        assert needle.format(path=path, python=sys.executable) in record.error
        if status == "ok":
            returns = [r for r, focal in zip(record.player_returns, is_focal) if focal]
            assert returns == [steps] * 4  # every action was the right one


def test_the_steps_of_one_member_come_back_in_one_frame_per_episode_step(tmp_path, monkeypatch):
    """Four focal players of one member, one of them taking 3 ms a step (as a
    contest policy takes a few): after their first steps the child answers
    all four in one frame, so the parent wakes once per episode step."""
    from capprof.runners.populations import bridge
    from capprof.runners.episode.episode import EpisodeTask, run_episode
    from capprof.runners.scenarios.scenarios import Scenario

    path = tmp_path / "echo.py"
    path.write_text(ECHO)
    scenario = Scenario(name="commons_harvest__open__checker", substrate="commons_harvest__open",
                        roles=("default",) * 5, is_focal=(True, True, False, True, True),
                        background=(("default", ("noop",)),), suite="bench")
    monkeypatch.setattr("capprof.runners.episode.episode.build_substrate", lambda scenario, env_seed: Checker(5))
    step_frames = []
    receive = bridge.receive

    def counting(fd):
        replies = receive(fd)
        if all(status == "ok" and isinstance(value, tuple) for status, value in replies):
            step_frames.append(len(replies))
        return replies

    monkeypatch.setattr(bridge, "receive", counting)
    record = run_episode(EpisodeTask(run_id="t", population=f"{path}:Echo@{sys.executable}", team="t",
                                     scenario=scenario, episode=0, seed=0, max_steps=30))
    assert record.status == "ok", record.error
    assert sum(step_frames) == 4 * 30
    assert len(step_frames) <= 30 + 3, step_frames  # the first step's four replies may come one by one


def test_a_step_that_ran_too_long_in_the_child_is_a_timeout_however_short_the_wait():
    """A step sent ahead may have run in the child before the loop asked for
    it: the guard also checks the child's own clock (``step_seconds``)."""
    from capprof.runners.episode.guard import GuardedPolicy, StepWatchdog
    from capprof.runners.episode.records import PolicyFailure

    class RanLong:
        step_seconds = 0.0

        def step_ahead(self, timestep, state):
            pass

        def step(self, timestep, state):
            self.step_seconds = 2.5
            return 1, state

    with StepWatchdog(2.0) as watchdog:
        guarded = GuardedPolicy(RanLong(), "x@python", 8, watchdog)
        assert guarded.step_ahead is not None
        with pytest.raises(PolicyFailure, match="focal policy x@python took longer than 2 s for one step"):
            guarded.step(observation(), 0)


@pytest.mark.parametrize("member, needle", [
    ("x={recorder}:Recorder@/nowhere/bin/python", "interpreter /nowhere/bin/python does not exist"),
    ("x={recorder}:Recorder@{not_executable}", "is not an executable file"),
    ("x={recorder}:Recorder@{bare}", "lacks numpy and dm_env; install them there"),
    ("x={plain}:Nope@{python}", '"Nope" not found in'),
    ("x=random@{python}", "only module:Class, FILE.py[:Class], submission:DIR and rllib-legacy:CHECKPOINT members can run in another"),
])
def test_bad_interpreters_are_one_line_exit_2(cli, tmp_path_factory, member, needle):
    root = tmp_path_factory.getbasetemp()
    bare = root / "bare-venv"
    if "{bare}" in member and not bare.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=300)
    not_executable = root / "python-text"
    not_executable.write_text("not a program")
    plain = root / "plain_policy.py"
    plain.write_text("class Still:\n    pass\n")
    spec = member.format(recorder=RECORDER, plain=plain, not_executable=not_executable, bare=bare / "bin" / "python",
                         python=sys.executable)
    out = root / "out-bad"
    res = cli("run", "--population", spec, "--scenario", PD_RESIDENT, "--episodes", "1", "--out", out)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capprof: error:") and needle in lines[0], res.err
    assert not out.exists()


PID_ECHO = ECHO + """
import os

class PidEcho(Echo):
    \"\"\"Echo that writes its interpreter's pid to $CAPPROF_PID_LOG.\"\"\"

    def __init__(self, policy_id):
        super().__init__(policy_id)
        with open(os.environ["CAPPROF_PID_LOG"], "a") as f:
            f.write("%d\\n" % os.getpid())
"""


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_execute_stops_the_member_interpreters_it_started_when_it_returns_and_when_it_raises(tmp_path,
                                                                                             monkeypatch):
    """Every child interpreter a run started is stopped when execute()
    returns, and when the run is interrupted (Ctrl-C while an episode is
    written): none is left running behind the caller. Within a run the
    episodes share one child; the next run starts its own."""
    import capprof.runners.execution.execute as execute_module
    from capprof.runners.episode.records import EpisodeTask
    from capprof.runners.scenarios.scenarios import Scenario

    path = tmp_path / "echo.py"
    path.write_text(PID_ECHO)
    pid_log = tmp_path / "pids.txt"
    monkeypatch.setenv("CAPPROF_PID_LOG", str(pid_log))
    scenario = Scenario(name="commons_harvest__open__checker", substrate="commons_harvest__open",
                        roles=("default",) * 5, is_focal=(True, True, False, True, True),
                        background=(("default", ("noop",)),), suite="bench")
    monkeypatch.setattr("capprof.runners.episode.episode.build_substrate", lambda scenario, env_seed: Checker(5))
    tasks = [EpisodeTask(run_id="t", population=f"{path}:PidEcho@{sys.executable}", team="t", scenario=scenario,
                         episode=e, seed=0, max_steps=5) for e in range(2)]

    def pids() -> set[int]:
        return {int(line) for line in pid_log.read_text().split()} if pid_log.exists() else set()

    summary = execute_module.execute(tasks, tmp_path / "returned", isolate=False, quiet=True)
    assert (summary.ok, summary.failed) == (2, 0), summary.first_error
    first = pids()
    assert len(first) == 1  # both episodes' policies were built in one child
    assert not any(_running(pid) for pid in first)

    def interrupted(out_dir, record):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute_module, "write_record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute_module.execute(tasks, tmp_path / "raised", isolate=False, quiet=True)
    second = pids() - first
    assert len(second) == 1  # a new run, a new child
    assert not any(_running(pid) for pid in second)


def test_outside_a_run_the_default_context_closes_the_member_at_interpreter_exit(tmp_path):
    """A script that builds a member itself (no execute(), no with block)
    and exits without closing it: at exit its child is asked to stop, so
    the submission's policy is exited before the child ends."""
    kit = plain_submission(tmp_path / "kit")
    log = tmp_path / "log.jsonl"
    script = textwrap.dedent(f"""
        from capprof.runners.populations.populations import PolicySlot, parse_population
        from capprof.runners.populations.substrate_info import SubstrateInfo

        member = parse_population("kit=submission:{kit}@{sys.executable}").members[0]
        info = SubstrateInfo("prisoners_dilemma_in_the_matrix__arena", ({{"move": 0}},) * 2, ())
        policy = member.build(info, 0, PolicySlot.of(0, "default"))
        policy.initial_state()
    """)
    env = {**os.environ, "CAPPROF_SUBMISSION_LOG": str(log)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    events = read_log(log)
    assert [e["event"] for e in events] == ["init", "enter", "exit"]
    assert not _running(events[0]["pid"])


def test_a_with_block_stops_its_own_children_and_leaves_the_default_contexts_running(tmp_path, monkeypatch):
    """Children started inside ``with ExecutionContext():`` stop when the
    block ends; one started outside it, in the default context, runs on
    until that context closes."""
    from capprof.runners.context import ExecutionContext, current, default_context
    from capprof.runners.populations.populations import PolicySlot, parse_population
    from capprof.runners.populations.substrate_info import SubstrateInfo
    from capprof.runners.populations.venv_member import bridge_process

    default_context().close()  # children earlier tests left there have another environment
    monkeypatch.setenv("CAPPROF_SUBMISSION_LOG", str(tmp_path / "log.jsonl"))
    spec = f"kit=submission:{plain_submission(tmp_path / 'kit')}@{sys.executable}"
    info = SubstrateInfo("prisoners_dilemma_in_the_matrix__arena", ({"move": 0},) * 2, ())
    member = parse_population(spec).members[0]
    outside = member.build(info, 0, PolicySlot.of(0, "default"))
    try:
        with ExecutionContext() as context:
            assert current() is context
            inside = member.build(info, 0, PolicySlot.of(0, "default"))
            assert inside.process is not outside.process and inside.process.alive()
            inner_pid = inside.process.proc.pid
        assert current() is default_context()
        assert not _running(inner_pid) and not context.bridges
        assert outside.process.alive() and bridge_process(sys.executable) is outside.process
        outside.initial_state()  # still served
    finally:
        default_context().close()
    assert not outside.process.alive()


# ------------------------------------------------------------ slow: a venv of its own


@pytest.fixture(scope="session")
def other_python() -> Path:
    """A plain venv (no system site-packages) with PACKAGES, built once per
    Python and package versions and kept in the temp directory."""
    key = f"py{sys.version_info[0]}{sys.version_info[1]}-" + "-".join(p.replace("==", "") for p in PACKAGES)
    root = Path(tempfile.gettempdir()) / "capprof-test-venvs" / key
    if not (root / ".complete").exists():
        build = root.with_name(f"{key}.building-{os.getpid()}")
        shutil.rmtree(build, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(build)], check=True, capture_output=True, timeout=600)
        done = subprocess.run([str(build / "bin" / "python"), "-m", "pip", "install", "-q", *PACKAGES],
                              capture_output=True, text=True, timeout=1800)
        if done.returncode:
            shutil.rmtree(build, ignore_errors=True)
            pytest.skip(f"could not pip install {' '.join(PACKAGES)}: {done.stderr.strip().splitlines()[-1:]}")
        (build / ".complete").write_text("\n".join(PACKAGES) + "\n")
        shutil.rmtree(root, ignore_errors=True)
        build.rename(root)
    return root / "bin" / "python"


@pytest.mark.slow
def test_members_play_in_their_own_venv_and_its_failures_stay_in_their_episodes(cli, tmp_path, monkeypatch,
                                                                                 other_python):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("CAPPROF_SUBMISSION_LOG", str(log))
    out = tmp_path / "out"
    args = ["run", "--scenario", COMMONS_VISITOR, "--episodes", "2", "--max-steps", "20", "--out", out,
            "--step-timeout", "3", "--quiet"]
    for team in ("PrefixReporter", "Raiser", "Exiter", "Hanger"):
        args += ["--population", f"{team}={VENV_POLICIES}:{team}@{other_python}"]
    args += ["--population", f"kit=submission:{SUBMISSION}@{other_python}"]
    res = cli(*args)
    assert res.code == 0, res.err
    table = pd.read_parquet(out).set_index(["team", "episode"])
    for episode in (0, 1):
        ok = table.loc[("PrefixReporter", episode)]
        assert ok["status"] == "ok" and ok["steps"] == 20, ok["error"]
        assert table.loc[("Raiser", episode), "status"] == "error"
        assert "PolicyProcessError: ValueError: no move left" in table.loc[("Raiser", episode), "error"]
        exited = table.loc[("Exiter", episode)]
        assert exited["status"] == "error" and "exited with code 7" in exited["error"]
        assert "(Exiter: leaving now)" in exited["error"]
        assert table.loc[("Hanger", episode), "status"] == "timeout"
        assert table.loc[("kit", episode), "status"] == "ok", table.loc[("kit", episode), "error"]
    events = read_log(log)
    venv_root = other_python.parent.parent
    assert {Path(e["prefix"]) for e in events} == {venv_root}
    reports = [e for e in events if "cowsay" in e]
    assert not any(e["capprof"] for e in reports) and all(e["cowsay"] == "cowsay" for e in reports)
    reporter_pids = {e["pid"] for e in reports[:2]}  # the first team's two episodes
    assert len(reporter_pids) == 1 and os.getpid() not in reporter_pids  # one child per worker, reused
    kit = [e for e in events if e.get("module") == "my_policies.recorder"]
    assert [e["event"] for e in kit] == ["init", "enter", "step", "close"] * 2
    assert {e["policy_id"] for e in kit} == {"agent_0"}  # the visitor's slot 0, allowed for commons
