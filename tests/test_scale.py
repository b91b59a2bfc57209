"""The multiplicity form of the bootstrap statistics equals resampling the scores."""

import numpy as np
import pytest

from capprof.reports import stats


@pytest.mark.parametrize("rounding", [None, 1])
def test_weighted_statistics_equal_the_resampled_ones(rounding):
    rng = np.random.default_rng(3)
    sizes_x, sizes_y = np.array([3, 5, 1, 4]), np.array([2, 5, 3, 4])
    x, y = rng.normal(size=sizes_x.sum()), rng.normal(size=sizes_y.sum())
    if rounding is not None:  # ties inside and across teams
        x, y = x.round(rounding), y.round(rounding)
    ix = stats.stratified_indices(sizes_x, 40, np.random.default_rng(1))
    iy = stats.stratified_indices(sizes_y, 40, np.random.default_rng(2))
    cx, cy = stats.multiplicities(ix, len(x)), stats.multiplicities(iy, len(y))
    np.testing.assert_allclose(stats.weighted_scenario_means(cx, x, sizes_x), stats.scenario_means(x[ix], sizes_x))
    np.testing.assert_allclose(stats.weighted_iqm(cx, x), stats.aggregate_iqm(x[ix], sizes_x))
    codes = stats.pair_codes(x, sizes_x, y, sizes_y)
    np.testing.assert_allclose(stats.weighted_probability_of_improvement(cx, cy, codes),
                               stats.probability_of_improvement(x[ix], sizes_x, y[iy], sizes_y))
