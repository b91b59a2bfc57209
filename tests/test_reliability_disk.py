"""Every command that writes, on a real full file system (a small tmpfs):
one line naming the directory, exit 2, nothing half-written left behind, an
existing profile, report or CSV untouched; `run` keeps its finished episodes
and prints the `--resume` command (issue 20).

Mounting a tmpfs needs root (CI runs as root); elsewhere these tests skip.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_reliability import cheap_profile

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CAPPROF = [sys.executable, "-m", "capprof"]
PD_VISITOR = "prisoners_dilemma_in_the_matrix__arena__visitor_defector"
REPORT_FIXTURE = ROOT / "tests" / "fixtures" / "reports" / "profile"


@pytest.fixture
def small_fs(tmp_path):
    """mount(size) -> a fresh tmpfs of ``size`` (e.g. "4m"), unmounted after the test."""
    mounted = []

    def mount(size: str) -> Path:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'needs root'})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def capprof(*args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([*CAPPROF, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def scores_file(tmp_path_factory):
    from test_profiling_cli import _write_scores

    path = tmp_path_factory.mktemp("scores") / "scores.csv"
    _write_scores(path)
    return path


def test_long_commands_refuse_a_nearly_full_disk_before_any_work(small_fs, scores_file):
    fs = small_fs("4m")
    commands = {
        "run": ("run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "2", "--out", fs / "runs"),
        "train": ("train", "commons_harvest__open", "--out", fs / "trained", "--steps", "2000"),
        "profile": ("profile", scores_file, "--out", fs / "prof", "--tags", "contest"),
        "evaluate": ("evaluate", scores_file, "--models", "aggmean", "--out", fs / "e.csv"),
        "study": ("study", "commons-safety", "--population", "random", "--episodes", "1", "--out", fs / "study"),
    }
    for name, args in commands.items():
        done = capprof(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (name, done.stderr)
        assert re.fullmatch(rf"capprof: error: no space left in {re.escape(str(fs))}[^:]*: \d+\.\d MiB free, "
                            rf"`capprof {name}` needs about \d+\.\d MiB; free space there or choose another "
                            r"(--out|file)", lines[0]), lines[0]
    assert files_under(fs) == []  # nothing written


def test_a_disk_that_fills_before_the_write_leaves_old_outputs_untouched(small_fs, scores_file, cli, monkeypatch):
    """profile, evaluate --out/--cells/--summary and report on a file system
    that is full when they write (the free-space check is switched off to
    reach the write itself)."""
    from capprof import io
    from capprof.profiling.profile import Profile

    monkeypatch.setattr(io, "require_space", lambda *args, **kwargs: None)
    fs = small_fs("8m")
    cheap_profile("old").save(fs / "prof")
    (fs / "e.csv").write_text("old\n")
    (fs / "r.html").write_text("old report")
    before = files_under(fs)
    fill(fs)

    profile = cli("profile", scores_file, "--out", fs / "prof", "--tags", "contest", "--draws", "10", "--tune", "10",
                  "--quiet")
    evaluate = cli("evaluate", scores_file, "--models", "aggmean", "--folds", "2", "--quiet", "--out", fs / "e.csv",
                   "--cells", fs / "c.csv", "--summary", fs / "s.csv")
    report = cli("report", REPORT_FIXTURE, "--out", fs / "r.html")
    for name, result in (("profile", profile), ("evaluate", evaluate), ("report", report)):
        lines = result.err.strip().splitlines()
        assert result.code == 2, (name, result.err)
        assert "no space left on device" in lines[-1] and str(fs) in lines[-1], (name, result.err)
        assert lines[-1].startswith("capprof: error: ") and "internal error" not in result.err, (name, result.err)
        assert "Traceback" not in result.err
        # one error line; before it only the progress line and notes (10 draws have not converged)
        assert [line for line in lines if not line.startswith(("fitting ", "capprof: note: "))] == lines[-1:]
    assert Profile.load(fs / "prof").metadata["which"] == "old"
    assert (fs / "e.csv").read_text() == "old\n" and (fs / "r.html").read_text() == "old report"
    assert files_under(fs) == sorted([*before, "filler"])  # no temporary, no half file, no c.csv / s.csv
    assert sorted(os.listdir(fs)) == sorted(["e.csv", "filler", "prof", "r.html"])


def test_a_run_that_fills_the_disk_keeps_its_episodes_and_resumes(small_fs):
    fs = small_fs("40m")
    out = fs / "out"
    proc = subprocess.Popen([*CAPPROF, "run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "4",
                             "--max-steps", "200", "--out", str(out), "--quiet"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 600
    while not glob.glob(f"{out}/*.parquet") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    filler = fill(fs)
    _, err = proc.communicate(timeout=600)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, err
    kept = sorted(p.name for p in out.glob("*.parquet"))
    assert f"No space left on device; {len(kept)} finished episode(s) are kept in {out}" in lines[0]
    assert 1 <= len(kept) < 4 and not list(out.glob(".*")), os.listdir(out)  # no temporary, no lock
    command = lines[0].split("then continue with: ", 1)[1]
    assert command.endswith("--resume")
    filler.unlink()
    resumed = capprof(*shlex.split(command)[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert f"{4 - len(kept)} episode(s) ok, {len(kept)} already done" in resumed.stdout
    assert len(list(out.glob("*.parquet"))) == 4
