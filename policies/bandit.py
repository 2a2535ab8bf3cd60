"""`bandit`: learns, while it plays, which music relaxes this listener, wherever in the bounds that music lies.

1. Opening: a space-filling tour of the whole bounds box (`opening_points` settings: the mapping's calm music, then
   the farthest-apart settings of a 3 x 3 x 3 lattice inside the box, in the order that needs the fewest ramp bars).
2. Model (policies/response_model.py): the score is a delayed first-order response to the music; f(x), the level
   music x leads to, is a sum of Gaussian bumps with a Gaussian prior. The listener's delay and time constant are
   chosen online by the evidence, so each bar is credited where its effect shows and a setting's steady state is
   predicted before the score reaches it.
3. Choice: Thompson sampling over a dense grid of settings (plus, with `refine`, settings around the best one): one
   draw of f from the posterior, its best setting is played for `dwell_s` after the music has arrived. The draw's
   spread shrinks as choices accumulate; another setting must look better by `switch_margin` to move.
4. Comfort: if the score stays more than `comfort_drop` below the session's running median for `comfort_s`, the
   bandit returns to the best setting it has played (by the posterior mean).
5. Memory: `state_dict()` keeps what each session measured (f at the settings it chose, with a variance) and the
   listener's delay and time constant; the next session starts from them (noise times `carry_noise_factor`) and
   skips the opening.

The guard still bounds every bar's change, applies the hysteresis and holds the last controls while stale.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np
from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.bounds import ControlGuard, clamp_controls
from neuromusic.policies.config import PolicyConfig
from neuromusic.policies.opening import opening_tour, run_lengths, sessions_of
from neuromusic.policies.response_model import Carried, Features, Fit, FloatArray, ResponseModel, one_blas_thread

STATE_VERSION = 2
Observation = tuple[float, float, float, float, float]  # tempo, valence, energy, f, variance
MIN_BIN_SCORES = 2  # scores a bin needs to count
FULL_SEARCH_EVERY = 4  # choices between searches of the whole (tau, delay) grid (else the neighbours only)


def tau_grid(low: float, high: float) -> tuple[float, ...]:
    n = max(2, round(math.log(high / low) / math.log(1.4)) + 1)
    return tuple(float(v) for v in np.geomspace(low, high, n))


def delay_grid(low: float, high: float) -> tuple[float, ...]:
    n = max(2, round((high - low) / 3.0) + 1)
    return tuple(float(v) for v in np.linspace(low, high, n))


class BanditPolicy:
    name = "bandit"

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.cfg = cfg = config.bandit
        self.guard = ControlGuard(config.bounds, config.guard)
        self.rng = np.random.default_rng(cfg.seed)
        self.features = Features(full_width=cfg.bump_width, full_var=cfg.prior_var, additive_var=cfg.additive_var)
        self.model = ResponseModel(
            self.features,
            cfg.noise_var,
            tau_grid(cfg.min_tau_s, cfg.max_tau_s),
            delay_grid(cfg.lag_s, cfg.max_delay_s),
            cfg.bin_s,
        )
        self.search_features = Features(3, 4, 0.3, 0.25, cfg.prior_var, cfg.additive_var)
        self.search_model = ResponseModel(
            self.search_features, cfg.noise_var, self.model.taus, self.model.delays, cfg.bin_s
        )
        self.observations: list[Observation] = []  # carried from earlier sessions
        self._sessions: list[int] = []  # which earlier session each observation came from
        self._dynamics: tuple[float, float] | None = None  # (tau, delay) carried or fitted
        self.fit: Fit | None = None
        self._t0: float | None = None
        self._bar_t: list[float] = []
        self._bar_x: list[tuple[float, float, float]] = []
        self._bins: dict[int, list[float]] = {}  # bin index -> [sum, count]
        self._medians: list[float] = []  # bin means so far, for the comfort guard's running median
        self._below_since: float | None = None
        self._comfort_due = False
        self._arm: Controls | None = None
        self._arrived_t: float | None = None
        self._ramp_bars = 0
        self._chosen: list[Controls] = []
        self._opening = self._opening_plan()
        self._in_opening = False
        self.choices = 0
        self.comfort_returns = 0
        self._grid = self._candidate_grid()
        self._cache = self._empty_cache()

    # -- Policy protocol ---------------------------------------------------------------------------------------
    def observe(self, score: Score) -> None:
        if not self.guard.note_score(score) or self._t0 is None:
            return
        assert score.value is not None
        k = int((score.t - self._t0) // self.cfg.bin_s)
        cell = self._bins.setdefault(k, [0.0, 0.0])
        first = cell[1] == 0
        cell[0] += score.value
        cell[1] += 1
        if first and k - 1 in self._bins:
            self._comfort_check(k - 1, score.t)

    def next_controls(self, bar_index: int, t: float) -> Controls:
        if self._t0 is None:
            self._t0 = t
        if not self.guard.fresh(t):
            return self._play(t, self.guard.hold())
        if self._comfort_due:
            self._comfort_due = False
            self.comfort_returns += 1
            self._set_arm(self.best_played())
        if self._arm is None:
            self._choose()
        assert self._arm is not None
        if self._arrived_t is None:
            if self._at_arm() or self._ramp_bars > 32:
                self._arrived_t = t
            self._ramp_bars += 1
        elif t - self._arrived_t >= (self.cfg.opening_dwell_s if self._in_opening else self.cfg.dwell_s):
            self._choose()
            if self._at_arm():  # chose to stay: the dwell starts again at once
                self._arrived_t = t
        arm = self._arm
        return self._play(t, self.guard.apply(arm.tempo, arm.valence, arm.energy))

    def set_bounds(self, bounds: ControlBounds) -> None:
        if bounds == self.guard.bounds:
            return  # the player calls this on every control change (pause, target, ...): nothing to redo
        self.guard.set_bounds(bounds)
        self._grid = self._candidate_grid()
        self._cache = self._empty_cache()
        self._arm = None  # choose again inside the new bounds
        self._arrived_t = None

    def continue_from(self, controls: Controls) -> None:
        """Start from the controls being played (after a policy switch or an operator override); choose again."""
        self.guard.continue_from(controls)
        self._arm = None
        self._arrived_t = None

    def set_target(self, target: float) -> None:
        """The bandit maximises relaxation; it has no target."""

    def state_dict(self) -> dict[str, Any]:
        fresh = self._session_summary()
        session = max(self._sessions, default=-1) + 1
        keep = self.cfg.max_observations
        rows = (self.observations + fresh)[-keep:]
        sessions = (self._sessions + [session] * len(fresh))[-keep:]
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "observations": [list(o) for o in rows],
            "sessions": run_lengths(sessions),
        }
        if self._dynamics is not None:
            state["tau_s"], state["delay_s"] = self._dynamics
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("version") not in (1, STATE_VERSION):
            raise ValueError(f"bandit state must be a dict with version 1 or {STATE_VERSION}")
        loaded: list[Observation] = []
        for row in state.get("observations", []):
            if not isinstance(row, list | tuple) or len(row) != 5:
                raise ValueError("each bandit observation must be [tempo, valence, energy, value, variance]")
            values = [float(v) for v in row]
            if not all(math.isfinite(v) for v in values) or values[4] <= 0:
                raise ValueError("bandit observations must be finite with a positive variance")
            tempo, valence, energy, value, var = values
            loaded.append((tempo, valence, energy, value, var * self.cfg.carry_noise_factor))
        tau, delay = state.get("tau_s"), state.get("delay_s")
        if isinstance(tau, int | float) and isinstance(delay, int | float) and tau > 0 and delay >= 0:
            self._dynamics = (float(tau), float(delay))
        self._sessions = sessions_of(state.get("sessions"), len(loaded))[-self.cfg.max_observations :]
        self.observations = loaded[-self.cfg.max_observations :]
        self._set_carried()
        if self.observations:
            self._opening = []  # what earlier sessions learned replaces the tour of the box

    # -- what is played and heard ------------------------------------------------------------------------------
    def _play(self, t: float, controls: Controls) -> Controls:
        assert self._t0 is not None
        self._bar_t.append(t - self._t0)
        self._bar_x.append((controls.tempo, controls.valence, controls.energy))
        return controls

    def _comfort_check(self, k: int, now: float) -> None:
        """A bin has closed: compare its mean with the session's running median."""
        total, count = self._bins[k]
        if count < MIN_BIN_SCORES:
            return
        mean = total / count
        self._medians.append(mean)
        if len(self._medians) * self.cfg.bin_s < self.cfg.comfort_s:
            return
        median = statistics.median(self._medians)
        if mean >= median - self.cfg.comfort_drop:
            self._below_since = None
        elif self._below_since is None:
            self._below_since = now
        elif now - self._below_since >= self.cfg.comfort_s and self._played_setting_count() > 1:
            self._comfort_due = True
            self._below_since = now  # at most once per comfort_s

    def _played_setting_count(self) -> int:
        return len({(round(a.tempo, 6), round(a.valence, 6), round(a.energy, 6)) for a in self._chosen})

    # -- the model ---------------------------------------------------------------------------------------------
    def _unit(self, controls: FloatArray) -> FloatArray:
        """Controls (n, 3) in units of the bounds (0..1 per axis)."""
        b = self.guard.bounds
        low = np.array([b.tempo_min, b.valence_min, b.energy_min])
        span = np.maximum(np.array([b.tempo_max, b.valence_max, b.energy_max]) - low, 1e-9)
        return np.clip((controls - low) / span, 0.0, 1.0)

    def _controls(self, unit: FloatArray) -> Controls:
        b = self.guard.bounds
        low = np.array([b.tempo_min, b.valence_min, b.energy_min])
        high = np.array([b.tempo_max, b.valence_max, b.energy_max])
        return clamp_controls(b, *(low + unit * (high - low)))

    def _set_carried(self) -> None:
        if not self.observations:
            self.model.set_carried(None)
            self.search_model.set_carried(None)
            return
        rows = np.array(self.observations, dtype=float)
        carried = Carried(self._unit(rows[:, :3]), rows[:, 3], rows[:, 4], np.array(self._sessions, dtype=float))
        self.model.set_carried(carried)
        self.search_model.set_carried(carried)

    def _data(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, np.ndarray]:
        bar_t = np.array(self._bar_t, dtype=float)
        bar_f = self._bar_features()[0]
        n_bins = (max(self._bins) + 1) if self._bins else 0
        bin_t = (np.arange(n_bins) + 0.5) * self.cfg.bin_s
        bin_y = np.zeros(n_bins)
        observed = np.zeros(n_bins, dtype=bool)
        for k, (total, count) in self._bins.items():
            if count >= MIN_BIN_SCORES and k >= 0:
                bin_y[k], observed[k] = total / count, True
        return bar_t, bar_f, bin_t, bin_y, observed

    def _bar_features(self) -> tuple[FloatArray, FloatArray]:
        """Features of every bar played (the model's and the dynamics search's), computed once per bar."""
        done = len(self._cache[0])
        if done < len(self._bar_x):
            unit = self._unit(np.array(self._bar_x[done:], dtype=float).reshape(-1, 3))
            self._cache = (
                np.vstack([self._cache[0], self.features(unit)]),
                np.vstack([self._cache[1], self.search_features(unit)]),
            )
        return self._cache

    def refit(self) -> Fit:
        """Fit the model; search the (tau, delay) grid by evidence (all of it now and then, else the neighbours)."""
        data = self._data()
        taus, delays = self.model.taus, self.model.delays
        if self._dynamics is None or self.choices in (2, 4, 8) or self.choices % 8 == 0:
            pairs = [(a, d) for a in taus for d in delays]
        else:
            i = int(np.argmin([abs(math.log(a / self._dynamics[0])) for a in taus]))
            j = int(np.argmin([abs(d - self._dynamics[1]) for d in delays]))
            pairs = [
                (taus[a], delays[d])
                for a in range(max(0, i - 1), min(len(taus), i + 2))
                for d in range(max(0, j - 1), min(len(delays), j + 2))
            ]
        if not data[4].any():  # nothing measured yet: the prior (and what was carried), at the carried dynamics
            pairs = pairs[:1] if self._dynamics is None else [self._dynamics]
        with one_blas_thread():
            if len(pairs) > 1:  # the dynamics are chosen with a coarser model of f (a quarter of the cost)
                data_coarse = (data[0], self._bar_features()[1], *data[2:])
                scored = [self.search_model.fit(*data_coarse, tau, delay) for tau, delay in pairs]
                chosen = max(scored, key=lambda f: f.log_evidence)
                pairs = [(chosen.tau, chosen.delay)]
            best = self.model.fit(*data, *pairs[0])
        if data[4].any():
            self._dynamics = (best.tau, best.delay)
        self.fit = best
        return best

    def _empty_cache(self) -> tuple[FloatArray, FloatArray]:
        none = np.zeros((0, 3))
        return self.features(none), self.search_features(none)

    def _candidate_grid(self) -> tuple[FloatArray, FloatArray]:
        n = self.cfg.candidate_points
        g = np.linspace(0.0, 1.0, n)
        unit = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
        return unit, self.features(unit)

    def _candidates(self, fit: Fit) -> tuple[FloatArray, FloatArray]:
        """The grid and, with `refine`, the settings half a grid step around the best one by the posterior mean."""
        unit, phi = self._grid
        if not self.cfg.refine:
            return unit, phi
        centre = unit[int(np.argmax(phi @ fit.weights_mean()))]
        half = 0.5 / max(1, self.cfg.candidate_points - 1)
        offsets = np.stack(np.meshgrid(*[np.array([-1.0, 0.0, 1.0])] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
        local = np.clip(centre + offsets * half, 0.0, 1.0)
        return np.vstack([unit, local]), np.vstack([phi, self.features(local)])

    def best_arm(self) -> Controls:
        """The setting with the highest posterior mean (what the bandit believes is best now)."""
        fit = self.fit if self.fit is not None else self.refit()
        unit, phi = self._candidates(fit)
        return self._controls(unit[int(np.argmax(phi @ fit.weights_mean()))])

    def best_played(self) -> Controls:
        """The chosen setting with the highest posterior mean: where the comfort guard returns."""
        if not self._chosen:
            return self.guard.current
        fit = self.refit()
        unit = self._unit(np.array([[a.tempo, a.valence, a.energy] for a in self._chosen]))
        return self._chosen[int(np.argmax(self.features(unit) @ fit.weights_mean()))]

    def predicted(self, controls: Controls) -> tuple[float, float]:
        """Posterior mean and standard deviation of f (the level this music leads to, relative to the session's)."""
        fit = self.fit if self.fit is not None else self.refit()
        phi = self.features(self._unit(np.array([[controls.tempo, controls.valence, controls.energy]])))[0]
        spread = fit.weights_cov_factor().T @ phi
        return float(phi @ fit.weights_mean()), float(np.sqrt(spread @ spread))

    # -- choosing ----------------------------------------------------------------------------------------------
    def _opening_plan(self) -> list[FloatArray]:
        """The mapping's calm music, then the farthest-apart points of a 3 x 3 x 3 lattice inside the box, ordered
        as a short tour (distance in ramp bars: each axis moves by at most its step per bar)."""
        m = self.config.mapping
        anchor = self._unit(np.array([[m.calm_tempo, m.calm_valence, m.calm_energy]]))[0]
        return opening_tour(anchor, self.cfg.opening_points, self._unit_steps())

    def _unit_steps(self) -> FloatArray:
        b = self.guard.bounds
        span = np.maximum(
            np.array([b.tempo_max - b.tempo_min, b.valence_max - b.valence_min, b.energy_max - b.energy_min]), 1e-9
        )
        return np.array([b.max_tempo_step, b.max_valence_step, b.max_energy_step]) / span

    def _choose(self) -> None:
        # the tour's first setting, the mapping's calm music, is held like any choice: most listeners like it
        self._in_opening = bool(self._opening) and bool(self._chosen)
        if self._opening:
            self._set_arm(self._controls(self._opening.pop(0)))
            return
        fit = self.refit()
        if not self._chosen and self.observations:
            self._set_arm(self.best_arm())  # a returning listener: start from the best setting carried
            return
        unit, phi = self._candidates(fit)
        # exploration narrows with the evidence: this session's choices and (three times) the settings carried
        evidence = self.choices + 3 * len(self.observations)
        spread = self.cfg.explore / math.sqrt(1.0 + evidence / max(self.cfg.explore_halving, 1e-9))
        weights = fit.draw_weights(self.rng, spread)
        draw = phi @ weights
        best = int(np.argmax(draw))
        if self._arm is not None:
            # moving costs ramp bars: stay unless the draw favours another setting by a margin
            here = self.features(self._unit(np.array([[self._arm.tempo, self._arm.valence, self._arm.energy]])))
            if draw[best] - float((here @ weights)[0]) < self.cfg.switch_margin:
                self._set_arm(self._arm)
                return
        self._set_arm(self._controls(unit[best]))

    def _set_arm(self, arm: Controls) -> None:
        if arm != self._arm:
            self.choices += 1
        self._arm = arm
        self._chosen.append(arm)
        self._arrived_t = None
        self._ramp_bars = 0

    def _at_arm(self) -> bool:
        assert self._arm is not None
        cur, arm, cfg = self.guard.current, self._arm, self.config.guard
        return (
            abs(cur.tempo - arm.tempo) <= cfg.tempo_deadband + 1e-9
            and abs(cur.valence - arm.valence) <= cfg.valence_deadband + 1e-9
            and abs(cur.energy - arm.energy) <= cfg.energy_deadband + 1e-9
        )

    # -- memory ------------------------------------------------------------------------------------------------
    def _session_summary(self) -> list[Observation]:
        """f at the settings chosen this session, from this session's scores alone (what earlier sessions said is
        kept as it was, not counted twice), where the scores narrowed the prior."""
        if not self._chosen or not self._bins:
            return []
        carried = self.observations
        self.model.set_carried(None)
        try:
            data = self._data()
            if not data[4].any():
                return []
            tau, delay = self._dynamics if self._dynamics is not None else (self.cfg.min_tau_s, self.cfg.lag_s)
            with one_blas_thread():
                fit = self.model.fit(*data, tau, delay)
        finally:
            self.observations = carried
            self._set_carried()
        settings = sorted({(a.tempo, a.valence, a.energy) for a in self._chosen})
        if len(settings) < 2:
            return []  # one setting says nothing about differences, and differences are what carries over
        phi = self.features(self._unit(np.array(settings, dtype=float)))
        mean = phi @ fit.weights_mean()
        # the variance of each value relative to the others (a session's common level is not carried)
        centred = fit.weights_cov_factor().T @ (phi - phi.mean(axis=0)).T
        var = np.maximum((centred**2).sum(axis=0), 1e-5)
        prior = (phi**2 * self.features.prior_var()).sum(axis=1)
        return [
            (s[0], s[1], s[2], float(m), float(v))
            for s, m, v, p in zip(settings, mean, var, prior, strict=True)
            if v < 0.6 * p
        ]
