"""Secrets for the broker connection: where the password comes from, TLS, and keeping secrets out of what is written.

The password is taken, in this order, from `[mqtt] password` (or `--mqtt-password`), `[mqtt] password_file` (or
`--mqtt-password-file`), or the environment variable NEUROMUSIC_MQTT_PASSWORD. A flag is visible to every user in
`ps`; the file and the environment are not. Whatever holds it, the password never reaches a session folder, a log or
the retained config topic: files get a redacted copy, the broker gets an allow-list.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

from neuromusic.daemon.mqtt.config import MqttConfig
from neuromusic.models.core.errors import ConfigError

PASSWORD_ENV = "NEUROMUSIC_MQTT_PASSWORD"
REDACTED = "***"
# A key or flag holding one of these words (between "_", "-" or ".") holds a secret: its value is replaced wherever it
# is written. A name ending in "file" holds a path to a secret, which is not one.
SECRET_WORDS = frozenset({"password", "passwd", "secret", "token", "apikey"})


def is_secret_name(name: str) -> bool:
    parts = re.split(r"[-_.]+", name.lower().strip("-"))
    return parts[-1] != "file" and any(part in SECRET_WORDS for part in parts)


# What the retained config topic may carry: settings a dashboard or a colleague needs to read a session, and none of
# what identifies hardware, a network or a person (serial numbers, MAC and IP addresses, profile and file paths).
PUBLIC_CONFIG: dict[str, tuple[str, ...] | None] = {  # section -> keys (None: the whole section)
    "source": ("board", "playback_loop", "replay_speed", "stale_after_s"),
    "features": None,
    "score": None,
    "policy": None,
    "composer": ("temperature", "top_k", "top_p", "candidates", "rounds", "meter", "tonic", "max_bar_tokens"),
    "sinks": ("synth", "sample_rate", "gain", "reverb", "lead_bars", "start_delay_s"),
    "arranger": None,
    "session": ("duration_s", "output", "stop_timeout_s"),
    "recording": ("enabled", "raw_eeg"),
    "calibration": None,
    "mqtt": ("device_id", "remote_control", "ha_discovery", "tls", "keepalive_s", "rates", "limits"),
}


def resolve_password(config: MqttConfig, environ: Mapping[str, str] | None = None) -> str:
    """The password to connect with ("" for none); ConfigError when its file cannot be read."""
    if config.password:
        return config.password
    if config.password_file is not None:
        try:
            text = config.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a UTF-8 text file"
            raise ConfigError(f"[mqtt] password_file {config.password_file}: cannot read it ({reason})") from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise ConfigError(f"[mqtt] password_file {config.password_file}: the first line is empty")
        return lines[0]
    value = (os.environ if environ is None else environ).get(PASSWORD_ENV, "")
    return value if config.user else ""  # a lab-wide variable without a user name means nothing to this broker


def tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    """The TLS context for the broker (None without TLS); ConfigError naming the file that cannot be used."""
    if not config.uses_tls:
        return None
    try:
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"[mqtt] ca_file {config.ca_file}: not a usable CA certificate file ({error})") from None
    if config.cert_file is not None:
        try:
            context.load_cert_chain(str(config.cert_file), str(config.key_file) if config.key_file else None)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                f"[mqtt] cert_file {config.cert_file}: not a usable client certificate and key ({error})"
            ) from None
    return context


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plaintext_warning(config: MqttConfig, password: str) -> str | None:
    """The warning to give when a password would cross a network in clear text, else None."""
    if password and not config.uses_tls and not is_loopback(config.host):
        return (
            f"the MQTT password goes to {config.host} without TLS: anyone on the network can read it; "
            "use --mqtt-tls (or [mqtt] tls = true)"
        )
    return None


def redact(document: Any) -> Any:
    """A copy of a JSON-like document with every secret-named value replaced ('' stays '': nothing was set)."""
    if isinstance(document, dict):
        return {
            key: (REDACTED if value else value)
            if is_secret_name(str(key)) and not isinstance(value, dict)
            else redact(value)
            for key, value in document.items()
        }
    if isinstance(document, list | tuple):
        return [redact(value) for value in document]
    return document


def redact_argv(argv: Sequence[str]) -> list[str]:
    """argv with the value of every secret-named flag replaced: `--mqtt-password X` and `--mqtt-password=X`."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
        elif arg.startswith("--") and is_secret_name(arg.split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + REDACTED)
            else:
                out.append(arg)
                hide_next = True
        else:
            out.append(arg)
    return out


def public_config(document: dict[str, Any]) -> dict[str, Any]:
    """The allow-listed part of the session's configuration, for the retained config topic."""
    public: dict[str, Any] = {}
    for section, keys in PUBLIC_CONFIG.items():
        values = document.get(section)
        if not isinstance(values, dict):
            continue
        chosen = values if keys is None else {key: values[key] for key in keys if key in values}
        public[section] = redact(chosen)
    return public
