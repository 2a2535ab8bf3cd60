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

Every source is also a context manager for one connection: `with source as info:` opens and closes it on the
calling thread (a worker thread, or a loop on a virtual clock); `async with source as info:` opens it in a worker
thread from the event loop and closes it on leaving. Either way `close()` runs also when the block raises or is
cancelled, so nothing stays held.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
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
    # quality check's default ceiling (500 µV) applies. A test signal generator such as BrainFlow's synthetic board
    # swings far wider, and declares it here so its healthy channels are not called "out-of-range". The user's
    # features.quality.max_uv, when set, wins over this.
    max_uv: float | None = None


class Source(Protocol):
    def open(self) -> SourceInfo: ...

    def read(self, max_wait: float) -> Chunk | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> SourceInfo: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...

    async def __aenter__(self) -> SourceInfo: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...


class Connection:
    """The context-manager half of the Source contract, on top of a source's own open() and close()."""

    def open(self) -> SourceInfo:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> SourceInfo:
        return self.open()  # holds nothing when it raises (the contract of open)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> SourceInfo:
        opening = asyncio.ensure_future(asyncio.to_thread(self.open))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            # the thread goes on opening (a device cannot be interrupted): close it once it has opened
            opening.add_done_callback(self._close_if_opened)
            raise

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await asyncio.shield(asyncio.to_thread(self.close))

    def _close_if_opened(self, opening: asyncio.Future[SourceInfo]) -> None:
        if not opening.cancelled() and opening.exception() is None:
            asyncio.get_running_loop().run_in_executor(None, self.close)
