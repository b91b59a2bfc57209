"""The measurement layout's likelihood maths, in numpy and pytensor.

The success probability (a product of sigmoids over a scenario's demanded
levels), the censored Beta of an observed score (the squeeze onto
[e, 1 - e], the observed score's mean and one simulated draw of it) and
``log_beta_cdf``, the log regularised incomplete beta function by 16-point
Gauss-Legendre quadrature that scores the floor and ceiling cells. The
model built from them is ``capprof.profiling.layout`` (docs/layout.md).
"""

from __future__ import annotations

import numpy as np


# 16-point Gauss-Legendre nodes and weights on [0, 1] for the incomplete beta.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
GL_NODES = (_GL_NODES + 1.0) / 2.0
GL_WEIGHTS = _GL_WEIGHTS / 2.0
# mu is kept this far from 0 and 1 so that the Beta parameters stay positive
MU_FLOOR = 1e-6


def squeeze(y: np.ndarray, eps: float) -> np.ndarray:
    """Map scores in [0, 1] into [e, 1 - e]: y' = e + (1 - 2 e) y. The
    censored likelihood treats y' = e as "at or below the floor" and
    y' = 1 - e as "at or above the ceiling"."""
    return eps + (1.0 - 2.0 * eps) * np.clip(y, 0.0, 1.0)


def unsqueeze(y: np.ndarray, eps: float) -> np.ndarray:
    """Inverse of ``squeeze``: y = (y' - eps) / (1 - 2 eps)."""
    return (np.asarray(y) - eps) / (1.0 - 2.0 * eps)


def success_probability(theta: np.ndarray, index: np.ndarray, level: np.ndarray, scale=1.0,
                        shift=None) -> np.ndarray:
    """p = prod_{slots with level > 0} sigmoid(scale (theta[index] - level - shift)).

    ``theta`` (..., n_demands) for one team (any leading draw dimensions);
    ``index``/``level`` (n_scenarios, width); ``scale`` a number or (...)
    array of slopes; ``shift`` None or (..., n_scenarios) scenario residual
    difficulties. Returns (..., n_scenarios), in numpy so that predictions
    for new scenarios need no recompilation."""
    gathered = theta[..., index]  # (..., n_scenarios, width)
    scale = np.asarray(scale, dtype=float)
    if scale.ndim:
        scale = scale[..., None, None]
    diff = gathered - level
    if shift is not None:
        diff = diff - np.asarray(shift)[..., None]
    log_factor = -np.logaddexp(0.0, -scale * diff)  # log sigmoid
    return np.exp(np.where(level > 0, log_factor, 0.0).sum(axis=-1))


def expected_score(theta: np.ndarray, eps: np.ndarray, index: np.ndarray, level: np.ndarray,
                   scale: float, chance: float = 0.0, shift=None) -> np.ndarray:
    """Mean of the latent score y*: eps * chance + (1 - eps) * p (the noise
    component scores ``chance``, 0 = the floor). ``eps`` is (...) like
    ``theta``'s leading dimensions; see ``success_probability``."""
    eps = np.asarray(eps)[..., None]
    return eps * chance + (1.0 - eps) * success_probability(theta, index, level, scale, shift)


def expected_observed_score(p: np.ndarray, phi: np.ndarray, eps: np.ndarray, censor: float) -> np.ndarray:
    """E[y] for y = 0 with probability eps, else clip((y* - e) / (1 - 2 e), 0, 1)
    with y* ~ Beta(p phi, (1 - p) phi): the mean of the observed (clipped)
    score, which is what a prediction of a min-max score should be. Uses
    E[y* 1{y* < x}] = p I_x(a + 1, b). Arrays broadcast together."""
    from scipy.special import betainc

    p = np.clip(p, MU_FLOOR, 1 - MU_FLOOR)
    a, b = p * phi, (1.0 - p) * phi
    lo, hi = censor, 1.0 - censor
    inside_mass = betainc(a, b, hi) - betainc(a, b, lo)
    inside_first = p * (betainc(a + 1.0, b, hi) - betainc(a + 1.0, b, lo))
    above = 1.0 - betainc(a, b, hi)
    clipped = (inside_first - lo * inside_mass) / (1.0 - 2.0 * censor) + above
    return (1.0 - np.asarray(eps)) * clipped


