"""Interval statistics for comparing teams: small pure functions over arrays.

The layout follows the statistical practice of Agarwal et al. (2021, "Deep RL
at the edge of the statistical precipice", the rliable library): aggregate
scores over scenarios, and interval estimates from a *stratified* bootstrap
that resamples replicates within each scenario.

Scores of one team are passed *flat*: ``values`` holds every replicate score,
grouped by scenario in a fixed scenario order, and ``sizes[s]`` says how many
replicates scenario ``s`` has (scenarios may have different counts). A batch
of bootstrap resamples is a ``(k, N)`` matrix in the same layout, so every
statistic below takes ``(samples, sizes)`` and returns one value per row.

rliable itself is not imported: its ``library`` module fails to import here
(``arch`` 7.2 against pandas 3, see docs/reports.md); its estimators are a few
lines each and are restated with their formulas. The tests check them against
hand-computed cases and against ``rliable.metrics`` on balanced tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats as _sps


def stratum_offsets(sizes: np.ndarray) -> np.ndarray:
    """Start of each stratum in the flat layout: o_s = sum_{t<s} n_t."""
    sizes = np.asarray(sizes, dtype=int)
    return np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(int)


def stratified_indices(sizes: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``reps`` stratified bootstrap resamples, shape (reps, N).

    Position i in stratum s (offset o_s, n_s members) draws
    o_s + floor(U * n_s) with U ~ Uniform[0, 1): every stratum keeps its size
    and is resampled with replacement from its own members only.
    """
    sizes = np.asarray(sizes, dtype=int)
    offsets = np.repeat(stratum_offsets(sizes), sizes)
    counts = np.repeat(sizes, sizes)
    draws = rng.random((reps, int(sizes.sum())))
    return offsets + np.minimum((draws * counts).astype(int), counts - 1)


