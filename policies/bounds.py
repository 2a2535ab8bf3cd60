"""What keeps every policy safe, whatever it wants: ranges, a maximum change per bar, hysteresis, and holding the
last good controls while the score is stale or of poor quality.

A policy decides what it *wants*; `ControlGuard.apply` turns that into what is *played*. The guard is the only
place controls are made, so a policy with a bug (a NaN, a value out of range, a wild jump) still plays safe music.
"""

from __future__ import annotations

import math

from neuromusic.models.core.controls import CONTROL_NAMES, CONTROLS
from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.config import GuardConfig

AXES = CONTROL_NAMES
# The largest change per bar any configuration may allow: more than these is a jump across the whole range.
STEP_LIMITS = {f"max_{spec.name}_step": spec.step_limit for spec in CONTROLS}


def validate_bounds(bounds: ControlBounds) -> None:
    """Raise ValueError unless the bounds describe a non-empty, legal range with positive steps."""
    values = [getattr(bounds, name) for name in bounds.__dataclass_fields__]
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise ValueError("every control bound must be a finite number")
    for spec in CONTROLS:
        low, high = bounds.range(spec.name)
        if not spec.within(low, high):
            name = spec.name
            raise ValueError(f"{name} bounds must satisfy {spec.low:g} <= {name}_min <= {name}_max <= {spec.high:g}")
    for name, largest in STEP_LIMITS.items():
        if not 0 < getattr(bounds, name) <= largest:
            raise ValueError(f"{name} must be positive and at most {largest:g}")


def check_within(bounds: ControlBounds, limits: ControlBounds) -> None:
    """Raise ValueError unless `bounds` only narrow `limits` (the configured bounds, a hard limit): each range inside
    the configured one, each step no larger than the configured step."""
    validate_bounds(bounds)
    for axis in AXES:
        low, high = bounds.range(axis)
        hard_low, hard_high = limits.range(axis)
        if low < hard_low or high > hard_high:
            raise ValueError(f"{axis} bounds may only narrow the configured range {hard_low:g}..{hard_high:g}")
    for name in STEP_LIMITS:
        if getattr(bounds, name) > getattr(limits, name):
            raise ValueError(f"{name} may only be lowered from the configured {getattr(limits, name):g}")


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def clamp_controls(bounds: ControlBounds, *values: float) -> Controls:
    """Controls from values in the table's order (tempo, valence, energy), each clamped into its bounds."""
    if len(values) != len(AXES):
        raise TypeError(f"clamp_controls takes one value per control ({', '.join(AXES)}), got {len(values)}")
    return Controls(
        **{axis: clamp(float(value), *bounds.range(axis)) for axis, value in zip(AXES, values, strict=True)}
    )


def step_toward(bounds: ControlBounds, current: Controls | None, wanted: Controls) -> Controls:
    """`wanted` clamped to the ranges and reached from `current` (the last bar played) by at most one step per axis:
    the same guard a policy's wish passes, for controls that come from elsewhere (an operator override)."""
    target = clamp_controls(bounds, *wanted.values())
    if current is None:
        return target
    out = {}
    for axis in AXES:
        now, want, step = getattr(current, axis), getattr(target, axis), bounds.step(axis)
        moved = now + clamp(want - now, -step, step) if math.isfinite(now) else want
        out[axis] = clamp(moved, *bounds.range(axis))
    return Controls(**out)


def usable(score: Score, min_confidence: float) -> bool:
    """A score a policy may act on: scoring, a finite value in 0..1, confident enough."""
    value = score.value
    return (
        score.state == "scoring"
        and value is not None
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
        and math.isfinite(score.confidence)
        and score.confidence >= min_confidence
    )


