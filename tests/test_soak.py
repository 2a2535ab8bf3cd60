"""A simulated hour (virtual clock) of what a session's telemetry, control and recorder see: scores at 10 Hz,
features at 4 Hz, a bar every 3 s, and a command every second (valid, malformed and hostile ones). Resident memory
may not grow by 5 % after the first five minutes, and every buffer stays inside its bound."""

from __future__ import annotations

import gc
import json
import random
from pathlib import Path

import aiomqtt
import pytest
from mqtt_fixtures import features, make_context
from neuromusic.daemon.cli.recording_options import RecordingConfig
from neuromusic.daemon.services.recorder import SessionWriter
from neuromusic.daemon.services.telemetry import Telemetry
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.messages import Bar, Controls, Event, Note, Score

HOUR_S = 3600.0
WARMUP_S = 300.0
COMMANDS = [
    {"cmd": "marker", "label": "eyes closed"},
    {"cmd": "set_target", "value": 0.7},
    {"cmd": "set_bounds", "bounds": {"tempo_max": 80}},
    {"cmd": "set_bounds", "bounds": {"tempo_max": 90}},
    {"cmd": "set_controls", "tempo": 60, "valence": 0.5, "energy": 0.5},
    {"cmd": "clear_override"},
    {"cmd": "pause"},
    {"cmd": "resume"},
    {"cmd": "set_target", "value": 10**400},
    {"cmd": ["pause"]},
    {"cmd": "marker", "label": "\x1b[2J" * 10},
]


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.slow
def test_an_hour_of_session_traffic_does_not_grow_memory(tmp_path: Path) -> None:
    ctx = make_context(host="127.0.0.1", device_id="soak", queue_size=2000)
    clock = VirtualClock()
    ctx.clock = clock  # the whole hour in a few seconds
    ctx.control._clock = clock
    service = Telemetry(ctx, ctx.config.mqtt)
    events = ctx.hub.subscribe(Event, maxsize=512)
    writer = SessionWriter(tmp_path / "soak", {}, RecordingConfig(fsync=False), t0=0.0, device_id="soak")
    rng = random.Random(3)
    rss_after_warmup = 0
    tick = 0
    while clock.now() < HOUR_S:
        clock.advance(0.1)
        t = clock.now()
        messages: list[object] = [Score(t, 0.5 + 0.3 * rng.random(), 0.9, "scoring", raw=0.5)]
        if tick % 25 == 0:
            messages.append(features(t))
        if tick % 30 == 0:
            controls = Controls(60.0, 0.5, 0.5)
            messages += [controls, Bar(tick, "C E G2", (Note(60, 0.0, 1.0),), 4.0, "4/4", "C", controls)]
        if tick % 10 == 0:
            payload = json.dumps(rng.choice(COMMANDS)).encode()
            service.commands.handle(aiomqtt.Message("neuromusic/soak/cmd", payload, 1, False, tick % 60000, None))
        while not events.queue.empty():
            messages.append(events.get_nowait())
        for message in messages:
            service.accept(message)
            writer.write(message, t)
        if len(service._outbox) > 1500:
            service._outbox.clear()  # what a connected sender would have published
        tick += 1
        if rss_after_warmup == 0 and t >= WARMUP_S:
            gc.collect()
            rss_after_warmup = rss_kb()
    writer.close()
    gc.collect()
    growth = rss_kb() / rss_after_warmup - 1.0
    print(f"resident memory growth over the simulated hour: {growth:+.2%} (from {rss_after_warmup} kB)")
    assert growth < 0.05, f"resident memory grew {growth:.1%} over the simulated hour"
    assert service.commands.answered >= 3000 and len(service._outbox) <= ctx.config.mqtt.queue_size
    assert writer.samples_written == 0 and (tmp_path / "soak" / "events.jsonl").stat().st_size > 0
