"""The [mqtt] flags, shared by `neuromusic run` and `neuromusic dashboard`, and the reading of `--mqtt HOST[:PORT]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neuromusic.daemon.cli.flags import Flag, FlagTable
from neuromusic.models.core.errors import ConfigError


def parse_host_port(text: str, default_port: int = 1883) -> tuple[str, int]:
    """'broker' -> ('broker', 1883); 'broker:1884' -> ('broker', 1884); '[::1]:1884' -> ('::1', 1884). With
    default_port 0, a host without a port gives port 0 (the caller's default)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ConfigError(f"--mqtt {text!r}: give a host, e.g. --mqtt localhost or --mqtt broker.lab:1883")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"--mqtt {text!r}: the port must be a number within 1..65535")
    return host, int(port_text)


def _broker(value: str) -> dict[str, Any]:
    """--mqtt HOST[:PORT] -> host and port; with TLS on and no port given, the port is 8883 (port None: the
    loader's choice)."""
    host, port = parse_host_port(value, default_port=0)
    return {"host": host, "port": port or None}


MQTT = FlagTable(
    "mqtt",
    "MQTT broker and telemetry",
    (
        Flag(
            "--mqtt",
            "host",
            "MQTT broker to report to and take commands from; a port given sets [mqtt.port] too",
            metavar="HOST[:PORT]",
            expand=_broker,
        ),
        Flag("--mqtt-user", "user", "broker user name", metavar="NAME"),
        Flag(
            "--mqtt-password",
            "password",
            "broker password; visible to every user in `ps`: prefer --mqtt-password-file or $NEUROMUSIC_MQTT_PASSWORD",
            metavar="SECRET",
        ),
        Flag("--mqtt-tls", "tls", "connect with TLS (system CA certificates)", type=None, const=True),
        Flag(
            "--mqtt-password-file",
            "password_file",
            "read the broker password from FILE (its first line)",
            type=Path,
            metavar="FILE",
        ),
        Flag(
            "--mqtt-ca-file",
            "ca_file",
            "CA certificate(s) to verify the broker with (turns TLS on)",
            type=Path,
            metavar="PEM",
        ),
        Flag("--mqtt-cert-file", "cert_file", "client certificate for the broker (TLS)", type=Path, metavar="PEM"),
        Flag("--mqtt-key-file", "key_file", "the client certificate's private key", type=Path, metavar="PEM"),
        Flag("--device-id", "device_id", "this daemon's topic level: neuromusic/<ID>/... (default: host name)"),
        Flag("--ha-discovery", "ha_discovery", "publish Home Assistant MQTT discovery configs", type=None, const=True),
        Flag(
            "--no-remote-control",
            "remote_control",
            "take no commands: neuromusic/<ID>/cmd is not even subscribed to",
            type=None,
            const=False,
        ),
    ),
)
# The broker connection alone, for a command that reads no configuration file (`neuromusic dashboard`)
CONNECTION = ("--mqtt", "--mqtt-user", "--mqtt-password", "--mqtt-tls")
