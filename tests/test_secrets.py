"""Secrets and the broker connection: the password in no file a session writes and in no retained message, private
session folders, the password from a file or the environment, TLS with a CA file and a client certificate, a warning
for a password sent in clear, client ids that never collide, labels a terminal cannot be steered by."""

from __future__ import annotations

import asyncio
import gc
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from mqtt_fixtures import Broker, broker_fixture, free_port, make_context  # noqa: F401
from neuromusic.daemon.cli.flags import add_table, table_overrides
from neuromusic.daemon.cli.mqtt_options import MQTT
from neuromusic.daemon.config import load_config
from neuromusic.daemon.mqtt import secrets
from neuromusic.daemon.services.telemetry import Telemetry
from neuromusic.daemon.session.control import clean_label
from neuromusic.models.core.errors import ConfigError

PASSWORD = "pa55-Word-no-one-may-read"


def test_redact_masks_every_secret_named_key_and_flag() -> None:
    document = {"mqtt": {"password": PASSWORD, "password_file": "/etc/pw", "user": "u"}, "composer": {"top_k": 5}}
    document["composer"]["max_bar_tokens"] = 64  # "tokens" is no secret
    redacted = secrets.redact(document)
    assert redacted["mqtt"] == {"password": "***", "password_file": "/etc/pw", "user": "u"}
    assert redacted["composer"] == {"top_k": 5, "max_bar_tokens": 64}
    assert secrets.redact({"password": ""}) == {"password": ""}  # nothing set stays visibly unset
    argv = ["run", "--mqtt-password", PASSWORD, f"--mqtt-password={PASSWORD}", "--mqtt-password-file", "/etc/pw"]
    assert secrets.redact_argv(argv) == [
        "run",
        "--mqtt-password",
        "***",
        "--mqtt-password=***",
        "--mqtt-password-file",
        "/etc/pw",
    ]


@pytest.mark.mqtt
@pytest.mark.slow
def test_a_real_session_writes_the_password_nowhere_and_keeps_its_folder_private(
    broker: Broker, tmp_path: Path
) -> None:
    folder = tmp_path / "session"
    command = [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--board", "simulated", "--script", "calm:60"]
    command += ["--baseline", "2", "--quiet", "--synth", "none", "--duration", "4", "--session-dir", str(folder)]
    command += ["--mqtt", broker.address, "--device-id", "private", "--mqtt-user", "u", "--mqtt-password", PASSWORD]
    subprocess.run(command, check=True, timeout=120, capture_output=True)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {"manifest.json", "config.json", "eeg.bin"} <= {p.name for p in files}
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path.name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert '"***"' in (folder / "manifest.json").read_text()  # the flag's value, masked in the argv kept


def test_password_from_a_file_or_the_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(PASSWORD + "\n")
    from_file = load_config(None, {"mqtt.host": "b", "mqtt.user": "u", "mqtt.password_file": str(secret_file)})
    assert secrets.resolve_password(from_file.mqtt, environ={}) == PASSWORD
    env = load_config(None, {"mqtt.host": "b", "mqtt.user": "u"}).mqtt
    assert secrets.resolve_password(env, environ={secrets.PASSWORD_ENV: PASSWORD}) == PASSWORD
    assert secrets.resolve_password(env, environ={}) == ""
    missing = load_config(None, {"mqtt.host": "b", "mqtt.user": "u", "mqtt.password_file": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="password_file"):
        secrets.resolve_password(missing.mqtt, environ={})
    with pytest.raises(ConfigError, match="not both"):
        load_config(None, {"mqtt.user": "u", "mqtt.password": "x", "mqtt.password_file": str(secret_file)})


async def test_the_password_file_and_the_environment_reach_the_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "lab-1", PASSWORD], check=True)
    secured = Broker(tmp_path, extra=f"allow_anonymous false\npassword_file {passwords}\n")
    secured.start()
    secret_file = tmp_path / "pw"
    secret_file.write_text(PASSWORD)
    try:
        address = {"host": secured.host, "port": secured.port, "user": "lab-1"}
        assert await connects(make_context(**address, password_file=str(secret_file)))
        monkeypatch.setenv(secrets.PASSWORD_ENV, PASSWORD)
        assert await connects(make_context(**address))
        monkeypatch.setenv(secrets.PASSWORD_ENV, "wrong")
        assert not await connects(make_context(**address), within=1.0)
    finally:
        secured.kill()


