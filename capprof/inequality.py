"""Inequality of returns, shared by the runners (each episode's Gini) and the
reports (Gini over time): a pure function of an array."""

from __future__ import annotations

import numpy as np


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
