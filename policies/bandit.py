"""`bandit`: learns, while it plays, which music relaxes this listener.

Algorithm: Thompson sampling with a Gaussian-process model of reward over a grid of control settings (arms).

- Arms: `tempo_points x valence_points x energy_points` settings at the centres of equal cells of the current
  bounds, the mapping's calm music, and (with `refine`) the settings half a grid step around the best one so far.
- Prior: the mean reward plus `prior_bump` at the mapping's calm music, so the first choice is the music the mapping
  settles on, and the bandit leaves it only on evidence (no worse than the mapping where its assumptions hold).
- A choice is held until the guard has ramped the music to it (max change per bar), then for `dwell_bars` more bars.
- Reward (delayed, noisy): the change in score over those bars, extrapolated to where it is heading. Scores from
  `lag_s` after arrival to `lag_s` after the dwell are fitted with a first-order approach
  s(t) = r* + (s0 - r*) exp(-(t - t0) / response_tau_s) by least squares; the reward is r*, the level this music
  leads the listener to. (A raw change in score would punish a good setting chosen when the listener was already
  relaxed; the fit removes that dependence on the starting point.) Windows with missing or stale scores are dropped.
- Choice: draw one function from the GP posterior over the arms within `max_jump` (in units of each control's
  range) of the current controls, and take its best arm. Early on the posterior is wide, so choices explore;
  as rewards arrive it narrows around the good settings, so choices exploit. `max_jump` bounds exploration so the
  music never swings across the whole range at once, and the guard still limits each bar's change.
- Memory: `state_dict()` holds the observations (controls, reward, noise); `load_state_dict()` restores them with
  noise multiplied by `carry_noise_factor` (a listener changes between sessions), and the first choice of the new
  session is the best setting by the posterior mean.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.bounds import ControlGuard, clamp_controls
from neuromusic.policies.config import PolicyConfig
from neuromusic.policies.gp import FloatArray, Kernel, posterior, thompson_sample

STATE_VERSION = 1
Observation = tuple[float, float, float, float, float]  # tempo, valence, energy, reward, noise variance
MIN_WINDOW_SCORES = 6


@dataclass
class Window:
    """One choice being measured: the arm, when the music arrived at it, and when its dwell ended."""

    arm: Controls
    t_start: float
    t_end: float | None = None


class BanditPolicy:
    name = "bandit"

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.cfg = config.bandit
        self.guard = ControlGuard(config.bounds, config.guard)
        self.rng = np.random.default_rng(self.cfg.seed)
        self.observations: list[Observation] = []
        self._scores: deque[tuple[float, float]] = deque()
        self._arm: Controls | None = None
        self._arrived_t: float | None = None
        self._ramp_bars = 0
        self._window: Window | None = None
        self._closed: list[Window] = []
        self._exploit_first = self.cfg.prior_bump > 0  # first the prior's best: the mapping's calm music
        self.choices = 0

    # -- Policy protocol ---------------------------------------------------------------------------------------
    def observe(self, score: Score) -> None:
        if not self.guard.note_score(score):
            return
        assert score.value is not None
        self._scores.append((score.t, score.value))
        self._finish_windows(score.t)

    def next_controls(self, bar_index: int, t: float) -> Controls:
        if not self.guard.fresh(t):
            # stale or poor signal: hold, and forget the half-measured choice (its window has a hole)
            self._window = None
            self._arrived_t = None
            return self.guard.hold()
        if self._arm is None:
            self._choose(t)
        assert self._arm is not None
        if self._arrived_t is None:
            if self._at_arm() or self._ramp_bars > 32:
                self._arrived_t = t
                if self._window is None:
                    self._window = Window(self._arm, t)
            self._ramp_bars += 1
        elif t - self._arrived_t >= self.cfg.dwell_s:
            if self._window is not None:
                self._window.t_end = t
                self._closed.append(self._window)
                self._window = None
            self._choose(t)
            assert self._arm is not None
            if self._at_arm():  # chose to stay: the dwell starts again at once
                self._arrived_t = t
        arm = self._arm
        return self.guard.apply(arm.tempo, arm.valence, arm.energy)

    def set_bounds(self, bounds: ControlBounds) -> None:
        if bounds == self.guard.bounds:
            return  # the player calls this on every control change (pause, target, ...): nothing to redo
        self.guard.set_bounds(bounds)
        self._arm = None  # choose again inside the new bounds
        self._window = None
        self._arrived_t = None

    def continue_from(self, controls: Controls) -> None:
        """Start from the controls being played (after a policy switch or an operator override); the bar it was
        moving toward is chosen again, and no reward is credited to an arm for music it did not choose."""
        self.guard.continue_from(controls)
        self._arm = None
        self._window = None
        self._arrived_t = None

    def set_target(self, target: float) -> None:
        """The bandit maximises relaxation; it has no target."""

    def state_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "observations": [list(o) for o in self.observations]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"bandit state must be a dict with version {STATE_VERSION}")
        rows = state.get("observations", [])
        loaded: list[Observation] = []
        for row in rows:
            if not isinstance(row, list | tuple) or len(row) != 5:
                raise ValueError("each bandit observation must be [tempo, valence, energy, reward, noise]")
            values = [float(v) for v in row]
            if not all(math.isfinite(v) for v in values) or values[4] <= 0:
                raise ValueError("bandit observations must be finite with a positive noise")
            tempo, valence, energy, reward, noise = values
            loaded.append((tempo, valence, energy, reward, noise * self.cfg.carry_noise_factor))
        self.observations = loaded[-self.cfg.max_observations :]
        self._exploit_first = bool(self.observations) or self.cfg.prior_bump > 0

    # -- learning ----------------------------------------------------------------------------------------------
    def _finish_windows(self, now: float) -> None:
        lag = self.cfg.lag_s
        while self._closed and self._closed[0].t_end is not None and now >= self._closed[0].t_end + lag:
            window = self._closed.pop(0)
            assert window.t_end is not None
            measured = self._reward(window.t_start + lag, window.t_end + lag)
            if measured is not None:
                reward, noise = measured
                a = window.arm
                self.observations.append((a.tempo, a.valence, a.energy, reward, noise))
                del self.observations[: -self.cfg.max_observations]
        oldest = self._closed[0].t_start if self._closed else (self._window.t_start if self._window else now)
        while self._scores and self._scores[0][0] < oldest:
            self._scores.popleft()

    def _reward(self, t0: float, t1: float) -> tuple[float, float] | None:
        """The level the score was heading to in [t0, t1] (least-squares first-order fit) and its noise variance;
        None if too few scores. A short window says little about where the score was heading: its noise grows as
        1 / (1 - exp(-T / tau))^2, which is how the GP weighs it."""
        points = [(t, v) for t, v in self._scores if t0 <= t <= t1]
        if len(points) < MIN_WINDOW_SCORES or points[-1][0] - points[0][0] < 0.6 * (t1 - t0):
            return None
        times = np.array([p[0] for p in points]) - t0
        values = np.array([p[1] for p in points])
        decay = np.exp(-times / self.cfg.response_tau_s)
        design = np.stack([1.0 - decay, decay], axis=1)  # (n, 2): columns multiply r* and s0
        (level, _start), *_ = np.linalg.lstsq(design, values, rcond=None)
        reach = 1.0 - math.exp(-(times[-1] - times[0]) / self.cfg.response_tau_s)
        return float(np.clip(level, -0.5, 1.5)), self.cfg.noise_var / max(reach, 0.05) ** 2

    # -- choosing ----------------------------------------------------------------------------------------------
    def _scale(self) -> FloatArray:
        b = self.guard.bounds
        return np.array([max(b.tempo_max - b.tempo_min, 1.0), 1.0, 1.0])

    def arms(self) -> FloatArray:
        """(n_arms, 3) control settings spread over the current bounds: the centres of n equal cells per axis.
        Cell centres, not the edges: each arm stands for the music around it, and the range's extremes (where the
        GP's uncertainty, and so a Thompson draw, is largest) are reached only by refinement, on evidence."""
        b = self.guard.bounds

        def axis(low: float, high: float, n: int) -> FloatArray:
            return low + (high - low) * (np.arange(n) + 0.5) / n

        grid = np.meshgrid(
            axis(b.tempo_min, b.tempo_max, self.cfg.tempo_points),
            axis(b.valence_min, b.valence_max, self.cfg.valence_points),
            axis(b.energy_min, b.energy_max, self.cfg.energy_points),
            indexing="ij",
        )
        return np.stack([g.ravel() for g in grid], axis=1)

    def anchor(self) -> FloatArray:
        """The mapping's calm music (clamped into the bounds): the centre of the prior, and the first choice."""
        m = self.config.mapping
        c = clamp_controls(self.guard.bounds, m.calm_tempo, m.calm_valence, m.calm_energy)
        return np.array([c.tempo, c.valence, c.energy])

    def candidate_arms(self) -> FloatArray:
        """The grid, the anchor and, with `refine`, the settings half a grid step around the best one by the
        posterior mean (a listener's preference rarely sits on the grid)."""
        arms = np.vstack([self.arms(), self.anchor()[None, :]])
        if not (self.cfg.refine and self.observations):
            return arms
        mean, _ = self.posterior(arms)
        centre = arms[int(np.argmax(mean))]
        b = self.guard.bounds
        low = np.array([b.tempo_min, b.valence_min, b.energy_min])
        high = np.array([b.tempo_max, b.valence_max, b.energy_max])
        points = np.array([self.cfg.tempo_points, self.cfg.valence_points, self.cfg.energy_points])
        half = (high - low) / points / 2.0
        offsets = np.stack(np.meshgrid(*[np.array([-1.0, 0.0, 1.0])] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
        local = np.clip(centre + offsets * half, low, high)
        return np.unique(np.round(np.vstack([arms, local]), 9), axis=0)

    def _unit(self, controls: FloatArray) -> FloatArray:
        """Controls (n, 3) centred on the bounds' middle, in units of each control's range."""
        b = self.guard.bounds
        low = np.array([b.tempo_min, b.valence_min, b.energy_min])
        return (controls - low) / self._scale() - 0.5

    def prior_shape(self, controls: FloatArray) -> FloatArray:
        """(n,) how much the prior favours each setting: `prior_bump` at the mapping's calm music, falling off
        with `length_scale`. So the bandit starts where the mapping settles, and leaves it only on evidence."""
        d2 = ((self._unit(controls) - self._unit(self.anchor()[None, :])) ** 2).sum(axis=1)
        return np.asarray(self.cfg.prior_bump * np.exp(-0.5 * d2 / self.cfg.length_scale**2))

    def posterior(self, arms: FloatArray, extra: list[Observation] | None = None) -> tuple[FloatArray, FloatArray]:
        obs = np.array(self.observations + (extra or []), dtype=float).reshape(-1, 5)
        kernel = Kernel(self.cfg.length_scale, self.cfg.prior_var, self.cfg.additive, self.cfg.quadratic_var)
        x_obs, x_new = self._unit(obs[:, :3]), self._unit(arms)
        return posterior(
            x_obs, obs[:, 3], obs[:, 4], x_new, kernel, self.prior_shape(obs[:, :3]), self.prior_shape(arms)
        )

    def best_arm(self) -> Controls:
        """The setting with the highest posterior mean (what the bandit believes is best now)."""
        arms = self.candidate_arms()
        mean, _ = self.posterior(arms)
        return clamp_controls(self.guard.bounds, *arms[int(np.argmax(mean))])

    def _choose(self, t: float) -> None:
        arms = self.candidate_arms()
        if self._exploit_first:
            self._exploit_first = False
            self._set_arm(self.best_arm(), t)
            return
        current = np.array([self.guard.current.tempo, self.guard.current.valence, self.guard.current.energy])
        distance = np.sqrt((((arms - current) / self._scale()) ** 2).sum(axis=1))
        near = distance <= self.cfg.max_jump
        if not near.any():
            near[int(np.argmin(distance))] = True
        candidates = arms[near]
        mean, cov = self.posterior(candidates, self._provisional())
        spread = self.cfg.explore
        if self.cfg.explore_halving > 0:
            # exploration narrows as evidence accumulates: the spread halves after explore_halving * 3 observations
            spread /= math.sqrt(1.0 + len(self.observations) / self.cfg.explore_halving)
        draw = thompson_sample(mean, cov * spread**2, self.rng)
        best = int(np.argmax(draw))
        if self._arm is not None:
            # moving costs bars of ramp with nothing measured: stay unless another arm looks better by a margin
            here = np.abs(candidates - np.array([self._arm.tempo, self._arm.valence, self._arm.energy])).sum(axis=1)
            stay = int(np.argmin(here))
            if here[stay] < 1e-6 and draw[best] - draw[stay] < self.cfg.switch_margin:
                best = stay
        self._set_arm(clamp_controls(self.guard.bounds, *candidates[best]), t)

    def _provisional(self) -> list[Observation]:
        """Rewards of windows whose lag has not passed yet, measured from the scores so far (noisier, and weighed
        so by their shorter span)."""
        out: list[Observation] = []
        if not self._scores:
            return out
        latest = self._scores[-1][0]
        for window in self._closed:
            measured = self._reward(window.t_start + self.cfg.lag_s, latest)
            if measured is not None:
                a = window.arm
                out.append((a.tempo, a.valence, a.energy, measured[0], measured[1]))
        return out

    def _set_arm(self, arm: Controls, t: float) -> None:
        if arm != self._arm:
            self.choices += 1
        self._arm = arm
        self._arrived_t = None
        self._ramp_bars = 0
        # with measure_ramp the window opens now, so the bars spent ramping toward the choice are measured too
        self._window = Window(arm, t) if self.cfg.measure_ramp or self._at_arm() else None

    def _at_arm(self) -> bool:
        assert self._arm is not None
        cur, arm, cfg = self.guard.current, self._arm, self.config.guard
        return (
            abs(cur.tempo - arm.tempo) <= cfg.tempo_deadband + 1e-9
            and abs(cur.valence - arm.valence) <= cfg.valence_deadband + 1e-9
            and abs(cur.energy - arm.energy) <= cfg.energy_deadband + 1e-9
        )
