"""The page in real headless chromium, judged by its pixels: playing, calibrating, poor signal, low confidence and
offline devices on one broker, each fed by a real telemetry service, then a screenshot read back pixel by pixel.

Set NEUROMUSIC_SCREENSHOT=folder to keep the screenshots.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import shutil
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest
from browser_fixtures import Browser
from mqtt_fixtures import Broker, broker_fixture, make_context  # noqa: F401
from neuromusic.daemon.dashboard.server import Broker as BrokerAddress
from neuromusic.daemon.dashboard.server import Dashboard
from neuromusic.daemon.mqtt import topics
from neuromusic.daemon.services.telemetry import Telemetry
from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.controls import CONTROLS
from neuromusic.models.core.messages import Controls, Event, Features, Score
from neuromusic.models.signal.score import ScoreConfig
from PIL import Image

pytestmark = [pytest.mark.mqtt, pytest.mark.browser, pytest.mark.slow]

TOKEN = "page-token-0123456789abcdef"
BANDS = ("delta", "theta", "alpha", "beta", "gamma")
CHANNELS = ("Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2")
GREEN, MAGENTA, AMBER = (46, 157, 87), (194, 24, 122), (201, 138, 18)


def features(t: float, good: int) -> Features:
    mask = np.array([i < good for i in range(len(CHANNELS))])
    de = np.where(mask, np.linspace(0.5, 2.5, len(BANDS) * len(CHANNELS)).reshape(len(BANDS), -1), np.nan)
    reasons = tuple("" if ok else ("flat" if i % 2 else "railed at 187000 µV") for i, ok in enumerate(mask))
    repaired = (2,) + (0,) * (len(CHANNELS) - 1)  # spike samples on Fp1: shown while Fp1 is usable
    return Features(t, de, BANDS, CHANNELS, mask, reasons, repaired=repaired)


def session(broker: Broker, device_id: str, baseline_s: float = 30.0) -> SessionContext:
    ctx = make_context(host=broker.host, port=broker.port, device_id=device_id)
    config = dataclasses.replace(ctx.config, score=ScoreConfig(baseline_s=baseline_s))
    return dataclasses.replace(ctx, config=config)


Step = Callable[[float, float], tuple[Score, int]]  # (now, seconds since start) -> (score, good channels)


async def feed(ctx: SessionContext, step: Step, seconds: float = 600.0) -> None:
    start = ctx.clock.now()
    n = 0
    while ctx.clock.now() - start < seconds:
        t = ctx.clock.now()
        score, good = step(t, t - start)
        ctx.hub.publish(score)
        ctx.hub.publish(features(t, good))
        if n % 10 == 0:
            ctx.hub.publish(Controls(62.0, 0.6, 0.4))
        n += 1
        await asyncio.sleep(0.1)


def playing(t: float, s: float) -> tuple[Score, int]:
    if s < 4.0:
        return Score(t, None, s / 4.0, "calibrating"), 8
    return Score(t, 0.7 + 0.15 * math.sin(s), 1.0, "scoring"), 8


def poor(t: float, s: float) -> tuple[Score, int]:
    return Score(t, None, 0.0, "poor-signal"), 0


def low_confidence(t: float, s: float) -> tuple[Score, int]:
    return Score(t, 0.79, 0.125, "scoring"), 1  # 1 of 8 channels: the old page showed this as the best card


def calibrating(t: float, s: float) -> tuple[Score, int]:
    return Score(t, None, s / 600.0, "calibrating"), 8


class Services:
    """Telemetry services and their feeders, all cancelled at the end."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    async def start(self, ctx: SessionContext, step: Step | None = None) -> asyncio.Task[Any]:
        service = Telemetry(ctx, ctx.config.mqtt)
        task = asyncio.create_task(service.run())
        self.tasks.append(task)
        await asyncio.wait_for(service.connected.wait(), 5)
        if step is not None:
            self.tasks.append(asyncio.create_task(feed(ctx, step)))
        return task

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def dashboard(broker: Broker) -> AsyncIterator[Dashboard]:
    dash = Dashboard(BrokerAddress(broker.host, broker.port), "127.0.0.1", 0, token=TOKEN)
    task = asyncio.create_task(dash.run())
    await asyncio.wait_for(dash.ready.wait(), 5)
    yield dash
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.1)


def near(pixels: np.ndarray, color: tuple[int, int, int], tolerance: int = 30) -> int:
    """How many pixels are within `tolerance` of `color` on every channel."""
    return int((np.abs(pixels[..., :3].astype(int) - np.array(color)) <= tolerance).all(axis=-1).sum())


