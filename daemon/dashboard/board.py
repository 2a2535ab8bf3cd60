"""What the dashboard remembers about each device: the latest of everything, per session, in short bounded histories.

A session is one run of a daemon. A new one starts when a device's status comes from a fresh process (its telemetry
counters start again from zero) after the previous one went offline or published more: its chart, events and
calibration start empty, and the last sessions' events stay apart under their own heading.

`Board.update` never raises: a payload that is not a JSON object, too large, too deep or of the wrong shape is
counted in `ignored` (or, for anything unforeseen, in `errors`) and changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neuromusic.daemon.dashboard import payloads
from neuromusic.daemon.mqtt import topics as mqtt_topics
from neuromusic.daemon.mqtt.config import DEVICE_ID_PATTERN

log = logging.getLogger(__name__)

SCORE_HISTORY = 600  # 60 s at 10 Hz: what the chart shows
EVENT_HISTORY = 20
RESULT_HISTORY = 10
SESSIONS_KEPT = 3  # the current session and the two before it (their events only)
MAX_DEVICES = 256  # a broker shared with strangers must not grow our memory without end
MAX_PAYLOAD_BYTES = 256 * 1024  # a whole configuration fits; anything larger is not from a daemon


@dataclass
class Session:
    number: int
    started_unix: float
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EVENT_HISTORY))
    calibration_started: float | None = None  # unix time the calibration began (for the countdown)

    def head(self) -> dict[str, Any]:
        started = self.calibration_started
        return {"number": self.number, "started_unix": self.started_unix, "calibration_started": started}

    def snapshot(self) -> dict[str, Any]:
        return {**self.head(), "events": list(self.events)}


@dataclass
class Device:
    device_id: str
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # topic name -> last sanitized payload
    scores: deque[list[Any]] = field(default_factory=lambda: deque(maxlen=SCORE_HISTORY))  # [unix, value, conf, state]
    results: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RESULT_HISTORY))
    sessions: deque[Session] = field(default_factory=lambda: deque(maxlen=SESSIONS_KEPT))
    last_seen: float | None = None  # unix time of the newest message that came from the daemon itself
    published: int | None = None  # the daemon's telemetry counter in its last status (a drop marks a new process)

    @property
    def session(self) -> Session:
        return self.sessions[-1]

    @property
    def state(self) -> str:
        return str(self.latest.get("status", {}).get("state", "unknown"))

    def new_session(self, now: float) -> None:
        number = self.sessions[-1].number + 1 if self.sessions else 1
        self.sessions.append(Session(number, now))
        status = self.latest.get("status")
        self.latest = {"status": status} if status is not None else {}
        self.scores.clear()
        self.results.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "device": self.device_id,
            "latest": self.latest,
            "scores": list(self.scores),
            "results": list(self.results),
            "session": self.session.snapshot(),
            "previous_sessions": [s.snapshot() for s in list(self.sessions)[:-1]],
            "last_seen": self.last_seen,
        }


class Board:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.devices: dict[str, Device] = {}
        self.ignored = 0  # messages that were not neuromusic JSON objects (counted, never fatal)
        self.errors = 0  # messages that broke a rule nobody foresaw (logged, never fatal)
        self._clock = clock

    def update(self, topic: str, payload: bytes, retained: bool = False) -> dict[str, Any] | None:
        """Take one MQTT message; return the update to send to browsers, or None if it was ignored."""
        try:
            return self._update(topic, payload, retained)
        except Exception:  # the last resort: one message must never end the dashboard
            self.errors += 1
            log.warning("dashboard: a message on %r could not be shown", topic[:120], exc_info=True)
            return None

    def _update(self, topic: str, payload: bytes, retained: bool) -> dict[str, Any] | None:
        parsed = mqtt_topics.parse_topic(topic) if isinstance(topic, str) else None
        if parsed is None or parsed[1] == "cmd" or not DEVICE_ID_PATTERN.match(parsed[0]):
            self.ignored += 1  # commands are others' business; their results are shown
            return None
        device_id, name = parsed
        body = self._decode(payload)
        if body is None:
            self.ignored += 1
            return None
        device = self.devices.get(device_id)
        if device is None:
            if len(self.devices) >= MAX_DEVICES:
                self.ignored += 1
                return None
            device = self.devices[device_id] = Device(device_id)
            device.new_session(self._clock())
        clean = payloads.SANITIZERS[name](body)
        self._seen(device, clean.get("unix"), retained)
        if name == "status":
            self._status(device, clean)
        elif name == "score":
            self._score(device, clean)
        elif name == "events":
            device.session.events.append(clean)
        elif name == "cmd/result":
            device.results.append(clean)
        device.latest[name] = clean
        return {
            "device": device_id,
            "topic": name,
            "payload": clean,
            "session": device.session.head(),
            "last_seen": device.last_seen,
        }

    @staticmethod
    def _decode(payload: bytes) -> dict[str, Any] | None:
        if not isinstance(payload, bytes | bytearray) or len(payload) > MAX_PAYLOAD_BYTES:
            return None
        try:
            body = json.loads(payload)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than the parser goes
            return None
        return body if isinstance(body, dict) else None

    def _seen(self, device: Device, sent: float | None, retained: bool) -> None:
        """A retained message may be hours old: its own time says when the daemon was last heard, not ours."""
        now = self._clock()
        seen = now if not retained else (None if sent is None else min(sent, now))
        if seen is not None and (device.last_seen is None or seen > device.last_seen):
            device.last_seen = seen

    def _status(self, device: Device, status: dict[str, Any]) -> None:
        previous = device.latest.get("status")
        telemetry = status.get("telemetry") or {}
        published, reconnects = telemetry.get("published"), telemetry.get("reconnects")
        fresh_process = reconnects == 0 and published is not None
        if previous is not None and fresh_process:
            went_away = previous["state"] == "offline"
            restarted = device.published is not None and published is not None and published < device.published
            if went_away or restarted:
                device.latest["status"] = status
                device.new_session(self._clock())
        if published is not None:
            device.published = published
        if status["state"] == "calibrating" and device.session.calibration_started is None:
            device.session.calibration_started = status["unix"] or self._clock()

    def _score(self, device: Device, score: dict[str, Any]) -> None:
        t = score["unix"]
        if t is None:
            return
        device.scores.append([t, score["value"], score["confidence"], score["state"]])
        session = device.session
        if score["state"] == "calibrating" and (session.calibration_started is None or t < session.calibration_started):
            session.calibration_started = t

    def device_state(self, device_id: str) -> str | None:
        """The device's last reported state ("unknown" before any status), None for a device never seen."""
        device = self.devices.get(device_id)
        return None if device is None else device.state

    def snapshot(self) -> list[dict[str, Any]]:
        return [self.devices[name].snapshot() for name in sorted(self.devices)]
