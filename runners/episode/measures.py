"""Measures of an episode's returns (NumPy only: no meltingpot needed).

``gini`` is capprof's one Gini coefficient; the runner stores it per episode
(``gini_focal``, ``gini_all``, ``gini_series``) and the reports import it
from here for the curves they draw.
"""

from __future__ import annotations

import numpy as np

from capprof.runners.constants import DEPLETION_WINDOW


def gini(values) -> float:
    """Gini coefficient G = sum_i sum_j |x_i - x_j| / (2 n^2 mean(x)).

    0 when everyone has the same (including all-zero returns, and no
    returns at all: nobody has more than anyone else), (n-1)/n when one
    player has everything. NaN when the values differ and their mean is not
    positive (G is undefined there). Non-finite values are left out.
    """
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if len(x) == 0 or np.all(x == x[0]):
        return 0.0
    mean = x.mean()
    if mean <= 0:
        return float("nan")
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * mean))


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
