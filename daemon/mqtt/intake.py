"""Commands in: what stands between the broker and `remote.handle`, so that no sender can take the event loop.

A bounded queue of received messages (the client discards beyond it), a token bucket (at most `command_rate_hz`,
bursts of `command_burst`), retained commands ignored, and a flood guard: after FLOOD_REFUSALS commands refused or
discarded, `CommandFlood` asks the connection loop for a fresh connection that takes no commands for FLOOD_PAUSE_S.
Closing the flooded connection drops, at the broker, everything queued for this client, which an unsubscribe would
leave to be read (and discarded) here. What was dropped is counted and reported as one event per DROP_REPORT_S.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiomqtt
from neuromusic.daemon.mqtt import remote
from neuromusic.daemon.mqtt import topics as mqtt_topics
from neuromusic.daemon.mqtt.config import MqttConfig
from neuromusic.daemon.mqtt.ratelimit import TokenBucket
from neuromusic.daemon.mqtt.topics import Outgoing
from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.messages import Event

log = logging.getLogger(__name__)

DROP_REPORT_S = 10.0  # dropped commands are reported at most this often (a flood must not become a flood of events)
YIELD_EVERY = 16  # commands handled between two turns of the event loop, so a burst never holds up the music
FLOOD_REFUSALS = 200
FLOOD_PAUSE_S = 5.0


class CommandFlood(Exception):
    """Raised by the receiver to replace a flooded connection."""


class DiscardCounter(logging.Filter):
    """aiomqtt logs one warning per message it discards from a full incoming queue: count them instead."""

    def __init__(self) -> None:
        super().__init__()
        self.discarded = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Message queue is full. Discarding message.":
            self.discarded += 1
            return False
        return True


class CommandIntake:
    def __init__(
        self,
        ctx: SessionContext,
        config: MqttConfig,
        device_id: str,
        reply: Callable[[Outgoing], None],
        changed: Callable[[], None],
    ) -> None:
        """`reply`: queues a message for the broker; `changed`: called after every handled command."""
        self.ctx = ctx
        self.config = config
        self.topic = mqtt_topics.topic(device_id, "cmd")
        self._device_id = device_id
        self._reply = reply
        self._changed = changed
        limits = config.limits
        self.bucket = TokenBucket(limits.command_rate_hz, limits.command_burst, ctx.clock.now())
        self.discards = DiscardCounter()  # a filter on the client's logger
        self.received = 0  # messages on the command topic, dropped ones included
        self.answered = 0
        self.dropped = 0  # reported so far
        self.floods = 0
        self._refused_in_a_row = 0
        self._discards_reported = 0
        self._discards_at_connect = 0
        self._paused_until = 0.0  # time.monotonic() before which the command topic is not subscribed
        self._reported_at = ctx.clock.now()

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._paused_until

    async def receive(self, client: aiomqtt.Client) -> None:
        """Handle the connection's commands until it ends (or a flood ends it)."""
        handled = 0
        self._discards_at_connect = self.discards.discarded
        async for message in client.messages:
            try:
                self.handle(message)
            except Exception:  # the handler never raises; this is the net under the net
                log.exception("telemetry: a command could not be answered")
            handled += 1
            # Both kinds of refusal count: what the rate limit turned away and what the full queue discarded.
            if self._refused_in_a_row + self.discards.discarded - self._discards_at_connect >= FLOOD_REFUSALS:
                self._flooded()
            elif handled % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def subscribe_after_pause(self, client: aiomqtt.Client) -> None:
        await asyncio.sleep(max(0.0, self._paused_until - time.monotonic()))
        await client.subscribe(self.topic, qos=1)

    def handle(self, message: aiomqtt.Message) -> None:
        now = self.ctx.clock.now()
        self.received += 1
        if message.retain:
            # A retained command would run again at every start of every daemon on this device id.
            log.warning("MQTT: ignored a retained command on %s (commands must not be retained)", message.topic)
            return
        if not self.bucket.allow(now):
            self._refused_in_a_row += 1
            self._report_dropped(now)
            return
        self._refused_in_a_row = 0
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        reply = remote.handle(self.ctx.control, payload, enabled=self.config.remote_control)
        self.answered += 1
        log.info("MQTT command %r -> %s", payload[:200], reply)
        self._reply(mqtt_topics.result(self._device_id, self.ctx.clock.now(), reply))
        self._changed()  # pause/resume change the status at once
        self._report_dropped(now)

    def _flooded(self) -> None:
        self._refused_in_a_row = 0
        self._paused_until = time.monotonic() + FLOOD_PAUSE_S
        self.floods += 1
        rate = self.config.limits.command_rate_hz
        text = f"MQTT: a flood of commands (far more than {rate:g} per second); commands paused for {FLOOD_PAUSE_S:g} s"
        log.warning("%s", text)
        data = {"what": "commands", "paused_s": FLOOD_PAUSE_S}
        self.ctx.hub.publish(Event(self.ctx.clock.now(), "warning", text, data))
        raise CommandFlood(text)

    def _report_dropped(self, now: float) -> None:
        if now - self._reported_at < DROP_REPORT_S:
            return
        dropped = self.bucket.take_refused() + self.discards.discarded - self._discards_reported
        self._discards_reported = self.discards.discarded
        self._reported_at = now
        if dropped:
            self.dropped += dropped
            rate = self.config.limits.command_rate_hz
            text = f"MQTT: {dropped} commands dropped (more than {rate:g} per second)"
            log.warning("%s", text)
            self.ctx.hub.publish(Event(self.ctx.clock.now(), "warning", text, {"what": "commands", "dropped": dropped}))
