"""End-to-end telemetry latency: hub.publish(Score) in the daemon -> mosquitto -> a subscriber, p50/p99.

Starts its own mosquitto on a free 127.0.0.1 port. The baseline, in the same run, is a bare aiomqtt publish of the
same payload (no hub, no outbox, no JSON encoding in the loop): the ratio is what the telemetry service adds.
    .venv/bin/python benchmarks/telemetry.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiomqtt
from neuromusic.daemon.config import load_config
from neuromusic.daemon.services.telemetry import Telemetry
from neuromusic.daemon.session.context import SessionContext
from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.hub import Hub
from neuromusic.models.core.clock import MonotonicClock
from neuromusic.models.core.messages import Score
from neuromusic.policies.base import ControlBounds


def start_broker(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    (folder / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    command = [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(folder / "m.conf")]
    broker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    return broker, port


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))], ordered[-1]


async def measure(port: int, n: int, hz: float, through_telemetry: bool) -> list[float]:
    """Latency in ms from the send to the subscriber's receipt, for n scores sent at `hz`."""
    sent: dict[int, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    ready = asyncio.Event()

    async def subscriber() -> None:
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe("neuromusic/bench/score")
            ready.set()
            async for message in client.messages:
                received = time.perf_counter()
                key = int(json.loads(message.payload)["raw"])  # type: ignore[arg-type]
                if key in sent:
                    latencies.append((received - sent[key]) * 1000)
                if len(latencies) >= n:
                    done.set()

    listener = asyncio.create_task(subscriber())
    await ready.wait()
    config = load_config(
        None, {"mqtt.host": "127.0.0.1", "mqtt.port": port, "mqtt.device_id": "bench", "mqtt.rates.score_hz": 100.0}
    )
    hub, clock = Hub(), MonotonicClock()
    control = SessionControl(clock, hub.publish, "mapping", ControlBounds())
    ctx = SessionContext(config=config, hub=hub, clock=clock, control=control, device_id="bench")
    service = Telemetry(ctx, config.mqtt)
    task = asyncio.create_task(service.run())
    await service.connected.wait()
    async with aiomqtt.Client("127.0.0.1", port) as bare:
        for i in range(n):
            sent[i] = time.perf_counter()
            if through_telemetry:
                hub.publish(Score(clock.now(), 0.5, 0.9, "scoring", raw=float(i)))
            else:
                payload = json.dumps({"v": 1, "device": "bench", "value": 0.5, "raw": float(i)})
                await bare.publish("neuromusic/bench/score", payload)
            await asyncio.sleep(1 / hz)
        await asyncio.wait_for(done.wait(), 10)
    for t in (task, listener):
        t.cancel()
    await asyncio.gather(task, listener, return_exceptions=True)
    return latencies


async def main(n: int, hz: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        broker, port = start_broker(Path(folder))
        try:
            bare = percentiles(await measure(port, n, hz, through_telemetry=False))
            full = percentiles(await measure(port, n, hz, through_telemetry=True))
        finally:
            broker.kill()
            broker.wait()
    print(f"{n} score messages at {hz:g} Hz, 127.0.0.1 mosquitto, QoS 0")
    print(f"{'path':<38} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(f"{'bare aiomqtt publish (baseline)':<38} {bare[0]:8.2f} {bare[1]:8.2f} {bare[2]:8.2f}")
    print(f"{'hub -> telemetry -> broker -> sub':<38} {full[0]:8.2f} {full[1]:8.2f} {full[2]:8.2f}")
    print(f"{'ratio':<38} {full[0] / bare[0]:8.2f} {full[1] / bare[1]:8.2f} {'':>8}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--hz", type=float, default=50.0, help="send rate (the score is about 4-10 Hz in a session)")
    options = parser.parse_args()
    asyncio.run(main(options.n, options.hz))
