"""`--lsl-out`: the session's score, controls and markers read back by real pylsl inlets, on loopback (LSLAPICFG from
conftest.py). The EEG comes from a real pylsl outlet in a subprocess, so the score's time stamps can be checked against
the EEG samples they were computed from."""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pylsl
import pytest
from lsl_fixtures import start_outlet, stop_outlet
from neuromusic.daemon.config import load_config
from neuromusic.daemon.services.lsl_out import ClockMap, marker_text, stream_names
from neuromusic.daemon.session.runner import Session
from neuromusic.daemon.session.services import enter_services
from neuromusic.models.core.messages import Bar, Controls, Event, Features, Score


@pytest.fixture
def device() -> str:
    return f"lab{uuid.uuid4().hex[:6]}"


@pytest.fixture
def eeg_outlet() -> Iterator[tuple[str, Any]]:
    name = f"nm-eeg-{uuid.uuid4().hex[:8]}"
    proc = start_outlet(name, f"sid-{name}", seconds=60.0)
    yield name, proc
    stop_outlet(proc)


async def session_services(session: Session) -> list[Any]:
    """The services this session would run (entered and left again, as the session does)."""
    async with contextlib.AsyncExitStack() as stack:
        return await enter_services(stack, session.ctx, None)


def _inlet(name: str) -> Any:
    found = pylsl.resolve_bypred(f"name='{name}'", minimum=1, timeout=5.0)
    assert found, f"no LSL stream {name}"
    inlet = pylsl.StreamInlet(found[0], max_buflen=60)  # one machine: the time stamps as the outlet sent them
    inlet.open_stream(timeout=5.0)
    return inlet


def _channels(info: Any) -> list[tuple[str, str]]:
    out = []
    channel = info.desc().child("channels").child("channel")
    while not channel.empty():
        out.append((channel.child_value("label"), channel.child_value("unit")))
        channel = channel.next_sibling()
    return out


def _pull_all(inlet: Any) -> tuple[list[Any], list[float]]:
    samples, stamps = inlet.pull_chunk(timeout=0.5, max_samples=10000)
    return list(samples), list(stamps)


async def test_outlets_carry_score_controls_and_markers_aligned_to_the_eeg(
    device: str, eeg_outlet: tuple[str, Any]
) -> None:
    eeg_name, _ = eeg_outlet
    config = load_config(
        None,
        {
            "source.board": "lsl", "source.lsl_name": eeg_name, "features.window_s": 1.0, "score.baseline_s": 1.0,
            "lsl_out.enabled": True, "lsl_out.bands": True, "mqtt.device_id": device,
        },
    )  # fmt: skip
    session = Session(config, services=["lsl_out"])
    names = stream_names("neuromusic", device)
    features: list[Features] = []
    scores: list[Score] = []
    watch = session.hub.subscribe(Features, Score, maxsize=100000)

    async def operate() -> dict[str, Any]:
        """Reads everything while the outlets exist (an inlet whose outlet has gone waits for it to come back)."""
        await session.ctx.started.wait()
        inlets = {kind: await asyncio.to_thread(_inlet, names[kind]) for kind in names}
        await asyncio.sleep(2.5)
        session.control.marker("eyes closed")
        start = session.clock.now() + 0.5
        bar = Bar(0, "CDEF", (), 4.0, "4/4", "Am", Controls(72.0, 0.3, 0.2), chords=("Am", "F"), start_t=start)
        session.hub.publish(bar)
        session.control.pause()
        await asyncio.sleep(1.0)
        got = {kind: (inlet.info(timeout=5.0), *_pull_all(inlet)) for kind, inlet in inlets.items()}
        session.request_stop("test done")
        for inlet in inlets.values():
            inlet.close_stream()
        return got

    operator = asyncio.create_task(operate())
    await asyncio.wait_for(session.run(), timeout=30)
    got = await operator
    while not watch.queue.empty():
        message = watch.get_nowait()
        (features if isinstance(message, Features) else scores).append(message)

    score_info, values, stamps = got["score"]
    assert score_info.type() == "RelaxationScore" and score_info.nominal_srate() == pylsl.IRREGULAR_RATE
    assert score_info.source_id() == f"neuromusic:{device}:score"
    assert _channels(score_info) == [("score", "normalized"), ("confidence", "normalized")]
    assert _channels(got["controls"][0]) == [("tempo", "bpm"), ("valence", "normalized"), ("energy", "normalized")]
    assert got["markers"][0].channel_format() == pylsl.cf_string
    bands_labels = [label for label, _ in _channels(got["bands"][0])]
    assert bands_labels[:2] == ["C1-delta", "C1-theta"] and len(bands_labels) == 4 * 5

    assert values, "no score samples"
    scored_windows = sorted({s.source_t for s in scores if s.source_t is not None})
    # One sample per scored hop, stamped with the EEG time of its window's last sample (the LSL clock, as the EEG is
    # an LSL stream), and NaN before the baseline gave a score.
    scored_stamps = [t for t, v in zip(stamps, values, strict=True) if not math.isnan(v[0])]
    first = scored_windows.index(scored_stamps[0])
    assert scored_stamps == scored_windows[first : first + len(scored_stamps)]  # every hop, each once, exact
    assert np.allclose(np.diff(scored_windows), 0.25, atol=0.02)
    assert any(math.isnan(v[0]) for v in values) and any(not math.isnan(v[0]) for v in values)
    assert all(0.0 <= v[1] <= 1.0 for v in values)

    _, controls, control_stamps = got["controls"]
    assert [round(x, 3) for x in controls[0]] == [72.0, 0.3, 0.2]

    _, markers, marker_stamps = got["markers"]
    texts = [m[0] for m in markers]
    assert "marker/eyes closed" in texts and "bar/0 key=Am chords=Am F" in texts
    assert any(t.startswith("control/") and "pause" in t for t in texts)
    bar_at = marker_stamps[texts.index("bar/0 key=Am chords=Am F")]
    assert control_stamps[0] == pytest.approx(bar_at, abs=1e-6)
    marker_at = marker_stamps[texts.index("marker/eyes closed")]
    assert bar_at - marker_at == pytest.approx(0.5, abs=0.05)  # the bar starts 0.5 s after the marker

    _, de, de_stamps = got["bands"]
    by_time = {f.source_t: f for f in features}
    assert len(de) >= 8
    for sample, stamp in zip(de, de_stamps, strict=True):  # each hop's DE, channel-major, at its window's end
        np.testing.assert_allclose(sample, by_time[stamp].de.T.reshape(-1), rtol=1e-5)


