"""Acquisition: keeps an EEG source streaming, declares it stale when it goes quiet and reconnects with backoff.

Every blocking call into the source (open, read, close) runs on one dedicated daemon thread (`WorkerThread`), so the
event loop only moves messages and keeps time, and a vendor SDK that hangs can never keep the process from exiting.

States (published as SourceStatus, with an Event for each reconnect):

    connecting --open ok--> streaming --no samples for stale_after_s--> stale --samples again--> streaming
                                |                                        |
                                | read raised SourceError                | still silent after reconnect_after_s
                                v                                        v
                           reconnecting --close, wait (jittered backoff), open--> streaming | reconnecting ...

The first `open()` fails fast: a headset that is not there at start is the operator's mistake, reported with its
exit code. Once a session has streamed, every failure is retried, because a dropped Bluetooth link or a restarted
LSL outlet usually comes back.

A finite source (a replay, a BrainFlow playback without loop) says so with a true `finished` attribute once it has
delivered everything. That is not a dropped headset: `run()` waits for the chunks already handed on to be processed
(`drain`), goes "stopped" and returns, with the reason in `finished_reason`; the session then stops cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from neuromusic.daemon.session.hub import Hub
from neuromusic.drivers.base import Source, SourceInfo
from neuromusic.models.core.clock import Clock
from neuromusic.models.core.errors import SourceError
from neuromusic.models.core.messages import Chunk, Event, SourceState, SourceStatus

log = logging.getLogger(__name__)

T = TypeVar("T")
CLOSE_TIMEOUT_S = 2.0  # a close() that takes longer is abandoned on its (daemon) thread


class WorkerThread:
    """Runs blocking calls one at a time, in order, on one daemon thread; `await worker.call(fn, ...)`.

    Not a ThreadPoolExecutor: its threads are joined at interpreter exit, so one SDK call that never returns (BrainFlow
    on a vanished dongle) would hang the shutdown the daemon promises to finish within a deadline.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((lambda: fn(*args), future))
        return await future

    def stop(self) -> None:
        self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            try:
                result = fn()
            except BaseException as error:  # handed to the awaiting coroutine, which decides what it means
                _hand_back(future, None, error)
            else:
                _hand_back(future, result, None)


