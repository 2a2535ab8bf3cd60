"""A small Gaussian-process regression over control settings, for the bandit's Thompson sampling.

Inputs are controls centred and scaled to units of each control's range (see `Kernel`); each observation carries
its own noise variance (observations carried over from an earlier session count as noisier). The prior mean is the
mean of the observed rewards plus an optional shape (`prior_obs`, `prior_new`: e.g. the bandit's preference for the
mapping's calm music), so an unexplored setting is "average (or as the shape says), uncertain".
Sizes here are small (<= a few hundred observations, ~100 candidates): plain numpy Cholesky is fast enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Kernel:
    """The reward's prior covariance between two settings (inputs centred and in units of each control's range).

    variance * [(1 - additive) * full SE + additive * mean of one-axis SEs]  +  quadratic_var * phi(x) . phi(x')

    The additive part learns each control's effect from few observations (a listener's liking of tempo, mode and
    energy combine roughly independently); the full part keeps interactions possible. The quadratic part (a
    Bayesian quadratic surface, phi = x_i, 2 x_i^2, 2 x_i x_j) models a single preferred setting with a smooth
    fall-off, which lets a handful of observations point toward the best setting well before it has been tried.
    """

    length_scale: float
    variance: float
    additive: float = 0.0
    quadratic_var: float = 0.0

    def __call__(self, a: FloatArray, b: FloatArray) -> FloatArray:
        diff2 = (a[:, None, :] - b[None, :, :]) ** 2  # (n, m, d)
        scaled = -0.5 * diff2 / (self.length_scale * self.length_scale)
        full = np.exp(scaled.sum(axis=-1))
        out = self.variance * ((1.0 - self.additive) * full + self.additive * np.exp(scaled).mean(axis=-1))
        if self.quadratic_var > 0.0:
            out = out + self.quadratic_var * (quadratic_features(a) @ quadratic_features(b).T)
        return np.asarray(out)


def quadratic_features(x: FloatArray) -> FloatArray:
    """(n, d + d + d(d-1)/2): linear, square and cross terms."""
    d = x.shape[1]
    cross = [2.0 * x[:, i] * x[:, j] for i in range(d) for j in range(i + 1, d)]
    return np.column_stack([x, 2.0 * x * x, *cross]) if cross else np.column_stack([x, 2.0 * x * x])


def posterior(
    x_obs: FloatArray,  # (n, d)
    y_obs: FloatArray,  # (n,)
    noise: FloatArray,  # (n,) noise variance per observation
    x_new: FloatArray,  # (m, d)
    kernel: Kernel,
    prior_obs: FloatArray | None = None,  # (n,) shape of the prior mean at x_obs (added to the level)
    prior_new: FloatArray | None = None,  # (m,) ... at x_new
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean (m,) and covariance (m, m) of the reward at x_new."""
    k_new = kernel(x_new, x_new)  # (m, m)
    shape_obs = np.zeros(len(y_obs)) if prior_obs is None else prior_obs
    shape_new = np.zeros(len(x_new)) if prior_new is None else prior_new
    if len(y_obs) == 0:
        return 0.5 + shape_new, k_new
    # the level is the mean reward with the shape taken out, so the shape moves the prior but not its level
    level = float(np.mean(y_obs - shape_obs))
    k_obs = kernel(x_obs, x_obs) + np.diag(noise)  # (n, n)
    k_cross = kernel(x_new, x_obs)  # (m, n)
    chol = np.linalg.cholesky(k_obs + 1e-9 * np.eye(len(y_obs)))
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y_obs - level - shape_obs))  # (n,)
    v = np.linalg.solve(chol, k_cross.T)  # (n, m)
    return level + shape_new + k_cross @ alpha, k_new - v.T @ v


def thompson_sample(mean: FloatArray, cov: FloatArray, rng: np.random.Generator) -> FloatArray:
    """One draw of the reward function at the candidates (m,)."""
    m = len(mean)
    # eigen-decomposition is robust where the covariance is nearly singular (close or repeated candidates)
    values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
    values = np.clip(values, 0.0, None)
    return mean + vectors @ (np.sqrt(values) * rng.standard_normal(m))
