"""What one running session offers to its services (player, telemetry, recorder, ...), and the service contract.

A service is created by a factory `create(ctx) -> SessionService | None` registered in `daemon/session/services.py`
(None = disabled by this configuration). The session runs every service's `run()` as a named task in its
TaskGroup; `run()` works until cancelled and cleans up in `finally` (all notes off, retained offline status, flush).
A service that holds something from its creation on (the player's open sinks, an LSL outlet) is also an async context
manager: the session enters it before any service runs and exits it after all of them ended (in reverse order), also
when its run() never started. A service that fails is reported on the hub as an Event(kind="error"); the session
then stops (exit code 8) or goes on without it, as [session] on_service_failure says.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from neuromusic.daemon.config import Config
from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.hub import Hub
from neuromusic.daemon.session.profile_store import ProfileStore
from neuromusic.models.core.clock import MonotonicClock, VirtualClock


@dataclass
class SessionContext:
    config: Config
    hub: Hub
    clock: MonotonicClock | VirtualClock
    control: SessionControl
    device_id: str
    session_dir: Path | None = None  # where this session's recording and outputs go (None: nothing written)
    started: asyncio.Event = field(default_factory=asyncio.Event)  # set once the source is streaming
    profile: ProfileStore | None = None  # --profile: services read their section at start, put() it before they end
    counts: dict[str, int] = field(default_factory=dict)  # what went wrong and was lived with (e.g. fallback bars)


class SessionService(Protocol):
    name: str

    async def run(self) -> None: ...
