"""Measurement around the episode loop: observers.

The loop (``capprof.runners.episode.episode.play``) calls ``reset(timestep)`` once,
after the substrate's reset and the policies' initial states, and
``step(steps, timestep)`` after every substrate step. Observers that measure
give their record fields with ``fields()``; limits raise ``PolicyFailure``
to end the episode.
"""

from __future__ import annotations

import os
import time

import numpy as np

from capprof.runners.constants import STATUS_MEMORY, STATUS_TIMEOUT
from capprof.inequality import gini
from capprof.runners.episode.measures import Depletion
from capprof.runners.episode.records import PolicyFailure

MEMORY_CHECK_EVERY = 10  # steps between resident-memory checks


class Observer:
    def reset(self, timestep) -> None:
        pass

    def step(self, steps: int, timestep) -> None:
        pass

    def fields(self) -> dict:
        return {}


class Timing(Observer):
    """Wall time from construction, build time (until the first timestep),
    steps played and stepping speed. ``clocks`` (optional shared memory, see
    runners/execution/isolation.py) gets the steps played at index 2, so a watcher
    outside the process knows how far a dead episode came."""

    def __init__(self, clocks=None):
        self.start = time.perf_counter()
        self.clocks = clocks
        self.steps = 0
        self.stepping_start: float | None = None
        self.stepping_end: float | None = None

    def reset(self, timestep) -> None:
        self.stepping_start = time.perf_counter()

    def step(self, steps: int, timestep) -> None:
        self.steps = steps
        if self.clocks is not None:
            self.clocks[2] = steps

    def finish(self) -> None:
        """The last step is done (before anything is closed)."""
        self.stepping_end = time.perf_counter()

    def fields(self) -> dict:
        """Steps, times and speed (NaN speed unless ``finish`` was called)."""
        began, ended = self.stepping_start, self.stepping_end
        return {
            "steps": self.steps,
            "wall_seconds": time.perf_counter() - self.start,
            "build_seconds": began - self.start if began is not None else float("nan"),
            "steps_per_second": self.steps / max(ended - began, 1e-9)
            if began is not None and ended is not None else float("nan"),
        }


class Returns(Observer):
    """Every player's return; per-capita focal and background returns,
    social welfare and Gini coefficients at the end."""

    def __init__(self, is_focal):
        self.is_focal = np.asarray(is_focal, dtype=bool)
        self.returns = np.zeros(len(self.is_focal))
        self.collective = 0.0  # the last step's summed reward

    def step(self, steps: int, timestep) -> None:
        rewards = np.asarray(timestep.reward, dtype=float)
        self.returns += rewards
        self.collective = rewards.sum()

    def fields(self) -> dict:
        returns, focal = self.returns, self.is_focal
        return {
            "player_returns": tuple(returns.tolist()),
            "focal_per_capita_return": float(returns[focal].mean()),
            "background_per_capita_return": float(returns[~focal].mean()) if (~focal).any() else float("nan"),
            "social_welfare": float(returns.sum()),
            "gini_focal": gini(returns[focal]),
            "gini_all": gini(returns),
        }


class DepletionStep(Observer):
    """The first step from which the collective reward did not increase for
    50 steps (``measures.depleted_at``), from ``Returns`` as it goes."""

    def __init__(self, returns: Returns):
        self.returns = returns
        self.depletion = Depletion()

    def step(self, steps: int, timestep) -> None:
        self.depletion.add(self.returns.collective)

    def fields(self) -> dict:
        return {"depleted_at_step": self.depletion.step}


class ReturnSeries(Observer):
    """Every player's cumulative return, and its Gini, every ``every`` steps."""

    def __init__(self, returns: Returns, every: int):
        self.returns = returns
        self.every = every
        self.series: list[tuple[float, ...]] = []
        self.ginis: list[float] = []

    def step(self, steps: int, timestep) -> None:
        if steps % self.every == 0:
            self.series.append(tuple(self.returns.returns.tolist()))
            self.ginis.append(gini(self.returns.returns))

    def fields(self) -> dict:
        return {"return_series": tuple(self.series), "gini_series": tuple(self.ginis)}


def rss_bytes() -> int:
    """This process's resident memory (0 where /proc is missing: no limit)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class MemoryLimit(Observer):
    """Ends the episode (``memory``) when the process grew by more than
    ``gb_per_focal`` x focal players since construction (every 10 steps)."""

    def __init__(self, gb_per_focal: float, n_focal: int):
        self.gb_per_focal = gb_per_focal
        self.limit = gb_per_focal * n_focal * 2**30
        self.baseline = rss_bytes()

    def step(self, steps: int, timestep) -> None:
        if steps % MEMORY_CHECK_EVERY == 0 and rss_bytes() - self.baseline > self.limit:
            raise PolicyFailure(STATUS_MEMORY, f"memory grew by more than {self.limit / 2**30:g} GB "
                                               f"({self.gb_per_focal:g} GB per focal player)")


class EpisodeTimeLimit(Observer):
    """Ends the episode (``timeout``) once it has run for ``seconds``,
    counted from ``start`` (a ``perf_counter()`` value)."""

    def __init__(self, seconds: float, start: float):
        self.seconds = seconds
        self.start = start

    def step(self, steps: int, timestep) -> None:
        if time.perf_counter() - self.start > self.seconds:
            raise PolicyFailure(STATUS_TIMEOUT, f"episode exceeded the {self.seconds:g} s limit "
                                                f"after {steps} steps")
