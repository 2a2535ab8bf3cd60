"""In-process fan-out of session messages.

Every stage publishes its messages (Chunk, Features, Score, Controls, Bar, Event, SourceStatus, ...) to the Hub;
every consumer (terminal view, JSON printer, telemetry, recorder, player) subscribes to the types it wants. Queues are
bounded: a slow subscriber loses its oldest messages, never blocks the publisher, and the loss is counted.

`publish` must be called on the event loop's thread; worker threads use `publish_threadsafe`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


class Subscription:
    """One subscriber's bounded queue. Iterate it with `async for`; `dropped` counts messages it lost."""

    def __init__(self, hub: Hub, types: tuple[type, ...], maxsize: int) -> None:
        self._hub = hub
        self.types = types
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, message: Any) -> None:
        if self.types and not isinstance(message, self.types):
            return
        if self.queue.full():
            # Drop the oldest: a live view wants the newest data, and the publisher must never wait.
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)

    async def get(self) -> Any:
        return await self.queue.get()

    def get_nowait(self) -> Any:
        return self.queue.get_nowait()

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            yield await self.queue.get()


class Hub:
    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, *types: type, maxsize: int = 1024) -> Subscription:
        """Subscribe to messages of the given types (all messages when none are given)."""
        subscription = Subscription(self, tuple(types), maxsize)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, message: Any) -> None:
        for subscription in list(self._subscriptions):
            subscription.offer(message)

    def publish_threadsafe(self, message: Any) -> None:
        if self._loop is None:
            raise RuntimeError("Hub.bind_loop() must be called before publishing from a thread")
        self._loop.call_soon_threadsafe(self.publish, message)
