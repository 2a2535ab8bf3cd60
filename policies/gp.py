"""A small Gaussian-process regression over control settings, for the bandit's Thompson sampling.

Inputs are controls scaled to units of each control's range; the kernel is squared-exponential with one length
scale; each observation carries its own noise variance (observations carried over from an earlier session count as
noisier). The prior mean is the mean of the observed rewards, so an unexplored setting is "average, uncertain".
Sizes here are small (<= a few hundred observations, ~100 candidates): plain numpy Cholesky is fast enough.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def rbf(a: FloatArray, b: FloatArray, length_scale: float, variance: float, additive: float = 0.0) -> FloatArray:
    """(len(a), len(b)) kernel matrix between points of shape (n, d).

    A mix of a full squared-exponential kernel and an additive one (a sum of one-axis kernels) with weight
    `additive`. The additive part learns each control's effect from few observations (a listener's liking of
    tempo, mode and energy combine roughly independently); the full part keeps interactions possible.
    """
    diff2 = (a[:, None, :] - b[None, :, :]) ** 2  # (n, m, d)
    scaled = -0.5 * diff2 / (length_scale * length_scale)
    full = np.exp(scaled.sum(axis=-1))
    if additive <= 0.0:
        return variance * full
    per_axis = np.exp(scaled).mean(axis=-1)
    return variance * ((1.0 - additive) * full + additive * per_axis)


def posterior(
    x_obs: FloatArray,  # (n, d)
    y_obs: FloatArray,  # (n,)
    noise: FloatArray,  # (n,) noise variance per observation
    x_new: FloatArray,  # (m, d)
    length_scale: float,
    prior_var: float,
    additive: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean (m,) and covariance (m, m) of the reward at x_new."""
    k_new = rbf(x_new, x_new, length_scale, prior_var, additive)  # (m, m)
    if len(y_obs) == 0:
        return np.full(len(x_new), 0.5), k_new
    mean0 = float(np.mean(y_obs))
    k_obs = rbf(x_obs, x_obs, length_scale, prior_var, additive) + np.diag(noise)  # (n, n)
    k_cross = rbf(x_new, x_obs, length_scale, prior_var, additive)  # (m, n)
    chol = np.linalg.cholesky(k_obs + 1e-9 * np.eye(len(y_obs)))
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y_obs - mean0))  # (n,)
    v = np.linalg.solve(chol, k_cross.T)  # (n, m)
    return mean0 + k_cross @ alpha, k_new - v.T @ v


def thompson_sample(mean: FloatArray, cov: FloatArray, rng: np.random.Generator) -> FloatArray:
    """One draw of the reward function at the candidates (m,)."""
    m = len(mean)
    # eigen-decomposition is robust where the covariance is nearly singular (close or repeated candidates)
    values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
    values = np.clip(values, 0.0, None)
    return mean + vectors @ (np.sqrt(values) * rng.standard_normal(m))