async def connects(ctx: object, within: float = 4.0) -> bool:
    service = Telemetry(ctx, ctx.config.mqtt)  # type: ignore[attr-defined]
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.connected.wait(), within)
        return True
    except TimeoutError:
        return False
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(name="certificates")
def certificates_fixture(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the CA."""
    folder = tmp_path / "pki"
    folder.mkdir()
    paths = {name: folder / f"{name}.pem" for name in ("ca", "ca-key")}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", str(paths["ca-key"]), "-out", str(paths["ca"]))  # fmt: skip
    for name, subject, extension in (
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\n"),
        ("client", "/CN=lab-1", "extendedKeyUsage=clientAuth\n"),
    ):
        key, csr, ext = folder / f"{name}-key.pem", folder / f"{name}.csr", folder / f"{name}.ext"
        ext.write_text(extension)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(csr))
        openssl("x509", "-req", "-in", str(csr), "-CA", str(paths["ca"]), "-CAkey", str(paths["ca-key"]),
                "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(folder / f"{name}.pem"))  # fmt: skip
        paths[name], paths[f"{name}-key"] = folder / f"{name}.pem", key
    return paths


# paho-mqtt 2.2 does not close the socket of a failed TLS handshake (the garbage collector does, with a warning).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_tls_with_a_ca_file_and_a_client_certificate(tmp_path: Path, certificates: dict[str, Path]) -> None:
    port = free_port()
    tls = (
        f"listener {port} 127.0.0.1\ncafile {certificates['ca']}\ncertfile {certificates['server']}\n"
        f"keyfile {certificates['server-key']}\nrequire_certificate true\nallow_anonymous true\n"
    )
    broker = Broker(tmp_path, extra=tls)
    broker.start()
    try:
        address = {"host": "127.0.0.1", "port": port, "ca_file": str(certificates["ca"])}
        client = {"cert_file": str(certificates["client"]), "key_file": str(certificates["client-key"])}
        assert await connects(make_context(**address, **client))
        assert not await connects(make_context(**address), within=1.5)  # the broker requires a client certificate
        assert not await connects(make_context(host="127.0.0.1", port=port, tls=True, **client), within=1.5)
    finally:
        broker.kill()
        gc.collect()
    not_a_certificate = make_context(host="b", ca_file=str(tmp_path / "broker.log"))
    with pytest.raises(ConfigError, match="ca_file"):
        Telemetry(not_a_certificate, not_a_certificate.config.mqtt)


def test_tls_uses_port_8883_unless_a_port_is_given() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_table(parser, MQTT)
    for argv, port in (
        (["--mqtt", "b", "--mqtt-tls"], 8883),
        (["--mqtt", "b"], 1883),
        (["--mqtt", "b:9", "--mqtt-tls"], 9),
    ):
        config = load_config(None, table_overrides(parser.parse_args(argv), [MQTT]))
        assert config.mqtt.broker_port == port, argv
    argv = ["--mqtt", "b", "--mqtt-user", "u", "--mqtt-password-file", "/run/pw", "--mqtt-ca-file", "/etc/ca.pem"]
    argv += ["--mqtt-cert-file", "/etc/c.pem", "--mqtt-key-file", "/etc/k.pem"]
    flags = load_config(None, table_overrides(parser.parse_args(argv), [MQTT])).mqtt
    assert (flags.password_file, flags.ca_file, flags.cert_file, flags.key_file) == tuple(
        Path(p) for p in ("/run/pw", "/etc/ca.pem", "/etc/c.pem", "/etc/k.pem")
    )
    assert flags.broker_port == 8883  # a CA file means TLS
    with_ca = load_config(None, {"mqtt.host": "b", "mqtt.ca_file": "/etc/ssl/ca.pem"}).mqtt
    assert with_ca.uses_tls and with_ca.broker_port == 8883


def test_a_password_in_clear_to_another_host_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    remote = make_context(host="10.20.30.40", device_id="w", user="u", password=PASSWORD)
    assert "without TLS" in (secrets.plaintext_warning(remote.config.mqtt, PASSWORD) or "")
    for quiet in (
        make_context(host="127.0.0.1", user="u", password=PASSWORD),
        make_context(host="localhost", user="u", password=PASSWORD),
        make_context(host="10.20.30.40", user="u", password=PASSWORD, tls=True),
        make_context(host="10.20.30.40"),
    ):
        assert secrets.plaintext_warning(quiet.config.mqtt, PASSWORD if quiet.config.mqtt.user else "") is None
    service = Telemetry(remote, remote.config.mqtt)
    assert service._plaintext_warning and PASSWORD not in service._plaintext_warning


def test_client_ids_differ_between_two_daemons_of_one_device() -> None:
    ids = {Telemetry(ctx, ctx.config.mqtt).client_id for ctx in (make_context(host="b", device_id="pi") for _ in "ab")}
    assert len(ids) == 2 and all(i.startswith("neuromusic-pi-") for i in ids)


def test_labels_lose_control_characters() -> None:
    assert clean_label("eyes\x1b[2J\x1b]0;owned\x07 closed\n\tnow") == "eyes [2J ]0;owned closed now"
    assert clean_label("\u202eevil\ud800") == "evil"
    ctx = make_context()
    event = ctx.control.marker("a\x00b\r\nc")
    assert event.text == "a b c"
    with pytest.raises(ValueError, match="non-empty"):
        ctx.control.marker("\x1b\x07")
    ctx.control.stop("end\x1b[31m")
    assert ctx.control.stop_reason == "end [31m"


def test_a_config_path_that_is_a_folder_or_binary_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "binary.toml").write_bytes(bytes(range(256)))
    for path, words in ((tmp_path, "is a folder"), (tmp_path / "binary.toml", "not a text file")):
        result = subprocess.run(
            [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_malformed_session_folders_are_one_clear_line(tmp_path: Path) -> None:
    cases = {
        "sfreq-0": '{"format":"neuromusic-session","version":1,"eeg":{"channel_names":["C3"],"sfreq":0}}',
        "list": "[]",
        "t0-text": '{"format":"neuromusic-session","version":1,"t0":"soon"}',
        "names": '{"format":"neuromusic-session","version":1,"eeg":{"channel_names":"C3","sfreq":250}}',
    }
    for name, manifest in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(manifest)
        result = subprocess.run(
            [sys.executable, "-m", "neuromusic.daemon.cli", "report", str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, name
