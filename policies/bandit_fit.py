"""The bandit's view of one listener: the response model fitted to this session's record plus what earlier sessions
carried, the listener's delay and time constant found by evidence, and what the fit says about settings.

Settings are handled in units of the bounds (0..1 per axis); `unit` and `controls` convert.
"""

from __future__ import annotations

import math

import numpy as np
from neuromusic.models.core.controls import CONTROLS
from neuromusic.models.core.messages import Controls
from neuromusic.policies.bandit_memory import Observation
from neuromusic.policies.bandit_past import PastSession
from neuromusic.policies.bandit_record import SessionRecord
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.bounds import clamp_controls
from neuromusic.policies.config import BanditConfig
from neuromusic.policies.peak_model import PeakModel, PeakPrior
from neuromusic.policies.response_model import Carried, Features, Fit, FloatArray, ResponseModel, one_blas_thread


def tau_grid(low: float, high: float) -> tuple[float, ...]:
    n = max(2, round(math.log(high / low) / math.log(1.4)) + 1)
    return tuple(float(v) for v in np.geomspace(low, high, n))


def delay_grid(low: float, high: float) -> tuple[float, ...]:
    n = max(2, round((high - low) / 3.0) + 1)
    return tuple(float(v) for v in np.linspace(low, high, n))


def grid_neighbours(
    taus: tuple[float, ...], delays: tuple[float, ...], tau: float, delay: float
) -> list[tuple[float, float]]:
    """The grid's (tau, delay) nearest these and their neighbours (up to 3 x 3)."""
    i = int(np.argmin([abs(math.log(a / tau)) for a in taus]))
    j = int(np.argmin([abs(d - delay) for d in delays]))
    return [
        (taus[a], delays[d])
        for a in range(max(0, i - 1), min(len(taus), i + 2))
        for d in range(max(0, j - 1), min(len(delays), j + 2))
    ]


def as_rows(settings: list[Controls]) -> FloatArray:
    return np.array([c.values() for c in settings], dtype=float).reshape(-1, len(CONTROLS))


