"""The dashboard's cost: one MQTT message through the board, and one authorized request through the web server.

Baselines in the same run: `json.loads` of the same payloads (the board's work beyond parsing is the ratio), and a
bare aiohttp handler encoding the same snapshot with no Host, token or Origin checks and no caps (the ratio is what
the checks add). No broker is needed: the board is fed directly.
    .venv/bin/python benchmarks/dashboard.py [--n 20000] [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time

import aiohttp
import numpy as np
from aiohttp import web
from neuromusic.daemon.dashboard.board import Board
from neuromusic.daemon.dashboard.server import Broker, Dashboard
from neuromusic.daemon.mqtt import topics
from neuromusic.models.core.messages import Controls, Features, Score

TOKEN = "benchmark-token-0123456789"


def session_messages(device: str, n: int) -> list[tuple[str, bytes]]:
    """A session's mix at the default rates: 10 scores, 2 band and 1 quality message and a bar's controls per s."""
    channels = tuple(f"C{i}" for i in range(8))
    bands = ("delta", "theta", "alpha", "beta", "gamma")
    features = Features(0.0, np.linspace(0.5, 2.5, 40).reshape(5, 8), bands, channels, np.ones(8, bool), ("",) * 8)
    cycle = [topics.score(device, Score(float(i), 0.6, 1.0, "scoring")) for i in range(10)]
    cycle += [topics.bands(device, features)] * 2 + [topics.quality(device, features)]
    cycle += [topics.controls(device, 0.0, Controls(62.0, 0.6, 0.4))]
    return [(m.topic, m.payload) for m in (cycle * (n // len(cycle) + 1))[:n]]


def bench_board(n: int) -> tuple[float, float]:
    messages = session_messages("lab-1", n)
    start = time.perf_counter()
    for _, payload in messages:
        json.loads(payload)
    parse = (time.perf_counter() - start) / n
    board = Board()
    start = time.perf_counter()
    for topic, payload in messages:
        board.update(topic, payload)
    return parse * 1e6, (time.perf_counter() - start) / n * 1e6


async def timed_gets(url: str, headers: dict[str, str], count: int) -> list[float]:
    samples = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            start = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            samples.append((time.perf_counter() - start) * 1e3)
    return samples


async def bench_http(count: int) -> tuple[list[float], list[float]]:
    dash = Dashboard(Broker("127.0.0.1", 1), "127.0.0.1", 0, token=TOKEN)
    for device in ("lab-1", "lab-2", "lab-3", "lab-4"):
        for topic, payload in session_messages(device, 600):
            dash.board.update(topic, payload)
    task = asyncio.create_task(dash.run())
    await dash.ready.wait()

    async def bare(request: web.Request) -> web.Response:
        return web.json_response(dash.snapshot())

    app = web.Application()
    app.router.add_get("/api/devices", bare)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    bare_port = runner.addresses[0][1]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        await timed_gets(f"http://127.0.0.1:{dash.port}/api/devices", headers, 50)  # warm up both
        await timed_gets(f"http://127.0.0.1:{bare_port}/api/devices", {}, 50)
        ours = await timed_gets(f"http://127.0.0.1:{dash.port}/api/devices", headers, count)
        baseline = await timed_gets(f"http://127.0.0.1:{bare_port}/api/devices", {}, count)
    finally:
        await runner.cleanup()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return ours, baseline


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[int(q * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="MQTT messages through the board")
    parser.add_argument("--requests", type=int, default=1000, help="HTTP requests to each server")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    parse_us, board_us = bench_board(args.n)
    ours, baseline = asyncio.run(bench_http(args.requests))
    print(f"{'measure':<44} {'dashboard':>10} {'baseline':>10} {'ratio':>7}")
    print(
        f"{'board, µs per MQTT message (vs json.loads)':<44} {board_us:>10.1f} {parse_us:>10.1f} "
        f"{board_us / parse_us:>7.2f}"
    )
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        ours_q, base_q = p(ours, q), p(baseline, q)
        label = f"GET /api/devices {name} ms (vs bare aiohttp)"
        print(f"{label:<44} {ours_q:>10.2f} {base_q:>10.2f} {ours_q / base_q:>7.2f}")
    print(
        f"(4 devices, 600 messages each; {args.n} board messages; {args.requests} requests; "
        f"median of ours {statistics.median(ours):.2f} ms)"
    )


if __name__ == "__main__":
    main()
