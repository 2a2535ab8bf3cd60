"""Command-line flags for MQTT, shared by `neuromusic run` and `neuromusic dashboard`; flags override the TOML."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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


def add_connection_arguments(
    parser: argparse.ArgumentParser,
    broker_help: str = "MQTT broker to report to and take commands from",
    password_help: str = "broker password; visible to every user in `ps`: prefer --mqtt-password-file or "
    "$NEUROMUSIC_MQTT_PASSWORD",
) -> None:
    """The broker connection flags; the help texts differ between `run` (a daemon reporting, with a TOML file) and
    `dashboard` (a viewer, no TOML file)."""
    group = parser.add_argument_group("MQTT broker")
    group.add_argument("--mqtt", metavar="HOST[:PORT]", help=broker_help)
    group.add_argument("--mqtt-user", metavar="NAME", help="broker user name")
    group.add_argument("--mqtt-password", metavar="SECRET", help=password_help)
    group.add_argument(
        "--mqtt-password-file", metavar="FILE", type=Path, help="read the broker password from FILE (its first line)"
    )
    group.add_argument(
        "--mqtt-tls",
        action="store_true",
        default=None,
        help="connect with TLS (system CA certificates; port 8883 unless --mqtt gives one)",
    )
    group.add_argument("--mqtt-ca-file", metavar="PEM", type=Path, help="CA certificate(s) to verify the broker (TLS)")
    group.add_argument("--mqtt-cert-file", metavar="PEM", type=Path, help="client certificate for the broker (TLS)")
    group.add_argument("--mqtt-key-file", metavar="PEM", type=Path, help="the client certificate's private key")


def add_mqtt_arguments(parser: argparse.ArgumentParser) -> None:
    """The `run` flags: broker connection plus this device's identity and what it allows."""
    add_connection_arguments(parser)
    group = parser.add_argument_group("MQTT telemetry")
    group.add_argument(
        "--device-id", metavar="ID", help="this daemon's topic level: neuromusic/<ID>/... (default: host name)"
    )
    group.add_argument(
        "--ha-discovery", action="store_true", default=None, help="publish Home Assistant MQTT discovery configs"
    )
    group.add_argument(
        "--no-remote-control",
        dest="remote_control",
        action="store_false",
        default=None,
        help="take no commands: neuromusic/<ID>/cmd is not even subscribed to",
    )


def mqtt_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags -> {"mqtt.key": value} for load_config; a flag not given is None (the TOML value stays)."""
    overrides: dict[str, Any] = {}
    if getattr(args, "mqtt", None):
        host, port = parse_host_port(args.mqtt, default_port=0)  # 0: 1883, or 8883 with TLS
        overrides["mqtt.host"] = host
        overrides["mqtt.port"] = port or None
    overrides["mqtt.user"] = getattr(args, "mqtt_user", None)
    overrides["mqtt.password"] = getattr(args, "mqtt_password", None)
    overrides["mqtt.password_file"] = getattr(args, "mqtt_password_file", None)
    overrides["mqtt.tls"] = getattr(args, "mqtt_tls", None)
    overrides["mqtt.ca_file"] = getattr(args, "mqtt_ca_file", None)
    overrides["mqtt.cert_file"] = getattr(args, "mqtt_cert_file", None)
    overrides["mqtt.key_file"] = getattr(args, "mqtt_key_file", None)
    overrides["mqtt.device_id"] = getattr(args, "device_id", None)
    overrides["mqtt.ha_discovery"] = getattr(args, "ha_discovery", None)
    overrides["mqtt.remote_control"] = getattr(args, "remote_control", None)
    return overrides