class ListenerModel:
    """Fits the response model; the (tau, delay) grid is searched with a coarser model of f (a quarter of the cost)."""

    def __init__(self, cfg: BanditConfig, bounds: ControlBounds) -> None:
        self.cfg = cfg
        self.bounds = bounds
        self.features = Features(full_width=cfg.bump_width, full_var=cfg.prior_var, additive_var=cfg.additive_var)
        taus, delays = tau_grid(cfg.min_tau_s, cfg.max_tau_s), delay_grid(cfg.lag_s, cfg.max_delay_s)
        self.model = ResponseModel(self.features, cfg.noise_var, taus, delays, cfg.bin_s)
        self.search_features = Features(3, 4, 0.3, 0.25, cfg.prior_var, cfg.additive_var)
        self.search_model = ResponseModel(self.search_features, cfg.noise_var, taus, delays, cfg.bin_s)
        self.dynamics: tuple[float, float] | None = None  # (tau, delay) carried or fitted
        self.fit: Fit | None = None
        self.peak = PeakModel(PeakPrior(), cfg.noise_var, cfg.bin_s)
        self._carried: tuple[list[Observation], list[int]] = ([], [])
        self._past: list[PastSession] = []
        self.set_bounds(bounds)

    def set_bounds(self, bounds: ControlBounds) -> None:
        self.bounds = bounds
        b = bounds
        self._low = np.array([b.range(spec.name)[0] for spec in CONTROLS])
        self._span = np.maximum(np.array([b.range(spec.name)[1] for spec in CONTROLS]) - self._low, 1e-9)
        g = np.linspace(0.0, 1.0, self.cfg.candidate_points)
        unit = np.stack(np.meshgrid(*[g] * len(CONTROLS), indexing="ij"), axis=-1).reshape(-1, len(CONTROLS))
        self._grid = (unit, self.features(unit))
        none = np.zeros((0, len(CONTROLS)))
        self._cache = (self.features(none), self.search_features(none))  # features of the bars played
        self._set_carried()
        self._set_past()

    # -- units -------------------------------------------------------------------------------------------------
    def unit(self, controls: FloatArray) -> FloatArray:
        """Controls (n, one column per control) in units of the bounds (0..1 per axis)."""
        return np.clip((controls - self._low) / self._span, 0.0, 1.0)

    def controls(self, unit: FloatArray) -> Controls:
        return clamp_controls(self.bounds, *(self._low + unit * self._span))

    def unit_steps(self) -> FloatArray:
        """Each axis's largest change per bar, in units of its range."""
        b = self.bounds
        return np.array([b.step(spec.name) for spec in CONTROLS]) / self._span

    # -- what earlier sessions carried -------------------------------------------------------------------------
    def carry(self, observations: list[Observation], sessions: list[int], past: list[PastSession]) -> None:
        """What earlier sessions left: f at the settings they chose (`observations`, of session `sessions`) and the
        newest of them as played and heard (`past`, which the preference model uses instead of their summaries)."""
        self._carried = (observations, sessions)
        self._past = past
        self._set_carried()
        self._set_past()

    def _set_carried(self, on: bool = True) -> None:
        observations, sessions = self._carried
        carried = None
        if on and observations:
            rows = np.array(observations, dtype=float)
            n = len(CONTROLS)  # a row: the setting, then f and its variance
            carried = Carried(self.unit(rows[:, :n]), rows[:, n], rows[:, n + 1], np.array(sessions, dtype=float))
        self.model.set_carried(carried)
        self.search_model.set_carried(carried)
        self.peak.carried = self._not_in_past(carried)

    def _not_in_past(self, carried: Carried | None) -> Carried | None:
        """The summaries of the sessions older than the ones carried as played: each session counts once. The
        newest summarised sessions are the ones `past` holds."""
        covered = sum(p.summarised for p in self._past)
        if carried is None or covered == 0:
            return carried
        newest = np.unique(carried.session)[-covered:]
        keep = ~np.isin(carried.session, newest)
        return Carried(carried.x[keep], carried.y[keep], carried.var[keep], carried.session[keep])

    def _set_past(self) -> None:
        self.peak.set_past(
            [(p.bar_t, self.unit(p.bar_x), p.bin_t, p.bin_y, p.observed, p.tau, p.delay, p.bin_s) for p in self._past],
            1.0 / self.cfg.carry_noise_factor,
        )

    # -- fitting -----------------------------------------------------------------------------------------------
    def _data(self, record: SessionRecord) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, np.ndarray]:
        done = len(self._cache[0])
        if done < len(record.bar_x):  # features of each bar computed once
            unit = self.unit(np.array(record.bar_x[done:], dtype=float).reshape(-1, len(CONTROLS)))
            self._cache = (
                np.vstack([self._cache[0], self.features(unit)]),
                np.vstack([self._cache[1], self.search_features(unit)]),
            )
        return (np.array(record.bar_t, dtype=float), self._cache[0], *record.binned())

    def refit(self, record: SessionRecord, full_search: bool) -> Fit:
        """Fit the model; search the (tau, delay) grid by evidence (all of it with `full_search` or before any
        estimate, else the neighbours of the current estimate)."""
        data = self._data(record)
        taus, delays = self.model.taus, self.model.delays
        if self.dynamics is None or full_search:
            pairs = [(a, d) for a in taus for d in delays]
        else:
            pairs = self.neighbours(*self.dynamics)
        if not data[4].any():  # nothing measured yet: the prior (and what was carried), at the carried dynamics
            pairs = pairs[:1] if self.dynamics is None else [self.dynamics]
        with one_blas_thread():
            if len(pairs) > 1:
                coarse = (data[0], self._cache[1], *data[2:])
                chosen = max((self.search_model.fit(*coarse, a, d) for a, d in pairs), key=lambda f: f.log_evidence)
                pairs = [(chosen.tau, chosen.delay)]
            best = self.model.fit(*data, *pairs[0])
        if data[4].any():
            self.dynamics = (best.tau, best.delay)
        self.fit = best
        return best

    def neighbours(self, tau: float, delay: float) -> list[tuple[float, float]]:
        return grid_neighbours(self.model.taus, self.model.delays, tau, delay)

    def current_fit(self, record: SessionRecord) -> Fit:
        return self.fit if self.fit is not None else self.refit(record, full_search=False)

    # -- what the fit says -------------------------------------------------------------------------------------
    def candidates(self, fit: Fit) -> tuple[FloatArray, FloatArray]:
        """The grid and, with `refine`, the settings half a grid step around the best one by the posterior mean."""
        unit, phi = self._grid
        if not self.cfg.refine:
            return unit, phi
        centre = unit[int(np.argmax(phi @ fit.weights_mean()))]
        half = 0.5 / max(1, self.cfg.candidate_points - 1)
        around = np.meshgrid(*[np.array([-1.0, 0.0, 1.0])] * len(CONTROLS), indexing="ij")
        offsets = np.stack(around, axis=-1).reshape(-1, len(CONTROLS))
        local = np.clip(centre + offsets * half, 0.0, 1.0)
        return np.vstack([unit, local]), np.vstack([phi, self.features(local)])

    def best_setting(self, fit: Fit) -> Controls:
        """The candidate with the highest posterior mean."""
        unit, phi = self.candidates(fit)
        return self.controls(unit[int(np.argmax(phi @ fit.weights_mean()))])

    def best_of(self, fit: Fit, settings: list[Controls]) -> Controls:
        """The one of `settings` with the highest posterior mean."""
        return settings[int(np.argmax(self.features(self.unit(as_rows(settings))) @ fit.weights_mean()))]

    def predicted(self, fit: Fit, controls: Controls) -> tuple[float, float]:
        """Posterior mean and standard deviation of f at these controls."""
        phi = self.features(self.unit(as_rows([controls])))[0]
        spread = fit.weights_cov_factor().T @ phi
        return float(phi @ fit.weights_mean()), float(np.sqrt(spread @ spread))

    def summary(self, record: SessionRecord, chosen: list[Controls]) -> list[Observation]:
        """f at the settings chosen this session, from this session's scores alone (what earlier sessions said is
        kept as it was, not counted twice), where the scores narrowed the prior."""
        settings = sorted({a.values() for a in chosen})
        if len(settings) < 2 or not record.bins:
            return []  # one setting says nothing about differences, and differences are what carries over
        self._set_carried(on=False)
        try:
            data = self._data(record)
            if not data[4].any():
                return []
            tau, delay = self.dynamics if self.dynamics is not None else (self.cfg.min_tau_s, self.cfg.lag_s)
            with one_blas_thread():
                fit = self.model.fit(*data, tau, delay)
        finally:
            self._set_carried()
        phi = self.features(self.unit(np.array(settings, dtype=float)))
        mean = phi @ fit.weights_mean()
        # the variance of each value relative to the others (a session's common level is not carried)
        centred = fit.weights_cov_factor().T @ (phi - phi.mean(axis=0)).T
        var = np.maximum((centred**2).sum(axis=0), 1e-5)
        prior = (phi**2 * self.features.prior_var()).sum(axis=1)
        return [(*s, float(m), float(v)) for s, m, v, p in zip(settings, mean, var, prior, strict=True) if v < 0.6 * p]

    # -- choosing ----------------------------------------------------------------------------------------------
    def draw_peak(self, record: SessionRecord, fit: Fit, rng: np.random.Generator) -> Controls:
        """Thompson sampling over the single-preference model, the dynamics integrated out around the ones the bump
        model found (its grid neighbours). Once earlier sessions have been carried the posterior sits in a few grid
        cells, and the grid's spacing (a tenth of each range, half the narrowest fall-off) matters: the draw is then
        refined within its cell. A session without a profile plays the best estimate instead (`fresh_choice`: "best",
        or "auto" with a slow listener), a point drawn within its cell: the music keeps moving a little."""
        bar_unit = self.unit(np.array(record.bar_x, dtype=float).reshape(-1, len(CONTROLS)))
        dynamics = self.neighbours(fit.tau, fit.delay)
        self.peak.fit(np.array(record.bar_t, dtype=float), bar_unit, *record.binned(), dynamics)
        choice, fresh = self.cfg.fresh_choice, not self._carried[0] and not self._past
        # a first session with a slow listener cannot afford draws: each restarts a response that takes minutes to build
        if fresh and (choice == "best" or (choice == "auto" and fit.tau > self.cfg.slow_tau_s)):
            return self.controls(self.peak.near_best(rng))
        return self.controls(self.peak.draw(rng, within_cell=bool(self._carried[0])))

    def draw_bumps(self, fit: Fit, rng: np.random.Generator, spread: float, arm: Controls | None) -> Controls:
        """Thompson sampling over the bump model (its posterior spread scaled by `spread`) among the candidates;
        moving costs ramp bars, so `arm` is kept unless the draw favours another setting by `switch_margin`."""
        unit, phi = self.candidates(fit)
        weights = fit.draw_weights(rng, spread)
        draw = phi @ weights
        best = int(np.argmax(draw))
        if arm is not None:
            here = float((self.features(self.unit(as_rows([arm]))) @ weights)[0])
            if draw[best] - here < self.cfg.switch_margin:
                return arm
        return self.controls(unit[best])