def scenario_means(samples: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Mean over replicates per scenario: m_s = (1/n_s) sum_{r in s} x_r.
    ``samples`` (k, N) -> (k, S)."""
    samples = np.atleast_2d(samples)
    sizes = np.asarray(sizes, dtype=int)
    return np.add.reduceat(samples, stratum_offsets(sizes), axis=1) / sizes


def aggregate_mean(samples: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Mean of scenario means: (1/S) sum_s m_s (rliable ``aggregate_mean``)."""
    return scenario_means(samples, sizes).mean(axis=1)


def aggregate_median(samples: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Median of scenario means: median_s m_s (rliable ``aggregate_median``)."""
    return np.median(scenario_means(samples, sizes), axis=1)


def aggregate_iqm(samples: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Interquartile mean over all N replicate scores (rliable ``aggregate_iqm``):
    sort, drop the floor(N/4) lowest and floor(N/4) highest, average the rest.
    Unlike the mean, every replicate (not every scenario) weighs the same."""
    return _sps.trim_mean(np.atleast_2d(samples), proportiontocut=0.25, axis=1)


AGGREGATES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean": aggregate_mean,
    "median": aggregate_median,
    "iqm": aggregate_iqm,
}


def probability_of_improvement(
    samples_x: np.ndarray, sizes_x: np.ndarray, samples_y: np.ndarray, sizes_y: np.ndarray
) -> np.ndarray:
    """P(X > Y) averaged over scenarios (rliable ``probability_of_improvement``):

        P = (1/S) sum_s (1/(n_x,s n_y,s)) sum_i sum_j ( [x_i > y_j] + 0.5 [x_i = y_j] )

    with i over X's replicates and j over Y's replicates of scenario s, i.e.
    the Mann-Whitney U statistic of each scenario scaled to [0, 1]. Both teams
    must list the same scenarios in the same order. (k, N_x), (k, N_y) -> (k,).
    """
    samples_x, samples_y = np.atleast_2d(samples_x), np.atleast_2d(samples_y)
    sizes_x, sizes_y = np.asarray(sizes_x, dtype=int), np.asarray(sizes_y, dtype=int)
    if len(sizes_x) != len(sizes_y):
        raise ValueError("both teams must have the same scenarios")
    off_x, off_y = stratum_offsets(sizes_x), stratum_offsets(sizes_y)
    per_scenario = np.empty((samples_x.shape[0], len(sizes_x)))
    # Scenarios sharing (n_x, n_y) are compared in one vectorised block.
    shapes = np.stack([sizes_x, sizes_y], axis=1)
    for nx, ny in np.unique(shapes, axis=0):
        which = np.flatnonzero((sizes_x == nx) & (sizes_y == ny))
        x = samples_x[:, off_x[which][:, None] + np.arange(nx)]  # (k, g, nx)
        y = samples_y[:, off_y[which][:, None] + np.arange(ny)]  # (k, g, ny)
        greater = (x[..., :, None] > y[..., None, :]).mean(axis=(-1, -2))
        ties = (x[..., :, None] == y[..., None, :]).mean(axis=(-1, -2))
        per_scenario[:, which] = greater + 0.5 * ties
    return per_scenario.mean(axis=1)


def rank_descending(values: np.ndarray) -> np.ndarray:
    """Rank along the last axis, 1 = highest value; ties share the average rank
    (two teams tied for first both get 1.5)."""
    return _sps.rankdata(-np.asarray(values, dtype=float), method="average", axis=-1)


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval: the (1-level)/2 and (1+level)/2 quantiles
    of the bootstrap draws (rliable's default interval)."""
    draws = np.asarray(draws, dtype=float)
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


# ------------------------------------------------------------------ weighted form
#
# A bootstrap resample only repeats observed scores, so it is fully described
# by how often each observation was drawn: a (k, N) matrix of multiplicities
# ``counts`` (row sums per scenario = n_s). Every statistic below is computed
# from (counts, values) in O(k N) (IQM: O(k N) after one sort of the values;
# probability of improvement: O(k (N_x + N_y)) per pair), never materialising
# the resampled scores nor comparing every x with every y.


def multiplicities(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` observations appears in each resample row:
    (k, N) indices -> (k, n) counts (float64, exact for any realistic n)."""
    indices = np.atleast_2d(indices)
    k = indices.shape[0]
    flat = (indices + (np.arange(k)[:, None] * n)).ravel()
    return np.bincount(flat, minlength=k * n).reshape(k, n).astype(float)


def weighted_scenario_means(counts: np.ndarray, values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``scenario_means`` of the resamples described by ``counts`` (k, N) -> (k, S)."""
    sizes = np.asarray(sizes, dtype=int)
    return np.add.reduceat(np.atleast_2d(counts) * values, stratum_offsets(sizes), axis=1) / sizes


def weighted_iqm(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``aggregate_iqm`` of the resamples described by ``counts`` (k, N) -> (k,).

    With the observations sorted by value and C_j the cumulative count up to
    and including j, observation j fills the sorted positions [C_j - c_j, C_j);
    the interquartile mean keeps positions [g, N - g), g = floor(N / 4), so j
    contributes v_j * |[C_j - c_j, C_j) intersected with [g, N - g)|."""
    counts = np.atleast_2d(counts)
    order = np.argsort(values, kind="stable")
    v, c = values[order], counts[:, order]
    n = int(round(c[0].sum()))
    g = n // 4
    upper = np.cumsum(c, axis=1)
    kept = np.clip(np.minimum(upper, n - g) - np.maximum(upper - c, g), 0, None)
    return (kept * v).sum(axis=1) / (n - 2 * g)


@dataclass(frozen=True)
class PairCodes:
    """Two teams' observations coded on their pooled, scenario-major sorted
    distinct values: ``code_x[i]`` / ``code_y[j]`` index ``n_codes`` codes,
    scenario s owns codes [starts[s], starts[s+1]); equal scores share a code."""

    code_x: np.ndarray
    code_y: np.ndarray
    starts: np.ndarray
    n_codes: int
    sizes_x: np.ndarray
    sizes_y: np.ndarray


def pair_codes(values_x: np.ndarray, sizes_x: np.ndarray, values_y: np.ndarray, sizes_y: np.ndarray) -> PairCodes:
    """The ``PairCodes`` of two teams in the flat layout (same scenarios, same order)."""
    sizes_x, sizes_y = np.asarray(sizes_x, dtype=int), np.asarray(sizes_y, dtype=int)
    if len(sizes_x) != len(sizes_y):
        raise ValueError("both teams must have the same scenarios")
    scenario = np.concatenate([np.repeat(np.arange(len(sizes_x)), sizes_x),
                               np.repeat(np.arange(len(sizes_y)), sizes_y)])
    pooled = np.concatenate([np.asarray(values_x, dtype=float), np.asarray(values_y, dtype=float)])
    order = np.lexsort((pooled, scenario))
    s_sorted, v_sorted = scenario[order], pooled[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (s_sorted[1:] != s_sorted[:-1]) | (v_sorted[1:] != v_sorted[:-1])
    code_sorted = np.cumsum(new) - 1
    codes = np.empty(len(order), dtype=np.int64)
    codes[order] = code_sorted
    first_code = code_sorted[np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])]
    nx = int(sizes_x.sum())
    return PairCodes(codes[:nx], codes[nx:], first_code, int(code_sorted[-1]) + 1, sizes_x, sizes_y)


def _histogram(counts: np.ndarray, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """(k, n_codes): per resample row, the multiplicities of the observations
    summed per code (observations sharing a score share a code)."""
    k = counts.shape[0]
    histogram = np.zeros((k, n_codes))
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    first = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    if len(first) == len(codes):  # no ties: a plain scatter
        histogram[:, codes] = counts
    else:
        histogram[:, sorted_codes[first]] = np.add.reduceat(counts[:, order], first, axis=1)
    return histogram


def weighted_probability_of_improvement(counts_x: np.ndarray, counts_y: np.ndarray, codes: PairCodes) -> np.ndarray:
    """``probability_of_improvement`` of the resamples described by
    ``counts_x`` (k, N_x) and ``counts_y`` (k, N_y), in O(k (N_x + N_y)):
    with h_y(c) the y multiplicities per code and B_y(c) the number of y
    draws of the same scenario below code c (the running sum of h_y less the
    scenario's n_y before it), P = mean over scenarios of
    (1/(n_x,s n_y,s)) sum_{x_i in s} count_i (B_y(c_i) + 0.5 h_y(c_i))."""
    counts_x, counts_y = np.atleast_2d(counts_x), np.atleast_2d(counts_y)
    k = counts_x.shape[0]
    hy = _histogram(counts_y, codes.code_y, codes.n_codes)
    scenario_of_code = np.repeat(np.arange(len(codes.starts)), np.diff(np.r_[codes.starts, codes.n_codes]))
    before = stratum_offsets(codes.sizes_y)[scenario_of_code]
    # one flat running sum (fast) less the earlier rows' totals (n_y each): exact small integers
    running = np.cumsum(hy.ravel()).reshape(k, codes.n_codes) - (np.arange(k) * codes.sizes_y.sum())[:, None]
    beaten = running - 0.5 * hy - before  # y draws below c, plus half of those tied at c
    per_scenario = np.add.reduceat(counts_x * beaten[:, codes.code_x], stratum_offsets(codes.sizes_x), axis=1)
    return (per_scenario / (codes.sizes_x * codes.sizes_y)).mean(axis=1)
