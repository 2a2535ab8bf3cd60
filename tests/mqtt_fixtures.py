"""A real mosquitto broker for tests: a free 127.0.0.1 port, a temp config, kill and restart on the same port."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest
from neuromusic.daemon.config import load_config
from neuromusic.daemon.session.context import SessionContext
from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.hub import Hub
from neuromusic.models.core.clock import MonotonicClock
from neuromusic.models.core.messages import Bar, Controls, Features, Note, Score
from neuromusic.policies.base import ControlBounds

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, folder: Path, port: int | None = None, extra: str = "allow_anonymous true\n") -> None:
        self.folder = folder
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\npersistence false\nlog_dest file {folder}/broker.log\n"
            f"log_type all\n{extra}" + ("user root\n" if os.geteuid() == 0 else "")
            # As root, mosquitto drops to its own user, which cannot read files in this root-only temp folder.
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 5.0) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}; see {self.folder}/broker.log")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.address} within {timeout} s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.kill()


class Collector:
    """Subscribes to a topic filter and keeps every message, for assertions."""

    def __init__(self, broker: Broker, topic: str = "neuromusic/#") -> None:
        self.broker = broker
        self.topic = topic
        self.messages: list[aiomqtt.Message] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> Collector:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        # This is the test's own subscriber: its client's disconnect handshake can stall on a broker that was just
        # restarted, and that must not hang the test that uses it. What it collected is already in self.messages.
        await asyncio.wait({self._task}, timeout=5.0)

    async def _run(self) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            await client.subscribe(self.topic, qos=1)
            self._ready.set()
            async for message in client.messages:
                self.messages.append(message)

    def on(self, suffix: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if str(m.topic).endswith("/" + suffix)]

    async def wait_for(self, suffix: str, count: int = 1, timeout: float = 5.0) -> list[aiomqtt.Message]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.on(suffix)) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{count} message(s) on .../{suffix} not seen within {timeout} s; "
                    f"got {sorted({str(m.topic) for m in self.messages})}"
                )
            await asyncio.sleep(0.01)
        return self.on(suffix)


# -- a session without a signal path: a Hub fed by hand, for testing telemetry before and beside `neuromusic run` --
def make_context(**mqtt: Any) -> SessionContext:
    """A SessionContext whose config has the given [mqtt] keys (e.g. host=..., port=..., device_id=...)."""
    config = load_config(None, {f"mqtt.{key}": value for key, value in mqtt.items()})
    hub = Hub()
    clock = MonotonicClock()
    control = SessionControl(
        clock, hub.publish, "mapping", ControlBounds(), target=0.8, policy_names=lambda: ["mapping", "constant"]
    )
    return SessionContext(config=config, hub=hub, clock=clock, control=control, device_id="test-host")


def features(t: float, n_channels: int = 4) -> Features:
    bands = ("delta", "theta", "alpha", "beta", "gamma")
    de = np.linspace(0.5, 2.5, len(bands) * n_channels).reshape(len(bands), n_channels)
    de[0, -1] = np.nan  # a bad channel's DE is NaN and must arrive as null
    good = np.array([True] * (n_channels - 1) + [False])
    names = tuple(f"C{i}" for i in range(n_channels))
    return Features(t, de, bands, names, good, ("",) * (n_channels - 1) + ("flat",), gap_s=0.0)


async def feed(ctx: SessionContext, seconds: float, hz: float = 10.0) -> int:
    """Publish a slowly rising score (and features, and a bar per second) like a session would; returns ticks."""
    n = 0
    start = ctx.clock.now()
    while ctx.clock.now() - start < seconds:
        t = ctx.clock.now()
        value = 0.5 + 0.4 * math.sin((t - start) / 3.0)
        ctx.hub.publish(Score(t, value, 0.9, "scoring", raw=value))
        ctx.hub.publish(features(t))
        if n % int(hz) == 0:
            controls = Controls(60 + 20 * value, value, 1 - value)
            ctx.hub.publish(controls)
            notes = (Note(60, 0.0, 1.0), Note(64, 1.0, 1.0), Note(67, 2.0, 2.0))
            ctx.hub.publish(Bar(n, "C E G2", notes, 4.0, "4/4", "C", controls))
        n += 1
        await asyncio.sleep(1 / hz)
    return n


def daemon(broker: Broker, device_id: str, *flags: str) -> subprocess.Popen[bytes]:
    """A real `neuromusic run` on a simulated listener, reporting to the test broker."""
    command = [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--board", "simulated", "--script", "calm:600"]
    command += ["--baseline", "2", "--quiet", "--synth", "none", "--no-record", "--duration", "60"]
    command += ["--mqtt", broker.address, "--device-id", device_id, *flags]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
