"""Remote control: one JSON command in, one reply out, the session changed only by a command that is fully valid.

A command is a JSON object on neuromusic/<device_id>/cmd:

    {"id": "42", "cmd": "pause"}                              also: "resume"
    {"id": "43", "cmd": "stop", "reason": "end of block"}     reason optional
    {"id": "44", "cmd": "set_policy", "name": "mapping"}
    {"id": "45", "cmd": "set_target", "value": 0.7}
    {"id": "46", "cmd": "set_bounds", "bounds": {"tempo_min": 55, "tempo_max": 75}}
    {"id": "47", "cmd": "set_controls", "tempo": 60, "valence": 0.6, "energy": 0.3}
    {"id": "48", "cmd": "clear_override"}
    {"id": "49", "cmd": "marker", "label": "eyes closed"}

The reply on .../cmd/result is {"id": <the command's id or null>, "cmd": <name or null>, "ok": true} or
{"id": ..., "cmd": ..., "ok": false, "error": "<what was wrong>"}. Every argument is checked before anything is
called; a command takes plain numbers and strings only, so none can name a file, a module or code to load. An error
names the field and what it must be, never the value sent: a reply must not carry back whatever a sender put in.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from typing import Any

from neuromusic.daemon.session.control import SessionControl
from neuromusic.models.core.controls import CONTROL_NAMES

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 4096
MAX_ID_LENGTH = 64
MAX_REASON_LENGTH = 200
MAX_NAME_LENGTH = 64
MAX_DEPTH = 8  # the deepest command is {"bounds": {...}}: anything much deeper is refused before it is parsed
# No control takes a value anywhere near this; a bigger integer is refused before it is turned into a float (a
# 400-digit integer overflows float()).
MAX_MAGNITUDE = 1e9


class CommandError(ValueError):
    """A command that must be refused; the message goes back to the operator."""


def _kind(value: Any) -> str:
    """What a value is, in JSON words: the reply says this instead of echoing the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "something else"


