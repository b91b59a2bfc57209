"""Measures of an episode's returns (NumPy only: no meltingpot needed): when
the orchard was depleted. The Gini coefficient the runner stores per episode
(``gini_focal``, ``gini_all``, ``gini_series``) is ``capprof.inequality.gini``,
which the reports use too for the curves they draw.
"""

from __future__ import annotations

import numpy as np

from capprof.runners.constants import DEPLETION_WINDOW


def depleted_at(collective_rewards, window: int = DEPLETION_WINDOW) -> float:
    """First step (0-based) from which the collective reward did not increase
    for ``window`` steps in a row; NaN if that never happened."""
    run = 0
    for t, reward in enumerate(np.asarray(collective_rewards, dtype=float)):
        run = 0 if reward > 0 else run + 1
        if run >= window:
            return float(t - window + 1)
    return float("nan")


class Depletion:
    """``depleted_at`` computed online, one step at a time (the episode loop
    does not keep the whole reward history)."""

    def __init__(self, window: int = DEPLETION_WINDOW):
        self.window = window
        self._run = 0
        self._t = 0
        self.step: float = float("nan")

    def add(self, collective_reward: float) -> None:
        self._run = 0 if collective_reward > 0 else self._run + 1
        if self._run >= self.window and self.step != self.step:  # still NaN
            self.step = float(self._t - self.window + 1)
        self._t += 1
