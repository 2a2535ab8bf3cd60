"""The session seen from MQTT: hub messages turned into outgoing messages, and the one-word state the status reports.

Scores, band DE and quality are throttled to the configured rates (a change of the score's state always goes out);
controls, bars and events go out as they come; a source's state is logged on `events` when it changes. Every message
may change the session's state (playing, calibrating, poor-signal, stale, paused, ...): a change publishes a fresh
retained status at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from neuromusic.daemon.mqtt import topics as mqtt_topics
from neuromusic.daemon.mqtt.config import MqttConfig
from neuromusic.daemon.mqtt.topics import Outgoing
from neuromusic.daemon.session.context import SessionContext
from neuromusic.daemon.session.hub import Subscription
from neuromusic.models.core.messages import Bar, Controls, Event, Features, Score, SourceStatus

log = logging.getLogger(__name__)

# What the hub carries to MQTT: the service subscribes to these.
FED_TYPES = (Score, Features, Controls, Bar, Event, SourceStatus)


class TelemetryFeed:
    def __init__(
        self,
        ctx: SessionContext,
        config: MqttConfig,
        device_id: str,
        enqueue: Callable[[Outgoing], None],
        counters: Callable[[], dict[str, int]],
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.device_id = device_id
        self._enqueue = enqueue
        self._counters = counters  # the service's counters, published in every status
        self._last_sent: dict[str, float] = {}  # topic name -> time.monotonic() of the last publish (throttling)
        self._last_score_state: str | None = None
        self._score_state: str | None = None
        self._no_good_channel = False  # the latest window had no usable channel
        self._source_state = "connecting"
        self._source_event_state: str | None = None  # the state the last source event on `events` announced
        self.state = "online"

    async def pump(self, sub: Subscription) -> None:
        """Accept every message the subscription brings, for ever."""
        while True:
            message = await sub.get()
            try:
                self.accept(message)
            except Exception:  # one message that cannot be sent must not stop every later one
                log.exception("telemetry: cannot publish a %s message; left out", type(message).__name__)

    def drain(self, sub: Subscription) -> None:
        """Accept whatever the subscription still holds (at shutdown)."""
        while not sub.queue.empty():
            self.accept(sub.get_nowait())

    def accept(self, message: Any) -> None:
        """Turn one hub message into outgoing MQTT messages (some throttled away) and update the status."""
        dev = self.device_id
        rates = self.config.rates
        if isinstance(message, Score):
            self._score_state = message.state
            changed = message.state != self._last_score_state
            self._last_score_state = message.state
            if changed or self._due("score", rates.score_hz):
                self._enqueue(mqtt_topics.score(dev, message))
        elif isinstance(message, Features):
            self._no_good_channel = not bool(message.good.any())
            if self._due("bands", rates.bands_hz):
                self._enqueue(mqtt_topics.bands(dev, message))
            if self._due("quality", rates.quality_hz):
                self._enqueue(mqtt_topics.quality(dev, message))
        elif isinstance(message, Controls):
            self._enqueue(mqtt_topics.controls(dev, self.ctx.clock.now(), message))
        elif isinstance(message, Bar):
            self._enqueue(mqtt_topics.bar(dev, self.ctx.clock.now(), message))
        elif isinstance(message, Event):
            self._enqueue(mqtt_topics.event(dev, message))
            if "fallbacks" in message.data:  # a bar fell back: the status carries the new count
                self._enqueue(self.status())
        elif isinstance(message, SourceStatus):
            # The events topic logs transitions: a source that reports the state it is already in (a stop seen both
            # by the reader and by the acquisition's clean-up, repeated reconnect attempts) adds nothing.
            if message.state != self._source_event_state:
                self._enqueue(mqtt_topics.source_event(dev, message))
            self._source_event_state = message.state
            self._source_state = message.state
        self.update_state()

    def _due(self, name: str, rate_hz: float) -> bool:
        if rate_hz <= 0:
            return False
        now = time.monotonic()
        # 10 % slack so a 10 Hz stream is not halved by scheduling jitter against a 10 Hz limit.
        if now - self._last_sent.get(name, -1e9) < 0.9 / rate_hz:
            return False
        self._last_sent[name] = now
        return True

    def update_state(self) -> None:
        """Work out the session's state; a change is published as a retained status at once."""
        if self.ctx.control.paused:
            state = "paused"
        elif self._source_state in ("stale", "reconnecting"):
            state = "stale"
        elif self._score_state == "poor-signal" or (self._score_state == "calibrating" and self._no_good_channel):
            state = "poor-signal"  # no usable channel: neither a stale source nor a calibration that advances
        elif self._score_state is None:
            state = "online"
        elif self._score_state == "calibrating":
            state = "calibrating"
        elif self._score_state == "scoring":
            state = "playing"
        else:
            state = "stale"
        if state != self.state:
            self.state = state
            self._enqueue(self.status())

    def reconnected(self, away_s: float, dropped: int) -> None:
        """Report a reconnect through the hub, so the terminal and the recorder see it too (the pump brings it back
        to MQTT)."""
        text = f"MQTT telemetry reconnected after {away_s:.1f} s; {dropped} messages dropped"
        data = {"what": "telemetry", "dropped": dropped, "away_s": away_s}
        self.ctx.hub.publish(Event(self.ctx.clock.now(), "reconnect", text, data))

    def status(self, state: str | None = None) -> Outgoing:
        """The retained status: the state (the present one unless given), what steers the session, the counters."""
        control = self.ctx.control
        return mqtt_topics.status(
            self.device_id,
            self.ctx.clock.now(),
            state or self.state,
            paused=control.paused,
            policy=control.policy_name,
            target=control.target,
            override=None if control.override is None else control.override.as_dict(),
            remote_control=self.config.remote_control,
            telemetry=self._counters(),
        )
