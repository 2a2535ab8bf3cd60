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
        self.carried = None
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
        dynamics: list[tuple[float, float]],
    ) -> FloatArray:
        """The log posterior of every hypothesis (normalised), also kept in `log_post`, with the listener's
        (tau, delay) integrated out over `dynamics` (equally likely a priori): a preference located at one
        time constant and delay but not at its neighbours is not trusted as much as one found at all of them."""
        played = self._played(bar_unit) if len(bar_t) and observed.any() else None
        total: FloatArray | None = None
        for tau, delay in dynamics:
            xtx, xty = self._stats(bar_t, bar_unit, bin_t, bin_y, observed, tau, delay, played=played)
            self._add_carried(xtx, xty)
            evidence = self._log_evidence(xtx, xty)
            total = evidence if total is None else np.logaddexp(total, evidence)
        assert total is not None, "fit needs at least one (tau, delay)"
        log_post = total + self._past_log_evidence()
        self.log_post = log_post - log_post.max()
        self.log_post -= math.log(np.exp(self.log_post).sum())
        return self.log_post

    def _played(self, bar_unit: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The distinct settings played, each bar's one-hot row among them, and each hypothesis's fall-off there."""
        settings, which = np.unique(np.round(bar_unit, 6), axis=0, return_inverse=True)
        return settings, np.eye(len(settings))[which.reshape(-1)], self.bumps(settings)

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
        played: tuple[FloatArray, FloatArray, FloatArray] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Per hypothesis, the normal equations of (c, s0, A) for one session's binned score (upper triangle)."""
        s2 = self.noise_var
        h = len(self.centres)
        xtx = np.zeros((h, 3, 3))
        xty = np.zeros((h, 3))
        if len(bar_t) and observed.any():
            _, onehot, g = played if played is not None else self._played(bar_unit)
            a = math.exp(-(bin_s or self.bin_s) / tau)
            m = lfilter([1.0 - a], [1.0, -a], bin_inputs(bar_t, bar_unit, bin_t, delay, onehot), axis=0)[observed]
            y = bin_y[observed] - 0.5
            e = np.exp(-bin_t[observed] / tau)
            xtx[:, 0, 0], xtx[:, 0, 1], xtx[:, 1, 1] = len(y), e.sum(), e @ e
            ones_e_y = np.stack([np.ones(len(y)), e, y]) @ m @ g  # (3, H): one product for the three rows
            xtx[:, 0, 2], xtx[:, 1, 2] = ones_e_y[0], ones_e_y[1]
            xtx[:, 2, 2] = ((m.T @ m) @ g * g).sum(axis=0)
            xty[:, 0], xty[:, 1], xty[:, 2] = y.sum(), e @ y, ones_e_y[2]
            xtx, xty = xtx / s2, xty / s2
        return xtx, xty

    def _log_evidence(self, xtx: FloatArray, xty: FloatArray) -> FloatArray:
        """Each hypothesis's log marginal likelihood (up to a common constant), c, s0 and A integrated out.

        The block of the nuisance parameters (c, s0) is the same for every hypothesis; only A's row depends on h.
        So c and s0 are integrated out once (a 2 x 2 system) and A per hypothesis in closed form (block inversion:
        the result equals 0.5 (b' P^-1 b - log det P) of the full 3 x 3 system, without a solve per hypothesis)."""
        p = self.prior
        n = xtx[0, :2, :2].copy()
        n[1, 0] = n[0, 1]
        n += np.eye(2) / p.nuisance_sd**2
        n_inv = np.linalg.inv(n)
        b_n = xty[0, :2]
        u = xtx[:, :2, 2]  # (H, 2): how A's column couples to c and s0
        prec_a = 1.0 / p.amplitude_sd**2
        coupled = (
            u[:, 0] * u[:, 0] * n_inv[0, 0] + 2.0 * u[:, 0] * u[:, 1] * n_inv[0, 1] + u[:, 1] * u[:, 1] * n_inv[1, 1]
        )
        schur = xtx[:, 2, 2] + prec_a - coupled
        r = xty[:, 2] + prec_a * p.amplitude - u @ (n_inv @ b_n)
        shared = float(b_n @ n_inv @ b_n) - float(np.linalg.slogdet(n)[1])
        return 0.5 * (shared + r * r / schur - np.log(schur))

    @property
    def carried(self) -> Carried | None:
        return self._carried

    @carried.setter
    def carried(self, carried: Carried | None) -> None:
        self._carried = carried
        self._carried_terms: tuple[FloatArray, FloatArray] | None = None

    def _add_carried(self, xtx: FloatArray, xty: FloatArray) -> None:
        """Earlier sessions' f at some settings: differences within each session inform A for every hypothesis."""
        c = self.carried
        if c is None or len(c.y) == 0:
            return
        if self._carried_terms is None:  # fixed for the session: computed once
            g = self.bumps(c.x)  # (n, H)
            a, b = np.zeros(len(self.centres)), np.zeros(len(self.centres))
            for session in np.unique(c.session):
                here = c.session == session
                w = 1.0 / c.var[here]
                gs = g[here] - (w @ g[here]) / w.sum()
                ys = c.y[here] - float(w @ c.y[here]) / w.sum()
                a += (w[:, None] * gs * gs).sum(axis=0)
                b += (w * ys) @ gs
            self._carried_terms = (a, b)
        xtx[:, 2, 2] += self._carried_terms[0]
        xty[:, 2] += self._carried_terms[1]

    def draw(self, rng: np.random.Generator, temperature: float = 1.0, within_cell: bool = False) -> FloatArray:
        """A centre drawn from the posterior (flattened by `temperature` > 1 to explore more). With `within_cell`, a
        point drawn uniformly from the drawn centre's grid cell (half a grid step each way, inside the box): the
        posterior of a continuous centre, so a preference between grid points can be played where it lies."""
        weights = np.exp(self.log_post / temperature)
        k = int(rng.choice(len(weights), p=weights / weights.sum()))
        centre = np.asarray(self.centres[k])
        return self._within_cell(centre, rng) if within_cell else centre

    def _within_cell(self, point: FloatArray, rng: np.random.Generator) -> FloatArray:
        """A point drawn uniformly within a grid cell's size around `point` (inside the box)."""
        half = 0.5 / (self.prior.points - 1)
        return np.clip(point + rng.uniform(-half, half, size=point.shape), 0.0, 1.0)

    def near_best(self, rng: np.random.Generator) -> FloatArray:
        """The best estimate, moved by a point drawn within a grid cell's size (inside the box)."""
        return self._within_cell(self.best(), rng)

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
