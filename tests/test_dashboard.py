"""The dashboard: its board, its HTTP API behind the Host check, the token and the Origin check, and its command."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest
from mqtt_fixtures import Broker, Collector, broker_fixture, features, free_port, make_context  # noqa: F401
from neuromusic.daemon.dashboard import board as board_module
from neuromusic.daemon.dashboard import server as server_module
from neuromusic.daemon.dashboard.access import Access, read_token_file, split_host
from neuromusic.daemon.dashboard.board import Board
from neuromusic.daemon.dashboard.server import Broker as BrokerAddress
from neuromusic.daemon.dashboard.server import Dashboard
from neuromusic.daemon.mqtt import topics
from neuromusic.daemon.services.telemetry import Telemetry
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Score, SourceStatus

pytestmark = pytest.mark.mqtt

TOKEN = "test-token-0123456789abcdef"


def test_board_keeps_devices_apart_and_ignores_junk(monkeypatch: pytest.MonkeyPatch) -> None:
    board = Board()
    assert board.update("neuromusic/a/score", b'{"v":1,"unix":1.0,"value":0.5,"confidence":1,"state":"scoring"}')
    assert board.update("neuromusic/b/status", b'{"v":1,"state":"playing"}')
    assert board.update("neuromusic/a/score", b"not json") is None
    assert board.update("neuromusic/a/cmd", b'{"cmd":"pause"}') is None  # commands are not shown
    assert board.update("other/a/score", b"{}") is None
    assert board.update("neuromusic/a/score", b"[1]") is None
    assert [d["device"] for d in board.snapshot()] == ["a", "b"] and board.ignored == 4
    assert board.snapshot()[0]["scores"] == [[1.0, 0.5, 1.0, "scoring"]]
    monkeypatch.setattr(board_module, "MAX_DEVICES", 2)
    assert board.update("neuromusic/c/score", b'{"unix":1.0,"value":0.5}') is None  # bounded memory
    for i in range(2000):
        board.update("neuromusic/a/events", json.dumps({"kind": "info", "text": str(i)}).encode())
    assert len(board.devices["a"].session.events) == board_module.EVENT_HISTORY


def test_board_bounds_what_it_keeps_and_never_raises() -> None:
    """The messages that killed the old dashboard: huge numbers, deep nesting, wrong types, control characters."""
    board = Board()
    attacks = [
        b'{"kind": "marker", "text": "x", "unix": 1' + b"0" * 400 + b"}",
        b'{"kind": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b"[" * 100000,
        b'{"kind": {"a": 1}, "text": ["list"], "unix": "now"}',
        b'{"kind": "marker", "text": "\\u001b[2Jclear\\nscreen\\u0007", "unix": 1e999}',
        b"\xff\xfe not utf-8",
        b'{"value": NaN, "confidence": Infinity, "unix": -Infinity, "state": {"x": 1}}',
    ]
    for payload in attacks:
        for name in ("events", "score", "status", "quality", "bands", "bar", "controls", "cmd/result", "config"):
            update = board.update(f"neuromusic/dev/{name}", payload)
            json.dumps(update, allow_nan=False)  # what browsers get is strict JSON
    assert board.errors == 0
    events = board.devices["dev"].session.events
    assert {"kind": "marker", "text": "[2Jclear screen", "unix": None} in events
    assert all(e["unix"] is None or e["unix"] < 1e11 for e in events)
    json.dumps(board.snapshot(), allow_nan=False)


def test_board_starts_a_new_session_when_a_daemon_restarts() -> None:
    now = [1000.0]
    board = Board(clock=lambda: now[0])

    def status(state: str, published: int, reconnects: int = 0) -> None:
        telemetry = {"published": published, "dropped": 0, "reconnects": reconnects}
        board.update(
            "neuromusic/d/status", json.dumps({"state": state, "unix": now[0], "telemetry": telemetry}).encode()
        )

    def event(text: str) -> None:
        board.update("neuromusic/d/events", json.dumps({"kind": "info", "text": text, "unix": now[0]}).encode())

    status("calibrating", 0)
    event("first run")
    status("playing", 40)
    board.update("neuromusic/d/status", b'{"state": "offline", "detail": "connection lost"}')  # the Last Will
    status("playing", 90, reconnects=1)  # the same process back after a network cut: same session
    event("still the first run")
    assert board.devices["d"].session.number == 1
    now[0] += 60
    status("online", 0)  # a fresh process after the offline status
    event("second run")
    device = board.devices["d"]
    assert device.session.number == 2 and [e["text"] for e in device.session.events] == ["second run"]
    assert [e["text"] for e in device.sessions[0].events] == ["first run", "still the first run"]
    assert device.scores.maxlen and not device.scores  # the chart starts empty too
    status("calibrating", 3)
    status("online", 0)  # restarted without an offline in between (killed and back within the keepalive)
    assert board.devices["d"].session.number == 3 and board.devices["d"].session.calibration_started is None
    now[0] += 1
    status("calibrating", 1)
    assert board.devices["d"].session.calibration_started == now[0]  # the countdown starts here


def test_board_shows_a_bar_when_it_starts_sounding() -> None:
    board = Board()
    bar = {"index": 3, "key": "Am", "chords": ["Am", "E7", 5], "t": 100.0, "start_t": 101.5, "unix": 1000.0}

    def starts() -> Any:
        update = board.update("neuromusic/d/bar", json.dumps(bar).encode())
        assert update is not None
        return update["payload"]["starts_unix"]

    assert starts() == 1001.5 and board.devices["d"].latest["bar"]["chords"] == ["Am", "E7", ""]
    bar["start_t"] = 1e9  # a bar "starting" in 30 years is shown within a minute at the latest
    assert starts() == 1060.0
    del bar["start_t"]  # a daemon that does not say: shown when it arrives
    assert starts() == 1000.0


def test_board_remembers_when_a_device_was_last_heard() -> None:
    now = [5000.0]
    board = Board(clock=lambda: now[0])
    board.update("neuromusic/d/status", b'{"state": "playing", "unix": 4000.0}', retained=True)
    assert board.devices["d"].last_seen == 4000.0  # a retained message is as old as it says
    now[0] = 5100.0
    board.update("neuromusic/d/score", b'{"state": "scoring", "value": 0.5, "unix": 1.0}')
    assert board.devices["d"].last_seen == 5100.0  # a live message: when it arrived


def test_telemetry_reports_poor_signal_apart_from_stale_and_calibrating() -> None:
    """What the badge shows comes from the daemon's status: no usable channel is "poor-signal", also while calibrating
    (such a calibration does not advance), and is neither "stale" (no samples) nor "calibrating"."""
    ctx = make_context(device_id="states")
    service = Telemetry(ctx, ctx.config.mqtt)
    good, bad = features(1.0), dataclasses.replace(features(1.0), good=np.zeros(4, dtype=bool))
    service.accept(good)
    service.accept(Score(1.0, None, 0.5, "calibrating"))
    assert service.state == "calibrating"
    service.accept(bad)
    service.accept(Score(1.1, None, 0.0, "calibrating"))
    assert service.state == "poor-signal"
    service.accept(good)
    service.accept(Score(1.2, 0.6, 1.0, "scoring"))
    assert service.state == "playing"
    service.accept(bad)
    service.accept(Score(1.3, None, 0.0, "poor-signal"))
    assert service.state == "poor-signal"
    service.accept(SourceStatus(1.4, "stale", "no samples for 2.0 s"))
    service.accept(Score(1.4, None, 0.0, "stale"))
    assert service.state == "stale"
    states = [json.loads(m.payload)["state"] for m in service._outbox if m.topic.endswith("/status")]
    assert states == ["calibrating", "poor-signal", "calibrating", "playing", "poor-signal", "stale"]
    assert "poor-signal" in topics.STATES


def test_access_host_names_and_tokens(tmp_path: Path) -> None:
    access = Access.create(8050, ["lab.example"], TOKEN)
    for ok in ("localhost:8050", "127.0.0.1:8050", "[::1]:8050", "LAB.example", "192.168.1.20:8050", "lab.example."):
        assert access.host_allowed(ok), ok
    for bad in ("evil.example", "evil.example:8050", "", None, "localhost:x", "a b", "[::1", "localhost@evil", "é"):
        assert not access.host_allowed(bad), bad
    assert split_host("[::1]:80") == "::1" and split_host("Host.Lab:1") == "host.lab"
    assert access.authorized({"Authorization": f"Bearer {TOKEN}"}, {})
    assert access.authorized({}, {access.cookie: TOKEN})
    assert not access.authorized({"Authorization": "Bearer nope"}, {access.cookie: TOKEN})
    assert not access.authorized({}, {access.cookie: TOKEN[:-1]})
    assert Access.create(8050).token != Access.create(8050).token  # a new one at every launch
    good = tmp_path / "token"
    good.write_text(TOKEN + "\n")
    assert read_token_file(good) == TOKEN
    for content in ("short\n", "", "with space in the middle of it\n"):
        good.write_text(content)
        with pytest.raises(ConfigError, match="--auth-file"):
            read_token_file(good)
    with pytest.raises(ConfigError, match="cannot read"):
        read_token_file(tmp_path)


@pytest.fixture
async def dashboard(broker: Broker) -> AsyncIterator[Dashboard]:
    dash = Dashboard(BrokerAddress(broker.host, broker.port), "127.0.0.1", 0, token=TOKEN)
    task = asyncio.create_task(dash.run())
    await asyncio.wait_for(dash.ready.wait(), 5)
    for _ in range(100):
        if dash.broker_connected:
            break
        await asyncio.sleep(0.05)
    yield dash
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def http(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str = "application/json",
    headers: Mapping[str, str | None] | None = None,
) -> tuple[int, bytes, str]:
    """One raw HTTP/1.1 request; the token is sent unless `headers` says otherwise."""
    fields: dict[str, str | None] = {"Host": f"127.0.0.1:{port}", "Authorization": f"Bearer {TOKEN}"}
    fields["Content-Type"] = content_type
    fields.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + body)
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    head_part, _, content = data.partition(b"\r\n\r\n")
    return status, content, head_part.decode("latin-1")


async def test_http_api(dashboard: Dashboard, broker: Broker) -> None:
    port = dashboard.port
    status, page, _ = await http(port, "GET", "/")
    assert status == 200 and b"<title>neuromusic dashboard</title>" in page and b"http" not in page.split(b"<body>")[1]
    assert (await http(port, "GET", "/static/app.js"))[0] == 200
    for path in ("/static/../server.py", "/static/..%2fserver.py", "/nope", "/static/.hidden", "/static/index.html"):
        assert (await http(port, "GET", path))[0] == 404, path
    ctx = make_context(host=broker.host, port=broker.port, device_id="api")
    service = Telemetry(ctx, ctx.config.mqtt)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.connected.wait(), 5)
    try:
        for _ in range(100):  # the dashboard must have seen the device before it forwards to it
            if dashboard.board.device_state("api") not in (None, "unknown"):
                break
            await asyncio.sleep(0.02)
        cmd = json.dumps({"device": "api", "cmd": "pause"}).encode()
        status, reply, _ = await http(port, "POST", "/api/cmd", cmd)
        assert status == 202 and json.loads(reply)["id"].startswith("dash-")
        for _ in range(100):
            if ctx.control.paused:
                break
            await asyncio.sleep(0.02)
        assert ctx.control.paused
        assert (await http(port, "POST", "/api/cmd", cmd, content_type="text/plain"))[0] == 415  # no cross-site forms
        assert (await http(port, "POST", "/api/cmd", b"{nope"))[0] == 400
        assert (await http(port, "POST", "/api/cmd", b"[" * 4000))[0] == 400  # deeper than the JSON parser goes
        assert (await http(port, "POST", "/api/cmd", b'{"device": "a/b", "cmd": "pause"}'))[0] == 400
        assert (await http(port, "POST", "/api/cmd", b'{"device": "api", "cmd": "shell"}'))[0] == 400
        assert (await http(port, "POST", "/api/cmd", b'{"device": "api", "cmd": ["pause"]}'))[0] == 400
        assert (await http(port, "POST", "/api/cmd", b'{"device": "api", "cmd": {"a": 1}}'))[0] == 400
        assert (await http(port, "POST", "/api/cmd", b'{"device": "api", "cmd": "pause", "x": 1}'))[0] == 400
        assert (await http(port, "POST", "/api/cmd", b"x" * 5000))[0] == 413
        assert (await http(port, "GET", "/api/cmd"))[0] == 405
        status, devices, _ = await http(port, "GET", "/api/devices")
        assert status == 200 and "api" in [d["device"] for d in json.loads(devices)["devices"]]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_only_safe_commands_reach_known_online_devices(dashboard: Dashboard, broker: Broker) -> None:
    """stop, set_bounds & co. need --allow-control; unknown and offline devices get a 4xx, and nothing is sent."""
    ctx = make_context(host=broker.host, port=broker.port, device_id="lab-1")
    service = Telemetry(ctx, ctx.config.mqtt)
    async with Collector(broker, "neuromusic/+/cmd") as sent:
        task = asyncio.create_task(service.run())
        await asyncio.wait_for(service.connected.wait(), 5)
        for _ in range(100):
            if dashboard.board.device_state("lab-1") == "online":
                break
            await asyncio.sleep(0.02)
        for cmd in ('"stop"', '"set_bounds", "bounds": {"tempo_max": 300}', '"set_target", "value": 1'):
            status, reply, _ = await http(
                dashboard.port, "POST", "/api/cmd", f'{{"device": "lab-1", "cmd": {cmd}}}'.encode()
            )
            assert status == 403 and b"--allow-control" in reply
        assert (await http(dashboard.port, "POST", "/api/cmd", b'{"device": "ghost", "cmd": "pause"}'))[0] == 404
        marker = b'{"device": "lab-1", "cmd": "marker", "label": "eyes\\u001b[31m closed"}'
        assert (await http(dashboard.port, "POST", "/api/cmd", marker))[0] == 202
        await sent.wait_for("cmd")
        assert json.loads(sent.on("cmd")[0].payload)["label"] == "eyes [31m closed"  # no ESC reaches the daemon
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)  # a clean stop: the daemon says "offline"
        for _ in range(100):
            if dashboard.board.device_state("lab-1") == "offline":
                break
            await asyncio.sleep(0.02)
        status, reply, _ = await http(dashboard.port, "POST", "/api/cmd", b'{"device": "lab-1", "cmd": "pause"}')
        assert status == 409 and b"offline" in reply
        await asyncio.sleep(0.2)
        assert len(sent.on("cmd")) == 1  # only the marker was ever published


async def test_dns_rebinding_missing_token_and_foreign_origin_are_refused(dashboard: Dashboard) -> None:
    port = dashboard.port
    cmd = b'{"device": "x", "cmd": "pause"}'
    for path in ("/", "/api/devices", "/events", "/static/app.js"):
        assert (await http(port, "GET", path, headers={"Host": f"evil.example:{port}"}))[0] == 403, path
    assert (await http(port, "POST", "/api/cmd", cmd, headers={"Host": "rebound.attacker.test"}))[0] == 403
    # Without the token: the page explains where the link is; the API says 401; nothing is forwarded.
    status, page, _ = await http(port, "GET", "/", headers={"Authorization": None})
    assert status == 401 and b"token" in page
    for path in ("/api/devices", "/events"):
        assert (await http(port, "GET", path, headers={"Authorization": None}))[0] == 401
    assert (await http(port, "POST", "/api/cmd", cmd, headers={"Authorization": "Bearer wrong"}))[0] == 401
    assert (await http(port, "POST", "/api/cmd", cmd, headers={"Authorization": None}))[0] == 401
    # With the token but from another site's page: refused before the body is read.
    for origin in ("http://evil.example", "null", f"http://localhost:{port + 1}"):
        assert (await http(port, "POST", "/api/cmd", cmd, headers={"Origin": origin}))[0] == 403, origin
    assert (await http(port, "POST", "/api/cmd", cmd, headers={"Sec-Fetch-Site": "cross-site"}))[0] == 403
    same = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    assert (await http(port, "POST", "/api/cmd", cmd, headers=same))[0] == 404  # allowed through; no such device
    # The link with the token sets an HttpOnly, SameSite=Strict cookie, and the page then works on the cookie alone.
    status, _, head = await http(port, "GET", f"/?token={TOKEN}", headers={"Authorization": None})
    assert status == 303 and "HttpOnly" in head and "SameSite=Strict" in head
    cookie = f"{dashboard.access.cookie}={TOKEN}"
    assert (await http(port, "GET", "/api/devices", headers={"Authorization": None, "Cookie": cookie}))[0] == 200
    assert (await http(port, "GET", "/?token=wrong", headers={"Authorization": None}))[0] == 401


async def test_malformed_requests_get_4xx_and_the_server_lives_on(dashboard: Dashboard) -> None:
    port = dashboard.port
    raw_requests = [
        b"POST /api/cmd HTTP/1.1\r\nHost: localhost\r\nContent-Length: \xc2\xb2\r\n\r\n",
        b"POST /api/cmd HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n",
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ]
    for raw in raw_requests:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert data.startswith(b"HTTP/1.") and data.split(b" ", 2)[1][:1] == b"4", raw[:40]
    assert (await http(port, "GET", "/api/devices"))[0] == 200


async def test_slow_clients_are_cut_off_and_connections_are_capped(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    dash = Dashboard(BrokerAddress(broker.host, broker.port), "127.0.0.1", 0, token=TOKEN)
    dash.idle_timeout_s = 1.0
    task = asyncio.create_task(dash.run())
    await asyncio.wait_for(dash.ready.wait(), 5)
    port = dash.port
    monkeypatch.setattr(server_module, "BODY_TIMEOUT_S", 0.3)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"POST /api/cmd HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n"
        writer.write((head + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{").encode())
        data = await asyncio.wait_for(reader.read(), 5)  # the rest of the body never comes
        writer.close()
        assert data.split(b" ", 2)[1] == b"408"
        # Connections over the cap are answered 503 at once; the ones that never finish a request are closed.
        monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 3)
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert (await http(port, "GET", "/api/devices"))[0] == 503
        for _, w in idle:
            w.close()
        await asyncio.sleep(0.2)
        assert (await http(port, "GET", "/api/devices"))[0] == 200
        slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", port)
        slow_writer.write(b"GET / HTTP/1.1\r\nHost: local")  # and nothing more: a slowloris
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(slow_reader.read(), 10) == b""
        assert asyncio.get_running_loop().time() - started < 5
        slow_writer.close()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_event_streams_are_capped(dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_STREAMS", 2)
    streams = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", dashboard.port)
        writer.write(f"GET /events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        assert b"event: snapshot" in await asyncio.wait_for(reader.readuntil(b"event: snapshot"), 5)
        streams.append(writer)
    status, reply, _ = await http(dashboard.port, "GET", "/events")
    assert status == 503 and b"at most 2" in reply
    streams.pop().close()
    for _ in range(50):  # a closed tab frees its place
        if len(dashboard._streams) < 2:
            break
        await asyncio.sleep(0.05)
    reader, writer = await asyncio.open_connection("127.0.0.1", dashboard.port)
    writer.write(f"GET /events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    assert b"200 OK" in await asyncio.wait_for(reader.readuntil(b"event: snapshot"), 5)
    for w in [*streams, writer]:
        w.close()


async def test_a_retained_poison_message_does_not_stop_the_dashboard(broker: Broker) -> None:
    """Retained junk on every topic is there at each start; the dashboard shows the rest and keeps going."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        for name in ("events", "status", "score", "bar", "quality", "config"):
            deep = b'{"kind": ' + b"[" * 5000 + b"]" * 5000 + b', "unix": 1' + b"0" * 400 + b"}"
            await client.publish(f"neuromusic/poison/{name}", deep, qos=1, retain=True)
        await client.publish("neuromusic/fine/status", topics.status("fine", 0.0, "playing").payload, retain=True)
    dash = Dashboard(BrokerAddress(broker.host, broker.port), "127.0.0.1", 0, token=TOKEN)
    task = asyncio.create_task(dash.run())
    try:
        for _ in range(200):
            if dash.board.device_state("fine") == "playing":
                break
            await asyncio.sleep(0.02)
        assert dash.board.device_state("fine") == "playing" and not task.done()
        assert dash.board.errors == 0
        status, body, _ = await http(dash.port, "GET", "/api/devices")
        assert status == 200 and json.loads(body)["broker_connected"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with aiomqtt.Client(broker.host, broker.port) as client:  # leave no retained junk behind
            for name in ("events", "status", "score", "bar", "quality", "config"):
                await client.publish(f"neuromusic/poison/{name}", b"", retain=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(5)
    if process.stdout:
        process.stdout.close()


async def test_dashboard_command_prints_its_address_with_a_token(broker: Broker, tmp_path: Path) -> None:
    port = free_port()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    base = [sys.executable, "-m", "neuromusic.daemon.cli", "dashboard", "--mqtt", broker.address]

    async def first_line(*flags: str) -> tuple[subprocess.Popen[bytes], str]:
        process = subprocess.Popen([*base, *flags], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        return process, (await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 20)).decode()

    process, line = await first_line("--port", str(port))
    try:
        assert f"http://127.0.0.1:{port}/?token=" in line
        token = line.split("?token=")[1].split()[0]
        status, _, _ = await http(port, "GET", "/api/devices", headers={"Authorization": f"Bearer {token}"})
        assert status == 200
        assert (await http(port, "GET", "/api/devices"))[0] == 401  # not the test's token: a fresh one
    finally:
        stop(process)
    port = free_port()
    process, line = await first_line("--port", str(port), "--auth-file", str(token_file))
    try:
        assert TOKEN not in line and "--auth-file" in line  # a kept secret is not printed
        assert (await http(port, "GET", "/api/devices"))[0] == 200
    finally:
        stop(process)
    bad = subprocess.run([*base, "--relaxed-threshold", "2"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--relaxed-threshold" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run(
            [*base, "--port", str(taken.getsockname()[1])], capture_output=True, text=True, timeout=30
        )
    assert busy.returncode == 2 and "cannot serve on 127.0.0.1" in busy.stderr


async def test_each_dashboard_flag_changes_what_it_serves(broker: Broker, tmp_path: Path) -> None:
    """--allow-host, --relaxed-threshold and --allow-control, end to end through the command line."""
    port = free_port()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    command = [sys.executable, "-m", "neuromusic.daemon.cli", "dashboard", "--mqtt", broker.address]
    command += ["--port", str(port), "--auth-file", str(token_file), "--allow-host", "Lab.Example"]
    command += ["--relaxed-threshold", "0.75", "--allow-control"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 20)
        status, body, _ = await http(port, "GET", "/api/devices", headers={"Host": f"lab.example:{port}"})
        assert status == 200
        settings = json.loads(body)["settings"]
        assert settings["relaxed_threshold"] == 0.75 and "set_bounds" in settings["commands"]
        assert (await http(port, "GET", "/api/devices", headers={"Host": f"other.example:{port}"}))[0] == 403
    finally:
        stop(process)


async def test_allow_control_forwards_every_command(broker: Broker) -> None:
    dash = Dashboard(BrokerAddress(broker.host, broker.port), "127.0.0.1", 0, token=TOKEN, allow_control=True)
    task = asyncio.create_task(dash.run())
    ctx = make_context(host=broker.host, port=broker.port, device_id="steer")
    service = Telemetry(ctx, ctx.config.mqtt)
    service_task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.connected.wait(), 5)
        for _ in range(200):
            if dash.board.device_state("steer") == "online":
                break
            await asyncio.sleep(0.02)
        body = b'{"device": "steer", "cmd": "set_target", "value": 0.3}'
        assert (await http(dash.port, "POST", "/api/cmd", body))[0] == 202
        for _ in range(100):
            if ctx.control.target == 0.3:
                break
            await asyncio.sleep(0.02)
        assert ctx.control.target == 0.3
    finally:
        for t in (service_task, task):
            t.cancel()
        await asyncio.gather(service_task, task, return_exceptions=True)


def test_dashboard_help_describes_its_own_broker_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """The dashboard reads a broker and has no --config: its help must not send users to a TOML file."""
    from neuromusic.daemon.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "the daemons report to (default localhost:1883)" in text
    assert "[mqtt] password" not in text and "take commands from" not in text
    assert "--allow-control" in text and "--auth-file" in text and "--allow-host" in text
