"""A profile save killed with -9 at any point leaves the old profile or the
new one at --out, and nothing that the next save does not clean (issue 20)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from capprof.profiling.profile import Profile

TESTS = Path(__file__).parent

CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {tests!r})
    from test_reliability import cheap_profile
    from capprof import io
    from capprof.profiling.profile import Profile

    target, where = sys.argv[1], sys.argv[2]

    def pause(label):
        print(label, flush=True)
        time.sleep(120)

    if where == "writing":  # the new profile half written in its temporary directory
        real = Profile._write
        def half(self, out):
            real(self, out)
            os.remove(out / "model.json")
            pause("writing")
        Profile._write = half
    elif where == "swapping":  # the fallback swap (no renameat2) between its two renames
        io.exchange = lambda first, second: False
        real_rename = os.rename
        def rename(src, dst):
            real_rename(src, dst)
            if ".old-" in str(dst):
                pause("swapping")
        io.os.rename = rename
    cheap_profile("new").save(target)
""")


def cheap_profile(which: str) -> Profile:
    """A real Profile (layout from a drawn posterior, a small fitted assessor)
    without sampling; ``which`` goes into its metadata."""
    import test_profile_artifact as artifact

    from capprof.profiling.predictors import Assessor, MeasurementLayout

    demands = artifact._demands()
    layout = MeasurementLayout.from_posterior(artifact._posterior(), demands, mode="joint", seed=0)
    assessor = Assessor(n_estimators=5).fit(artifact._scores(demands), demands)
    return Profile(layout=layout, demands=demands, assessor=assessor, metadata={"which": which})


def _kill_during(target: Path, where: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(tests=str(TESTS)), str(target), where],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == where, proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("where", ["writing", "swapping"])
def test_a_save_killed_with_minus_9_leaves_nothing_the_next_save_does_not_clean(tmp_path, where):
    target = tmp_path / "prof"
    cheap_profile("old").save(target)
    _kill_during(target, where)
    left = sorted(os.listdir(tmp_path))
    assert len(left) == 2 and left[0].startswith(".prof."), left  # the killed save's temporary or old copy
    if where == "writing":  # the old profile stayed in place, whole
        assert Profile.load(target).metadata["which"] == "old"
    cheap_profile("newer").save(target)
    assert os.listdir(tmp_path) == ["prof"]
    assert Profile.load(target).metadata["which"] == "newer"


def test_after_a_kill_in_the_fallback_swap_the_next_save_restores_then_replaces(tmp_path):
    """The fallback (no renameat2) has an instant with no profile at --out; a
    kill there leaves the old one at .prof.old-PID, which the next write to
    --out renames back before anything else."""
    from capprof import io

    target = tmp_path / "prof"
    cheap_profile("old").save(target)
    _kill_during(target, "swapping")
    assert not target.exists()
    restored = io.clean_stale(target)
    assert Profile.load(target).metadata["which"] == "old" and all(not p.exists() for p in restored)
    assert os.listdir(tmp_path) == ["prof"]  # the killed save's new temporary is gone too


def test_a_run_whose_disk_fills_without_a_file_name_prints_the_resume_command(tmp_path, cli, monkeypatch):
    """pyarrow writing to a full disk raises ENOSPC without a file name: still
    one line naming --out, the finished episodes kept, the --resume command."""
    import errno

    import capprof.runners.execution.execute as execute_module

    out = tmp_path / "out"
    real, written = execute_module.write_record, []

    def full_after_one(out_dir, record):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(real(out_dir, record))
        return written[-1]

    monkeypatch.setattr(execute_module, "write_record", full_after_one)
    scenario = "prisoners_dilemma_in_the_matrix__arena__visitor_defector"
    res = cli("run", "--population", "random", "--scenario", scenario, "--episodes", "2", "--max-steps", "3",
              "--out", out, "--quiet")
    assert res.code == 2
    assert res.err.strip().splitlines() == [
        f"capprof: error: {out}: No space left on device; 1 finished episode(s) are kept in {out}; free space "
        f"or fix the directory, then continue with: capprof run --population random --scenario {scenario} --episodes 2 "
        f"--max-steps 3 --out {out} --seed 0 --quiet --resume"]
    assert len(list(out.glob("*.parquet"))) == 1 and not list(out.glob(".*"))


def test_a_library_error_raised_from_a_full_disk_is_one_line(tmp_path, capsys):
    """NetCDF, XGBoost or Ray wrap the OSError in their own exception types."""
    import argparse

    from capprof import cli

    def save(args):
        try:
            raise OSError(28, "No space left on device")
        except OSError as exc:
            raise RuntimeError("NetCDF: HDF error") from exc

    args = argparse.Namespace(func=save, out=str(tmp_path / "prof"))
    assert cli._dispatch(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"capprof: error: cannot write {tmp_path / 'prof'}: no space left on device in {tmp_path}; "
                   "free space there or choose another --out"]


def _file_size_limited(limit_bytes: int):
    """preexec_fn: writes past ``limit_bytes`` fail with EFBIG (SIGXFSZ ignored):
    a full disk emulated without root, where a small tmpfs cannot be mounted."""
    import resource

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_writes_cut_short_by_the_file_size_limit_are_one_line_and_leave_old_files(tmp_path):
    from test_profiling_cli import _write_scores

    scores = tmp_path / "scores.csv"
    _write_scores(scores)
    (tmp_path / "e.csv").write_text("old\n")
    (tmp_path / "r.html").write_text("old report")
    before = sorted(os.listdir(tmp_path))
    fixture = TESTS / "fixtures" / "reports" / "profile"
    for args in (["evaluate", str(scores), "--models", "aggmean", "--folds", "2", "--quiet",
                  "--out", str(tmp_path / "e.csv"), "--cells", str(tmp_path / "c.csv")],
                 ["report", str(fixture), "--out", str(tmp_path / "r.html")]):
        done = subprocess.run([sys.executable, "-m", "capprof", *args], capture_output=True, text=True, timeout=600,
                              preexec_fn=_file_size_limited(2048), env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("capprof: note: ")]
        assert done.returncode == 2 and len(lines) == 1, (args[0], done.stderr)  # notes, then one error line
        assert lines[0].startswith(f"capprof: error: cannot write {tmp_path}") and \
            "file too large for the file system" in lines[0], lines[0]
    assert (tmp_path / "e.csv").read_text() == "old\n" and (tmp_path / "r.html").read_text() == "old report"
    assert sorted(os.listdir(tmp_path)) == before  # no c.csv, no charts folder, no temporaries
