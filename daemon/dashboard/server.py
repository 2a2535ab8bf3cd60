"""The dashboard's two halves in one asyncio process: an MQTT subscriber and an aiohttp web server.

HTTP routes (one port; every route checks the Host, all but the static files need the token, see access.py):
    GET  /?token=T         sets the access cookie and redirects to /
    GET  /                 the page (static/index.html, no CDN)
    GET  /static/<file>    app.js, style.css
    GET  /events           Server-Sent Events: one "snapshot" of every device, then one "update" per MQTT message
    GET  /api/devices      the same snapshot as JSON
    POST /api/cmd          {"device": "lab-1", "cmd": "pause"} -> published on neuromusic/lab-1/cmd; 202 + its id.
                           Refused (4xx) for a device never seen or offline, and for anything but pause, resume and
                           marker unless --allow-control. Content-Type must be application/json.
Limits: a body of at most 4 KiB read within 5 s, 64 connections, 16 event streams, 10 s to send a request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
from aiohttp import web
from neuromusic.daemon.dashboard import commands, payloads
from neuromusic.daemon.dashboard.access import Access
from neuromusic.daemon.dashboard.board import Board
from neuromusic.daemon.dashboard.commands import Refused
from neuromusic.daemon.dashboard.streams import EventStreams
from neuromusic.daemon.mqtt import remote

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
MAX_BODY_BYTES = 4096
BODY_TIMEOUT_S = 5.0
IDLE_TIMEOUT_S = 10.0  # a connection that has not sent a whole request by then is closed
MAX_CONNECTIONS = 64
MAX_STREAMS = 16
INCOMING_QUEUE = 5000  # MQTT messages waiting for the board; a flood beyond it is dropped by the client
NO_TOKEN_PAGE = """<!doctype html><meta charset="utf-8"><title>neuromusic dashboard</title>
<link rel="stylesheet" href="/static/style.css"><main class="locked"><h1>neuromusic dashboard</h1>
<p>This page needs its access link: open the address that <code>neuromusic dashboard</code> printed when it started
(it ends in <code>/?token=…</code>), or ask whoever runs it.</p></main>"""


class _ClientErrorLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp logs every malformed request with a traceback at ERROR; a hostile client must not fill the journal
    that way. They are the client's errors: logged at DEBUG. Our handlers' own failures are logged by `_guard`."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        self.debug(msg, *args, exc_info=exc_info, **kwargs)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Broker:
    host: str
    port: int = 1883
    user: str = ""
    password: str = ""
    tls: bool = False


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={"Cache-Control": "no-store"})


def closing(response: web.Response) -> web.Response:
    """For a request whose body was not read to its end: the connection cannot carry another request."""
    response.force_close()
    return response


class _Busy(asyncio.Protocol):
    """Answers a connection over the cap at once, without reading it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        body = b'{"error":"too many connections; try again"}'
        head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        assert isinstance(transport, asyncio.Transport)
        transport.write(head.encode() + b"Retry-After: 1\r\nConnection: close\r\n\r\n" + body)
        transport.close()


