"""[mqtt] configuration: the broker to report to, this device's name on it, remote control, publish rates.

Telemetry is off unless `host` is set (`--mqtt HOST[:PORT]`); without it the daemon runs exactly as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

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
class MqttLimits:
    """What the daemon accepts from the broker: a token bucket in front of the command handler and a bounded queue of
    received messages, so a flood of commands cannot take the event loop that times the music."""

    command_rate_hz: float = 10.0  # commands handled per second, sustained; beyond it they are dropped and counted
    command_burst: int = 20  # commands handled at once after a quiet spell
    incoming_queue: int = 100  # received messages waiting to be handled; beyond it the broker's are discarded

    def validate(self) -> None:
        if not 0.1 <= self.command_rate_hz <= 1000.0:
            raise ValueError(f"limits.command_rate_hz must be within 0.1..1000, got {self.command_rate_hz}")
        if not 1 <= self.command_burst <= 10_000:
            raise ValueError(f"limits.command_burst must be within 1..10000, got {self.command_burst}")
        if not 1 <= self.incoming_queue <= 100_000:
            raise ValueError(f"limits.incoming_queue must be within 1..100000, got {self.incoming_queue}")


@dataclass(frozen=True)
class MqttConfig:
    host: str = ""  # broker host name or address; "" = telemetry off
    port: int = 0  # 0 = the standard port: 1883, or 8883 with TLS
    user: str = ""  # "" = connect without a user name
    password: str = ""  # prefer password_file or $NEUROMUSIC_MQTT_PASSWORD: a TOML file is easily shared
    password_file: Path | None = None  # a file holding the password (its first line), readable by this user only
    tls: bool = False  # TLS, verifying the broker against the system's CA certificates (or ca_file)
    ca_file: Path | None = None  # CA certificate(s) to verify the broker with, PEM (implies tls)
    cert_file: Path | None = None  # client certificate, PEM, for brokers that authenticate clients by certificate
    key_file: Path | None = None  # the client certificate's private key, PEM (omit when it is inside cert_file)
    device_id: str = ""  # topic level neuromusic/<device_id>/...; "" = the session's device id (the host name)
    remote_control: bool = True  # accept commands on neuromusic/<device_id>/cmd (off: not even subscribed)
    ha_discovery: bool = False  # publish Home Assistant MQTT discovery configs (retained)
    keepalive_s: int = 15  # the broker publishes the Last Will after about 1.5 x this without a packet
    queue_size: int = 2000  # messages kept while the broker is away; the oldest are dropped (and counted) beyond it
    reconnect_max_s: float = 4.0  # cap of the jittered backoff between attempts: back within ~4 s of the broker
    rates: MqttRates = field(default_factory=MqttRates)
    limits: MqttLimits = field(default_factory=MqttLimits)

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None

    @property
    def broker_port(self) -> int:
        if self.port:
            return self.port
        return 8883 if self.uses_tls else 1883

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within 1..65535 (0 = the standard port), got {self.port}")
        if self.device_id and not DEVICE_ID_PATTERN.match(self.device_id):
            raise ValueError(
                f"device_id {self.device_id!r} is not allowed: use 1-64 letters, digits, '-' or '_' "
                "(it becomes an MQTT topic level)"
            )
        if (self.password or self.password_file) and not self.user:
            raise ValueError("a password is set but user is empty; set user too (--mqtt-user)")
        if self.password and self.password_file:
            raise ValueError("set either password or password_file, not both")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file (the client certificate it belongs to)")
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
