"""[mqtt] configuration: the broker to report to, this device's name on it, remote control, publish rates.

Telemetry is off unless `host` is set (`--mqtt HOST[:PORT]`); without it the daemon runs exactly as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A device id becomes one topic level: no "/", no MQTT wildcards, nothing a shell or a URL would mangle.
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class MqttRates:
    """Largest publish rate per high-rate topic, in messages per second (0 = never publish that topic)."""

    score_hz: float = 10.0  # the scorer updates about every 100 ms; one message per update
    bands_hz: float = 2.0  # DE per band and channel is bulky (bands x channels floats); two a second draws a chart
    quality_hz: float = 1.0  # channel quality changes slowly

    def validate(self) -> None:
        for name in ("score_hz", "bands_hz", "quality_hz"):
            value = getattr(self, name)
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"rates.{name} must be within 0..100 messages per second, got {value}")


@dataclass(frozen=True)
class MqttConfig:
    host: str = ""  # broker host name or address; "" = telemetry off
    port: int = 1883
    user: str = ""  # "" = connect without a user name
    password: str = ""
    tls: bool = False  # TLS with the system's CA certificates (usually with port 8883)
    device_id: str = ""  # topic level neuromusic/<device_id>/...; "" = the session's device id (the host name)
    remote_control: bool = True  # accept commands on neuromusic/<device_id>/cmd
    ha_discovery: bool = False  # publish Home Assistant MQTT discovery configs (retained)
    keepalive_s: int = 15  # the broker publishes the Last Will after about 1.5 x this without a packet
    queue_size: int = 2000  # messages kept while the broker is away; the oldest are dropped (and counted) beyond it
    reconnect_max_s: float = 4.0  # cap of the jittered backoff between attempts: back within ~4 s of the broker
    rates: MqttRates = field(default_factory=MqttRates)

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def validate(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be within 1..65535, got {self.port}")
        if self.device_id and not DEVICE_ID_PATTERN.match(self.device_id):
            raise ValueError(
                f"device_id {self.device_id!r} is not allowed: use 1-64 letters, digits, '-' or '_' "
                "(it becomes an MQTT topic level)"
            )
        if self.password and not self.user:
            raise ValueError("password is set but user is empty; set user too (--mqtt-user)")
        if not 5 <= self.keepalive_s <= 3600:
            raise ValueError(f"keepalive_s must be within 5..3600, got {self.keepalive_s}")
        if not 10 <= self.queue_size <= 1_000_000:
            raise ValueError(f"queue_size must be within 10..1000000, got {self.queue_size}")
        if not 0.5 <= self.reconnect_max_s <= 300.0:
            raise ValueError(f"reconnect_max_s must be within 0.5..300, got {self.reconnect_max_s}")


def safe_device_id(name: str) -> str:
    """Turn any host name into a valid device id (used when none is configured)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:64]
    return cleaned or "neuromusic"
