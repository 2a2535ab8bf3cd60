"""The telemetry service: the session's hub -> MQTT, and MQTT commands -> the session's control.

The music never waits for the network. A pump task turns hub messages into MQTT messages in a bounded outbox (the
oldest are dropped, and counted, when the broker is away long enough to fill it); a connection loop drains the outbox
whenever a broker is there, reconnecting with jittered exponential backoff. On every reconnect it republishes the
retained status and config and reports, as an event, how long it was away and how much it dropped. On shutdown it
flushes what is left (briefly), then publishes a retained "offline" status; a crash leaves the Last Will to say so.

Nothing a sender puts on the command topic can end the service: commands come in through daemon/mqtt/intake.py (a
bounded queue, a token bucket, a flood guard), the handler never raises, and any other failure drops the connection
and starts a fresh one. Should the service still have to end, it says "offline" first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import ssl
import time
from collections import deque
from typing import Any

import aiomqtt
from neuromusic.daemon.mqtt import ha_discovery
from neuromusic.daemon.mqtt import secrets as mqtt_secrets
from neuromusic.daemon.mqtt import topics as mqtt_topics
from neuromusic.daemon.mqtt.config import MqttConfig, safe_device_id
from neuromusic.daemon.mqtt.intake import CommandFlood, CommandIntake
from neuromusic.daemon.mqtt.topics import Outgoing
from neuromusic.daemon.services.telemetry_feed import FED_TYPES, TelemetryFeed
from neuromusic.daemon.session.context import SessionContext
from neuromusic.daemon.session.hub import Subscription
from neuromusic.models.core.messages import Event

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0
SHUTDOWN_FLUSH_S = 2.0
BACKOFF_BASE_S = 0.5


def _raised_while_cancelled(error: BaseException) -> bool:
    """Whether `error` was raised while a CancelledError was being handled (it is then in the context chain)."""
    seen = error.__context__
    while seen is not None:
        if isinstance(seen, asyncio.CancelledError):
            return True
        seen = seen.__context__
    return False


def broker_client(
    config: MqttConfig,
    client_id: str,
    password: str,
    tls: ssl.SSLContext | None,
    logger: logging.Logger,
    will: Outgoing,
) -> aiomqtt.Client:
    """A client for the configured broker, `will` its Last Will (the retained "offline" a dead process leaves)."""
    return aiomqtt.Client(
        config.host,
        config.broker_port,
        username=config.user or None,
        password=password or None,
        identifier=client_id,
        will=aiomqtt.Will(will.topic, will.payload, qos=1, retain=True),
        keepalive=config.keepalive_s,
        timeout=PUBLISH_TIMEOUT_S,
        tls_context=tls,
        logger=logger,
        max_queued_incoming_messages=config.limits.incoming_queue,
    )


class Telemetry:
    """The service: a pump from the hub into a bounded outbox, and a connection loop that drains it to the broker."""

    name = "telemetry"

    def __init__(self, ctx: SessionContext, config: MqttConfig, rng: random.Random | None = None) -> None:
        self.ctx = ctx
        self.config = config
        self.device_id = config.device_id or safe_device_id(ctx.device_id)
        # A random suffix: two containers (both PID 1) or two hosts with one device id must not take over each
        # other's connection, which the broker does for a client id it already knows.
        self.client_id = f"neuromusic-{self.device_id}-{secrets.token_hex(4)}"
        self._password = mqtt_secrets.resolve_password(config)
        self._tls = mqtt_secrets.tls_context(config)
        self._plaintext_warning = mqtt_secrets.plaintext_warning(config, self._password)
        self.feed = TelemetryFeed(ctx, config, self.device_id, self._enqueue, self._counters)
        self.commands = CommandIntake(ctx, config, self.device_id, self._enqueue, self.feed.update_state)
        self._client_log = logging.getLogger(f"{__name__}.client.{self.client_id}")
        self._client_log.addFilter(self.commands.discards)
        self._rng = rng or random.Random()
        self._outbox: deque[Outgoing] = deque()
        self._wakeup = asyncio.Event()
        self._sub: Subscription | None = None
        self.connected = asyncio.Event()
        self.published = 0
        self.dropped_total = 0
        self._dropped_unreported = 0
        self._hub_dropped_seen = 0
        self.reconnects = 0
        self._lost_at: float | None = None  # time.monotonic() when the broker went away (None: never connected yet)

    # -- hub side ----------------------------------------------------------------------------------------------
    async def run(self) -> None:
        self._sub = self.ctx.hub.subscribe(*FED_TYPES, maxsize=512)
        pump = asyncio.create_task(self.feed.pump(self._sub), name="telemetry-pump")
        if self._plaintext_warning:
            log.warning("%s", self._plaintext_warning)
            self.ctx.hub.publish(Event(self.ctx.clock.now(), "warning", self._plaintext_warning))
        try:
            await self._connection_loop()
        except Exception:
            await self._last_word()  # the Will covers a dead process, not a clean disconnect: say it here
            raise
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            self._sub.close()

    @property
    def state(self) -> str:
        """The session's state as the status topic reports it."""
        return self.feed.state

    def accept(self, message: Any) -> None:
        """Turn one hub message into outgoing MQTT messages (telemetry_feed.py)."""
        self.feed.accept(message)

    def _counters(self) -> dict[str, int]:
        return {
            "published": self.published,
            "dropped": self.dropped_total,
            "reconnects": self.reconnects,
            "commands_dropped": self.commands.dropped,
            **self.ctx.counts,
        }

    def _enqueue(self, message: Outgoing) -> None:
        if len(self._outbox) >= self.config.queue_size:
            self._outbox.popleft()  # the oldest goes: after an outage the newest values matter most
            self.dropped_total += 1
            self._dropped_unreported += 1
        self._outbox.append(message)
        self._wakeup.set()

    # -- broker side -------------------------------------------------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        offline = mqtt_topics.status(self.device_id, self.ctx.clock.now(), "offline", "connection lost")
        return broker_client(self.config, self.client_id, self._password, self._tls, self._client_log, offline)

    async def _connection_loop(self) -> None:
        attempt = 0
        while True:
            try:
                async with self._client() as client:
                    attempt = 0
                    await self._serve(client)
            except CommandFlood:
                self.connected.clear()
                continue  # at once: a fresh connection without commands, telemetry goes on
            except aiomqtt.MqttError as error:
                if _raised_while_cancelled(error):
                    # aiomqtt's __aexit__ disconnects gracefully on the way out of a cancel; when the connection
                    # breaks at that moment it raises MqttError in place of the CancelledError. The shutdown wins.
                    raise asyncio.CancelledError from error
                self.connected.clear()
                if self._lost_at is None:
                    self._lost_at = time.monotonic()
                    text = f"MQTT broker {self.config.host}:{self.config.broker_port} unreachable: {error}; retrying"
                    self.ctx.hub.publish(Event(self.ctx.clock.now(), "warning", text))
                    # Also on stderr: with --json or --quiet no view shows the event, and the user asked for MQTT.
                    log.warning("%s", text)
                else:
                    log.info("MQTT: %s; retrying", error)
            except Exception as error:  # a bug or a surprise from the client library: a fresh connection, not death
                self.connected.clear()
                log.exception("telemetry failed; reconnecting")
                text = f"MQTT telemetry failed ({type(error).__name__}); reconnecting"
                self.ctx.hub.publish(Event(self.ctx.clock.now(), "error", text))
            await asyncio.sleep(self.backoff(attempt))
            attempt += 1

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before connection attempt `attempt` + 1. Full jitter (uniform from 0) keeps a lab's
        daemons from reconnecting in lock step after the broker restarts."""
        return self._rng.uniform(0, min(self.config.reconnect_max_s, BACKOFF_BASE_S * 2 ** min(attempt, 16)))

    async def _serve(self, client: aiomqtt.Client) -> None:
        if self._lost_at is not None or self.reconnects or self.published:
            self.reconnects += 1
        paused = self.commands.paused
        if self.config.remote_control and not paused:  # off: not subscribed, so commands never reach this host
            await client.subscribe(self.commands.topic, qos=1)
        # Retained state first, so a dashboard that connects later sees where the session is.
        await self._send(client, self.feed.status())
        await self._send(client, mqtt_topics.config(self.device_id, self.ctx.clock.now(), self.ctx.config))
        if self.config.ha_discovery:
            for message in ha_discovery.discovery_messages(self.device_id, self.config.remote_control):
                await self._send(client, message)
        self._report_reconnect()
        self.connected.set()
        try:
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._sender(client), name="telemetry-sender")
                    tg.create_task(self.commands.receive(client), name="telemetry-commands")
                    if self.config.remote_control and paused:
                        tg.create_task(self.commands.subscribe_after_pause(client), name="telemetry-resubscribe")
            except* Exception as group:
                raise group.exceptions[0] from None  # the connection broke (or worse): the loop reconnects
        except asyncio.CancelledError:
            await self._goodbye(client)
            raise

    def _report_reconnect(self) -> None:
        hub_dropped = self._sub.dropped if self._sub else 0
        lost = hub_dropped - self._hub_dropped_seen
        self._hub_dropped_seen = hub_dropped
        if self._lost_at is None and not lost and not self._dropped_unreported:
            return
        away = time.monotonic() - self._lost_at if self._lost_at is not None else 0.0
        dropped = self._dropped_unreported + lost
        self.dropped_total += lost
        self._dropped_unreported = 0
        self._lost_at = None
        self.feed.reconnected(away, dropped)

    async def _sender(self, client: aiomqtt.Client) -> None:
        me = asyncio.current_task()
        while True:
            while self._outbox:
                # Peek, publish, then pop: a message whose publish failed stays for the next connection.
                try:
                    await self._send(client, self._outbox[0])
                except (aiomqtt.MqttError, asyncio.CancelledError):
                    raise
                except Exception:  # this message, not the connection, is the problem: it must not block the rest
                    log.exception("telemetry: cannot publish on %s; left out", self._outbox[0].topic)
                    self.dropped_total += 1
                self._outbox.popleft()
                if me is not None and me.cancelling():
                    # Python 3.11's asyncio.wait_for (inside aiomqtt's publish) loses a cancel that arrives as the
                    # confirmation does; this task would then wait for more messages forever and hold shutdown up.
                    raise asyncio.CancelledError
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _send(self, client: aiomqtt.Client, message: Outgoing) -> None:
        await client.publish(
            message.topic, message.payload, qos=message.qos, retain=message.retain, timeout=PUBLISH_TIMEOUT_S
        )
        self.published += 1

    async def _last_word(self) -> None:
        """The service is ending on an error: a short connection of its own to leave a retained "offline"."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(SHUTDOWN_FLUSH_S), self._client() as client:
                await self._send(client, self.feed.status("offline"))

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """Shutdown: flush what is left within a deadline, then say offline (a clean disconnect sends no Will)."""
        if self._sub is not None:
            self.feed.drain(self._sub)  # the last events must not be lost
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(SHUTDOWN_FLUSH_S):
                while self._outbox:
                    await self._send(client, self._outbox.popleft())
                await self._send(client, self.feed.status("offline"))


def create(ctx: SessionContext) -> Telemetry | None:
    config = ctx.config.mqtt
    if not config.enabled:
        return None
    return Telemetry(ctx, config)
