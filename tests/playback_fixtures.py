"""Helpers for the playback tests: WAV onsets, a discrete-event clock, a session context without a session."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
from neuromusic.daemon.config import Config
from neuromusic.daemon.session.context import SessionContext
from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.hub import Hub
from neuromusic.models.core.clock import MonotonicClock, VirtualClock
from neuromusic.models.core.errors import SinkError
from neuromusic.models.core.messages import Bar, Controls, Note

# The soundfonts scripts/setup installs. A test whose figures depend on the sound asks for one by path, so the
# result does not change with whatever else a machine has in its soundfont folders.
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # fluid-soundfont-gm: the default
SMALL_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")  # timgm6mb-soundfont


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float samples in -1..1 and the sample rate (plain WAV or RF64)."""
    data, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    return data.mean(axis=1), int(rate)


def level_db(samples: np.ndarray) -> float:
    """RMS level in dBFS (a full-scale sine is -3 dB); silence reads -200."""
    return float(10.0 * np.log10(np.mean(samples**2) + 1e-20))


def onsets(
    samples: np.ndarray, rate: int, hop_s: float = 0.005, jump_db: float = 6.0, merge_s: float = 0.05
) -> list[float]:
    """Times where the energy in 5 ms frames jumps by `jump_db` (within 40 dB of the loudest frame)."""
    hop = max(1, round(rate * hop_s))
    n = len(samples) // hop
    energy = (samples[: n * hop].reshape(n, hop) ** 2).sum(axis=1) + 1e-12
    level = 10.0 * np.log10(energy)
    found: list[float] = []
    for i in np.nonzero((np.diff(level) > jump_db) & (level[1:] > level.max() - 40.0))[0]:
        t = (i + 1) * hop / rate
        if not found or t - found[-1] > merge_s:
            found.append(t)
    return found


class WorldClock(VirtualClock):
    """A discrete-event virtual clock: every sleeper waits in a queue and `drive()` wakes them in time order,
    running `on_advance(t)` (the simulated world: EEG, scores) before time reaches t. Unlike VirtualClock, where
    the first sleeper jumps time for everyone, causality holds with several coroutines sleeping at once."""

    def __init__(self, on_advance: Callable[[float], None] | None = None) -> None:
        super().__init__(0.0)
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.on_advance = on_advance

    async def sleep_until(self, t: float) -> None:
        if t <= self.now():
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (t, next(self._seq), future))
        await future

    def _move_to(self, t: float) -> None:
        if t > self.now():
            self.advance(t - self.now())

    async def drive(self, until: float, settle: int = 30) -> None:
        """Advance time to `until`, waking sleepers in order; everything runnable settles between steps."""
        while True:
            for _ in range(settle):
                await asyncio.sleep(0)
            while self._waiters and self._waiters[0][2].done():
                heapq.heappop(self._waiters)  # cancelled sleeps
            if not self._waiters or self._waiters[0][0] > until:
                if self.on_advance is not None:
                    self.on_advance(until)
                self._move_to(until)
                return
            t, _, future = heapq.heappop(self._waiters)
            if self.on_advance is not None:
                self.on_advance(t)
            self._move_to(t)
            future.set_result(None)


def make_ctx(
    config: Config | None = None,
    clock: MonotonicClock | VirtualClock | None = None,
    session_dir: Path | None = None,
) -> SessionContext:
    config = config or Config()
    clock = clock or VirtualClock()
    hub = Hub()
    control = SessionControl(clock, hub.publish, config.policy.name, config.policy.bounds, config.policy.target)
    return SessionContext(config, hub, clock, control, "test", session_dir)


def melody_bar(
    pitches: list[int], index: int = 0, key: str = "C", controls: Controls | None = None, length: float = 1.0
) -> Bar:
    """A 4/4 bar of equal notes."""
    notes = tuple(Note(p, i * length, length, 80) for i, p in enumerate(pitches))
    return Bar(index, "", notes, 4.0, "4/4", key, controls or Controls(70.0, 0.6, 0.4))


class BreakingSink:
    """A sink whose device vanishes after `after` calls (a test double: unplugging a port on cue is not possible)."""

    live = True

    def __init__(self, after: int) -> None:
        self.name = "breaking"
        self.calls = 0
        self.after = after
        self.closed = False

    def _call(self) -> None:
        self.calls += 1
        if self.calls > self.after:
            raise SinkError("device vanished")

    def program(self, channel: int, program: int, t: float) -> None:
        self._call()

    def note_on(self, channel: int, pitch: int, velocity: int, t: float) -> None:
        self._call()

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        self._call()

    def tempo(self, bpm: float, t: float) -> None:
        pass

    def all_notes_off(self, t: float) -> None:
        self._call()

    def close(self, t: float) -> None:
        self.closed = True
