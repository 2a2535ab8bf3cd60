"""Property-based fuzzing of the dashboard: its board with random MQTT messages, and its HTTP layer with random
requests (raw bytes on a socket to the real server on 127.0.0.1, and random JSON commands).

Invariants: nothing raises, no 5xx but 503, what reaches browsers is strict JSON with bounded numbers and printable
text, nothing is forwarded without the Host, token and Origin checks passing, and only pause, resume and marker are
ever published.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_fixtures import Broker, broker_fixture  # noqa: F401
from neuromusic.daemon.dashboard import board as board_module
from neuromusic.daemon.dashboard.access import Access
from neuromusic.daemon.dashboard.board import Board
from neuromusic.daemon.dashboard.commands import SAFE_COMMANDS
from neuromusic.daemon.dashboard.server import Broker as BrokerAddress
from neuromusic.daemon.dashboard.server import Dashboard
from neuromusic.daemon.mqtt import remote, topics

pytestmark = pytest.mark.mqtt

TOKEN = "fuzz-token-0123456789abcdef"
# NEUROMUSIC_FUZZ_SCALE=0.1 runs a tenth of the cases (while working on the code); the suite runs them all.
SCALE = float(os.environ.get("NEUROMUSIC_FUZZ_SCALE", "1"))
BOARD_EXAMPLES = max(1, int(3000 * SCALE))
RAW_EXAMPLES = max(1, int(5000 * SCALE))
COMMAND_EXAMPLES = max(1, int(5000 * SCALE))
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- values that broke or could break the old code ---------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.sampled_from(["\x1b[2J", "\u202e", "\x00", "é" * 3, "NaN", "1e999", "playing", "scoring", "offline"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=8,
)
KEYS = [
    *("state", "value", "confidence", "unix", "t", "kind", "text", "bands", "mean", "channels", "good", "bad_reasons"),
    *("quality", "gap_s", "tempo", "valence", "energy", "notes", "chords", "key", "index", "abc", "beats", "id", "cmd"),
    *("ok", "error", "telemetry", "config", "detail", "paused", "policy", "target", "remote_control", "repaired"),
]
shaped = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)


def encoded(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


payloads = st.one_of(
    shaped.map(encoded),
    json_values.map(encoded),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=20000).map(lambda n: b"[" * n),
    st.integers(min_value=1, max_value=5000).map(lambda n: b'{"text": ' + b"[" * n + b"]" * n + b"}"),
    st.integers(min_value=300, max_value=2000).map(lambda n: b'{"unix": 1' + b"0" * n + b', "value": 1}'),
)
topic_names = st.one_of(st.sampled_from(topics.TOPICS), st.text(max_size=12))
device_ids = st.one_of(st.sampled_from(["lab-1", "lab-2", "x"]), st.text(max_size=70))
topics_strategy = st.one_of(
    st.builds(lambda d, n: f"neuromusic/{d}/{n}", device_ids, topic_names), st.text(max_size=40)
)


def check_clean(value: Any, depth: int = 0) -> None:
    """Bounded, printable, shallow: what a browser may be given."""
    assert depth <= 7  # the deepest a snapshot goes: previous session -> its events -> one event -> a field
    if isinstance(value, float):
        assert math.isfinite(value) and abs(value) <= 1e11
    elif isinstance(value, int) and not isinstance(value, bool):
        assert abs(value) <= 2**53
    elif isinstance(value, str):
        assert len(value) <= 400 and value.isprintable()
    elif isinstance(value, dict):
        for key, item in value.items():
            check_clean(key, depth + 1)
            check_clean(item, depth + 1)
    elif isinstance(value, list):
        assert len(value) <= board_module.SCORE_HISTORY
        for item in value:
            check_clean(item, depth + 1)
    else:
        assert value is None or isinstance(value, bool)


@pytest.mark.slow
@given(messages=st.lists(st.tuples(topics_strategy, payloads, st.booleans()), min_size=1, max_size=2))
@settings(FUZZ, max_examples=BOARD_EXAMPLES)
def test_board_survives_any_message(messages: list[tuple[str, bytes, bool]]) -> None:
    board = Board()
    for topic, payload, retained in messages:
        update = board.update(topic, payload, retained)
        if update is not None:
            json.dumps(update, allow_nan=False)
            check_clean(update)
    assert board.errors == 0  # the last resort was never needed: every rule held
    snapshot = board.snapshot()
    json.dumps(snapshot, allow_nan=False)
    check_clean(snapshot)


# -- the HTTP layer, against the real server -----------------------------------------------------------------------
@dataclass
class Served:
    port: int
    published: list[bytes] = field(default_factory=list)  # every command that reached the broker


@pytest.fixture
def served(broker: Broker) -> Iterator[Served]:
    """The dashboard on its own event loop in a thread, so the fuzzing below can use plain blocking sockets. The
    broker knows one online device, lab-1, so valid commands really are forwarded (and recorded)."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.publish("neuromusic/lab-1/status", topics.status("lab-1", 0.0, "playing").payload, retain=True)
        dash = Dashboard(BrokerAddress(broker.host, broker.port), "127.0.0.1", 0, token=TOKEN)
        stop = asyncio.Event()
        served = Served(0)

        async def spy() -> None:
            async with aiomqtt.Client(broker.host, broker.port) as client:
                await client.subscribe("neuromusic/+/cmd", qos=1)
                state["spying"] = True
                async for message in client.messages:
                    served.published.append(message.payload if isinstance(message.payload, bytes) else b"")

        tasks = [asyncio.create_task(dash.run()), asyncio.create_task(spy())]
        await dash.ready.wait()
        while dash.board.device_state("lab-1") != "playing" or not dash.broker_connected or "spying" not in state:
            await asyncio.sleep(0.02)
        served.port = dash.port
        state["served"], state["loop"], state["stop"] = served, asyncio.get_running_loop(), stop
        ready.set()
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(20)
    yield state["served"]
    assert request(state["served"].port, build_raw("GET", "/api/devices", {}, b""))[0] == 200  # alive after it all
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(10)
    assert not thread.is_alive()


