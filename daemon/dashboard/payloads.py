"""Each MQTT payload reduced to what the page draws: known fields only, numbers bounded, text short and printable.

Anyone who can publish on the broker can send anything on neuromusic/<id>/..., so nothing here trusts a payload:
a field of the wrong type, out of range or not finite becomes None (or is left out), a list is cut to a length a
card can show, and text loses its control characters. What comes out is always JSON-safe (no NaN, no huge ints).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from typing import Any

from neuromusic.daemon.mqtt.topics import STATES
from neuromusic.models.core.controls import CONTROLS, describe_all

SCORE_STATES = ("calibrating", "scoring", "stale", "poor-signal")
MAX_TEXT = 200
MAX_NAME = 32
MAX_CHANNELS = 64
MAX_BANDS = 16
MAX_NOTES = 64
MAX_CHORDS = 8
UNIX_RANGE = (0.0, 1e11)  # seconds: anything outside is not a wall-clock time

CONTROL_TABLE = describe_all()
PAGE = {"controls": CONTROL_TABLE}  # in the page's settings: it draws one reading per row of the control table

Sanitizer = Callable[[dict[str, Any]], dict[str, Any]]


def number(value: Any, low: float, high: float) -> float | None:
    """A finite number within [low, high], else None. Huge ints (400 digits) are refused before float() sees them."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and abs(value) > 2**53:
        return None
    result = float(value)
    if not math.isfinite(result) or not low <= result <= high:
        return None
    return result


def integer(value: Any, low: int, high: int) -> int | None:
    result = number(value, low, high)
    return None if result is None or not result.is_integer() else int(result)


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """Printable text of at most `limit` characters ("" for a non-string): no ESC sequences, no line breaks."""
    if not isinstance(value, str):
        return ""
    cut = value[: limit * 4]  # a bound on the work before filtering
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in cut)
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def flag(value: Any, default: bool = False) -> bool:
    return value if isinstance(value, bool) else default


def texts(value: Any, count: int, limit: int = MAX_NAME) -> list[str]:
    return [text(v, limit) for v in value[:count]] if isinstance(value, list) else []


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def unix(body: dict[str, Any]) -> float | None:
    return number(body.get("unix"), *UNIX_RANGE)


def status(body: dict[str, Any]) -> dict[str, Any]:
    state = body.get("state")
    telemetry = body.get("telemetry") if isinstance(body.get("telemetry"), dict) else None
    out: dict[str, Any] = {
        "state": state if isinstance(state, str) and state in STATES else "unknown",
        "detail": text(body.get("detail")),
        "paused": flag(body.get("paused")),
        "policy": text(body.get("policy"), MAX_NAME),
        "target": number(body.get("target"), 0.0, 1.0),
        "remote_control": flag(body.get("remote_control"), default=True),
        "unix": unix(body),
    }
    if telemetry is not None:
        out["telemetry"] = {
            key: integer(telemetry.get(key), 0, 2**53) for key in ("published", "dropped", "reconnects")
        }
    return out


def score(body: dict[str, Any]) -> dict[str, Any]:
    state = body.get("state")
    return {
        "unix": unix(body),
        "value": number(body.get("value"), 0.0, 1.0),
        "confidence": number(body.get("confidence"), 0.0, 1.0),
        "state": state if isinstance(state, str) and state in SCORE_STATES else "unknown",
    }


def bands(body: dict[str, Any]) -> dict[str, Any]:
    names = texts(body.get("bands"), MAX_BANDS, 16)
    means = items(body.get("mean"))
    return {
        "bands": names,
        "mean": [number(means[i], -1e3, 1e3) if i < len(means) else None for i in range(len(names))],
        "unix": unix(body),
    }


def quality(body: dict[str, Any]) -> dict[str, Any]:
    channels = texts(body.get("channels"), MAX_CHANNELS)
    good, reasons = items(body.get("good")), items(body.get("bad_reasons"))
    repaired = items(body.get("repaired"))  # absent from an older daemon: none shown
    return {
        "quality": number(body.get("quality"), 0.0, 1.0),
        "channels": channels,
        "good": [flag(good[i]) if i < len(good) else False for i in range(len(channels))],
        "bad_reasons": [text(reasons[i], 60) if i < len(reasons) else "" for i in range(len(channels))],
        "repaired": [(integer(repaired[i], 0, 10**9) if i < len(repaired) else 0) or 0 for i in range(len(channels))],
        "gap_s": number(body.get("gap_s"), 0.0, 1e6),
        "unix": unix(body),
    }


def controls(body: dict[str, Any]) -> dict[str, Any]:
    """One number per row of the control table, within the control's legal range."""
    out: dict[str, Any] = {spec.name: number(body.get(spec.name), spec.low, spec.high) for spec in CONTROLS}
    out["unix"] = unix(body)
    return out


def _note(value: Any) -> list[float] | None:
    if not isinstance(value, list) or len(value) < 3:
        return None
    pitch, start, duration = integer(value[0], 0, 127), number(value[1], 0.0, 64.0), number(value[2], 0.0, 64.0)
    if pitch is None or start is None or duration is None:
        return None
    return [pitch, start, duration]


def bar(body: dict[str, Any]) -> dict[str, Any]:
    parsed = [_note(n) for n in items(body.get("notes"))[:MAX_NOTES]]
    return {
        "index": integer(body.get("index"), 0, 2**53),
        "key": text(body.get("key"), 16),
        "meter": text(body.get("meter"), 8),
        "beats": number(body.get("beats"), 0.0, 64.0),
        "abc": text(body.get("abc"), 400),
        "chords": texts(body.get("chords"), MAX_CHORDS, 16),
        "notes": [n for n in parsed if n is not None],
        "repaired": flag(body.get("repaired")),
        "unix": unix(body),
        "starts_unix": _starts(body),
    }


def _starts(body: dict[str, Any]) -> float | None:
    """When the bar starts sounding, on the wall clock: it is published when scheduled, a little ahead."""
    sent, t, start = unix(body), number(body.get("t"), -1e12, 1e12), number(body.get("start_t"), -1e12, 1e12)
    if sent is None or t is None or start is None:
        return sent
    return sent + min(60.0, max(0.0, start - t))


def event(body: dict[str, Any]) -> dict[str, Any]:
    return {"kind": text(body.get("kind"), 20), "text": text(body.get("text")), "unix": unix(body)}


def result(body: dict[str, Any]) -> dict[str, Any]:
    command_id = body.get("id")
    return {
        "id": text(command_id, 64) if isinstance(command_id, str) else integer(command_id, -(2**53), 2**53),
        "cmd": text(body.get("cmd"), MAX_NAME),
        "ok": flag(body.get("ok")),
        "error": text(body.get("error")),
        "unix": unix(body),
    }


def config(body: dict[str, Any]) -> dict[str, Any]:
    """Of the whole configuration only the calibration length is drawn (the countdown)."""
    section = body.get("config")
    score_section = section.get("score") if isinstance(section, dict) else None
    baseline = score_section.get("baseline_s") if isinstance(score_section, dict) else None
    return {"baseline_s": number(baseline, 0.0, 86400.0), "unix": unix(body)}


SANITIZERS: dict[str, Sanitizer] = {
    "status": status,
    "score": score,
    "bands": bands,
    "quality": quality,
    "controls": controls,
    "bar": bar,
    "events": event,
    "cmd/result": result,
    "config": config,
}
