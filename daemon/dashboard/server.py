"""The dashboard's two halves in one asyncio process: an MQTT subscriber and a small HTTP server.

HTTP routes (all on one port, meant for 127.0.0.1 or a trusted lab network):
    GET  /                 the page (static/index.html, hand-written, no CDN)
    GET  /static/<file>    app.js, style.css
    GET  /events           Server-Sent Events: one "snapshot" of every device, then one "update" per MQTT message
    GET  /api/devices      the same snapshot as JSON
    POST /api/cmd          {"device": "lab-1", "cmd": "pause"} -> published on neuromusic/lab-1/cmd; 202 + its id.
                           The reply comes back over /events (cmd/result). Content-Type must be application/json,
                           which a foreign web page cannot send without a CORS preflight we never grant.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
from neuromusic.daemon.dashboard.board import Board
from neuromusic.daemon.mqtt import remote
from neuromusic.daemon.mqtt.config import DEVICE_ID_PATTERN

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
MAX_HEADER_BYTES = 8192
MAX_BODY_BYTES = 4096
CLIENT_QUEUE = 256  # updates buffered per browser; a stalled tab loses its oldest, nobody else waits
KEEPALIVE_S = 15.0


@dataclass(frozen=True)
class Broker:
    host: str
    port: int = 1883
    user: str = ""
    password: str = ""
    tls: bool = False


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Dashboard:
    def __init__(self, broker: Broker, bind: str = "127.0.0.1", port: int = 8050) -> None:
        self.broker = broker
        self.bind = bind
        self.port = port  # 0 = any free port; the real one is here once `ready` is set
        self.board = Board()
        self.ready = asyncio.Event()
        self.broker_connected = False
        self._client: aiomqtt.Client | None = None
        self._clients: set[asyncio.Queue[str]] = set()
        self._ids = itertools.count(1)

    async def run(self) -> None:
        server = await asyncio.start_server(self._handle, self.bind, self.port)
        self.port = server.sockets[0].getsockname()[1]
        log.info("dashboard on http://%s:%d/ (broker %s:%d)", self.bind, self.port, self.broker.host, self.broker.port)
        self.ready.set()
        async with server, asyncio.TaskGroup() as tg:
            tg.create_task(self._mqtt_loop(), name="dashboard-mqtt")
            tg.create_task(server.serve_forever(), name="dashboard-http")

    # -- MQTT ---------------------------------------------------------------------------------------------------
    async def _mqtt_loop(self) -> None:
        attempt = 0
        b = self.broker
        while True:
            try:
                async with aiomqtt.Client(
                    b.host,
                    b.port,
                    username=b.user or None,
                    password=b.password or None,
                    tls_context=ssl.create_default_context() if b.tls else None,
                    timeout=5,
                ) as client:
                    await client.subscribe("neuromusic/+/#", qos=1)
                    attempt = 0
                    self._client = client
                    self._set_connected(True)
                    async for message in client.messages:
                        payload = message.payload if isinstance(message.payload, bytes) else b""
                        update = self.board.update(str(message.topic), payload)
                        if update is not None:
                            self._broadcast("update", update)
            except aiomqtt.MqttError as error:
                log.warning("dashboard: MQTT broker %s:%d: %s; retrying", b.host, b.port, error)
            finally:
                self._client = None
                self._set_connected(False)
            await asyncio.sleep(random.uniform(0, min(4.0, 0.5 * 2**attempt)))
            attempt += 1

    def _set_connected(self, connected: bool) -> None:
        if connected != self.broker_connected:
            self.broker_connected = connected
            self._broadcast("broker", {"connected": connected, "host": f"{self.broker.host}:{self.broker.port}"})

    def _broadcast(self, event: str, data: Any) -> None:
        frame = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        for queue in self._clients:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frame)

    async def send_command(self, body: Any) -> str:
        if not isinstance(body, dict):
            raise HttpError(400, 'expected a JSON object like {"device": "lab-1", "cmd": "pause"}')
        device = body.pop("device", None)
        if not isinstance(device, str) or not DEVICE_ID_PATTERN.match(device):
            raise HttpError(400, "device must be a device id")
        if body.get("cmd") not in remote.COMMANDS:
            raise HttpError(400, f"cmd must be one of: {', '.join(remote.COMMANDS)}")
        body.setdefault("id", f"dash-{next(self._ids)}")
        client = self._client
        if client is None:
            raise HttpError(503, "not connected to the MQTT broker")
        await client.publish(f"neuromusic/{device}/cmd", json.dumps(body), qos=1)
        return str(body["id"])

    # -- HTTP ---------------------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, headers = await asyncio.wait_for(self._read_head(reader), 10)
            if method == "GET" and path == "/events":
                await self._stream(writer)
                return
            status, content_type, data = await self._route(method, path, headers, reader)
        except HttpError as error:
            status, content_type, data = error.status, "application/json", json.dumps({"error": str(error)}).encode()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        reason = {
            200: "OK",
            202: "Accepted",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            413: "Payload Too Large",
            415: "Unsupported Media Type",
            503: "Service Unavailable",
        }.get(status, "")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + data)
            await writer.drain()
        writer.close()

    async def _read_head(self, reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as error:
            raise HttpError(413, "request head too large") from error
        if len(raw) > MAX_HEADER_BYTES:
            raise HttpError(413, "request head too large")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise HttpError(400, "bad request line")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return parts[0], parts[1].split("?", 1)[0], headers

    async def _route(
        self, method: str, path: str, headers: dict[str, str], reader: asyncio.StreamReader
    ) -> tuple[int, str, bytes]:
        if path == "/api/cmd":
            if method != "POST":
                raise HttpError(405, "POST a JSON command here")
            if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                raise HttpError(415, "Content-Type must be application/json")
            length = headers.get("content-length", "")
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                raise HttpError(413, f"a command is at most {MAX_BODY_BYTES} bytes, with a Content-Length")
            raw = await reader.readexactly(int(length))
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise HttpError(400, f"not valid JSON: {error}") from None
            command_id = await self.send_command(body)
            return 202, "application/json", json.dumps({"id": command_id}).encode()
        if method != "GET":
            raise HttpError(405, "only GET here")
        if path == "/api/devices":
            data = {"broker_connected": self.broker_connected, "devices": self.board.snapshot()}
            return 200, "application/json", json.dumps(data).encode()
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        # Only plain names from our own folder: no "..", no sub-folders, nothing else on the disk.
        if "/" in name or name.startswith(".") or not (STATIC / name).is_file():
            raise HttpError(404, "not found")
        return 200, CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream"), (STATIC / name).read_bytes()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=CLIENT_QUEUE)
        snapshot = {"broker_connected": self.broker_connected, "devices": self.board.snapshot()}
        try:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                b"Connection: keep-alive\r\n\r\n"
                + f"retry: 1000\nevent: snapshot\ndata: {json.dumps(snapshot)}\n\n".encode()
            )
            await writer.drain()
            self._clients.add(queue)
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    frame = ": keepalive\n\n"  # lets the browser and proxies see the stream is alive
                writer.write(frame.encode())
                await writer.drain()
        except ConnectionError:
            pass  # the tab was closed
        finally:
            self._clients.discard(queue)
            writer.close()
