"""Pure statistics of cross-validated cells, used by ``evaluate``: mean
squared error, cluster-robust standard errors and t intervals, paired
per-cell differences against a reference model, interval coverage and width,
and the per-repeat mean interval. Each docstring gives its formula.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def mse(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Mean squared error: (1/n) sum_i (predicted_i - observed_i)^2."""
    predicted, observed = np.asarray(predicted, float), np.asarray(observed, float)
    return float(np.mean((predicted - observed) ** 2))


def clustered_se(values: np.ndarray, clusters: np.ndarray) -> float:
    """Standard error of the mean of ``values`` whose errors are correlated
    within clusters (cells of one scenario share its difficulty):

        m = (1/n) sum_i v_i,
        SE = (1/n) sqrt( G/(G-1) * sum_g ( sum_{i in g} (v_i - m) )^2 ),

    the cluster-robust (CR1) sandwich for a mean over n values in G clusters
    (Cameron & Miller 2015). With one value per cluster it is the usual
    sd/sqrt(n) up to the factor n/(n-1) vs (n-1) in the denominator. NaN
    with fewer than two clusters."""
    values = np.asarray(values, float)
    clusters = np.asarray(clusters)
    n = len(values)
    if n == 0:
        return float("nan")
    codes, _ = pd.factorize(clusters)
    g = int(codes.max()) + 1
    if g < 2:
        return float("nan")
    residual_sums = np.bincount(codes, weights=values - values.mean(), minlength=g)
    return float(np.sqrt(g / (g - 1) * np.sum(residual_sums ** 2)) / n)


def clustered_interval(values: np.ndarray, clusters: np.ndarray, level: float = 0.95
                       ) -> tuple[float, float, float, float, int]:
    """(mean, se, low, high, G): the mean with a Student-t interval on G - 1
    degrees of freedom, m +- t_{(1+level)/2, G-1} * clustered_se."""
    from scipy import stats

    values = np.asarray(values, float)
    g = len(pd.unique(np.asarray(clusters)))
    m = float(values.mean()) if len(values) else float("nan")
    se = clustered_se(values, clusters)
    if not np.isfinite(se):
        return m, se, float("nan"), float("nan"), g
    half = float(stats.t.ppf((1 + level) / 2, g - 1) * se)
    return m, se, m - half, m + half, g


def paired_difference(errors: np.ndarray, reference_errors: np.ndarray, clusters: np.ndarray,
                      level: float = 0.95) -> tuple[float, float, float, float, int]:
    """The paired per-cell difference d_i = e_i - r_i between a model's and
    the reference's squared errors on the same cells: mean, clustered SE and
    t interval (``clustered_interval`` of d). Negative: the model is better."""
    d = np.asarray(errors, float) - np.asarray(reference_errors, float)
    return clustered_interval(d, clusters, level)


def coverage(observed: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of observed values inside their interval: (1/n) sum_i 1[low_i <= y_i <= high_i];
    NaN when no interval is given."""
    observed, low, high = (np.asarray(a, float) for a in (observed, low, high))
    valid = np.isfinite(low) & np.isfinite(high)
    if not valid.any():
        return float("nan")
    return float(np.mean((low[valid] <= observed[valid]) & (observed[valid] <= high[valid])))


def mean_width(low: np.ndarray, high: np.ndarray) -> float:
    """Mean interval width (1/n) sum_i (high_i - low_i); NaN without intervals."""
    width = np.asarray(high, float) - np.asarray(low, float)
    width = width[np.isfinite(width)]
    return float(width.mean()) if len(width) else float("nan")


def mean_interval(values: np.ndarray, level: float = 0.95, lower: float | None = None
                  ) -> tuple[float, float, float]:
    """Mean and Student-t interval for the mean of independent values:
    m +- t_{(1+level)/2, R-1} * sd / sqrt(R), sd with R-1 in the denominator.
    With ``lower`` (the smallest value the mean can take, 0 for an MSE) the
    interval is intersected with [lower, inf). NaN bounds when R < 2. (Kept
    for tables that only have per-repeat values; cross-validation repeats
    share training data, so ``clustered_interval`` on cells is the honest
    interval for ``evaluate``.)"""
    from scipy import stats

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(values.mean())
    if len(values) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    low = m - half if lower is None else max(lower, m - half)
    return m, low, m + half