def greenish(pixels: np.ndarray) -> int:
    """Pixels of the score line, anti-aliased edges included: clearly more green than red or blue."""
    rgb = pixels[..., :3].astype(int)
    return int(((rgb[..., 1] > rgb[..., 0] + 40) & (rgb[..., 1] > rgb[..., 2] + 25)).sum())


def bluish(pixels: np.ndarray) -> int:
    rgb = pixels[..., :3].astype(int)
    return int(((rgb[..., 2] > rgb[..., 0] + 60) & (rgb[..., 2] > rgb[..., 1] + 30)).sum())


def saturated(pixels: np.ndarray) -> float:
    """Share of coloured (not grey) pixels."""
    rgb = pixels[..., :3].astype(int)
    return float(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 40).mean())


async def test_operator_views_in_chromium(dashboard: Dashboard, broker: Broker, tmp_path: Path) -> None:
    services = Services()
    browser = await asyncio.to_thread(Browser, 1300, 1750)

    async def js(expression: str) -> Any:
        return await asyncio.to_thread(browser.evaluate, expression)

    def of(device: str, selector: str) -> str:
        return f"document.querySelector('#device-{device} {selector}')"

    try:
        await services.start(session(broker, "lab-play", baseline_s=4.0), playing)
        await services.start(session(broker, "lab-poor"), poor)
        await services.start(session(broker, "lab-low"), low_confidence)
        await services.start(session(broker, "lab-calib", baseline_s=600.0), calibrating)
        gone = session(broker, "lab-off")
        gone_task = await services.start(gone, playing)
        gone.hub.publish(Event(gone.clock.now(), "marker", "before the restart"))
        await asyncio.sleep(0.5)
        gone_task.cancel()  # a clean stop: the daemon publishes "offline" itself
        await asyncio.gather(gone_task, return_exceptions=True)
        async with aiomqtt.Client(broker.host, broker.port) as client:  # a bar as the player publishes it
            body = {"index": 12, "abc": "C E G2", "meter": "4/4", "key": "C", "beats": 4.0, "chords": ["C", "G7"]}
            body["notes"] = [[60, 0.0, 1.0, 80], [64, 1.0, 1.0, 80], [67, 2.0, 2.0, 80]]
            message = topics.make("lab-play", "bar", 0.0, body)
            await client.publish(message.topic, message.payload, qos=1)

        await asyncio.to_thread(browser.navigate, f"http://127.0.0.1:{dashboard.port}/?token={TOKEN}")
        expected = {"lab-play": "playing", "lab-poor": "poor-signal", "lab-low": "playing", "lab-off": "offline"}
        expected["lab-calib"] = "calibrating"
        for device, state in expected.items():
            await until(partial(js, f"{of(device, '.state')}?.textContent === '{state}'"))
        await until(lambda: js(f"{of('lab-play', '.confidence')}.textContent === 'confidence 1.00'"))
        await asyncio.sleep(4.0)  # a few seconds of the score line
        shot = await asyncio.to_thread(browser.screenshot, tmp_path / "dashboard.png")
        if os.environ.get("NEUROMUSIC_SCREENSHOT"):
            Path(os.environ["NEUROMUSIC_SCREENSHOT"]).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(os.environ["NEUROMUSIC_SCREENSHOT"]) / "dashboard.png")
        pixels = np.asarray(Image.open(shot).convert("RGB"))

        async def crop(device: str, selector: str = "") -> np.ndarray:
            left, top, right, bottom = await asyncio.to_thread(browser.rect, f"#device-{device} {selector}".strip())
            return pixels[top:bottom, left:right]

        # Badges: each state its own colour.
        for device, color in (("lab-play", GREEN), ("lab-poor", MAGENTA), ("lab-calib", AMBER)):
            badge = await crop(device, ".state")
            assert near(badge, color) > 0.3 * badge.shape[0] * badge.shape[1], device
        # Playing: the green score line, the amber calibration span before it, the dashed relaxed threshold, and
        # labels under the time axis.
        chart = await crop("lab-play", ".chart")
        assert greenish(chart) > 100
        assert near(chart, (240, 226, 200), 8) > 500  # rgba(201,138,18,0.22) over the chart's background
        assert bluish(chart) > 150  # the dashed line (and its label)
        assert (chart[-30:].astype(int).sum(axis=-1) < 3 * 160).sum() > 100
        # Poor signal: a pink span, no number; the reasons are written out.
        chart = await crop("lab-poor", ".chart")
        assert near(chart, (241, 215, 231), 8) > 500 and greenish(chart) < 10
        assert await js(f"{of('lab-poor', '.score-value')}.textContent") == "–"
        reasons = await js(f"{of('lab-poor', '.bad-channels')}.textContent")
        assert "Fp1: railed at 187000 µV" in reasons and "Fp2: flat" in reasons
        assert "repaired" not in reasons  # a bad channel shows why, not its repaired spikes
        repaired = await js(f"{of('lab-play', '.bad-channels li.repaired')}.textContent")
        assert repaired == "Fp1: 2 spike samples repaired"
        # Low confidence: the number is there but grey (no dark text pixels), the line grey not green.
        dark = await crop("lab-play", ".score-value")
        light = await crop("lab-low", ".score-value")
        assert dark.sum(axis=-1).min() < 3 * 80 and light.sum(axis=-1).min() > 3 * 150
        assert "low confidence 0.13" in await js(f"{of('lab-low', '.confidence')}.textContent")
        chart = await crop("lab-low", ".chart")
        assert greenish(chart) < 10 and near(chart, (180, 185, 194), 12) > 50
        # Offline: the whole card greyed, its buttons disabled, when it was last heard said.
        assert saturated(await crop("lab-off")) < 0.002 < saturated(await crop("lab-play"))
        assert await js("[...document.querySelectorAll('#device-lab-off button')].every((b) => b.disabled)")
        assert "last seen" in await js(f"{of('lab-off', '.status-line')}.textContent")
        assert not await js(f"{of('lab-play', 'button[data-cmd=pause]')}.disabled")
        # Calibrating: a countdown from the configured baseline.
        line = await js(f"{of('lab-calib', '.status-line')}.textContent")
        assert "calibrating · " in line and " s left" in line and int(line.split(" · ")[1].split()[0]) > 500
        # The bar being played, its chords, and a small piano roll of its notes.
        assert await js(f"{of('lab-play', '.chords')}.textContent") == "C  G7"
        assert (await js(f"{of('lab-play', '.bar-info')}.textContent")).startswith("12 · C · 4/4")
        assert bluish(await crop("lab-play", ".roll")) > 20
        # One reading per row of the control table, labelled and rounded as the table says.
        shown = f"[...{of('lab-play', 'dl.controls')}.querySelectorAll('dd.control')].map((d) => d.textContent)"
        assert await js(shown) == [spec.show(v) for spec, v in zip(CONTROLS, (62.0, 0.6, 0.4), strict=True)]
        labels = f"[...{of('lab-play', 'dl.controls')}.querySelectorAll('dt')].map((d) => d.textContent)"
        assert (await js(labels))[: len(CONTROLS)] == [spec.label for spec in CONTROLS]

        # The buttons steer the right session, and its answer comes back to the page.
        await js(f"{of('lab-play', 'button[data-cmd=pause]')}.click()")
        await until(lambda: js(f"{of('lab-play', '.state')}.textContent === 'paused'"))
        await until(lambda: js(f"{of('lab-play', '.result')}.textContent.includes('pause dash-1: ok')"))
        await js(f"{of('lab-play', '.label')}.value = 'eyes closed'")
        await js(f"{of('lab-play', 'button[data-cmd=marker]')}.click()")
        await until(lambda: js(f"{of('lab-play', '.events')}.textContent.includes('[marker] eyes closed')"))
        await js(f"{of('lab-play', 'button[data-cmd=resume]')}.click()")
        await until(lambda: js(f"{of('lab-play', '.state')}.textContent === 'playing'"))
        assert await js(f"{of('lab-poor', '.state')}.textContent") == "poor-signal"  # the others untouched

        # The offline daemon starts again: a new session, whose events do not run into the old one's.
        again = session(broker, "lab-off")
        await services.start(again, playing)
        again.hub.publish(Event(again.clock.now(), "marker", "after the restart"))
        await until(lambda: js(f"{of('lab-off', '.events')}.textContent.includes('after the restart')"))
        assert "before the restart" not in await js(f"{of('lab-off', '.events')}.textContent")
        assert "before the restart" in await js(f"{of('lab-off', '.previous')}.textContent")
        assert "session 2" in await js(f"{of('lab-off', '.events-title')}.textContent")
        assert not await js(f"{of('lab-off', 'button[data-cmd=pause]')}.disabled")
        shot = await asyncio.to_thread(browser.screenshot, tmp_path / "restarted.png")
        if os.environ.get("NEUROMUSIC_SCREENSHOT"):
            shutil.copy(shot, Path(os.environ["NEUROMUSIC_SCREENSHOT"]) / "restarted.png")
    finally:
        await asyncio.to_thread(browser.close)
        await services.close()
