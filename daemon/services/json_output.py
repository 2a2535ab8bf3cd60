"""`--json`: one JSON object per line on stdout for every Score (at least one per hop), for other programs.

    {"t": 1764130000.25, "score": 0.62, "state": "scoring", "confidence": 1.0, "quality": 0.94, "source": "streaming",
     "de": {"alpha": {"Fp1": 1.92, ...}, ...}, "bad_channels": {"T7": "railed"}, "repaired": {"Fp1": 2}, "gap_s": 0.0,
     "source_t": 812.5}

Fields: `t` unix seconds when the line was written; `score` in [0, 1] or null (calibrating, stale, poor signal); `state`
calibrating | scoring | stale | poor-signal; `confidence` in [0, 1]; `quality` fraction of usable channels in the last
window (null before the first); `source` connecting | streaming | stale | reconnecting | stopped; `de` band differential
entropy in nats per band and channel of the last window (null for a bad channel); `bad_channels` channel -> why it was
excluded; `repaired` channel -> spike samples repaired in the last window (the channel stays usable unless it keeps
spiking; channels without one are left out); `gap_s` largest time-stamp gap in the last hop; `source_t` the scored
window's end on the source's clock (null when no window stands behind the line: stale, before the first window);
`controls` (one number per control: tempo, valence, energy) once a player publishes them. Floats are rounded to 4
decimals.

`reserve_stdout()` (called by `neuromusic run --json`) keeps the original stdout for these lines and sends both fd 1
and `sys.stdout` to stderr, so neither C libraries that print (liblsl, BrainFlow) nor Python packages that do
(pyfluidsynth prints where it found its library when `CI` is set) can corrupt the stream: stdout carries these lines
and nothing else.

A slow reader must never stall the session (a blocking write would freeze the event loop, and the music with it):
into a pipe or socket the lines go through a non-blocking asyncio transport, and while more than MAX_BUFFERED bytes
wait unread, new lines are dropped and counted (`dropped`). Files and terminals are written directly. A reader that
goes away (`neuromusic run --json | head`) stops the session cleanly.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import stat
import sys
from collections.abc import Callable
from typing import Any, TextIO

from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.messages import Controls, Features, Score, SourceStatus

ROUND = 4
MAX_BUFFERED = 1 << 20  # bytes waiting for a slow reader before lines are dropped (over a minute of 16 channels)


_reserved: TextIO | None = None  # the original stdout, once reserve_stdout() has moved everything else off it


def reserve_stdout() -> TextIO:
    """Keep the original stdout for JSON lines only and return it: fd 1 and `sys.stdout` now lead to stderr, so what
    a C library or a Python package prints lands there instead of in the stream a consumer parses."""
    global _reserved
    if _reserved is None:
        sys.stdout.flush()
        json_fd = os.dup(1)
        os.dup2(2, 1)
        _reserved = open(json_fd, "w", buffering=1, encoding="utf-8", closefd=True)  # noqa: SIM115 (lives until exit)
        sys.stdout = sys.stderr
    return _reserved


def reserved_stdout() -> TextIO | None:
    """The stream reserve_stdout() kept for JSON lines, None before it was called."""
    return _reserved


class _ReaderGone(asyncio.Protocol):
    def __init__(self, on_lost: Callable[[], None]) -> None:
        self._on_lost = on_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()


class JsonOutput:
    name = "json"

    def __init__(self, ctx: SessionContext, stream: TextIO | None = None) -> None:
        self._ctx = ctx
        self._stream = stream if stream is not None else (_reserved or sys.stdout)
        self._transport: asyncio.WriteTransport | None = None
        self._features: Features | None = None
        self._source = "connecting"
        self._controls: Controls | None = None
        self.lines = 0
        self.dropped = 0

    async def run(self) -> None:
        subscription = self._ctx.hub.subscribe(Score, Features, SourceStatus, Controls, maxsize=4096)
        self._transport = await self._pipe_transport()
        try:
            async for message in subscription:
                if isinstance(message, Features):
                    self._features = message
                elif isinstance(message, SourceStatus):
                    self._source = message.state
                elif isinstance(message, Controls):
                    self._controls = message
                elif isinstance(message, Score) and not self._write(message):
                    return
        finally:
            subscription.close()
            if self._transport is not None:
                self._transport.close()  # flushes what the reader has not taken yet, without waiting for it

    async def _pipe_transport(self) -> asyncio.WriteTransport | None:
        try:
            mode = os.fstat(self._stream.fileno()).st_mode
        except (OSError, ValueError, io.UnsupportedOperation):
            return None  # not a real file (a test's StringIO): write directly
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return None  # a file never blocks for long; a terminal shares its mode flags with stderr: leave both be
        self._stream.flush()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_write_pipe(lambda: _ReaderGone(self._reader_gone), self._stream)
        return transport

    def _reader_gone(self) -> None:
        if not self._ctx.control.stop_requested.is_set():
            self._ctx.control.stop("stdout closed")

    def line(self, score: Score) -> dict[str, Any]:
        features = self._features
        document: dict[str, Any] = {
            "t": round(self._ctx.clock.wall(), ROUND),
            "score": _number(score.value),
            "state": score.state,
            "confidence": _number(score.confidence),
            "quality": None if features is None else _number(features.quality),
            "source": self._source,
            "de": {},
            "bad_channels": {},
            "repaired": {},
            "gap_s": 0.0,
            "source_t": _number(score.source_t),
        }
        if features is not None:
            document["de"] = {
                band: {channel: _number(features.de[b, c]) for c, channel in enumerate(features.channel_names)}
                for b, band in enumerate(features.band_names)
            }
            reasons = zip(features.channel_names, features.bad_reasons, strict=True)
            document["bad_channels"] = {channel: reason for channel, reason in reasons if reason}
            repaired = zip(features.channel_names, features.repaired, strict=False)  # () from an older producer
            document["repaired"] = {channel: count for channel, count in repaired if count}
            document["gap_s"] = _number(features.gap_s)
        if self._controls is not None:
            document["controls"] = {key: _number(value) for key, value in self._controls.as_dict().items()}
        return document

    def _write(self, score: Score) -> bool:
        text = json.dumps(self.line(score), allow_nan=False, separators=(",", ":")) + "\n"
        if self._transport is not None:
            if self._transport.is_closing():
                self._reader_gone()
                return False
            if self._transport.get_write_buffer_size() > MAX_BUFFERED:
                self.dropped += 1  # the reader is behind: drop this line rather than grow without bound
                return True
            self._transport.write(text.encode())
            self.lines += 1
            return True
        try:
            self._stream.write(text)
            self._stream.flush()
        except BrokenPipeError:
            # The consumer went away (`neuromusic run --json | head`): nobody reads the session any more; stop it.
            self._ctx.control.stop("stdout closed")
            return False
        self.lines += 1
        return True


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return round(value, ROUND) if math.isfinite(value) else None


def create(ctx: SessionContext) -> JsonOutput | None:
    return JsonOutput(ctx) if ctx.config.session.output == "json" else None
