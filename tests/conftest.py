"""Shared fixtures: the published results (skip when absent) and CLI runners."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT.parent / "shared" / "data" / "meltingpot-results-2.1.1.feather"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def published_path() -> Path:
    """Path of the published Melting Pot 2.0 results; the test skips without it."""
    if not PUBLISHED.exists():
        pytest.skip(f"published results not found at {PUBLISHED}")
    return PUBLISHED


@pytest.fixture
def cli():
    """Run `capprof ARGS...` in this process; returns CliResult(code, out, err)."""
    from capprof.cli import main

    def run(*args) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse exits for --help and usage errors
                code = exc.code if isinstance(exc.code, int) else 1
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def cli_subprocess():
    """Run `python -m capprof ARGS...` as a real process (slower; for exit-code
    and no-traceback checks)."""

    def run(*args, timeout=600, env=None) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "capprof", *map(str, args)],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run
