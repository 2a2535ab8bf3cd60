"""The LSL outlets service (`--lsl-out`, [lsl_out]): the session's score, controls and markers as Lab Streaming Layer
streams, so LabRecorder records them in one XDF file beside the EEG and the experiment's own markers.

    <prefix>-<device>-score     RelaxationScore  score, confidence   irregular, one sample per hop; NaN score while
                                                                     calibrating, stale or with poor signal
    <prefix>-<device>-controls  MusicControls    tempo, valence,     irregular, one sample per bar, stamped at the
                                                 energy              bar's start
    <prefix>-<device>-markers   Markers          one string          "marker/<label>", "phase/<name>",
                                                                     "bar/<n> key=<key> chords=<c1> <c2>",
                                                                     "control/<text>", "source/<state>"
    <prefix>-<device>-bands     DifferentialEntropy  <channel>-<band>  irregular, one sample per hop (lsl_out.bands)

Each outlet has a stable source_id (`<prefix>:<device>:<stream>`), so a recorder picks it up again after a restart,
and channel labels, units and types in its description.

Time stamps are on the LSL clock (`pylsl.local_clock()`), aligned to the EEG each value came from: a score or a DE
sample carries the time of the last EEG sample of its window. For an LSL EEG source that time already is on the
local LSL clock (the inlet corrects the sender's clock). For other sources the source's clock is mapped onto the LSL
clock by the smallest (arrival - sample time) offset of the last few seconds, the estimate least delayed by the
source's buffering. Bars, markers and state changes happen on the session clock, which is mapped by one offset.
pylsl calls are cheap (microseconds, no network round trip), so they run on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from typing import Any

from neuromusic.daemon.cli.lab_options import LslOutConfig
from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.controls import CONTROLS
from neuromusic.models.core.messages import Bar, Event, Features, Score, SourceStatus

log = logging.getLogger(__name__)

MARKER_KINDS = ("marker", "phase", "control")  # events sent to the markers stream
OFFSET_WINDOW = 20  # hops whose (arrival - sample time) offsets are kept; the smallest maps source time to LSL time


class ClockMap:
    """Maps times onto the LSL clock: the session clock by one offset measured at start, a source's clock by the
    least-delayed offset seen over the last OFFSET_WINDOW hops (or unchanged when the source is LSL itself)."""

    def __init__(self, session_to_lsl: float, source_is_lsl: bool) -> None:
        self.session_to_lsl = session_to_lsl
        self.source_is_lsl = source_is_lsl
        self._offsets: deque[float] = deque(maxlen=OFFSET_WINDOW)

    def observe(self, features: Features) -> None:
        """One hop: its last sample (source time) arrived at features.t (session clock)."""
        if features.source_t is not None and not self.source_is_lsl:
            self._offsets.append(self.session(features.t) - features.source_t)

    def session(self, t: float) -> float:
        return t + self.session_to_lsl

    def source(self, source_t: float | None, fallback_t: float) -> float:
        """A source time on the LSL clock; `fallback_t` (session clock) when there is no source time yet."""
        if source_t is None:
            return self.session(fallback_t)
        if self.source_is_lsl:
            return source_t
        if not self._offsets:
            return self.session(fallback_t)
        return source_t + min(self._offsets)


def stream_names(prefix: str, device_id: str) -> dict[str, str]:
    return {kind: f"{prefix}-{device_id}-{kind}" for kind in ("score", "controls", "markers", "bands")}


def _outlet(
    pylsl: Any, name: str, type_: str, source_id: str, channels: list[tuple[str, str, str]], fmt: Any, device: str
) -> Any:
    """An outlet with (label, unit, type) per channel in its description, irregular rate."""
    info = pylsl.StreamInfo(name, type_, len(channels), pylsl.IRREGULAR_RATE, fmt, source_id)
    desc = info.desc()
    desc.append_child_value("manufacturer", "neuromusic")
    desc.append_child_value("device", device)
    chans = desc.append_child("channels")
    for label, unit, kind in channels:
        channel = chans.append_child("channel")
        channel.append_child_value("label", label)
        channel.append_child_value("unit", unit)
        channel.append_child_value("type", kind)
    return pylsl.StreamOutlet(info)


def marker_text(message: Event | Bar | SourceStatus) -> str | None:
    """The markers stream's string for a hub message, None for messages it does not carry."""
    if isinstance(message, Bar):
        chords = " ".join(message.chords) or "-"
        return f"bar/{message.index} key={message.key} chords={chords}"
    if isinstance(message, SourceStatus):
        return f"source/{message.state}"
    if message.kind in MARKER_KINDS and message.data.get("source") != "lsl":  # an LSL marker is already on LSL
        return f"{message.kind}/{message.text}"
    return None


