"""What the dashboard remembers about each device: the latest of everything, and short bounded histories."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from neuromusic.daemon.mqtt import topics as mqtt_topics

SCORE_HISTORY = 600  # 60 s at 10 Hz: what the chart shows
EVENT_HISTORY = 20
RESULT_HISTORY = 10
MAX_DEVICES = 256  # a broker shared with strangers must not grow our memory without end


@dataclass
class Device:
    device_id: str
    latest: dict[str, Any] = field(default_factory=dict)  # topic name -> last payload (status, controls, bands, ...)
    scores: deque[tuple[float, float | None]] = field(default_factory=lambda: deque(maxlen=SCORE_HISTORY))
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EVENT_HISTORY))
    results: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RESULT_HISTORY))

    def snapshot(self) -> dict[str, Any]:
        return {
            "device": self.device_id,
            "latest": self.latest,
            "scores": list(self.scores),
            "events": list(self.events),
            "results": list(self.results),
        }


class Board:
    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.ignored = 0  # messages that were not neuromusic JSON (counted, never fatal)

    def update(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        """Take one MQTT message; return the update to send to browsers, or None if it was ignored."""
        parsed = mqtt_topics.parse_topic(topic)
        if parsed is None or parsed[1] == "cmd":  # commands are others' business; their results are shown
            self.ignored += 1
            return None
        device_id, name = parsed
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self.ignored += 1
            return None
        if not isinstance(body, dict):
            self.ignored += 1
            return None
        device = self.devices.get(device_id)
        if device is None:
            if len(self.devices) >= MAX_DEVICES:
                self.ignored += 1
                return None
            device = self.devices[device_id] = Device(device_id)
        if name == "score":
            value = body.get("value")
            t = body.get("unix")
            if isinstance(t, int | float) and (value is None or isinstance(value, int | float)):
                device.scores.append((float(t), None if value is None else float(value)))
        elif name == "events":
            device.events.append(body)
        elif name == "cmd/result":
            device.results.append(body)
        if name != "config":  # the config is large and not shown; keep only what the page draws
            device.latest[name] = body
        return {"device": device_id, "topic": name, "payload": body}

    def snapshot(self) -> list[dict[str, Any]]:
        return [self.devices[name].snapshot() for name in sorted(self.devices)]
