"""The iso principle, again whenever the listener tenses: notice a fall of the score, so the music can first meet
the listener's new state and then lead back (used by `mapping` and `target`).

`TensionWatch` compares the smoothed score with a slower reference (an exponential average with time constant
`reiso_reference_s`). A fall of more than `reiso_drop` below the reference is a new tension: the watch fires once
and takes the present score as its new reference, so a long stress fires once, and a further fall fires again.
"""

from __future__ import annotations

import math


class TensionWatch:
    def __init__(self, drop: float, reference_s: float) -> None:
        self.drop = drop
        self.reference_s = reference_s
        self.reference: float | None = None
        self._t: float | None = None
        self.fired = 0

    def update(self, t: float, smoothed: float) -> bool:
        """Feed the smoothed score at time t; True when the listener has just tensed."""
        if self.reference is None or self._t is None:
            self.reference, self._t = smoothed, t
            return False
        dt = max(0.0, t - self._t)
        self._t = max(self._t, t)
        self.reference += (smoothed - self.reference) * (1.0 - math.exp(-dt / self.reference_s))
        if self.drop > 0 and smoothed < self.reference - self.drop:
            self.reference = smoothed
            self.fired += 1
            return True
        return False
