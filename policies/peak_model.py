"""The bandit's model of where a listener's preferred music lies: one preferred setting with a smooth fall-off.

Each hypothesis h is a centre mu (unit coordinates, a grid over the bounds box) and a width per axis w: the music x
leads the score toward c + A * exp(-sum(((x - mu) / w)^2) / 2), through the same delayed first-order response as the
bump model (policies/response_model.py, at the (tau, delay) it found). For each h the score is linear in (c, s0, A):
Bayesian linear regression, and the evidence of every hypothesis is computed at once. Settings far from the preference
say where it is not, and the fall-off seen around a few settings points to where it is: a handful of settings locate a
preference far more precisely than their own spacing. Thompson sampling draws a hypothesis from the posterior.

Earlier sessions of the listener add their own evidence for each hypothesis (`set_past`: each at its own dynamics,
with its own c, s0 and A, tempered by a weight below 1); older sessions carried only as the bump model's summaries
inform A through their differences (`carried`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from neuromusic.policies.response_model import Carried, FloatArray, bin_inputs
from scipy.signal import lfilter

# an earlier session for the model: bar times, bars in unit coordinates, bin middles, bin means, which bins count,
# its own (tau, delay) and bin length
PastInput = tuple[FloatArray, FloatArray, FloatArray, FloatArray, np.ndarray, float, float, float]


@dataclass(frozen=True)
class PeakPrior:
    points: int = 11  # centres per axis (the bounds' edges included)
    widths: tuple[float, ...] = (0.2, 0.38)  # fall-off widths considered per axis, in units of each control's range
    amplitude: float = 0.25  # prior mean of A (score units): how much the preferred music raises the score
    amplitude_sd: float = 0.15  # prior standard deviation of A
    nuisance_sd: float = 1.0  # prior standard deviation of the session level c and the initial state s0


class PeakModel:
    def __init__(self, prior: PeakPrior, noise_var: float, bin_s: float) -> None:
        self.prior = prior
        self.noise_var = noise_var
        self.bin_s = bin_s
        g = np.linspace(0.0, 1.0, prior.points)
        w = np.array(prior.widths)
        grid = np.meshgrid(g, g, g, w, w, w, indexing="ij")  # (P, P, P, W, W, W): centre and width per axis
        self.centres = np.stack(grid[:3], axis=-1).reshape(-1, 3)  # (H, 3)
        self.widths = np.stack(grid[3:], axis=-1).reshape(-1, 3)  # (H, 3)
        self.log_post: FloatArray = np.zeros(len(self.centres))
        self.carried: Carried | None = None
        self.past: list[PastInput] = []
        self.past_weight = 1.0
        self._past_evidence: FloatArray | None = None

    def bumps(self, x: FloatArray) -> FloatArray:
        """(n, H): each hypothesis's fall-off at settings x (n, 3); separable per axis, so cheap."""
        g = np.linspace(0.0, 1.0, self.prior.points)
        w = np.array(self.prior.widths)
        a = [np.exp(-0.5 * (x[:, k, None, None] - g[None, :, None]) ** 2 / w[None, None, :] ** 2) for k in range(3)]
        full = (
            a[0][:, :, None, None, :, None, None]
            * a[1][:, None, :, None, None, :, None]
            * a[2][:, None, None, :, None, None, :]
        )  # (n, P, P, P, W, W, W)
        return full.reshape(len(x), -1)

    def fit(
        self,
        bar_t: FloatArray,
        bar_unit: FloatArray,
        bin_t: FloatArray,
        bin_y: FloatArray,
        observed: np.ndarray,
        tau: float,
        delay: float,
    ) -> FloatArray:
        """The log posterior of every hypothesis (normalised), also kept in `log_post`."""
        xtx, xty = self._stats(bar_t, bar_unit, bin_t, bin_y, observed, tau, delay)
        self._add_carried(xtx, xty)
        log_post = self._log_evidence(xtx, xty) + self._past_log_evidence()
        self.log_post = log_post - log_post.max()
        self.log_post -= math.log(np.exp(self.log_post).sum())
        return self.log_post

    def set_past(self, past: list[PastInput], weight: float) -> None:
        """Earlier sessions (bars in unit coordinates), each weighed by its evidence times `weight` (< 1: a listener
        changes between sessions). Each is fitted at its own dynamics, with its own c, s0 and A."""
        self.past = past
        self.past_weight = weight
        self._past_evidence = None

    def _past_log_evidence(self) -> FloatArray | float:
        if not self.past:
            return 0.0
        if self._past_evidence is None:  # each earlier session at its own dynamics: computed once
            self._past_evidence = sum(
                (self._log_evidence(*self._stats(*session)) for session in self.past), np.zeros(len(self.centres))
            )
        return self.past_weight * self._past_evidence

    def _stats(
        self,
        bar_t: FloatArray,
        bar_unit: FloatArray,
        bin_t: FloatArray,
        bin_y: FloatArray,
        observed: np.ndarray,
        tau: float,
        delay: float,
        bin_s: float | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Per hypothesis, the normal equations of (c, s0, A) for one session's binned score (upper triangle)."""
        s2 = self.noise_var
        h = len(self.centres)
        xtx = np.zeros((h, 3, 3))
        xty = np.zeros((h, 3))
        if len(bar_t) and observed.any():
            settings, which = np.unique(np.round(bar_unit, 6), axis=0, return_inverse=True)
            onehot = np.eye(len(settings))[which.reshape(-1)]
            a = math.exp(-(bin_s or self.bin_s) / tau)
            m = lfilter([1.0 - a], [1.0, -a], bin_inputs(bar_t, bar_unit, bin_t, delay, onehot), axis=0)[observed]
            g = self.bumps(settings)
            y = bin_y[observed] - 0.5
            e = np.exp(-bin_t[observed] / tau)
            xtx[:, 0, 0], xtx[:, 0, 1], xtx[:, 1, 1] = len(y), e.sum(), e @ e
            xtx[:, 0, 2], xtx[:, 1, 2] = m.sum(axis=0) @ g, (e @ m) @ g
            xtx[:, 2, 2] = ((m.T @ m) @ g * g).sum(axis=0)
            xty[:, 0], xty[:, 1], xty[:, 2] = y.sum(), e @ y, (y @ m) @ g
            xtx, xty = xtx / s2, xty / s2
        return xtx, xty

    def _log_evidence(self, xtx: FloatArray, xty: FloatArray) -> FloatArray:
        """Each hypothesis's log marginal likelihood (up to a common constant), c, s0 and A integrated out."""
        p = self.prior
        xtx = xtx.copy()
        xtx[:, 1, 0], xtx[:, 2, 0], xtx[:, 2, 1] = xtx[:, 0, 1], xtx[:, 0, 2], xtx[:, 1, 2]
        prec0 = np.array([1.0 / p.nuisance_sd**2, 1.0 / p.nuisance_sd**2, 1.0 / p.amplitude_sd**2])
        mean0 = np.array([0.0, 0.0, p.amplitude])
        precision = xtx + np.diag(prec0)
        b = xty + prec0 * mean0
        mean = np.linalg.solve(precision, b[:, :, None])[:, :, 0]
        _, log_det = np.linalg.slogdet(precision)
        return 0.5 * ((b * mean).sum(axis=1) - log_det)

    def _add_carried(self, xtx: FloatArray, xty: FloatArray) -> None:
        """Earlier sessions' f at some settings: differences within each session inform A for every hypothesis."""
        c = self.carried
        if c is None or len(c.y) == 0:
            return
        g = self.bumps(c.x)  # (n, H)
        for session in np.unique(c.session):
            here = c.session == session
            w = 1.0 / c.var[here]
            gs = g[here] - (w @ g[here]) / w.sum()
            ys = c.y[here] - float(w @ c.y[here]) / w.sum()
            xtx[:, 2, 2] += (w[:, None] * gs * gs).sum(axis=0)
            xty[:, 2] += (w * ys) @ gs

    def draw(self, rng: np.random.Generator, temperature: float = 1.0, within_cell: bool = False) -> FloatArray:
        """A centre drawn from the posterior (flattened by `temperature` > 1 to explore more). With `within_cell`, a
        point drawn uniformly from the drawn centre's grid cell (half a grid step each way, inside the box): the
        posterior of a continuous centre, so a preference between grid points can be played where it lies."""
        weights = np.exp(self.log_post / temperature)
        k = int(rng.choice(len(weights), p=weights / weights.sum()))
        centre = np.asarray(self.centres[k])
        if not within_cell:
            return centre
        half = 0.5 / (self.prior.points - 1)
        return np.clip(centre + rng.uniform(-half, half, size=centre.shape), 0.0, 1.0)

    def best(self) -> FloatArray:
        """The posterior mean of the centre among the hypotheses around the most probable one."""
        weights = np.exp(self.log_post)
        top = self.centres[int(np.argmax(weights))]
        near = np.abs(self.centres - top).max(axis=1) <= 1.5 / (self.prior.points - 1)
        return np.asarray((weights[near] @ self.centres[near]) / weights[near].sum())

    def spread(self) -> float:
        """Posterior standard deviation of the centre (unit coordinates, the axes' root mean square)."""
        weights = np.exp(self.log_post)
        mean = weights @ self.centres
        return float(np.sqrt((weights @ (self.centres - mean) ** 2).mean()))
