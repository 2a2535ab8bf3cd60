"""The Source contract every EEG source fulfils (BrainFlow boards, LSL inlets, the simulated listener, replay).

A source is used from one dedicated worker thread, never from the event loop:

    info = source.open()          # afterwards: the device streams; info describes every chunk read() returns
    while running:
        chunk = source.read(0.1)  # samples since the last read, or None if none came within max_wait
    source.close()                # afterwards: the device is released; open() may be called again to reconnect

Post-conditions: `open()` either returns with the source streaming or raises `SourceNotFoundError` (nothing there)
/ `SourceError` (there but unusable) with a message saying what to do, and holds nothing after raising. `read()`
raises `SourceError` when the connection broke (the daemon then closes, backs off and opens again). `close()` is
idempotent and never raises for an already broken connection.

A finite source (a replay, a BrainFlow playback file without loop) also has a `finished: bool` attribute that turns
true once it has delivered its last sample; `read()` then returns None. The daemon ends the session cleanly on it.
A source without the attribute is endless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from neuromusic.models.core.messages import Chunk


@dataclass(frozen=True)
class SourceInfo:
    """What an opened source delivers: every Chunk has these channels, in this order, at this rate."""

    name: str  # human-readable, e.g. "BrainFlow SYNTHETIC_BOARD" or "LSL 'OpenBCI' (source_id cyton-1)"
    sfreq: float
    channel_names: tuple[str, ...]
    kind: str  # "brainflow" | "lsl" | "simulated" | "replay"
    # The largest high-passed amplitude (µV) this source produces when all is well. None: scalp EEG, for which the
    # quality check's default (150 µV) applies. A test signal generator such as BrainFlow's synthetic board swings
    # far wider, and declares it here so its healthy channels are not called "out-of-range". The user's
    # features.quality.max_uv, when set, wins over this.
    max_uv: float | None = None


class Source(Protocol):
    def open(self) -> SourceInfo: ...

    def read(self, max_wait: float) -> Chunk | None: ...

    def close(self) -> None: ...
