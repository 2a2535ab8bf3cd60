"""Time sources. Everything time-dependent takes a Clock so it can run on a virtual clock in tests and simulation."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds on one monotonic time line for the whole session."""

    def now(self) -> float: ...

    async def sleep_until(self, t: float) -> None: ...


class MonotonicClock:
    """The real clock: `time.monotonic()`; `wall()` maps a monotonic time to unix seconds for reports."""

    def __init__(self) -> None:
        self._offset = time.time() - time.monotonic()

    def now(self) -> float:
        return time.monotonic()

    def wall(self, t: float | None = None) -> float:
        return (self.now() if t is None else t) + self._offset

    async def sleep_until(self, t: float) -> None:
        delay = t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """A clock that only moves when told to. `sleep_until` jumps time forward, so simulations run flat out."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start

    def now(self) -> float:
        return self._t

    def wall(self, t: float | None = None) -> float:
        return self._t if t is None else t

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError("a virtual clock cannot go back")
        self._t += dt

    async def sleep_until(self, t: float) -> None:
        if t > self._t:
            self._t = t
        await asyncio.sleep(0)
