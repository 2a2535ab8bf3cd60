"""`mapping`: the documented fixed mapping, led by the iso principle of music therapy.

Two anchors in control space: *tense* music (faster, cooler, more energetic) and *calm* music (slow, warm, soft).
The calming weight w in [0, 1] picks a point between them:

    w = s + (1 - s) * min(1, bars_since_start / iso_bars)

where s is the smoothed relaxation score. At the first usable score the music matches the listener (iso principle:
a tense listener first hears tense-ish music), then it leads toward the calm anchor over `iso_bars` bars, and stays
there, until the listener tenses again: a fall of the smoothed score by more than `reiso_drop` below its slow
reference (policies/iso.py) starts the lead again from that bar, so the music first meets the tense listener and then
leads back. The guard keeps every step within the bounds. Nothing is learned: state_dict is empty.
"""

from __future__ import annotations

from typing import Any

from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.bounds import ControlGuard, SmoothedScore, lerp
from neuromusic.policies.config import MappingConfig, PolicyConfig
from neuromusic.policies.iso import TensionWatch


def anchor_controls(mapping: MappingConfig, w: float) -> tuple[float, ...]:
    """The point a fraction w of the way from the tense anchor to the calm anchor, one value per control."""
    return tuple(
        lerp(tense, calm, w) for tense, calm in zip(mapping.anchor("tense"), mapping.anchor("calm"), strict=True)
    )


class MappingPolicy:
    name = "mapping"

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.guard = ControlGuard(config.bounds, config.guard)
        self.score = SmoothedScore(config.guard.smoothing_s)
        self._iso_start_bar: int | None = None
        self.tension = TensionWatch(config.mapping.reiso_drop, config.mapping.reiso_reference_s)
        self._tensed = False

    def observe(self, score: Score) -> None:
        if self.guard.note_score(score):
            assert score.value is not None  # usable() checked it
            self.score.update(score.t, score.value)
            assert self.score.value is not None
            self._tensed |= self.tension.update(score.t, self.score.value)

    def next_controls(self, bar_index: int, t: float) -> Controls:
        s = self.score.value
        if s is None or not self.guard.fresh(t):
            return self.guard.hold()
        if self._iso_start_bar is None or self._tensed:
            self._iso_start_bar = bar_index  # iso principle: meet the listener's state, then lead
            self._tensed = False
        progress = min(1.0, max(0, bar_index - self._iso_start_bar) / self.config.mapping.iso_bars)
        w = s + (1.0 - s) * progress
        return self.guard.apply(*anchor_controls(self.config.mapping, w))

    def set_bounds(self, bounds: ControlBounds) -> None:
        self.guard.set_bounds(bounds)

    def continue_from(self, controls: Controls) -> None:
        """Start from the controls being played (after a policy switch or an operator override)."""
        self.guard.continue_from(controls)

    def set_target(self, target: float) -> None:
        """The mapping has no target; accepted so every policy can be steered the same way."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore: the mapping learns nothing."""
