"""Repaired spikes reach the user wherever signal quality is shown: the JSON lines, the MQTT quality topic (and the
dashboard that reads it), the terminal view, the session recording, its summary and report.

The data are real: a replay of the UCI recording, whose Emotiv amplifier glitches four times on all 14 channels at
once (each glitch one sample, repaired), and synthetic EEG with a spike put in through the real feature pipeline.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mqtt_fixtures import Broker, Collector, broker_fixture, make_context  # noqa: F401
from neuromusic.daemon.config import load_config
from neuromusic.daemon.dashboard import payloads
from neuromusic.daemon.lab.report import write_report
from neuromusic.daemon.services.telemetry import Telemetry
from neuromusic.daemon.services.terminal_view import TerminalView
from neuromusic.daemon.session.runner import Session
from neuromusic.models.core.messages import Features
from neuromusic.models.sessions.store import SessionReader
from neuromusic.models.sessions.summary import channel_repairs, summarize
from rich.console import Console
from signal_fixtures import real_eeg_dir, run_pipeline

SFREQ = 250.0
UCI = "uci_eeg_eye_state_raw.fif.gz"
UCI_SFREQ = 128.0
UCI_GLITCHES = (898, 10386, 11509, 13179)  # samples of the four amplifier glitches (see the recordings' README)
WINDOW_S = 2.0  # features.window_s: a glitch stays in the windows of the next 2 s


def spiked(n_ch: int, seconds: float = 8.0) -> list[Features]:
    """Features of synthetic EEG (20 µV noise and a 10 Hz rhythm) with a one-sample spike on the first channel at
    4 s and a two-sample spike on the second at 4.5 s."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * SFREQ)) / SFREQ
    x = 20.0 * rng.standard_normal((n_ch, t.size)) + 15.0 * np.sin(2 * np.pi * 10.0 * t)
    x[0, 1000] += 3000.0
    x[1, 1125:1127] += 3000.0
    return run_pipeline(x, SFREQ)


def holding_both(features: list[Features]) -> Features:
    return next(f for f in features if f.repaired[0] and f.repaired[1])


# -- the whole chain, on the UCI recording -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uci_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """`neuromusic run` replaying the UCI recording as fast as it goes, with --json and a recording."""
    folder = tmp_path_factory.mktemp("uci") / "session"
    command = [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--board", "replay", "--speed", "0"]
    command += ["--file", str(real_eeg_dir() / UCI), "--json", "--synth", "none", "--session-dir", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder, [json.loads(line) for line in done.stdout.splitlines()]


def test_the_json_lines_name_the_channels_whose_spikes_were_repaired(uci_session: tuple[Path, list[dict]]) -> None:
    _, lines = uci_session
    channels = list(next(line for line in lines if line["de"])["de"]["alpha"])
    assert len(channels) == 14
    glitch_s = np.array(UCI_GLITCHES) / UCI_SFREQ
    with_repairs = [line for line in lines if line["repaired"]]
    for line in with_repairs:  # each glitch sample, on every channel, in a window that holds one
        assert line["repaired"] == dict.fromkeys(channels, 1), line
        assert ((line["source_t"] - glitch_s >= 0) & (line["source_t"] - glitch_s < WINDOW_S + 0.3)).any(), line
    for g in glitch_s:  # every glitch was shown
        assert any(0 <= line["source_t"] - g < WINDOW_S + 0.3 for line in with_repairs), g
    assert all(line["repaired"] == {} for line in lines if line not in with_repairs)
    assert len(with_repairs) < len(lines) / 5


def test_the_recording_summary_and_report_count_each_repaired_sample_once(uci_session: tuple[Path, list[dict]]) -> None:
    folder, _ = uci_session
    reader = SessionReader(folder)
    recorded = reader.features()
    windows = [f for f in recorded if any(f["repaired"])]
    assert windows and all(f["repaired"] == [1] * 14 for f in windows)
    repairs = channel_repairs(reader)
    assert [total for _, _, total in repairs] == [len(UCI_GLITCHES)] * 14  # 4 glitches, however many windows
    share = len(windows) / len(recorded)
    assert all(fraction == pytest.approx(share) for _, fraction, _ in repairs) and 0 < share < 0.2
    assert summarize(reader).repaired_samples == 14 * len(UCI_GLITCHES)
    page = write_report(folder, folder / "report").read_text()
    assert "<th>spike samples repaired (all channels)</th><td>56</td>" in page
    assert "<th>windows with a repaired spike</th>" in page and "<td>AF3</td>" in page
    row = page[page.index("<td>AF3</td>") :].split("</tr>")[0]
    assert row.endswith(">4</td>"), row


# -- MQTT and the dashboard --------------------------------------------------------------------------------------
@pytest.mark.mqtt
async def test_the_quality_topic_carries_the_repaired_counts(broker: Broker) -> None:
    features = spiked(4)
    window = holding_both(features)
    ctx = make_context(host=broker.host, port=broker.port, device_id="lab-1")
    async with Collector(broker) as seen:
        service = Telemetry(ctx, ctx.config.mqtt)
        task = asyncio.create_task(service.run())
        await asyncio.wait_for(service.connected.wait(), 5)
        ctx.hub.publish(window)
        await seen.wait_for("quality")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert isinstance(seen.on("quality")[0].payload, bytes)
    body = json.loads(seen.on("quality")[0].payload)
    assert body["repaired"] == [1, 2, 0, 0] and body["good"] == [True] * 4  # repaired, and still usable
    assert body["bad_reasons"] == [""] * 4 and body["channels"] == ["C1", "C2", "C3", "C4"]
    shown = payloads.quality(body)
    assert shown["repaired"] == [1, 2, 0, 0]


def test_the_dashboard_takes_only_counts_and_one_per_channel() -> None:
    body = {"channels": ["Fp1", "Fp2", "C3", "C4"], "good": [True] * 4, "repaired": [3, -1, True, 1e300, 7]}
    assert payloads.quality(body)["repaired"] == [3, 0, 0, 0]
    del body["repaired"]  # an older daemon: nothing repaired shown, nothing breaks
    assert payloads.quality(body)["repaired"] == [0, 0, 0, 0]


# -- the terminal view ---------------------------------------------------------------------------------------------
def screen(features: Features, tmp_path: Path, height: int) -> str:
    session = Session(load_config(None, {"source.board": "synthetic"}))
    session.ctx.session_dir = tmp_path / "session"
    console = Console(file=io.StringIO(), width=80, height=height, force_terminal=True, color_system=None)
    view = TerminalView(session.ctx, console)
    view.take(features)
    console.print(view.render())
    return str(console.file.getvalue())  # type: ignore[attr-defined]


def test_the_terminal_view_shows_repaired_samples_per_channel_and_in_the_summary_row(tmp_path: Path) -> None:
    rows = screen(holding_both(spiked(4)), tmp_path, 24).split("\n")
    shown = [row.split()[-2:] for row in rows if row.startswith(("C1 ", "C2 "))]
    assert shown == [["1", "repaired"], ["2", "repaired"]]
    assert [row.split()[-1] for row in rows if row.startswith(("C3 ", "C4 "))] == ["ok", "ok"]
    collapsed = screen(holding_both(spiked(24)), tmp_path, 24)  # 24 channels do not fit: one summary row
    assert "median of 24/24" in collapsed and "all 24 channels ok; spike samples repaired: C1 1, C2 2" in collapsed
    quiet = screen(spiked(4)[0], tmp_path, 24)  # before the spikes
    assert "repaired" not in quiet
