"""The dashboard: its board and HTTP API, and a real headless chromium watching a live session's score change."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from browser_fixtures import Browser
from mqtt_fixtures import Broker, broker_fixture, daemon, feed, free_port, make_context  # noqa: F401
from neuromusic.daemon.dashboard import board as board_module
from neuromusic.daemon.dashboard.board import Board
from neuromusic.daemon.dashboard.server import Broker as BrokerAddress
from neuromusic.daemon.dashboard.server import Dashboard
from neuromusic.daemon.services.telemetry import Telemetry

pytestmark = pytest.mark.mqtt


def test_board_keeps_devices_apart_and_ignores_junk(monkeypatch: pytest.MonkeyPatch) -> None:
    board = Board()
    assert board.update("neuromusic/a/score", b'{"v":1,"unix":1.0,"value":0.5}')
    assert board.update("neuromusic/b/status", b'{"v":1,"state":"playing"}')
    assert board.update("neuromusic/a/score", b"not json") is None
    assert board.update("neuromusic/a/cmd", b'{"cmd":"pause"}') is None  # commands are not shown
    assert board.update("other/a/score", b"{}") is None
    assert board.update("neuromusic/a/score", b"[1]") is None
    assert [d["device"] for d in board.snapshot()] == ["a", "b"] and board.ignored == 4
    assert board.snapshot()[0]["scores"] == [(1.0, 0.5)]
    monkeypatch.setattr(board_module, "MAX_DEVICES", 2)
    assert board.update("neuromusic/c/score", b'{"unix":1.0,"value":0.5}') is None  # bounded memory
    for i in range(2000):
        board.update("neuromusic/a/events", json.dumps({"kind": "info", "text": str(i)}).encode())
    assert len(board.devices["a"].events) == board_module.EVENT_HISTORY


@pytest.fixture
async def dashboard(broker: Broker) -> AsyncIterator[Dashboard]:
    dash = Dashboard(BrokerAddress(broker.host, broker.port), "127.0.0.1", 0)
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
    port: int, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


async def test_http_api(dashboard: Dashboard, broker: Broker) -> None:
    port = dashboard.port
    status, page = await http(port, "GET", "/")
    assert status == 200 and b"<title>neuromusic dashboard</title>" in page and b"http" not in page.split(b"<body>")[1]
    assert (await http(port, "GET", "/static/app.js"))[0] == 200
    for path in ("/static/../server.py", "/static/..%2fserver.py", "/nope", "/static/.hidden"):
        assert (await http(port, "GET", path))[0] == 404, path
    ctx = make_context(host=broker.host, port=broker.port, device_id="api")
    service = Telemetry(ctx, ctx.config.mqtt)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.connected.wait(), 5)
    try:
        cmd = json.dumps({"device": "api", "cmd": "pause"}).encode()
        status, reply = await http(port, "POST", "/api/cmd", cmd)
        assert status == 202 and json.loads(reply)["id"].startswith("dash-")
        for _ in range(100):
            if ctx.control.paused:
                break
            await asyncio.sleep(0.02)
        assert ctx.control.paused
        assert (await http(port, "POST", "/api/cmd", cmd, content_type="text/plain"))[0] == 415  # no cross-site forms
        assert (await http(port, "POST", "/api/cmd", b"{nope"))[0] == 400
        assert (await http(port, "POST", "/api/cmd", b'{"device": "a/b", "cmd": "pause"}'))[0] == 400
        assert (await http(port, "POST", "/api/cmd", b'{"device": "api", "cmd": "shell"}'))[0] == 400
        assert (await http(port, "POST", "/api/cmd", b"x" * 5000))[0] == 413
        assert (await http(port, "GET", "/api/cmd"))[0] == 405
        status, devices = await http(port, "GET", "/api/devices")
        assert status == 200 and "api" in [d["device"] for d in json.loads(devices)["devices"]]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(check: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        await asyncio.sleep(0.1)


@pytest.mark.browser
@pytest.mark.slow
async def test_page_shows_live_sessions_in_chromium(dashboard: Dashboard, broker: Broker, tmp_path: Path) -> None:
    """A real `neuromusic run` (lab-1) and a hand-fed session (lab-2) on one broker, watched in headless chromium."""
    real = daemon(broker, "lab-1")
    other = make_context(host=broker.host, port=broker.port, device_id="lab-2")
    service = Telemetry(other, other.config.mqtt)
    tasks = [asyncio.create_task(service.run()), asyncio.create_task(feed(other, 60.0))]
    browser = await asyncio.to_thread(Browser)

    async def js(expression: str) -> Any:
        return await asyncio.to_thread(browser.evaluate, expression)

    def text(selector: str) -> str:
        return f"document.querySelector('#device-lab-1 {selector}').textContent"

    try:
        await asyncio.to_thread(browser.navigate, f"http://127.0.0.1:{dashboard.port}/")
        # Both devices appear by themselves; the real one once it has started (a few seconds).
        await until(lambda: js("document.querySelectorAll('section.device').length === 2"), timeout=20)
        await until(lambda: js(f"{text('.state')} === 'playing'"), timeout=20)
        values = set()
        for _ in range(30):
            values.add(await js(text(".score-value")))
            await asyncio.sleep(0.1)
        numbers = {float(v) for v in values if v not in ("–", None)}
        assert len(numbers) >= 3, f"the score on the page did not change: {values}"
        await until(lambda: js(f"{text('.tempo')}.includes('BPM')"))
        assert await js("document.querySelectorAll('#device-lab-1 .bandrow').length") == 5
        # The chart really drew the score line: count the green pixels on the canvas.
        green = await js(
            "(() => { const c = document.querySelector('#device-lab-1 .chart');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;"
            " for (let i = 0; i < d.length; i += 4) if (d[i+1] > 120 && d[i] < 100) n++; return n; })()"
        )
        assert green > 50
        shot = await asyncio.to_thread(browser.screenshot, tmp_path / "dashboard.png")
        if os.environ.get("NEUROMUSIC_SCREENSHOT"):
            Path(os.environ["NEUROMUSIC_SCREENSHOT"]).write_bytes(shot.read_bytes())

        # The buttons steer the right session, and its answer comes back to the page.
        await js("document.querySelector('#device-lab-1 button[data-cmd=pause]').click()")
        await until(lambda: js(f"{text('.state')} === 'paused'"))
        await until(lambda: js(f"{text('.result')}.includes('ok')"))
        assert not other.control.paused
        await js("document.querySelector('#device-lab-1 .label').value = 'eyes closed'")
        await js("document.querySelector('#device-lab-1 button[data-cmd=marker]').click()")
        await until(lambda: js(f"{text('.events')}.includes('[marker] eyes closed')"))
        await js("document.querySelector('#device-lab-1 button[data-cmd=resume]').click()")
        await until(lambda: js(f"{text('.state')} === 'playing'"))
    finally:
        await asyncio.to_thread(browser.close)
        real.kill()
        real.wait(5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_dashboard_command_serves_on_its_port(broker: Broker) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "neuromusic.daemon.cli",
        "dashboard",
        "--mqtt",
        broker.address,
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 20)
        assert f"http://127.0.0.1:{port}/" in line.decode()
        status, page = await http(port, "GET", "/")
        assert status == 200 and b"neuromusic dashboard" in page
    finally:
        process.kill()
        process.wait(5)
        if process.stdout:
            process.stdout.close()


def test_dashboard_help_describes_its_own_broker_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """The dashboard reads a broker and has no --config: its help must not send users to a TOML file."""
    from neuromusic.daemon.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "the daemons report to (default localhost:1883)" in text
    assert "[mqtt] password" not in text and "take commands from" not in text
