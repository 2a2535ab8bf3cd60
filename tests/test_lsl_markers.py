"""`--lsl-markers NAME`: an external marker stream (a PsychoPy-like outlet in a subprocess, on loopback) recorded into
the session at the time it was sent, shown in the report; the simulated script's segments recorded as ground truth."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from lsl_fixtures import start_marker_outlet, stop_outlet
from neuromusic.daemon.config import load_config
from neuromusic.daemon.lab.report import write_report
from neuromusic.daemon.services.script_phases import script_segments
from neuromusic.daemon.session.runner import Session
from neuromusic.daemon.session.services import enter_services
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Event
from neuromusic.models.sessions.store import SessionReader


async def session_services(session: Session) -> list[Any]:
    """The services this session would run (entered and left again, as the session does)."""
    async with contextlib.AsyncExitStack() as stack:
        return await enter_services(stack, session.ctx, None)


SIMULATED = {"source.board": "simulated", "score.baseline_s": 1.0, "features.window_s": 1.0}


async def test_markers_of_an_lsl_stream_are_recorded_when_they_were_sent(tmp_path: Path) -> None:
    name = f"psychopy-{uuid.uuid4().hex[:8]}"
    proc = start_marker_outlet(name, f"sid-{name}", ["trial 1", "trial 2", "end"])
    folder = tmp_path / "session"
    try:
        config = load_config(None, {**SIMULATED, "lsl_markers.name": name, "session.session_dir": str(folder)})
        session = Session(config, services=["recorder", "lsl_markers"])

        async def stop_after_markers() -> list[tuple[str, float]]:
            assert proc.stdout is not None
            sent = []
            for _ in range(3):
                line = await asyncio.to_thread(proc.stdout.readline)
                _, *label, stamp = line.split()
                sent.append((" ".join(label), float(stamp)))
            await asyncio.sleep(0.5)
            session.request_stop("markers sent")
            return sent

        stopper = asyncio.create_task(stop_after_markers())
        await asyncio.wait_for(session.run(), timeout=60)
        sent = await stopper
    finally:
        stop_outlet(proc)
    reader = SessionReader(folder)
    markers = [e for e in reader.events() if e["kind"] == "marker"]
    assert [m["text"] for m in markers] == [label for label, _ in sent]
    assert all(m["data"] == {"source": "lsl", "stream": name} for m in markers)
    # One machine: the session clock and the LSL clock are both the monotonic clock, so a marker sits where it was
    # sent (time correction and the offset measured at start are microseconds here).
    for marker, (_, stamp) in zip(markers, sent, strict=True):
        assert marker["t"] == pytest.approx(stamp, abs=0.01)
    assert any(e["kind"] == "info" and name in e["text"] for e in reader.events())
    page = write_report(folder).read_text()
    assert "trial 2" in page and "Between markers" in page


async def test_a_missing_marker_stream_is_said_and_the_session_goes_on(tmp_path: Path) -> None:
    config = load_config(
        None,
        {**SIMULATED, "lsl_markers.name": f"absent-{uuid.uuid4().hex[:6]}", "lsl_markers.resolve_timeout_s": 1.0,
         "session.duration_s": 2.5},
    )  # fmt: skip
    session = Session(config, services=["lsl_markers"])
    events = session.hub.subscribe(Event)
    result = await asyncio.wait_for(session.run(), timeout=30)
    assert result.reason == "duration reached"
    said = [events.get_nowait().text for _ in range(events.queue.qsize())]
    assert any("not found; still looking" in text for text in said)


async def test_marker_stream_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="resolve_timeout_s"):
        load_config(None, {"lsl_markers.name": "x", "lsl_markers.resolve_timeout_s": 0.2})
    assert "lsl_markers" not in [s.name for s in await session_services(Session(load_config(None, SIMULATED)))]


async def test_the_simulated_script_is_recorded_as_phases(tmp_path: Path) -> None:
    folder = tmp_path / "sim"
    config = load_config(
        None,
        {**SIMULATED, "source.script": "calm:1,stress:0.5,0.3:1", "session.duration_s": 3.2,
         "session.session_dir": str(folder)},
    )  # fmt: skip
    session = Session(config, services=["recorder", "script_phases"])
    await asyncio.wait_for(session.run(), timeout=30)
    reader = SessionReader(folder)
    phases = [e for e in reader.events() if e["kind"] == "phase"]
    assert [p["text"] for p in phases][:4] == ["calm", "stress", "0.3", "calm"]  # the script loops
    assert [p["data"]["level"] for p in phases][:3] == [1.0, 0.0, 0.3]
    first_sample = float(reader.eeg().timestamps[0])  # the simulator's time stamps are on the session clock
    assert phases[0]["t"] == pytest.approx(first_sample)
    assert [round(p["t"] - phases[0]["t"], 6) for p in phases][:4] == [0.0, 1.0, 1.5, 2.5]


def test_script_segments_keep_the_names_written() -> None:
    assert [(s.name, s.level, s.seconds) for s in script_segments("calm:60, 0.4:30")] == [
        ("calm", 1.0, 60.0),
        ("0.4", 0.4, 30.0),
    ]
    with pytest.raises(ConfigError):
        script_segments("calm")
