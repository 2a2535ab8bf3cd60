"""A token bucket: at most `burst` at once, `rate` per second sustained. Pure: the caller gives the time."""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = now
        self.refused = 0  # refused since the last take_refused()

    def allow(self, now: float) -> bool:
        """Take one token if there is one (True), else count a refusal (False)."""
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = max(self._at, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.refused += 1
        return False

    def take_refused(self) -> int:
        refused, self.refused = self.refused, 0
        return refused