class ControlGuard:
    """Holds the controls being played and moves them toward what a policy wants, within the bounds.

    Per axis and per bar: a wanted value is clamped to the range; a change smaller than the deadband is ignored
    (hysteresis: no flicker around a threshold); a larger one moves at most `max_*_step`. Non-finite wishes are
    ignored, so the last good value is kept.
    """

    def __init__(self, bounds: ControlBounds, config: GuardConfig) -> None:
        validate_bounds(bounds)
        self.config = config
        self.bounds = bounds
        self.current = clamp_controls(bounds, *config.start())
        self.last_usable_t: float | None = None
        self._moving = dict.fromkeys(AXES, False)

    @property
    def bounds(self) -> ControlBounds:
        return self._bounds

    @bounds.setter
    def bounds(self, bounds: ControlBounds) -> None:
        self._bounds = bounds
        # (low, high, step, deadband) per control, looked up once per change of bounds rather than once per bar
        self._limits = [(*bounds.range(a), bounds.step(a), self.config.deadband(a)) for a in AXES]

    def set_bounds(self, bounds: ControlBounds) -> None:
        validate_bounds(bounds)
        self.bounds = bounds
        # the played controls move into a narrowed range at once: bounds are a safety limit, not a wish
        self.current = clamp_controls(bounds, *self.current.values())

    def continue_from(self, controls: Controls) -> None:
        """Take over from controls played by someone else (the previous policy, an operator override), so the next
        bar moves at most one step from what the listener hears now instead of jumping to this guard's start."""
        values = controls.values()
        if all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            self.current = clamp_controls(self.bounds, *values)
            self._moving = dict.fromkeys(AXES, False)

    def note_score(self, score: Score) -> bool:
        """Record a score's arrival; True when a policy may learn from it."""
        ok = usable(score, self.config.min_confidence)
        if ok and math.isfinite(score.t):
            self.last_usable_t = score.t if self.last_usable_t is None else max(self.last_usable_t, score.t)
        return ok

    def fresh(self, t: float) -> bool:
        """True while the newest usable score is recent enough to steer by."""
        return self.last_usable_t is not None and t - self.last_usable_t <= self.config.stale_after_s

    def hold(self) -> Controls:
        return self.current

    def apply(self, *wanted: float) -> Controls:
        """Move toward the wanted values, one per control in the table's order (tempo, valence, energy)."""
        if len(wanted) != len(AXES):
            raise TypeError(f"apply takes one wanted value per control ({', '.join(AXES)}), got {len(wanted)}")
        out: dict[str, float] = {}
        for axis, want, (low, high, step, deadband) in zip(AXES, wanted, self._limits, strict=True):
            now = getattr(self.current, axis)
            if not isinstance(want, int | float) or not math.isfinite(want):
                out[axis] = now
                self._moving[axis] = False
                continue
            want = clamp(float(want), low, high)
            delta = want - now
            # hysteresis with two thresholds: a move starts only when the wish is at least a deadband away, and once
            # started it goes all the way (no stop-start ramps); at a range edge the deadband never traps the value
            if not self._moving[axis] and abs(delta) < deadband and want not in (low, high):
                out[axis] = now
                continue
            out[axis] = clamp(now + clamp(delta, -step, step), low, high)
            self._moving[axis] = abs(want - out[axis]) > 1e-9
        self.current = Controls(**out)
        return self.current


def lerp(a: float, b: float, w: float) -> float:
    return a + (b - a) * w


class SmoothedScore:
    """An exponential moving average of usable scores with a time constant in seconds (scores may arrive at any
    rate). None until the first usable score."""

    def __init__(self, time_constant_s: float) -> None:
        self.time_constant_s = time_constant_s
        self.value: float | None = None
        self._t: float | None = None

    def update(self, t: float, value: float) -> None:
        if self.value is None or self._t is None or self.time_constant_s <= 0:
            self.value, self._t = value, t
            return
        dt = max(0.0, t - self._t)
        weight = 1.0 - math.exp(-dt / self.time_constant_s)
        self.value += (value - self.value) * weight
        self._t = max(self._t, t)
