"""Records an external LSL marker stream (`--lsl-markers NAME`, [lsl_markers]) into the session: each marker becomes
an Event(kind="marker", data={"source": "lsl", ...}) on the hub, so the recorder writes it, the report draws it, the
exports annotate it and the dashboard lists it.

The inlet runs on its own worker thread (blocking pulls). A marker's time is its sender's time stamp, corrected to the
local LSL clock by liblsl's clock offset, then moved onto the session clock by one offset measured at start: a marker
sent at the moment an EEG sample was taken lines up with that sample in the recording.
The stream may start after the session, vanish and come back (a PsychoPy script run twice): the thread keeps looking,
and says on the hub when it found, lost or cannot find the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from neuromusic.daemon.cli.lab_options import LslMarkersConfig
from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.messages import Event

log = logging.getLogger(__name__)

PULL_S = 0.2  # longest wait for one marker: how quickly the thread notices the session ending


class LslMarkers:
    name = "lsl_markers"

    def __init__(self, ctx: SessionContext, config: LslMarkersConfig) -> None:
        self._ctx = ctx
        self.config = config
        self._stop = threading.Event()
        self.received = 0

    async def run(self) -> None:
        self._stop.clear()
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def finish(error: BaseException | None) -> None:
            if not ended.done():
                ended.set_exception(error) if error is not None else ended.set_result(None)

        def serve() -> None:
            outcome: BaseException | None = None
            try:
                self._serve()
            except Exception as error:  # reported through run(): the session's guard names this service
                outcome = error
            with contextlib.suppress(RuntimeError):  # the loop closed: the session ended, nobody waits for this
                loop.call_soon_threadsafe(finish, outcome)

        # A daemon thread, not the loop's executor: a resolve in progress (up to resolve_timeout_s) must not hold
        # the process at exit; it sees the stop flag when that call returns.
        threading.Thread(target=serve, name="lsl-markers", daemon=True).start()
        try:
            await ended
        finally:
            self._stop.set()

    async def __aenter__(self) -> LslMarkers:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()  # the session leaves its services when it ends, whether or not run() started

    def release(self) -> None:
        self._stop.set()

    # -- worker thread -----------------------------------------------------------------------------------------
    def _event(self, kind: str, text: str, **data: Any) -> None:
        self._publish(Event(t=self._ctx.clock.now(), kind=kind, text=text, data=data))

    def _publish(self, event: Event) -> None:
        if self._stop.is_set():
            return  # the session is ending: its loop may be closed already
        with contextlib.suppress(RuntimeError):  # ... or close between the check and the call
            self._ctx.hub.publish_threadsafe(event)

    def _serve(self) -> None:
        import pylsl

        to_session = self._ctx.clock.now() - pylsl.local_clock()
        name = self.config.name
        warned = False
        while not self._stop.is_set():
            found = pylsl.resolve_bypred(f"name='{name}'", minimum=1, timeout=self.config.resolve_timeout_s)
            if not found:
                if not warned:
                    self._event("warning", f"LSL marker stream {name!r} not found; still looking", stream=name)
                    warned = True
                continue
            info = found[0]
            if info.channel_format() != pylsl.cf_string:
                self._event("warning", f"LSL stream {name!r} is not a text marker stream; markers not recorded")
                return
            warned = False
            self._event("info", f"recording markers of LSL stream {name!r}", stream=name)
            self._pull(pylsl, pylsl.StreamInlet(info, recover=False), to_session)

    def _pull(self, pylsl: Any, inlet: Any, to_session: float) -> None:
        name = self.config.name
        try:
            inlet.open_stream(timeout=self.config.resolve_timeout_s)
            while not self._stop.is_set():
                sample, stamp = inlet.pull_sample(timeout=PULL_S)
                if sample is None:
                    continue
                local = stamp + inlet.time_correction()
                label = str(sample[0]) if sample else ""
                self.received += 1
                event = Event(t=local + to_session, kind="marker", text=label, data={"source": "lsl", "stream": name})
                self._publish(event)
        except (pylsl.util.LostError, pylsl.util.TimeoutError):
            self._event("warning", f"LSL marker stream {name!r} was lost; looking for it again", stream=name)
        finally:
            inlet.close_stream()


def create(ctx: SessionContext) -> LslMarkers | None:
    config: LslMarkersConfig = ctx.config.lsl_markers
    return LslMarkers(ctx, config) if config.name else None