def _number(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(f"{key} must be a number, got {_kind(value)}")
    if isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
        raise CommandError(f"{key} is out of range")
    if not math.isfinite(value):
        raise CommandError(f"{key} must be a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise CommandError(f"{key} is out of range")
    return float(value)


def _string(body: dict[str, Any], key: str, limit: int, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise CommandError(f"{key} must be a string, got {_kind(value)}")
    if len(value) > limit:
        raise CommandError(f"{key} is at most {limit} characters")
    return value


def _keys(body: dict[str, Any], allowed: set[str]) -> None:
    extra = set(body) - allowed - {"id", "cmd"}
    if extra:
        raise CommandError(f"unexpected field; this command takes: {', '.join(sorted(allowed)) or 'nothing'}")


def _pause(control: SessionControl, body: dict[str, Any]) -> None:
    _keys(body, set())
    control.pause()


def _resume(control: SessionControl, body: dict[str, Any]) -> None:
    _keys(body, set())
    control.resume()


def _stop(control: SessionControl, body: dict[str, Any]) -> None:
    _keys(body, {"reason"})
    reason = _string(body, "reason", MAX_REASON_LENGTH, required=False)
    control.stop(f"remote stop: {reason}" if reason else "remote stop")


def _set_policy(control: SessionControl, body: dict[str, Any]) -> None:
    _keys(body, {"name"})
    control.set_policy(_string(body, "name", MAX_NAME_LENGTH))


def _set_target(control: SessionControl, body: dict[str, Any]) -> None:
    _keys(body, {"value"})
    control.set_target(_number(body, "value"))


def _set_bounds(control: SessionControl, body: dict[str, Any]) -> None:
    _keys(body, {"bounds"})
    bounds = body.get("bounds")
    if not isinstance(bounds, dict) or not bounds:
        raise CommandError('bounds must be a non-empty object, e.g. {"tempo_min": 55}')
    known = control.bounds.__dataclass_fields__
    if any(key not in known for key in bounds):
        raise CommandError(f"unknown bound; known: {', '.join(sorted(known))}")
    control.set_bounds(**{key: _number(bounds, key) for key in bounds})


def _set_controls(control: SessionControl, body: dict[str, Any]) -> None:
    _keys(body, set(CONTROL_NAMES))
    values = {key: _number(body, key) for key in CONTROL_NAMES}
    try:
        controls = control.check_controls(values)  # refused rather than clamped, naming the control
    except ValueError as error:
        raise CommandError(str(error)) from None
    control.set_controls(controls)


def _clear_override(control: SessionControl, body: dict[str, Any]) -> None:
    _keys(body, set())
    control.set_controls(None)


def _marker(control: SessionControl, body: dict[str, Any]) -> None:
    _keys(body, {"label"})
    control.marker(_string(body, "label", 10_000), source="mqtt")


COMMANDS: dict[str, Callable[[SessionControl, dict[str, Any]], None]] = {
    "pause": _pause,
    "resume": _resume,
    "stop": _stop,
    "set_policy": _set_policy,
    "set_target": _set_target,
    "set_bounds": _set_bounds,
    "set_controls": _set_controls,
    "clear_override": _clear_override,
    "marker": _marker,
}


def _reply_id(body: Any) -> str | int | None:
    value = body.get("id") if isinstance(body, dict) else None
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return value
    return None


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def _nesting(text: bytes) -> int:
    """The deepest bracket nesting outside strings: checked before parsing, so a 3,000-deep value costs nothing."""
    if text.count(b"[") + text.count(b"{") <= MAX_DEPTH:
        return 0  # too few brackets to be too deep: the common case, at no cost
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b"", text)):
        depth += 1 if bracket in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def _parse(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(f"command too long (at most {MAX_PAYLOAD_BYTES} bytes)")
    if _nesting(payload) > MAX_DEPTH:
        raise CommandError(f"command nested too deeply (at most {MAX_DEPTH} levels)")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CommandError("not valid JSON (UTF-8)") from None
    if not isinstance(body, dict):
        raise CommandError('a command must be a JSON object like {"id": "1", "cmd": "pause"}')
    return body


def _run(control: SessionControl, body: dict[str, Any], enabled: bool) -> None:
    raw_name = body.get("cmd")
    if "id" in body and _reply_id(body) is None:
        raise CommandError(f"id must be a string of at most {MAX_ID_LENGTH} characters or an integer")
    if not enabled:
        raise CommandError("remote control is turned off on this device (--no-remote-control)")
    if not isinstance(raw_name, str):
        raise CommandError(f"cmd must be a string; one of: {', '.join(COMMANDS)}")
    action = COMMANDS.get(raw_name)
    if action is None:
        raise CommandError(f"unknown command; one of: {', '.join(COMMANDS)}")
    action(control, body)


def handle(control: SessionControl, payload: bytes, enabled: bool = True) -> dict[str, Any]:
    """Run one command; return the reply. Never raises: every failure is an error reply and the session unchanged."""
    body: Any = None
    try:
        body = _parse(payload)
        _run(control, body, enabled)
    except (CommandError, ValueError, TypeError) as error:
        # SessionControl raises ValueError for values it refuses; it validates before it changes anything.
        return _reply(body, False, str(error)[:500])
    except Exception:  # the last resort: a bug here must cost one command, not the session's remote control
        log.exception("remote command failed unexpectedly")
        return _reply(body, False, "internal error while handling the command")
    return _reply(body, True)


def _reply(body: Any, ok: bool, error: str = "") -> dict[str, Any]:
    raw_name = body.get("cmd") if isinstance(body, dict) else None
    name = raw_name if isinstance(raw_name, str) and raw_name in COMMANDS else None
    reply: dict[str, Any] = {"id": _reply_id(body), "cmd": name, "ok": ok}
    if not ok:
        reply["error"] = error
    return reply
