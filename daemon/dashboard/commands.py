"""What the dashboard forwards from a browser to a daemon: a checked command, or a refusal with an HTTP status.

Without --allow-control only pause, resume and marker are forwarded (what an operator watching a session needs);
stop, policy, target, bounds and overrides steer the music itself and must be asked for when the dashboard starts.
"""

from __future__ import annotations

import json
from typing import Any

from neuromusic.daemon.dashboard.payloads import text
from neuromusic.daemon.mqtt import remote
from neuromusic.daemon.mqtt.config import DEVICE_ID_PATTERN

SAFE_COMMANDS = ("pause", "resume", "marker")
MAX_LABEL = 200


class Refused(Exception):
    """A request the dashboard will not forward; the message goes back to the browser (never the offending value)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than the parser goes
        raise Refused(400, "the body is not valid JSON") from None


def _command_id(body: dict[str, Any], default: str) -> str | int:
    value = body.get("id", default)
    if isinstance(value, str) and 0 < len(value) <= remote.MAX_ID_LENGTH and value.isprintable():
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53:
        return value
    raise Refused(400, f"id must be a printable string of at most {remote.MAX_ID_LENGTH} characters or an integer")


def build(body: Any, allowed: tuple[str, ...], default_id: str) -> tuple[str, dict[str, Any]]:
    """{"device": "lab-1", "cmd": "pause"} -> ("lab-1", {"id": ..., "cmd": "pause"}), or Refused."""
    if not isinstance(body, dict):
        raise Refused(400, 'expected a JSON object like {"device": "lab-1", "cmd": "pause"}')
    device = body.get("device")
    if not isinstance(device, str) or not DEVICE_ID_PATTERN.match(device):
        raise Refused(400, "device must be a device id (letters, digits, - and _)")
    cmd = body.get("cmd")
    if not isinstance(cmd, str) or cmd not in remote.COMMANDS:
        raise Refused(400, f"cmd must be one of: {', '.join(remote.COMMANDS)}")
    if cmd not in allowed:
        raise Refused(403, f"{cmd} is not forwarded by this dashboard (start it with --allow-control)")
    command: dict[str, Any] = {"id": _command_id(body, default_id), "cmd": cmd}
    rest = {k: v for k, v in body.items() if k not in ("device", "cmd", "id")}
    if cmd in ("pause", "resume"):
        if rest:
            raise Refused(400, f"{cmd} takes no arguments")
    elif cmd == "marker":
        label = text(rest.pop("label", None), MAX_LABEL)
        if rest or not label:
            raise Refused(400, f"marker takes one argument: label, 1..{MAX_LABEL} printable characters")
        command["label"] = label
    else:
        command.update(rest)  # the daemon checks every argument of the commands that steer the music
    return device, command


def encode(command: dict[str, Any]) -> bytes:
    try:
        data = json.dumps(command, separators=(",", ":"), allow_nan=False).encode()
    except (ValueError, RecursionError):
        raise Refused(400, "the command cannot be sent as JSON") from None
    if len(data) > remote.MAX_PAYLOAD_BYTES:
        raise Refused(413, f"a command is at most {remote.MAX_PAYLOAD_BYTES} bytes")
    return data
