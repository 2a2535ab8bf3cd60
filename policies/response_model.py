"""The bandit's model of a listener: which music relaxes them, and how fast and how late the score shows it.

The score is modelled as a first-order, delayed response to the music:

    score(t) = c + s0 * exp(-t / tau) + [first-order filter with time constant tau of f(music(t - delay))](t)

f(x) is the steady-state effect of music x (controls in units of the bounds, 0..1 per axis): the level the score
settles at under x, minus the session's level c. f is a sum of Gaussian bumps (`Features`: a full 3-D grid of bumps
plus one row of bumps per axis, the additive part), so f = features(x) . w with a Gaussian prior on w. For a given
(tau, delay) the score is linear in (c, s0, w): Bayesian linear regression on the score averaged in bins of `bin_s`.
Every bar is credited where its effect shows (delay) and by how much it can have shown yet (tau): a short stay at a
setting says where the score was heading, and the steady state is predicted before it is reached.
(tau, delay) is chosen on a grid by the marginal likelihood (evidence), which learns this listener's dynamics.

Carried observations (`Carried`: f measured at some settings in earlier sessions, with a variance) enter as direct
observations of f plus their own offset, as each session's scores sit on their own baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.signal import lfilter
from threadpoolctl import ThreadpoolController

_THREADS: ThreadpoolController | None = None


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread: these matrices are small (~150 x 150), and a multi-threaded BLAS
    spends far longer waking its threads (hundreds of times longer on a busy machine) than computing."""
    global _THREADS
    if _THREADS is None:
        _THREADS = ThreadpoolController()
    return _THREADS.limit(limits=1, user_api="blas")


FloatArray = npt.NDArray[np.float64]
N_NUISANCE = 3  # c (session level), s0 (initial state), carried offset


@dataclass(frozen=True)
class Features:
    """Gaussian bumps over the unit cube: a full grid (`full_points` per axis) and per-axis rows (`axis_points`),
    scaled so that the prior standard deviation of f is about sqrt(full_var + additive_var) everywhere."""

    full_points: int = 5
    axis_points: int = 6
    full_width: float = 0.22
    axis_width: float = 0.2
    full_var: float = 0.012
    additive_var: float = 0.008

    def centres(self) -> tuple[FloatArray, FloatArray]:
        g = np.linspace(0.0, 1.0, self.full_points)
        full = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
        return full, np.linspace(0.0, 1.0, self.axis_points)

    def __call__(self, x: FloatArray) -> FloatArray:
        """(n, D) features of unit-cube settings x (n, 3)."""
        full, axis = self.centres()
        d2 = ((x[:, None, :] - full[None, :, :]) ** 2).sum(axis=-1)
        parts = [np.exp(-0.5 * d2 / self.full_width**2)]
        for k in range(3):
            parts.append(np.exp(-0.5 * (x[:, k : k + 1] - axis[None, :]) ** 2 / self.axis_width**2))
        return np.concatenate(parts, axis=1)

    def prior_var(self) -> FloatArray:
        """(D,) prior variance of each weight, normalised so f's prior variance averages full_var + additive_var."""
        probe = np.random.default_rng(0).uniform(0.0, 1.0, (256, 3))
        phi = self(probe)
        n_full = self.full_points**3
        full_scale = self.full_var / float((phi[:, :n_full] ** 2).sum(axis=1).mean())
        axis_scale = self.additive_var / float((phi[:, n_full:] ** 2).sum(axis=1).mean())
        return np.concatenate([np.full(n_full, full_scale), np.full(3 * self.axis_points, axis_scale)])


@dataclass(frozen=True)
class Carried:
    """f measured in earlier sessions: settings (n, 3) in unit coordinates, values (n,), variances (n,), and which
    session each came from (n,): each session's values sit on that session's own baseline."""

    x: FloatArray
    y: FloatArray
    var: FloatArray
    session: FloatArray


@dataclass
class Fit:
    """The posterior for one (tau, delay): mean and Cholesky factor of the precision of (c, s0, carried, w)."""

    tau: float
    delay: float
    log_evidence: float
    mean: FloatArray
    chol: FloatArray  # lower-triangular L with precision = L L^T

    def weights_mean(self) -> FloatArray:
        return self.mean[N_NUISANCE:]

    def draw_weights(self, rng: np.random.Generator, spread: float) -> FloatArray:
        """A posterior draw of w with its spread scaled by `spread`."""
        z = rng.standard_normal(len(self.mean))
        theta = self.mean + spread * solve_triangular(self.chol.T, z, lower=False)
        return theta[N_NUISANCE:]

    def weights_cov_factor(self) -> FloatArray:
        """B with cov(w) = B B^T (rows of L^-T for the weights)."""
        inv_t = solve_triangular(self.chol.T, np.eye(len(self.mean)), lower=False)
        return inv_t[N_NUISANCE:]