def _hand_back(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    # The event loop may have closed while the blocking call ran (a forced exit, or a session torn down around a hung
    # SDK read): nobody is left to take the result, and the worker must end quietly rather than raise.
    with contextlib.suppress(RuntimeError):
        future.get_loop().call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the awaiting task was cancelled meanwhile (shutdown): nobody wants the result
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half the step fixed (never a hot loop), half random (so several
    daemons that lost the same stream do not retry in lockstep)."""
    step = min(max_s, base_s * 2.0 ** min(attempt, 30))
    return step / 2.0 + rng.uniform(0.0, step / 2.0)


class Acquisition:
    def __init__(
        self,
        open_source: Callable[[], Source],
        on_chunk: Callable[[Chunk, SourceInfo], None],
        clock: Clock,
        hub: Hub,
        *,
        stale_after_s: float,
        reconnect_after_s: float,
        reconnect_base_s: float,
        reconnect_max_s: float,
        seed: int | None = None,
        drain: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`drain`: awaited when a finite source has ended, until every chunk handed to on_chunk was processed."""
        self._open_source = open_source
        self._drain = drain
        self._on_chunk = on_chunk
        self._clock = clock
        self._hub = hub
        self.stale_after_s = stale_after_s
        self.reconnect_after_s = max(reconnect_after_s, stale_after_s)
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_max_s = reconnect_max_s
        self._rng = random.Random(seed)
        # Poll often enough that "stale" is declared within stale_after_s of the last sample, not a poll later.
        self.poll_s = min(0.1, stale_after_s / 4.0)
        self.state: SourceState = "stopped"
        self.info: SourceInfo | None = None
        self.reconnects = 0
        self.streaming = asyncio.Event()  # set on the first samples, for SessionContext.started
        self.finished_reason: str | None = None  # set when a finite source delivered everything and run() returned

    async def run(self) -> None:
        worker = WorkerThread("neuromusic-source")
        self._set_state("connecting", "opening the source")
        try:
            await self._loop(worker)
        finally:
            self._set_state("stopped", "acquisition stopped")
            worker.stop()

    async def _loop(self, worker: WorkerThread) -> None:
        first = True
        attempt = 0
        source = self._open_source()  # one object for the whole session: close() then open() again reconnects it
        while True:
            try:
                info = await worker.call(source.open)
            except SourceError as error:
                if first:
                    raise
                delay = backoff_delay(attempt, self.reconnect_base_s, self.reconnect_max_s, self._rng)
                attempt += 1
                self._event("reconnect", f"reconnect attempt {attempt} failed: {error}; next in {delay:.1f} s")
                await self._clock.sleep_until(self._clock.now() + delay)
                continue
            async with self._connected(worker, source):
                self.info = info
                if not first:
                    self.reconnects += 1
                    self._event("reconnect", f"reconnected to {info.name} after {attempt + 1} attempt(s)")
                first, attempt = False, 0
                try:
                    reason = await self._stream(worker, source, info)
                except SourceError as error:
                    reason = f"source failed: {error}"
                if self.finished_reason is None:
                    self._set_state("reconnecting", reason)
                    self._event("reconnect", f"{reason}; reconnecting")
                elif self._drain is not None:
                    await self._drain()
            if self.finished_reason is not None:
                self._set_state("stopped", self.finished_reason)
                return

    @contextlib.asynccontextmanager
    async def _connected(self, worker: WorkerThread, source: Source) -> AsyncIterator[None]:
        """One connection, opened just before: closed on leaving, whatever ends it (the stream breaking, the
        source finishing, a cancel, an unexpected error)."""
        try:
            yield
        finally:
            await self._close(worker, source)

    async def _stream(self, worker: WorkerThread, source: Source, info: SourceInfo) -> str:
        """Read until the source breaks (raises) or stays silent for reconnect_after_s (returns why)."""
        self._set_state("streaming", f"opened {info.name}: {len(info.channel_names)} channels at {info.sfreq:g} Hz")
        last_data = self._clock.now()
        while True:
            chunk = await worker.call(source.read, self.poll_s)
            now = self._clock.now()
            if chunk is not None and chunk.n_samples > 0:
                last_data = now
                if self.state != "streaming":
                    self._set_state("streaming", "samples arrive again")
                self.streaming.set()
                self._on_chunk(chunk, info)
                continue
            if getattr(source, "finished", False):
                self.finished_reason = f"{info.name} ended: all its samples were read"
                return self.finished_reason
            silent = now - last_data
            # "+ poll_s": the next check would come a poll later; declare stale now so it is never late.
            if self.state == "streaming" and silent + self.poll_s >= self.stale_after_s:
                self._set_state("stale", f"no samples for {silent:.1f} s")
            if silent >= self.reconnect_after_s:
                return f"no samples for {silent:.1f} s"

    async def _close(self, worker: WorkerThread, source: Source) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await worker.call(source.close)
        except TimeoutError:
            log.warning("closing the source took longer than %.0f s; abandoned", CLOSE_TIMEOUT_S)
        except SourceError as error:  # close() promises not to raise; if it does, the connection is gone anyway
            log.warning("closing the source: %s", error)

    def _set_state(self, state: SourceState, detail: str) -> None:
        if state == self.state:
            return
        log.info("source %s: %s", state, detail)
        self.state = state
        self._hub.publish(SourceStatus(t=self._clock.now(), state=state, detail=detail))

    def _event(self, kind: str, text: str) -> None:
        log.warning("%s", text)
        self._hub.publish(Event(t=self._clock.now(), kind=kind, text=text))
