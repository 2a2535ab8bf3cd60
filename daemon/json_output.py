"""`--json`: one JSON object per line on stdout for every Score (at least one per hop), for other programs.

    {"t": 1764130000.25, "score": 0.62, "state": "scoring", "confidence": 1.0, "quality": 0.94, "source": "streaming",
     "de": {"alpha": {"Fp1": 1.92, ...}, ...}, "bad_channels": {"T7": "railed"}, "gap_s": 0.0, "source_t": 812.5}

Fields: `t` unix seconds when the line was written; `score` in [0, 1] or null (calibrating, stale, poor signal);
`state` calibrating | scoring | stale | poor-signal; `confidence` in [0, 1]; `quality` fraction of usable channels in
the last window (null before the first); `source` connecting | streaming | stale | reconnecting | stopped; `de` band
differential entropy in nats per band and channel of the last window (null for a bad channel); `bad_channels`
channel -> why it was excluded; `gap_s` largest time-stamp gap in the last hop; `source_t` the score's time on the
source's clock; `controls` (tempo, valence, energy) once a player publishes them. Floats are rounded to 4 decimals.

cmd_run points stdout at the original file descriptor and sends fd 1 to stderr, so C libraries that print (liblsl,
BrainFlow) cannot corrupt the stream: stdout carries these lines and nothing else.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, TextIO

from neuromusic.daemon.context import SessionContext
from neuromusic.models.messages import Controls, Features, Score, SourceStatus

ROUND = 4


class JsonOutput:
    name = "json"

    def __init__(self, ctx: SessionContext, stream: TextIO | None = None) -> None:
        self._ctx = ctx
        self._stream = stream if stream is not None else sys.stdout
        self._features: Features | None = None
        self._source = "connecting"
        self._controls: Controls | None = None
        self.lines = 0

    async def run(self) -> None:
        subscription = self._ctx.hub.subscribe(Score, Features, SourceStatus, Controls, maxsize=4096)
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
            "gap_s": 0.0,
            "source_t": _number(score.t),
        }
        if features is not None:
            document["de"] = {
                band: {channel: _number(features.de[b, c]) for c, channel in enumerate(features.channel_names)}
                for b, band in enumerate(features.band_names)
            }
            reasons = zip(features.channel_names, features.bad_reasons, strict=True)
            document["bad_channels"] = {channel: reason for channel, reason in reasons if reason}
            document["gap_s"] = _number(features.gap_s)
        if self._controls is not None:
            document["controls"] = {key: _number(value) for key, value in self._controls.as_dict().items()}
        return document

    def _write(self, score: Score) -> bool:
        try:
            self._stream.write(json.dumps(self.line(score), allow_nan=False, separators=(",", ":")) + "\n")
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