def simulate_observed(p: np.ndarray, phi: np.ndarray, eps: np.ndarray, censor: float,
                      rng: np.random.Generator) -> np.ndarray:
    """One draw of the observed score per element: 0 with probability eps
    (chance), else the clipped, unsqueezed Beta draw. The generative model
    of ``build_layout_model`` (and of ``capprof.profiling.simulate``)."""
    p = np.clip(p, MU_FLOOR, 1 - MU_FLOOR)
    p, phi, eps = np.broadcast_arrays(p, phi, eps)
    latent = rng.beta(p * phi, (1.0 - p) * phi)
    y = np.clip(unsqueeze(latent, censor), 0.0, 1.0)
    return np.where(rng.random(p.shape) < eps, 0.0, y)


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n``-point Gauss-Legendre nodes and weights on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(int(n))
    return (nodes + 1.0) / 2.0, weights / 2.0


def log_beta_cdf(x: float, a, b, nodes: int = 16):
    """log I_x(a, b), the log of the regularised incomplete beta function, for
    pytensor tensors ``a``, ``b`` (any shape) and a constant x in (0, 1).

    With t = x u^(1/a): I_x(a, b) = x^a / (a B(a, b)) * int_0^1 (1 - x u^(1/a))^(b-1) du;
    the integrand is smooth (the t^(a-1) singularity is gone), so 16-point
    Gauss-Legendre quadrature is accurate for the small x (the censoring
    point) used here, and it compiles (with gradients) under nutpie, unlike
    ``pm.Censored``'s Beta CDF. ``nodes``: the quadrature's points (fewer
    is cheaper; tests/test_profiling_layout.py bounds the error)."""
    import pytensor.tensor as pt

    points, point_weights = (GL_NODES, GL_WEIGHTS) if nodes == 16 else gauss_legendre(nodes)
    log_nodes = pt.as_tensor_variable(np.log(points))
    weights = pt.as_tensor_variable(np.log(point_weights))
    a_, b_ = a[..., None], b[..., None]
    inner = (b_ - 1.0) * pt.log1p(-x * pt.exp(log_nodes / a_))
    log_integral = pt.logsumexp(weights + inner, axis=-1)
    log_beta = pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)
    return a * np.log(x) - pt.log(a) - log_beta + log_integral


CELL_PARTS = ("inner", "floor", "ceiling")
# a score this close to 0 or 1 is at the floor or the ceiling
AT_BOUND = 1e-9


def cell_parts(score: np.ndarray) -> dict:
    """Boolean masks of the cells at the ``floor`` (score 0), at the
    ``ceiling`` (score 1) and ``inner`` (in between), for scores on the 0..1
    scale (any shape): the parts ``cell_log_density`` scores differently."""
    score = np.asarray(score)
    floor, ceiling = score <= AT_BOUND, score >= 1.0 - AT_BOUND
    return {"inner": ~(floor | ceiling), "floor": floor, "ceiling": ceiling}


def beta_shape(p, phi):
    """The Beta parameters (a, b) = (mu phi, (1 - mu) phi) of a success
    probability ``p`` and precision ``phi``, with mu = MU_FLOOR +
    (1 - 2 MU_FLOOR) p kept off 0 and 1 so both stay positive (numpy arrays
    or pytensor tensors)."""
    mu = MU_FLOOR + (1.0 - 2.0 * MU_FLOOR) * p
    return mu * phi, (1.0 - mu) * phi


def cell_log_density(part: str, y, a, b, eps, censor: float, quadrature: int = 16):
    """log p(y) of cells of one ``part`` (pytensor; elementwise over ``y``,
    ``a``, ``b``), the censored Beta with a chance share ``eps`` at the floor
    (None: no chance component), docs/layout.md:

    * ``inner`` (0 < score < 1): log(1 - eps) + log Beta(y' | a, b), y' the squeezed score;
    * ``floor`` (score 0): log(eps + (1 - eps) I_e(a, b));
    * ``ceiling`` (score 1): log(1 - eps) + log I_e(b, a) = log P(y* >= 1 - e).

    The model sums it over its cells (``layout.build_layout_model``) and
    the pointwise log-likelihood for LOO evaluates it per draw and cell
    (``checks.pointwise_log_likelihood``): one definition of the density."""
    import pytensor.tensor as pt

    log_keep = pt.log1p(-eps) if eps is not None else 0.0
    if part == "inner":
        log_beta = pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)
        return log_keep + (a - 1.0) * pt.log(y) + (b - 1.0) * pt.log1p(-y) - log_beta
    if part == "floor":
        log_cdf = log_beta_cdf(censor, a, b, quadrature)
        return log_cdf if eps is None else pt.logaddexp(pt.log(eps), log_keep + log_cdf)
    if part == "ceiling":
        return log_keep + log_beta_cdf(censor, b, a, quadrature)
    raise ValueError(f"unknown cell part {part!r}; one of {CELL_PARTS}")
