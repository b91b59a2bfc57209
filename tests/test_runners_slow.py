"""Heavier end-to-end runner checks: real Ray, kill-and-resume (slow suite)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.runners]

ROOT = Path(__file__).resolve().parents[1]
PD_VISITOR = "prisoners_dilemma_in_the_matrix__arena__visitor_defector"
CLEAN_UP_VISITOR = "clean_up__visitor_cleaner"
KEY = ["team", "scenario", "episode"]
# What capprof controls. Returns are not compared: dmlab2d's simulation does
# not reproduce an episode from its seed (docs/runners.md, "Seeds and backends").
COMPARED = ["focal_members", "background_members", "steps", "status", "seed", "is_focal"]


def _by_key(path) -> pd.DataFrame:
    return pd.read_parquet(path).set_index(KEY).sort_index()


def test_ray_two_workers_fills_the_same_slots_as_serial(tmp_path, cli):
    common = ["--population", "mix=random+aggressor+cleaner", "--scenario", PD_VISITOR,
              "--scenario", CLEAN_UP_VISITOR, "--episodes", "3", "--max-steps", "40", "--seed", "11", "--quiet"]
    serial = cli("run", *common, "--out", tmp_path / "serial")
    assert serial.code == 0, serial.err
    ray = cli("run", *common, "--out", tmp_path / "ray", "--ray", "--workers", "2")
    assert ray.code == 0, ray.err
    assert ray.err == ""  # nothing of Ray's own reaches the terminal (--quiet: no progress bar)
    a, b = _by_key(tmp_path / "serial"), _by_key(tmp_path / "ray")
    assert list(a.index) == list(b.index) and len(a) == 6
    for col in COMPARED:
        assert [list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v for v in a[col]] == \
               [list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v for v in b[col]], col
    assert (a["status"] == "ok").all()
    for table in (a, b):  # every player has a finite return on both backends
        assert all(len(r) == len(f) and np.isfinite(r).all() for r, f in zip(table["player_returns"], table["is_focal"]))


def test_sigkill_then_resume_keeps_finished_episodes_and_duplicates_none(tmp_path):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "capprof", "run", "--population", "random", "--scenario", PD_VISITOR,
            "--episodes", "8", "--max-steps", "300", "--out", str(out), "--seed", "5", "--quiet"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and len(list(out.glob("*.parquet"))) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    before = {p.name: p.read_bytes() for p in out.glob("*.parquet")}
    assert 2 <= len(before) < 8, "the run was not interrupted mid-way"
    pd.read_parquet(out)  # what a killed run leaves is a readable dataset

    resumed = subprocess.run(args + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{len(before)} already done" in resumed.stdout
    assert not list(out.glob(".*.tmp"))
    table = pd.read_parquet(out)
    assert sorted(table["episode"]) == list(range(8))  # all episodes, none twice
    for name, content in before.items():  # finished episodes were kept, not redone
        assert (out / name).read_bytes() == content
    assert (table["status"] == "ok").all()


def test_ray_episode_process_killed_mid_episode_is_recorded_and_the_run_goes_on(tmp_path, cli):
    """A focal policy that SIGKILLs its own process (as the OOM killer would):
    under Ray that episode is an error naming the dead process; the next
    episode on the same worker runs in a fresh process and is ok."""
    subs = tmp_path / "subs.py"
    subs.write_text(
        "import os, signal\n"
        "from meltingpot.utils.policies import policy\n\n\n"
        "class Killer(policy.Policy):\n"
        "    def initial_state(self):\n        return 0\n\n"
        "    def step(self, timestep, state):\n"
        "        if state == 3:\n            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return 0, state + 1\n\n"
        "    def close(self):\n        pass\n")
    out = tmp_path / "out"
    res = cli("run", "--population", f"killer={subs}:Killer", "--population", "random", "--scenario", PD_VISITOR,
              "--episodes", "1", "--max-steps", "20", "--out", out, "--ray", "--workers", "1", "--quiet")
    assert res.code == 0, res.err
    table = pd.read_parquet(out).set_index("team")
    assert table.loc["killer", "status"] == "error"
    assert "episode process died" in table.loc["killer", "error"]
    assert table.loc["random", "status"] == "ok" and table.loc["random", "steps"] == 20


NATIVE_FAULTS = (
    "import ctypes\n"
    "from meltingpot.utils.policies import policy\n\n\n"
    "class NativeHang(policy.Policy):\n"
    "    def initial_state(self):\n        return 0\n\n"
    "    def step(self, timestep, state):\n"
    "        if state == 3:\n"
    "            sum(range(10**13))  # C code: no Python signal handler runs until it returns\n"
    "        return 0, state + 1\n\n"
    "    def close(self):\n        pass\n\n\n"
    "class Segfault(NativeHang):\n"
    "    def step(self, timestep, state):\n"
    "        if state == 3:\n            ctypes.string_at(0)\n"
    "        return 0, state + 1\n"
)


def test_isolate_survives_a_policy_hung_in_native_code_and_a_segfault(tmp_path, cli):
    """Serial with --isolate: a step stuck in C (beyond the in-process
    watchdog's reach) is a timeout after 1.5 x the limit + 2 s, a segfault is
    an error naming the signal, and the next episode runs in a fresh process."""
    subs = tmp_path / "faults.py"
    subs.write_text(NATIVE_FAULTS)
    out = tmp_path / "out"
    res = cli("run", "--population", f"hang={subs}:NativeHang", "--population", f"crash={subs}:Segfault",
              "--population", "random", "--scenario", PD_VISITOR, "--episodes", "1", "--max-steps", "20",
              "--step-timeout", "1", "--isolate", "--out", out, "--quiet")
    assert res.code == 0, res.err
    table = pd.read_parquet(out).set_index("team")
    assert table.loc["hang", "status"] == "timeout"
    assert "stuck outside Python" in table.loc["hang", "error"]
    assert 3.5 <= table.loc["hang", "wall_seconds"] < 60
    assert table.loc["crash", "status"] == "error"
    assert "episode process died (signal 11)" in table.loc["crash", "error"]
    assert table.loc["random", "status"] == "ok" and table.loc["random", "steps"] == 20


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_run_leaves_no_episode_process_behind(tmp_path):
    """`kill -9` of capprof while its isolated child is stuck in a policy's
    native code: the child dies with it instead of spinning on."""
    subs = tmp_path / "faults.py"
    subs.write_text(NATIVE_FAULTS)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "capprof", "run", "--population", f"hang={subs}:NativeHang",
                             "--scenario", PD_VISITOR, "--episodes", "1", "--max-steps", "20", "--isolate",
                             "--out", str(out), "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    children: list[int] = []
    try:
        deadline = time.time() + 120
        while not children:
            assert proc.poll() is None and time.time() < deadline
            children = [c for c in _children(proc.pid) if "capprof.runners.execution.isolation"
                        in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]
            time.sleep(0.2)
        time.sleep(15)  # well into the hung step (no --step-timeout: nothing else would stop it)
        assert _alive(children[0])
        proc.kill()
        proc.wait()
        deadline = time.time() + 10
        while _alive(children[0]) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(children[0]), "the episode process outlived the killed run"
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)


def test_two_node_ray_cluster_losing_its_worker_node_mid_run_records_every_episode_once(tmp_path):
    """A real two-node Ray cluster on this machine (a head and a worker node,
    one CPU each, as separate raylets): `capprof run --ray --address` uses
    both, the worker node is removed while it plays an episode, and the run
    finishes on the head node with every episode recorded exactly once and
    the summary naming the episode it ran again."""
    import glob

    from ray.cluster_utils import Cluster

    # Health checks every second, so the lost node is noticed in ~3 s, not ~15 s.
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False,
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                           "health_check_failure_threshold": 3}})
    proc = None
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "out"
        episodes = 6
        proc = subprocess.Popen(
            [sys.executable, "-m", "capprof", "run", "--population", "random", "--scenario", PD_VISITOR,
             "--episodes", str(episodes), "--max-steps", "300", "--out", str(out), "--ray",
             "--address", cluster.address, "--quiet"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        # Two finished episodes: both actors are up and busy with their next one.
        while len(glob.glob(str(out / "*.parquet"))) < 2:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        cluster.remove_node(worker)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        cluster.shutdown()
    assert proc.returncode == 0, stderr[-2000:]
    assert f"{episodes} episode(s) ok" in stdout
    assert "were run again after their Ray worker was lost" in stdout and "each is recorded once" in stdout
    table = pd.read_parquet(out)
    assert sorted(table["episode"]) == list(range(episodes))  # every episode, none twice
    assert (table["status"] == "ok").all() and (table["steps"] == 300).all()
    assert len(list(out.glob("*.parquet"))) == episodes and not list(out.glob(".*.tmp"))


def test_runtime_env_ships_the_policy_files_to_ray_workers(tmp_path, cli, monkeypatch):
    """--runtime-env '{"working_dir": "."}': workers run in Ray's copy of the
    driver's directory, so relative policy paths (and files a policy opens
    relative to its directory) resolve on every node."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "weights.txt").write_text("1\n")
    (subs / "entries.py").write_text(
        "import os\n"
        "from meltingpot.utils.policies import policy\n\n\n"
        "class Weighted(policy.Policy):\n"
        "    def __init__(self):\n        self.action = int(open('weights.txt').read())\n\n"
        "    def initial_state(self):\n        return 0\n\n"
        "    def step(self, timestep, state):\n"
        "        if state == 2:\n            raise RuntimeError(f'running in {os.getcwd()}')\n"
        "        return self.action, state + 1\n\n"
        "    def close(self):\n        pass\n")
    monkeypatch.chdir(subs)
    out = tmp_path / "out"
    res = cli("run", "--population", "w=entries.py:Weighted", "--scenario", PD_VISITOR, "--episodes", "1",
              "--max-steps", "5", "--out", out, "--ray", "--workers", "1",
              "--runtime-env", '{"working_dir": "."}', "--quiet")
    assert res.code == 1, res.err  # the only episode failed, on purpose
    row = pd.read_parquet(out).iloc[0]
    assert row["status"] == "error" and row["steps"] == 2
    assert "running in " in row["error"] and "_ray_pkg_" in row["error"], row["error"]  # Ray's copy


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_ctrl_c_on_an_isolated_run_is_one_line_naming_the_resume_command(tmp_path, stop):
    """SIGINT to the whole process group (as a terminal's Ctrl-C), or SIGTERM
    to capprof alone (`kill PID`, a batch scheduler's stop), while the
    isolated child plays an episode: one line, exit 130, the finished
    episodes kept, and the printed command finishes the run."""
    out = tmp_path / "out"
    args = ["run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "6", "--max-steps", "300",
            "--out", str(out), "--seed", "2", "--isolate", "--quiet"]
    # SIGINT's default action restored: a test runner started in the background by a
    # non-interactive shell passes SIGINT down ignored, and Ctrl-C would never arrive.
    proc = subprocess.Popen([sys.executable, "-m", "capprof", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300
        while len(list(out.glob("*.parquet"))) < 1:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.1)
        time.sleep(0.5)  # into the next episode
        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr
    kept = len(list(out.glob("*.parquet")))
    assert 1 <= kept < 6
    assert stderr.splitlines() == [
        f"capprof: interrupted; {kept} finished episode(s) are kept in {out}; continue with: capprof run "
        f"--population random --scenario {PD_VISITOR} --episodes 6 --max-steps 300 --out {out} --seed 2 "
        "--isolate --quiet --resume"], stderr
    resumed = subprocess.run([sys.executable, "-m", "capprof", *args, "--resume"], cwd=ROOT, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{kept} already done" in resumed.stdout
    assert sorted(pd.read_parquet(out)["episode"]) == list(range(6))
