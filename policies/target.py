"""`target`: a feedback controller that steers the score toward `policy.target`, easing off once it is reached.

It moves along the same tense -> calm line as the mapping (see mapping.py), by a calming intensity u in [0, 1]:
once per bar, with e = target - smoothed score,

    |e| >  tolerance:  u += gain * e          (integral action: push harder while below target, back off above)
    |e| <= tolerance:  u -= ease_per_bar      (reached: ease the push off slowly, so the music rests)

u starts at the listener's first smoothed score (iso principle: start near the listener's state). When the listener
tenses again (policies/iso.py), u meets the new state and leads back over `iso_bars` bars to where it was,
    u = s + (u_before - s) * bars_since / iso_bars,
then the controller goes on from there. Controls are the point u of the way from the tense anchor to the calm
anchor, moved by the guard within the bounds.
"""

from __future__ import annotations

from typing import Any

from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.bounds import ControlGuard, SmoothedScore, clamp
from neuromusic.policies.config import PolicyConfig
from neuromusic.policies.iso import TensionWatch
from neuromusic.policies.mapping import anchor_controls


class TargetPolicy:
    name = "target"

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.target = config.target
        self.guard = ControlGuard(config.bounds, config.guard)
        self.score = SmoothedScore(config.guard.smoothing_s)
        self.intensity: float | None = None
        self.tension = TensionWatch(config.mapping.reiso_drop, config.mapping.reiso_reference_s)
        self._tensed = False
        self._lead: tuple[int, float] | None = None  # (bar the lead started, intensity to lead back to)

    def observe(self, score: Score) -> None:
        if self.guard.note_score(score):
            assert score.value is not None
            self.score.update(score.t, score.value)
            assert self.score.value is not None
            self._tensed |= self.tension.update(score.t, self.score.value)

    def next_controls(self, bar_index: int, t: float) -> Controls:
        s = self.score.value
        if s is None or not self.guard.fresh(t):
            return self.guard.hold()
        cfg = self.config.target_controller
        if self.intensity is None:
            self.intensity = s
        if self._tensed:
            self._tensed = False
            self._lead = (bar_index, max(self.intensity, s))
        if self._lead is not None:
            start, back_to = self._lead
            progress = (bar_index - start) / self.config.mapping.iso_bars
            if progress < 1.0:
                self.intensity = clamp(s + (back_to - s) * max(0.0, progress), 0.0, 1.0)
                return self.guard.apply(*anchor_controls(self.config.mapping, self.intensity))
            self._lead = None
        error = self.target - s
        if abs(error) > cfg.tolerance:
            self.intensity = clamp(self.intensity + cfg.gain * error, 0.0, 1.0)
        else:
            self.intensity = clamp(self.intensity - cfg.ease_per_bar, 0.0, 1.0)
        return self.guard.apply(*anchor_controls(self.config.mapping, self.intensity))

    def set_bounds(self, bounds: ControlBounds) -> None:
        self.guard.set_bounds(bounds)

    def continue_from(self, controls: Controls) -> None:
        """Start from the controls being played (after a policy switch or an operator override)."""
        self.guard.continue_from(controls)

    def set_target(self, target: float) -> None:
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"target must be within 0..1, got {target}")
        self.target = float(target)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing learned across sessions: the controller starts from the listener's state each time."""