def bin_inputs(
    bar_t: FloatArray, bar_x: FloatArray, bin_t: FloatArray, delay: float, features: FloatArray
) -> FloatArray:
    """(n_bins, D) features of the music acting at each bin's middle, `delay` seconds after it was played
    (`features` (n_bars, D) are the bars' features; zero before the first bar)."""
    index = np.searchsorted(bar_t, bin_t - delay, side="right") - 1
    out = features[np.clip(index, 0, None)]
    out[index < 0] = 0.0
    return out


class ResponseModel:
    """Fits the score of one session (binned) plus carried observations, for a grid of (tau, delay)."""

    def __init__(
        self,
        features: Features,
        noise_var: float,
        taus: tuple[float, ...],
        delays: tuple[float, ...],
        bin_s: float,
    ) -> None:
        self.features = features
        self.noise_var = noise_var
        self.taus = taus
        self.delays = delays
        self.bin_s = bin_s
        w_var = features.prior_var()
        self.prior_precision = np.concatenate([[1.0, 1.0, 1.0], 1.0 / w_var])
        self.carried_xtx = np.zeros((len(self.prior_precision),) * 2)
        self.carried_xty = np.zeros(len(self.prior_precision))
        self.carried_yty = 0.0

    def set_carried(self, carried: Carried | None) -> None:
        """Earlier sessions' f as observations of differences within each session: each session's offset is taken
        out (weighted centring, the exact answer for an unknown offset with a flat prior)."""
        d = len(self.prior_precision)
        self.carried_xtx, self.carried_xty, self.carried_yty = np.zeros((d, d)), np.zeros(d), 0.0
        if carried is None or len(carried.y) == 0:
            return
        for session in np.unique(carried.session):
            here = carried.session == session
            weights = 1.0 / carried.var[here]
            rows = self.features(carried.x[here])
            rows = rows - (weights @ rows) / weights.sum()
            y = carried.y[here] - float(weights @ carried.y[here]) / weights.sum()
            self.carried_xtx[N_NUISANCE:, N_NUISANCE:] += (rows * weights[:, None]).T @ rows
            self.carried_xty[N_NUISANCE:] += (rows * weights[:, None]).T @ y
            self.carried_yty += float((y**2 * weights).sum())

    def design(
        self, bar_t: FloatArray, bar_features: FloatArray, bin_t: FloatArray, tau: float, delay: float
    ) -> FloatArray:
        """(n_bins, 3 + D) columns: 1 (c), exp(-t/tau) (s0), 0 (carried offset), filtered features."""
        a = math.exp(-self.bin_s / tau)
        inputs = bin_inputs(bar_t, bar_features, bin_t, delay, bar_features)
        filtered = lfilter([1.0 - a], [1.0, -a], inputs, axis=0)
        x = np.zeros((len(bin_t), N_NUISANCE + inputs.shape[1]))
        x[:, 0] = 1.0
        x[:, 1] = np.exp(-bin_t / tau)
        x[:, N_NUISANCE:] = filtered
        return x

    def fit(
        self,
        bar_t: FloatArray,
        bar_features: FloatArray,
        bin_t: FloatArray,
        bin_y: FloatArray,
        observed: npt.NDArray[np.bool_],
        tau: float,
        delay: float,
    ) -> Fit:
        """Posterior and log evidence (up to a constant shared by all (tau, delay)) for one (tau, delay)."""
        x = self.design(bar_t, bar_features, bin_t, tau, delay)[observed]
        y = bin_y[observed] - 0.5  # the session level's prior is centred on a score of 0.5
        xtx = x.T @ x / self.noise_var + self.carried_xtx
        xty = x.T @ y / self.noise_var + self.carried_xty
        yty = float(y @ y) / self.noise_var + self.carried_yty
        precision = xtx + np.diag(self.prior_precision)
        chol = cholesky(precision, lower=True)
        mean = cho_solve((chol, True), xty)
        log_det = 2.0 * float(np.log(np.diag(chol)).sum())
        log_evidence = -0.5 * (yty - float(xty @ mean) + log_det)
        return Fit(tau, delay, log_evidence, mean, chol)