def request(port: int, raw: bytes, head_only: bool = False) -> tuple[int, bytes]:
    """Send `raw`; return the final status and the answer (its head, and its body when it has a length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            while data.startswith(b"HTTP/1.1 100 ") and b"\r\n\r\n" in data:
                data = data.split(b"\r\n\r\n", 1)[1]  # an interim "100 Continue"
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if head_only or b"event-stream" in head or (length and len(body) >= int(length.group(1))):
                    break
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1."), data[:80]
    return int(data.split(b" ", 2)[1]), data


def build_raw(method: str, path: str, headers: Mapping[str, str | None], body: bytes) -> bytes:
    fields: dict[str, str | None] = {
        "Host": "localhost",
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
    }
    fields.update(headers)
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
    return head.encode("utf-8", "surrogateescape") + b"Connection: close\r\n\r\n" + body


GOOD_HOSTS = ["localhost", "127.0.0.1:1", "[::1]"]
HOSTS = [*GOOD_HOSTS, "evil.example", "evil.example:8050", "", "a b", "localhost\x00", "é"]
TOKENS = [f"Bearer {TOKEN}", f"bearer {TOKEN}", "Bearer wrong", "", "Basic abc", None]
ORIGINS = [None, "http://localhost", "https://localhost", "null", "http://evil.example", "http://localhost:1"]
PATHS = ["/", f"/?token={TOKEN}", "/?token=x", "/api/cmd", "/api/devices", "/static/app.js", "/static/../board.py"]
PATHS += ["/events", "//", "/static/%2e%2e/x"]
HEADERS = ["Content-Length", "Content-Type", "Origin", "Sec-Fetch-Site", "Transfer-Encoding", "Cookie", "Expect", "X"]
ODD_VALUES = ["", "²", "-1", "99999999999999999999", " 5", "0x10", "\t", "chunked", "100-continue", "null"]
header_text = st.one_of(st.sampled_from(ODD_VALUES), st.text(max_size=30))
valid_commands = st.one_of(
    st.sampled_from([{"cmd": "pause"}, {"cmd": "resume"}, {"cmd": "stop"}, {"cmd": "set_target", "value": 0.5}]),
    st.builds(lambda label: {"cmd": "marker", "label": label}, st.text(max_size=250)),
).map(lambda body: encoded({"device": "lab-1", **body}))
command_bodies = st.one_of(
    valid_commands,
    st.fixed_dictionaries(
        {
            "device": st.one_of(st.just("lab-1"), device_ids, json_values),
            "cmd": st.one_of(st.sampled_from(list(remote.COMMANDS)), json_values),
        },
        optional={"label": json_values, "id": json_values, "value": json_values, "bounds": json_values},
    ).map(encoded),
    json_values.map(encoded),
    st.binary(max_size=300),
    st.integers(min_value=1, max_value=4000).map(lambda n: b"[" * n),
)


host_allowed = Access.create(0).host_allowed


def check_published(served: Served) -> None:
    """Whatever reached the broker is one of the safe commands, with its own fields only."""
    for payload in list(served.published):
        command = json.loads(payload)
        assert command["cmd"] in SAFE_COMMANDS and set(command) <= {"id", "cmd", "label"}
        assert len(payload) <= remote.MAX_PAYLOAD_BYTES


@pytest.mark.slow
def test_any_raw_request_gets_an_answer_never_a_crash(served: Served) -> None:
    @given(
        method=st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"]), st.text(max_size=8)),
        path=st.one_of(st.sampled_from(PATHS), st.text(max_size=30).map(lambda s: "/" + s)),
        host=st.one_of(st.sampled_from(HOSTS), st.text(max_size=20)),
        extra=st.dictionaries(st.sampled_from(HEADERS), header_text, max_size=4),
        body=command_bodies,
    )
    @settings(FUZZ, max_examples=RAW_EXAMPLES)
    def check(method: str, path: str, host: str, extra: dict[str, str], body: bytes) -> None:
        status, data = request(served.port, build_raw(method, path, {"Host": host, **extra}, body), method == "HEAD")
        assert status < 500 or status == 503, data[:300]
        if status // 100 == 2 and path == "/api/cmd":
            assert method == "POST" and host in GOOD_HOSTS
        if status < 500:
            assert host_allowed(host) or status not in (200, 202, 303), "served under a foreign Host"

    check()
    check_published(served)


@pytest.mark.slow
def test_commands_are_forwarded_only_when_every_check_passes(served: Served) -> None:
    @given(
        body=command_bodies,
        token=st.sampled_from(TOKENS),
        origin=st.sampled_from(ORIGINS),
        host=st.sampled_from(HOSTS),
    )
    @settings(FUZZ, max_examples=COMMAND_EXAMPLES)
    def check(body: bytes, token: str | None, origin: str | None, host: str) -> None:
        headers = {"Host": host, "Authorization": token, "Origin": origin, "Content-Length": str(len(body))}
        status, data = request(served.port, build_raw("POST", "/api/cmd", headers, body))
        assert status < 500 or status == 503, data[:300]
        if status == 202:
            assert host in GOOD_HOSTS and token in TOKENS[:2]
            assert origin is None or (origin in ORIGINS[1:3] and host == "localhost")
            sent = json.loads(body)
            assert sent["device"] == "lab-1" and sent["cmd"] in SAFE_COMMANDS

    check()
    check_published(served)
    assert served.published, "no command was ever forwarded: the checks above were never put to the test"