class LslOut:
    name = "lsl_out"

    def __init__(self, ctx: SessionContext, config: LslOutConfig) -> None:
        self._ctx = ctx
        self.config = config
        self.names = stream_names(config.name_prefix, ctx.device_id)
        self._outlets: dict[str, Any] = {}
        self._last_source_t: float | None = None
        self._clock_map: ClockMap | None = None
        self._band_layout: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self.pushed: dict[str, int] = {"score": 0, "controls": 0, "markers": 0, "bands": 0}

    async def run(self) -> None:
        subscription = self._ctx.hub.subscribe(Score, Features, Bar, Event, SourceStatus, maxsize=4096)
        try:
            pylsl = await asyncio.to_thread(_import_pylsl)
            self._clock_map = ClockMap(
                pylsl.local_clock() - self._ctx.clock.now(), self._ctx.config.source.board == "lsl"
            )
            self._open(pylsl)
            log.info("LSL outlets: %s", ", ".join(self._outlets_names()))
            async for message in subscription:
                self.take(message)
        finally:
            subscription.close()
            self.release()

    def _outlets_names(self) -> list[str]:
        return [self.names[kind] for kind in self._outlets]

    def _open(self, pylsl: Any) -> None:
        device = self._ctx.device_id
        prefix = self.config.name_prefix

        def sid(kind: str) -> str:
            return f"{prefix}:{device}:{kind}"

        self._outlets["score"] = _outlet(
            pylsl, self.names["score"], "RelaxationScore", sid("score"),
            [("score", "normalized", "score"), ("confidence", "normalized", "confidence")], pylsl.cf_double64, device,
        )  # fmt: skip
        self._outlets["controls"] = _outlet(
            pylsl, self.names["controls"], "MusicControls", sid("controls"),
            [spec.lsl_channel() for spec in CONTROLS], pylsl.cf_float32, device,
        )  # fmt: skip
        self._outlets["markers"] = _outlet(
            pylsl, self.names["markers"], "Markers", sid("markers"), [("marker", "", "marker")], pylsl.cf_string,
            device,
        )  # fmt: skip

    def _open_bands(self, features: Features) -> None:
        import pylsl

        channels = [
            (f"{channel}-{band}", "nats", "DE") for channel in features.channel_names for band in features.band_names
        ]
        device = self._ctx.device_id
        self._outlets["bands"] = _outlet(
            pylsl, self.names["bands"], "DifferentialEntropy", f"{self.config.name_prefix}:{device}:bands", channels,
            pylsl.cf_float32, device,
        )  # fmt: skip
        self._band_layout = (features.channel_names, features.band_names)

    def take(self, message: object) -> None:
        clock_map = self._clock_map
        assert clock_map is not None
        if isinstance(message, Features):
            clock_map.observe(message)
            if self.config.bands:
                self._push_bands(message, clock_map.source(message.source_t, message.t))
        elif isinstance(message, Score):
            self._push_score(message, clock_map)
        elif isinstance(message, Bar):
            when = clock_map.session(message.start_t if message.start_t is not None else self._ctx.clock.now())
            self._push("controls", list(message.controls.values()), when)
            self._push("markers", [marker_text(message)], when)
        elif isinstance(message, Event | SourceStatus):
            text = marker_text(message)
            if text is not None:
                self._push("markers", [text], clock_map.session(message.t))

    def _push_score(self, score: Score, clock_map: ClockMap) -> None:
        if score.source_t is not None and score.source_t == self._last_source_t:
            return  # a held score re-published while the source is quiet: its window was sent already
        self._last_source_t = score.source_t
        value = math.nan if score.value is None else score.value
        self._push("score", [value, score.confidence], clock_map.source(score.source_t, score.t))

    def _push_bands(self, features: Features, when: float) -> None:
        if "bands" not in self._outlets:
            self._open_bands(features)
        if (features.channel_names, features.band_names) != self._band_layout:
            return  # a reconnect to another montage: the stream's channels cannot change; say nothing more per hop
        # (bands, channels) -> channel-major, matching the labels <channel>-<band>
        self._push("bands", features.de.T.reshape(-1).tolist(), when)

    def _push(self, kind: str, sample: list[Any], when: float) -> None:
        outlet = self._outlets.get(kind)
        if outlet is not None:
            outlet.push_sample(sample, when)
            self.pushed[kind] += 1

    async def __aenter__(self) -> LslOut:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()  # the session leaves its services when it ends, whether or not run() started

    def release(self) -> None:
        outlets, self._outlets = self._outlets, {}
        outlets.clear()  # dropping the last reference destroys each outlet; its consumers see it vanish


def _import_pylsl() -> Any:
    import pylsl

    return pylsl


def create(ctx: SessionContext) -> LslOut | None:
    config: LslOutConfig = ctx.config.lsl_out
    return LslOut(ctx, config) if config.enabled else None
