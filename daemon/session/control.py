"""The session's steerable state: pause, stop, policy, target, bounds, operator override, markers.

One object per session. The terminal, MQTT remote control and tests all steer the session through it; the player
reads it once per bar. Every setter validates first and changes nothing on bad input (raises ValueError with a
message fit for an operator). The bounds given at start (the configuration's) are a hard limit: later changes may only
narrow them, and an active operator override is kept inside them.
"""

from __future__ import annotations

import asyncio
import math
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from neuromusic.models.core.clock import Clock
from neuromusic.models.core.controls import CONTROL_NAMES
from neuromusic.models.core.messages import Controls, Event
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.bounds import check_within, clamp_controls, validate_bounds

MAX_MARKER_LENGTH = 200
# Bidirectional-text overrides reorder what a terminal or a report shows; like control characters, they go.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_label(text: str) -> str:
    """A label fit for a terminal, a JSON line and an EDF annotation: control characters (ESC sequences, newlines,
    NUL), lone surrogates and bidi overrides become spaces; runs of spaces collapse."""
    kept = [" " if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS else ch for ch in text]
    return " ".join("".join(kept).split())


class SessionControl:
    def __init__(
        self,
        clock: Clock,
        publish: Callable[[Any], None],
        policy_name: str,
        bounds: ControlBounds,
        target: float = 0.8,
        policy_names: Callable[[], list[str]] | None = None,
    ) -> None:
        self._clock = clock
        self._publish = publish
        self._policy_names = policy_names
        self.policy_name = policy_name
        validate_bounds(bounds)
        self.limits = bounds  # the configured bounds: what a remote change may narrow, never widen
        self.bounds = bounds
        self.target = target
        self.override: Controls | None = None
        self.stop_requested = asyncio.Event()
        self.stop_reason = ""
        self._running = asyncio.Event()
        self._running.set()
        self.generation = 0  # bumped on every change, so readers can tell something moved

    # -- pause / resume / stop ---------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    async def wait_running(self) -> None:
        await self._running.wait()

    def pause(self) -> None:
        if not self.paused:
            self._running.clear()
            self._changed("pause", "paused")

    def resume(self) -> None:
        if self.paused:
            self._running.set()
            self._changed("resume", "resumed")

    def stop(self, reason: str = "stop requested") -> None:
        reason = clean_label(reason) or "stop requested"
        self.stop_reason = reason
        self.stop_requested.set()
        self._changed("stop", reason)

    # -- policy ------------------------------------------------------------------------------------------------
    def set_policy(self, name: str) -> None:
        if not isinstance(name, str):
            raise ValueError("policy must be a string")
        known = self._policy_names() if self._policy_names else [name]
        if name not in known:
            raise ValueError(f"unknown policy; choose one of: {', '.join(known)}")
        self.policy_name = name
        self._changed("policy", f"policy set to {name}", policy=name)

    def set_target(self, target: float) -> None:
        if isinstance(target, bool) or not isinstance(target, int | float) or not math.isfinite(target):
            raise ValueError("target must be a number")
        if not 0.0 <= target <= 1.0:
            raise ValueError("target must be within 0..1")
        self.target = float(target)
        self._changed("target", f"target set to {target:.2f}", target=self.target)

    def set_bounds(self, **changes: float) -> None:
        """Change some of the control bounds, e.g. set_bounds(tempo_min=55, tempo_max=75)."""
        known = set(ControlBounds.__dataclass_fields__)
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown bound {key!r}; known: {', '.join(sorted(known))}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"bound {key} must be a number")
        bounds = replace(self.bounds, **{k: float(v) for k, v in changes.items()})
        check_within(bounds, self.limits)
        self.bounds = bounds
        if self.override is not None:  # an override outside the narrowed range would go on playing it
            self.override = clamp_controls(bounds, *self.override.values())
        self._changed("bounds", "control bounds changed", **{k: float(v) for k, v in changes.items()})

    def check_controls(self, values: dict[str, float]) -> Controls:
        """Controls an operator asked for, refused (ValueError naming the control) rather than clamped when one is
        missing, unknown or outside the bounds: who asks for 120 BPM under a 90 BPM cap should hear why not."""
        unknown = sorted(set(values) - set(CONTROL_NAMES))
        missing = [name for name in CONTROL_NAMES if name not in values]
        if unknown or missing:
            problem = f"unknown control {unknown[0]!r}" if unknown else f"missing control {missing[0]!r}"
            raise ValueError(f"{problem}; the controls are {', '.join(CONTROL_NAMES)}")
        for name in CONTROL_NAMES:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number")
            low, high = self.bounds.range(name)
            if not low <= value <= high:
                raise ValueError(f"{name} is outside the control bounds {low:g}..{high:g}")
        return Controls.from_mapping(values)

    def set_controls(self, controls: Controls | None) -> None:
        """Operator override: these controls until cleared with None. Clamped to the bounds' ranges."""
        if controls is not None:
            controls = clamp_controls(self.bounds, *controls.values())
        self.override = controls
        text = "operator override cleared" if controls is None else f"operator override {controls.as_dict()}"
        self._changed("override", text, controls=None if controls is None else controls.as_dict())

    # -- markers -----------------------------------------------------------------------------------------------
    def marker(self, label: str, **data: Any) -> Event:
        if not isinstance(label, str):
            raise ValueError("a marker needs a non-empty label")
        if len(label) > MAX_MARKER_LENGTH:
            raise ValueError(f"a marker label is at most {MAX_MARKER_LENGTH} characters")
        label = clean_label(label)
        if not label:
            raise ValueError("a marker needs a non-empty label")
        event = Event(t=self._clock.now(), kind="marker", text=label, data=dict(data))
        self._publish(event)
        return event

    def _changed(self, what: str, text: str, **data: Any) -> None:
        self.generation += 1
        self._publish(Event(t=self._clock.now(), kind="control", text=text, data={"what": what, **data}))
