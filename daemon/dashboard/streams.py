"""Server-Sent Events to every open page: one "snapshot" when a page connects, then each update as it comes.

Every page has its own bounded queue: a stalled tab loses its oldest updates, and nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

CLIENT_QUEUE = 256  # updates buffered per browser
KEEPALIVE_S = 15.0


class EventStreams:
    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot
        self._queues: set[asyncio.Queue[str]] = set()

    def __len__(self) -> int:
        """Pages watching now."""
        return len(self._queues)

    def broadcast(self, event: str, data: Any) -> None:
        frame = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frame)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Stream to this page until it goes away."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=CLIENT_QUEUE)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        self._queues.add(queue)
        try:
            await response.prepare(request)
            await response.write(f"retry: 1000\nevent: snapshot\ndata: {json.dumps(self._snapshot())}\n\n".encode())
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    frame = ": keepalive\n\n"  # lets the browser and proxies see the stream is alive
                await response.write(frame.encode())
        except ConnectionError:
            pass  # the tab was closed
        finally:
            self._queues.discard(queue)
        return response