def test_clock_map_uses_the_least_delayed_offset_for_a_non_lsl_source() -> None:
    clock_map = ClockMap(session_to_lsl=100.0, source_is_lsl=False)
    de = np.zeros((1, 1))
    for arrival, sample_t, delay in ((10.0, 1000.0, 0.08), (10.25, 1000.25, 0.02), (10.5, 1000.5, 0.05)):
        features = Features(arrival + delay, de, ("a",), ("c",), np.ones(1, bool), ("",), source_t=sample_t)
        clock_map.observe(features)
    # least delay 0.02: sample time 1000.5 -> session 10.52 -> LSL 110.52
    assert clock_map.source(1000.5, 0.0) == pytest.approx(110.52)
    assert clock_map.source(None, 12.0) == pytest.approx(112.0)
    assert ClockMap(5.0, source_is_lsl=True).source(1000.5, 0.0) == 1000.5


def test_marker_text_leaves_out_markers_that_came_from_lsl() -> None:
    assert marker_text(Event(1.0, "marker", "go", {"source": "lsl"})) is None
    assert marker_text(Event(1.0, "phase", "calm", {"source": "script"})) == "phase/calm"
    assert marker_text(Event(1.0, "info", "hello")) is None


async def test_lsl_out_is_off_unless_asked() -> None:
    assert "lsl_out" not in [
        s.name for s in await session_services(Session(load_config(None, {"source.board": "simulated"})))
    ]


async def test_name_prefix_and_bands_options_change_the_outlets() -> None:
    config = load_config(None, {"source.board": "simulated", "lsl_out.enabled": True, "lsl_out.name_prefix": "lab7"})
    session = Session(config)
    service = next(s for s in await session_services(session) if s.name == "lsl_out")
    assert service.names["score"] == f"lab7-{session.ctx.device_id}-score"  # type: ignore[attr-defined]
    features = Features(1.0, np.zeros((2, 1)), ("alpha", "beta"), ("Cz",), np.ones(1, bool), ("",), source_t=5.0)
    service._clock_map = ClockMap(0.0, source_is_lsl=False)  # type: ignore[attr-defined]
    service._open(pylsl)  # type: ignore[attr-defined]
    service.take(features)  # type: ignore[attr-defined]
    assert "bands" not in service._outlets and service.pushed["bands"] == 0  # type: ignore[attr-defined]
    with_bands = load_config(None, {"source.board": "simulated", "lsl_out.enabled": True, "lsl_out.bands": True})
    other = next(s for s in await session_services(Session(with_bands)) if s.name == "lsl_out")
    other._clock_map = ClockMap(0.0, source_is_lsl=False)  # type: ignore[attr-defined]
    other._open(pylsl)  # type: ignore[attr-defined]
    other.take(features)  # type: ignore[attr-defined]
    assert other.pushed["bands"] == 1  # type: ignore[attr-defined]
    service.release()  # type: ignore[attr-defined]
    other.release()  # type: ignore[attr-defined]
