"""A source that stops mid-session: "stale" within 2 s, the session keeps running, and it resumes by itself.

Real parts only: a pylsl outlet in a subprocess (tests/lsl_fixtures.py, loopback LSL config from conftest.py), the
real LSL source, pipeline and scorer, the real Session. Plus the same contract on a source that merely goes quiet
(no error raised), which is how a Bluetooth headset out of range behaves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from lsl_fixtures import start_outlet, stop_outlet
from neuromusic.daemon.config import load_config
from neuromusic.daemon.session.hub import Subscription
from neuromusic.daemon.session.runner import Session
from neuromusic.drivers.base import SourceInfo
from neuromusic.models.core.messages import Chunk, Event, Score, SourceStatus

FAST = {
    "score.baseline_s": 0.5,
    "features.window_s": 1.0,
    "session.reconnect_base_s": 0.2,
    "session.reconnect_max_s": 1.0,
}


async def wait_for(subscription: Subscription, match: Callable[[Any], bool], timeout: float) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            message = await subscription.get()
            if match(message):
                return message


def scoring(message: Any) -> bool:
    return isinstance(message, Score) and message.state in ("calibrating", "scoring")


def stale(message: Any) -> bool:
    return isinstance(message, Score) and message.state == "stale"


@pytest.mark.slow
async def test_lsl_outlet_stops_goes_stale_and_resumes_after_restart() -> None:
    source_id = f"nm-recovery-{time.monotonic_ns()}"
    outlet = start_outlet("nm-recovery", source_id, seconds=120)
    config = load_config(None, {**FAST, "source.board": "lsl", "source.lsl_source_id": source_id})
    session = Session(config, services=[])
    subscription = session.hub.subscribe(Score, SourceStatus, Event)
    task = asyncio.create_task(session.run())
    try:
        await wait_for(subscription, scoring, timeout=15)
        stop_outlet(outlet)
        stopped = time.monotonic()
        await wait_for(subscription, stale, timeout=5)
        assert time.monotonic() - stopped <= 2.0
        # The daemon keeps running while the sender is away, and tries to reconnect.
        await wait_for(subscription, lambda m: isinstance(m, Event) and m.kind == "reconnect", timeout=5)
        assert not task.done()
        outlet = start_outlet("nm-recovery", source_id, seconds=120)  # same source_id, a new process
        await wait_for(subscription, scoring, timeout=20)
        assert session.acquisition.state == "streaming"
        assert session.acquisition.reconnects >= 1
    finally:
        stop_outlet(outlet)
        session.request_stop("test over")
        result = await asyncio.wait_for(task, timeout=10)
    assert result.exit_code == 0 and result.reconnects >= 1


class QuietSource:
    """A source that delivers samples, goes silent for `quiet_s` (read returns None, no error), then delivers again.
    `opens` counts open() calls: a silence longer than reconnect_after_s makes the session reopen it."""

    def __init__(self, quiet_from: float, quiet_s: float) -> None:
        self.quiet_from, self.quiet_s = quiet_from, quiet_s
        self.opens = 0
        self._start = 0.0
        self._sent = 0

    def open(self) -> SourceInfo:
        self.opens += 1
        if self.opens == 1:
            self._start = time.monotonic()
        return SourceInfo("quiet test source", 250.0, ("C1", "C2"), "simulated")

    def read(self, max_wait: float) -> Chunk | None:
        time.sleep(min(max_wait, 0.02))
        elapsed = time.monotonic() - self._start
        if self.quiet_from <= elapsed < self.quiet_from + self.quiet_s:
            return None
        due = int(elapsed * 250.0) - self._sent
        if due <= 0:
            return None
        t = (self._sent + np.arange(due)) / 250.0
        data = np.vstack([20 * np.sin(2 * np.pi * 10 * t), 10 * np.sin(2 * np.pi * 6 * t)]) + np.random.default_rng(
            self._sent
        ).normal(0, 2, (2, due))
        self._sent += due
        return Chunk(data, t, ("C1", "C2"), 250.0)

    def close(self) -> None:
        pass


@pytest.mark.slow
async def test_quiet_source_goes_stale_then_is_reopened_and_resumes() -> None:
    source = QuietSource(quiet_from=2.0, quiet_s=3.0)
    config = load_config(None, {**FAST, "source.stale_after_s": 1.0, "session.reconnect_after_s": 2.0})
    session = Session(config, services=[], open_source=lambda: source)
    subscription = session.hub.subscribe(Score, SourceStatus)
    task = asyncio.create_task(session.run())
    try:
        await wait_for(subscription, scoring, timeout=10)
        status = await wait_for(subscription, lambda m: isinstance(m, SourceStatus) and m.state == "stale", 5)
        assert "no samples" in status.detail
        await wait_for(subscription, stale, timeout=1)
        await wait_for(subscription, lambda m: isinstance(m, SourceStatus) and m.state == "reconnecting", 5)
        await wait_for(subscription, scoring, timeout=10)
        assert source.opens >= 2
    finally:
        session.request_stop("test over")
        result = await asyncio.wait_for(task, timeout=10)
    assert result.exit_code == 0
