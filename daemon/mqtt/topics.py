"""The MQTT topic tree and its JSON payloads, version 1. The README's MQTT section is the reader's copy of this module.

    neuromusic/<device_id>/status      retained, QoS 1  online | calibrating | playing | paused | poor-signal | stale |
                                                        offline
                                                        (the Last Will sets "offline" when the daemon dies)
    neuromusic/<device_id>/score       QoS 0  the relaxation score, at most rates.score_hz
    neuromusic/<device_id>/bands       QoS 0  differential entropy per band and channel, at most rates.bands_hz
    neuromusic/<device_id>/quality     QoS 0  which channels are usable and why not, at most rates.quality_hz
    neuromusic/<device_id>/controls    QoS 1  tempo / valence / energy, once per bar
    neuromusic/<device_id>/bar         QoS 0  the bar just composed: ABC and notes, once per bar
    neuromusic/<device_id>/events      QoS 1  markers, control changes, source reconnects, errors, telemetry drops
    neuromusic/<device_id>/config      retained, QoS 1  the session's settings (an allow-list: no secret, path, address)
    neuromusic/<device_id>/cmd         commands in (see remote.py)
    neuromusic/<device_id>/cmd/result  QoS 1  one reply per command

Every payload is a JSON object with "v" (schema version), "device", "t" (seconds on the session clock) and "unix"
(wall-clock seconds when it was sent). Lossy high-rate streams use QoS 0: a newer value replaces a lost one. What an
operator acts on (status, controls, events, command results) uses QoS 1.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from neuromusic.daemon.mqtt.secrets import public_config
from neuromusic.models.core.messages import Bar, Controls, Event, Features, Score, SourceStatus

SCHEMA_VERSION = 1
ROOT = "neuromusic"
TOPICS = ("status", "score", "bands", "quality", "controls", "bar", "events", "config", "cmd", "cmd/result")
QOS: dict[str, int] = {
    "status": 1,
    "score": 0,
    "bands": 0,
    "quality": 0,
    "controls": 1,
    "bar": 0,
    "events": 1,
    "config": 1,
    "cmd": 1,
    "cmd/result": 1,
}
RETAINED = frozenset({"status", "config"})
STATES = ("online", "calibrating", "playing", "paused", "poor-signal", "stale", "offline")


@dataclass(frozen=True)
class Outgoing:
    """One message ready to publish."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


def topic(device_id: str, name: str) -> str:
    return f"{ROOT}/{device_id}/{name}"


def parse_topic(full: str) -> tuple[str, str] | None:
    """'neuromusic/lab-1/cmd/result' -> ('lab-1', 'cmd/result'); None for anything outside the tree."""
    parts = full.split("/", 2)
    if len(parts) != 3 or parts[0] != ROOT or parts[2] not in TOPICS:
        return None
    return parts[1], parts[2]


def clean(value: Any) -> Any:
    """Make a value JSON-safe: numpy to lists, NaN/inf to null (browsers reject NaN), dataclasses to dicts."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [clean(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return clean({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    return str(value)  # Path and friends


def make(device_id: str, name: str, t: float, body: dict[str, Any]) -> Outgoing:
    payload = {"v": SCHEMA_VERSION, "device": device_id, "t": clean(t), "unix": round(time.time(), 3), **clean(body)}
    data = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return Outgoing(topic(device_id, name), data, QOS[name], name in RETAINED)


def status(device_id: str, t: float, state: str, detail: str = "", **extra: Any) -> Outgoing:
    return make(device_id, "status", t, {"state": state, "detail": detail, **extra})


def score(device_id: str, s: Score) -> Outgoing:
    body = {"value": s.value, "confidence": s.confidence, "state": s.state, "raw": s.raw}
    return make(device_id, "score", s.t, body)


def bands(device_id: str, f: Features) -> Outgoing:
    de = np.asarray(f.de, dtype=float)
    good = np.asarray(f.good, dtype=bool)
    # Per-band mean over usable channels: what a chart shows; the full matrix is there for analysis.
    if good.any():
        mean = [float(np.nanmean(row[good])) if np.isfinite(row[good]).any() else None for row in de]
    else:
        mean = [None] * len(f.band_names)
    body = {"bands": list(f.band_names), "channels": list(f.channel_names), "de": de, "mean": mean}
    return make(device_id, "bands", f.t, body)


def quality(device_id: str, f: Features) -> Outgoing:
    body = {
        "quality": f.quality,
        "channels": list(f.channel_names),
        "good": np.asarray(f.good, dtype=bool),
        "bad_reasons": list(f.bad_reasons),
        "gap_s": f.gap_s,
        "repaired": list(f.repaired) or [0] * len(f.channel_names),  # spike samples repaired in the window
    }
    return make(device_id, "quality", f.t, body)


def controls(device_id: str, t: float, c: Controls) -> Outgoing:
    return make(device_id, "controls", t, c.as_dict())


def bar(device_id: str, t: float, b: Bar) -> Outgoing:
    body = {
        "index": b.index,
        "abc": b.abc,
        "meter": b.meter,
        "key": b.key,
        "beats": b.beats,
        "controls": b.controls.as_dict(),
        "repaired": b.repaired,
        "compose_ms": b.compose_ms,
        "chords": list(b.chords),  # the arranger's chord symbols, once the bar is arranged
        "start_t": b.start_t,  # session clock when it starts sounding (None: not scheduled yet)
        "notes": [[n.pitch, n.start, n.duration, n.velocity] for n in b.notes],  # [pitch, start, duration, velocity]
    }
    return make(device_id, "bar", t, body)


def event(device_id: str, e: Event) -> Outgoing:
    return make(device_id, "events", e.t, {"kind": e.kind, "text": e.text, "data": e.data})


def source_event(device_id: str, s: SourceStatus) -> Outgoing:
    return make(
        device_id,
        "events",
        s.t,
        {
            "kind": "source",
            "text": f"source {s.state}" + (f": {s.detail}" if s.detail else ""),
            "data": {"state": s.state, "detail": s.detail},
        },
    )


def config(device_id: str, t: float, config: Any) -> Outgoing:
    # An allow-list, not a deny-list: a setting added later stays private until someone decides it may be public.
    body = clean(config)
    return make(device_id, "config", t, {"config": public_config(body) if isinstance(body, dict) else {}})


def result(device_id: str, t: float, reply: dict[str, Any]) -> Outgoing:
    return make(device_id, "cmd/result", t, reply)
