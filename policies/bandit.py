"""`bandit`: learns, while it plays, which music relaxes this listener, wherever in the bounds that music lies.

1. Opening: a space-filling tour of the whole bounds box (`opening_points` settings: the mapping's calm music, then
   the farthest-apart settings of a 3 x 3 x 3 lattice inside the box, in the order that needs the fewest ramp bars).
2. Model (policies/response_model.py): the score is a delayed first-order response to the music; f(x), the level
   music x leads to, is a sum of Gaussian bumps with a Gaussian prior. The listener's delay and time constant are
   chosen online by the evidence, so each bar is credited where its effect shows and a setting's steady state is
   predicted before the score reaches it.
3. Choice (`model = "peak"`, policies/peak_model.py): Thompson sampling over hypotheses of one preferred setting
   with a smooth fall-off, weighed by their evidence at the fitted dynamics; the drawn centre (with a profile carried,
   a point within its grid cell) is played for `dwell_s` after the music has arrived. A first session with a slow
   listener plays the best estimate instead (`fresh_choice`): its every draw would cost minutes. (`model = "bumps"`:
   one draw of f over a dense grid of settings, plus, with `refine`, settings around the best one; the draw's spread
   shrinks as choices accumulate, and another setting must look better by `switch_margin` to move.)
4. Comfort: if the score stays more than `comfort_drop` below the session's running median for `comfort_s`, the
   bandit returns to the best setting it has played (by the posterior mean).
5. Memory: `state_dict()` keeps the newest sessions as played and heard (policies/bandit_past.py: the preference
   model weighs its hypotheses by their evidence in each), what every session measured (f at the settings it chose,
   with a variance) and the listener's delay and time constant; the next session starts from them (earlier evidence
   counting 1 / `carry_noise_factor`), skips the opening and moves to the best carried setting from the first bar.

The guard still bounds every bar's change, applies the hysteresis and holds the last controls while stale.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from neuromusic.models.core.controls import CONTROL_NAMES
from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.bandit_fit import ListenerModel
from neuromusic.policies.bandit_memory import Observation, make_state, read_state
from neuromusic.policies.bandit_past import PastSession, from_record, read_records
from neuromusic.policies.bandit_record import ComfortWatch, SessionRecord
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.bounds import ControlGuard
from neuromusic.policies.config import PolicyConfig
from neuromusic.policies.opening import opening_tour

MAX_RAMP_BARS = 32  # a ramp that has not arrived after this many bars (the guard's deadbands) counts as arrived


class BanditPolicy:
    name = "bandit"

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.cfg = cfg = config.bandit
        self.guard = ControlGuard(config.bounds, config.guard)
        self.rng = np.random.default_rng(cfg.seed)
        self.listener = ListenerModel(cfg, config.bounds)
        self.record = SessionRecord(cfg.bin_s)
        self.comfort = ComfortWatch(cfg)
        self.observations: list[Observation] = []  # carried from earlier sessions
        self.past: list[PastSession] = []  # the newest earlier sessions as played and heard
        self._sessions: list[int] = []  # which earlier session each observation came from
        self._comfort_due = False
        self._arm: Controls | None = None
        self._arrived_t: float | None = None
        self._ramp_bars = 0
        self._chosen: list[Controls] = []
        self._opening = self._opening_plan()
        self._in_opening = False
        self.choices = 0
        self.comfort_returns = 0

    @property
    def _dynamics(self) -> tuple[float, float] | None:
        return self.listener.dynamics

    # -- Policy protocol ---------------------------------------------------------------------------------------
    def observe(self, score: Score) -> None:
        if not self.guard.note_score(score):
            return
        assert score.value is not None
        closed = self.record.add_score(score.t, score.value)
        mean = None if closed is None else self.record.bin_mean(closed)
        if mean is not None and self.comfort.bin_closed(mean, score.t, self._played_setting_count()):
            self._comfort_due = True

    def next_controls(self, bar_index: int, t: float) -> Controls:
        # a returning listener hears the music the profile found best from the first bar; else nothing is steered
        # blind: the controls are held until a usable score comes and while the score is stale
        if not self.guard.fresh(t) and (self.guard.last_usable_t is not None or not self.observations):
            return self._play(t, self.guard.hold())
        if self._comfort_due:
            self._comfort_due = False
            self.comfort_returns += 1
            self._set_arm(self.best_played())
        if self._arm is None:
            self._choose()
        assert self._arm is not None
        if self._arrived_t is None:
            if self._at_arm() or self._ramp_bars > MAX_RAMP_BARS:
                self._arrived_t = t
            self._ramp_bars += 1
        elif t - self._arrived_t >= (self.cfg.opening_dwell_s if self._in_opening else self.cfg.dwell_s):
            self._choose()
            if self._at_arm():  # chose to stay: the dwell starts again at once
                self._arrived_t = t
        arm = self._arm
        return self._play(t, self.guard.apply(*arm.values()))

    def set_bounds(self, bounds: ControlBounds) -> None:
        if bounds == self.guard.bounds:
            return  # the player calls this on every control change (pause, target, ...): nothing to redo
        self.guard.set_bounds(bounds)
        self.listener.set_bounds(bounds)
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
        fresh = self.listener.summary(self.record, self._chosen) if self._chosen else []
        state = make_state(self.observations, self._sessions, fresh, self.listener.dynamics, self.cfg.max_observations)
        dynamics = self.listener.dynamics
        this = from_record(self.record, dynamics, bool(fresh)) if dynamics is not None else None
        past = (
            (self.past + ([this] if this is not None else []))[-self.cfg.carry_sessions :]
            if self.cfg.carry_sessions
            else []
        )
        state["records"] = [p.to_state() for p in past]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        observations, sessions, dynamics = read_state(state, self.cfg.carry_noise_factor, self.cfg.max_observations)
        past = read_records(state, self.cfg.carry_sessions)
        self.observations, self._sessions, self.past = observations, sessions, past
        if dynamics is not None:
            self.listener.dynamics = dynamics
        self.listener.carry(observations, sessions, past)
        if observations or past:
            self._opening = []  # what earlier sessions learned replaces the tour of the box

    # -- what the model says -----------------------------------------------------------------------------------
    def refit(self) -> Any:
        full = self.choices in (2, 4, 8) or self.choices % 8 == 0
        return self.listener.refit(self.record, full_search=full)

    def best_arm(self) -> Controls:
        """The setting with the highest posterior mean (what the bandit believes is best now)."""
        return self.listener.best_setting(self.listener.current_fit(self.record))

    def best_played(self) -> Controls:
        """The chosen setting with the highest posterior mean: where the comfort guard returns."""
        if not self._chosen:
            return self.guard.current
        return self.listener.best_of(self.refit(), self._chosen)

    def predicted(self, controls: Controls) -> tuple[float, float]:
        """Posterior mean and standard deviation of f (the level this music leads to, relative to the session's)."""
        return self.listener.predicted(self.listener.current_fit(self.record), controls)

    # -- choosing ----------------------------------------------------------------------------------------------
    def _play(self, t: float, controls: Controls) -> Controls:
        self.record.add_bar(t, controls)
        return controls

    def _played_setting_count(self) -> int:
        return len({tuple(round(v, 6) for v in a.values()) for a in self._chosen})

    def _opening_plan(self) -> list[Any]:
        """The mapping's calm music, then the farthest-apart points of a 3 x 3 x 3 lattice inside the box, ordered
        as a short tour (distance in ramp bars: each axis moves by at most its step per bar)."""
        m = self.config.mapping
        anchor = self.listener.unit(np.array([m.anchor("calm")]))[0]
        return opening_tour(anchor, self.cfg.opening_points, self.listener.unit_steps())

    def _choose(self) -> None:
        # the tour's first setting, the mapping's calm music, is held like any choice: most listeners like it
        self._in_opening = bool(self._opening) and bool(self._chosen)
        if self._opening:
            self._set_arm(self.listener.controls(self._opening.pop(0)))
            return
        fit = self.refit()
        if not self._chosen and self.observations:
            self._set_arm(self.listener.best_setting(fit))  # a returning listener: start from the best carried
            return
        if self.cfg.model == "peak":
            self._set_arm(self.listener.draw_peak(self.record, fit, self.rng))
            return
        # exploration narrows with the evidence: this session's choices and (three times) the settings carried
        evidence = self.choices + 3 * len(self.observations)
        spread = self.cfg.explore / math.sqrt(1.0 + evidence / max(self.cfg.explore_halving, 1e-9))
        self._set_arm(self.listener.draw_bumps(fit, self.rng, spread, self._arm))

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
        return all(
            abs(now - wanted) <= cfg.deadband(name) + 1e-9
            for name, now, wanted in zip(CONTROL_NAMES, cur.values(), arm.values(), strict=True)
        )