class Dashboard:
    def __init__(
        self,
        broker: Broker,
        bind: str = "127.0.0.1",
        port: int = 8050,
        hosts: tuple[str, ...] = (),
        token: str | None = None,
        allow_control: bool = False,
        relaxed_threshold: float = 0.6,
    ) -> None:
        self.broker = broker
        self.bind = bind
        self.port = port  # 0 = any free port; the real one is here once `ready` is set
        self._hosts = hosts
        self.access = Access.create(port, hosts, token)  # made again with the real port (the cookie's name)
        self.allowed = commands.SAFE_COMMANDS if not allow_control else tuple(remote.COMMANDS)
        self.relaxed_threshold = relaxed_threshold
        self.idle_timeout_s = IDLE_TIMEOUT_S
        self.board = Board()
        self.ready = asyncio.Event()
        self.broker_connected = False
        self._client: aiomqtt.Client | None = None
        self._streams = EventStreams(self.snapshot)
        self._ids = itertools.count(1)

    async def run(self) -> None:
        runner = web.AppRunner(
            self.app(),
            keepalive_timeout=self.idle_timeout_s,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=1,
            lingering_time=1.0,  # after a refused body, drain it this long at most before closing
            logger=_ClientErrorLog(logging.getLogger(f"{__name__}.http")),
        )
        await runner.setup()
        handlers = runner.server
        assert handlers is not None

        def accept() -> asyncio.Protocol:
            return _Busy() if len(handlers.connections) >= MAX_CONNECTIONS else handlers()

        try:
            server = await asyncio.get_running_loop().create_server(accept, self.bind, self.port, reuse_address=True)
        except OSError:
            await runner.cleanup()
            raise
        self.port = server.sockets[0].getsockname()[1]
        self.access = Access.create(self.port, self._hosts, self.access.token)
        log.info("dashboard on http://%s:%d/ (broker %s:%d)", self.bind, self.port, self.broker.host, self.broker.port)
        self.ready.set()
        try:
            await self._mqtt_loop()
        finally:
            server.close()
            await runner.cleanup()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._guard])
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/devices", self._devices)
        app.router.add_post("/api/cmd", self._command)
        return app

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
                    max_queued_incoming_messages=INCOMING_QUEUE,
                ) as client:
                    await client.subscribe("neuromusic/+/#", qos=1)
                    attempt = 0
                    self._client = client
                    self._set_connected(True)
                    async for message in client.messages:
                        self._take(message)
            except aiomqtt.MqttError as failure:
                log.warning("dashboard: MQTT broker %s:%d: %s; retrying", b.host, b.port, failure)
            except Exception:  # the last resort: the page must outlive anything a broker delivers
                log.exception("dashboard: MQTT subscriber failed; reconnecting")
            finally:
                self._client = None
                self._set_connected(False)
            await asyncio.sleep(random.uniform(0, min(4.0, 0.5 * 2**attempt)))
            attempt = min(attempt + 1, 16)

    def _take(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        update = self.board.update(str(message.topic), payload, retained=bool(message.retain))
        if update is not None:
            self._streams.broadcast("update", update)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.broker_connected:
            self.broker_connected = connected
            broker = f"{self.broker.host}:{self.broker.port}"
            self._streams.broadcast("broker", {"connected": connected, "host": broker})

    def snapshot(self) -> dict[str, Any]:
        return {
            "broker_connected": self.broker_connected,
            "devices": self.board.snapshot(),
            "settings": {"relaxed_threshold": self.relaxed_threshold, "commands": list(self.allowed)} | payloads.PAGE,
        }

    async def send_command(self, body: Any) -> str | int:
        device, command = commands.build(body, self.allowed, f"dash-{next(self._ids)}")
        state = self.board.device_state(device)
        if state is None:
            raise Refused(404, "no such device on this broker")
        if state == "offline":
            raise Refused(409, "the device is offline")
        if not self.board.devices[device].latest.get("status", {}).get("remote_control", True):
            raise Refused(409, "the device does not take remote commands")
        data = commands.encode(command)
        client = self._client
        if client is None:
            raise Refused(503, "not connected to the MQTT broker")
        await client.publish(f"neuromusic/{device}/cmd", data, qos=1)
        return command["id"]

    # -- HTTP ---------------------------------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.access.host_allowed(request.headers.get("Host")):
            return error(403, "this dashboard does not answer to that host name (see --allow-host)")
        public = request.path.startswith("/static/") or (request.path == "/" and "token" in request.query)
        if not public and not self.access.authorized(request.headers, request.cookies):
            if request.path == "/":
                return web.Response(status=401, text=NO_TOKEN_PAGE, content_type="text/html")
            return error(401, "the dashboard's token is missing or wrong")
        try:
            return await handler(request)
        except Refused as refused:
            return error(refused.status, str(refused))
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:  # the last resort: one request must never take the server down
            log.exception("dashboard: %s %s failed", request.method, request.path[:100])
            return error(500, "internal error")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        offered = request.query.get("token")
        if offered is not None:
            if not self.access.token_matches(offered):
                return web.Response(status=401, text=NO_TOKEN_PAGE, content_type="text/html")
            response = web.Response(status=303, headers={"Location": "/", "Cache-Control": "no-store"})
            response.set_cookie(self.access.cookie, self.access.token, httponly=True, samesite="Strict", path="/")
            return response
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:  # a fixed list: no path ever reaches the disk from a request
            return error(404, "not found")
        return web.FileResponse(STATIC / name, headers={"Content-Type": f"{STATIC_FILES[name]}; charset=utf-8"})

    async def _devices(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.snapshot(), headers={"Cache-Control": "no-store"})

    async def _command(self, request: web.Request) -> web.StreamResponse:
        if not self.access.same_origin(request.headers):
            return error(403, "commands are only taken from this dashboard's own page")
        if request.content_type != "application/json":
            return error(415, "Content-Type must be application/json")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return error(413, f"a command is at most {MAX_BODY_BYTES} bytes")
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                raw = await request.read()
        except TimeoutError:
            return closing(error(408, f"the body did not arrive within {BODY_TIMEOUT_S:g} s"))
        except web.HTTPRequestEntityTooLarge:
            return closing(error(413, f"a command is at most {MAX_BODY_BYTES} bytes"))
        except aiohttp.ClientPayloadError:
            return closing(error(400, "the body is malformed"))
        command_id = await self.send_command(commands.parse_body(raw))
        return web.json_response({"id": command_id}, status=202)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self._streams) >= MAX_STREAMS:
            return error(503, f"at most {MAX_STREAMS} pages can watch at once")
        return await self._streams.serve(request)
