"""The report: an HTML page with the four plots and a summary that matches the recorded numbers."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from lab_fixtures import write_session
from neuromusic.daemon.cli.recording_options import RecordingConfig
from neuromusic.daemon.lab.report import write_report
from neuromusic.daemon.services.recorder import SessionWriter
from neuromusic.models.core.errors import DataError
from neuromusic.models.core.messages import Chunk, Event, Features, Score
from neuromusic.models.sessions.store import SessionReader
from neuromusic.models.sessions.summary import summarize


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.cells.append(data.strip())


def test_report_has_plots_and_summary(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write_session(folder)
    index = write_report(folder)
    assert index == folder / "report" / "index.html"
    page = _Page()
    page.feed(index.read_text())
    assert page.images == ["timeline.png", "spectra.png", "channels.png"]
    for name in page.images:
        image = matplotlib.image.imread(index.parent / name)
        assert image.shape[0] > 100 and image.shape[1] > 800
        assert image[..., :3].std() > 0.05  # something was drawn, not a blank canvas
    summary = summarize(SessionReader(folder))
    cells = page.cells
    assert f"{summary.mean_score:.3f}" in cells
    assert cells[cells.index("markers") + 1] == "1"
    assert cells[cells.index("control changes") + 1] == str(summary.control_changes)
    assert "baseline" in cells and "music" in cells  # the phase table


def test_summary_numbers(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write_session(folder)
    summary = summarize(SessionReader(folder), relaxed_threshold=0.6)
    reader = SessionReader(folder)
    values = [s["value"] for s in reader.scores()]
    assert summary.mean_score == pytest.approx(sum(values) / len(values))
    # each score holds 0.2 s (every other 0.1 s chunk); the last one holds nothing
    relaxed = sum(1 for v in values[:-1] if v >= 0.6) * 0.2
    assert summary.relaxed_s == pytest.approx(relaxed, abs=1e-6)
    assert [p.name for p in summary.phases] == ["baseline", "music"]
    assert summary.control_changes == 4 + 1  # bar controls changed 4 times, one operator control event
    assert summary.duration_s == pytest.approx(10.0)
    stricter = summarize(reader, relaxed_threshold=0.8)
    assert stricter.relaxed_s < summary.relaxed_s


def test_empty_session_is_a_clear_error(tmp_path: Path) -> None:
    SessionWriter(tmp_path / "empty", {}, RecordingConfig(), 0.0).close()
    with pytest.raises(DataError, match="recorded nothing"):
        write_report(tmp_path / "empty")


def test_cli_report(tmp_path: Path) -> None:
    write_session(tmp_path / "20260101-100000-lab1")
    cli = [sys.executable, "-m", "neuromusic.daemon.cli", "report", "20260101", "--sessions-root", str(tmp_path)]
    done = subprocess.run([*cli, "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "index.html").exists() and (tmp_path / "out" / "timeline.png").exists()
    bad = subprocess.run([*cli, "--relaxed-threshold", "3"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--relaxed-threshold" in bad.stderr
    bad = subprocess.run([*cli, "--tense-threshold", "0.7"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--tense-threshold" in bad.stderr


def test_one_time_axis_for_every_panel_and_consistent_colours(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write_session(folder)
    index = write_report(folder)
    image = matplotlib.image.imread(index.parent / "timeline.png")[..., :3]
    height = image.shape[0]
    dark = image.mean(axis=2) < 0.3
    # The left and right frame lines of the panels run through the figure at the same columns for every panel:
    # each is dark over most of the figure's height, so all panels (DE heat map included) share one x range.
    column_share = dark.mean(axis=0)
    frames = np.flatnonzero(column_share > 0.6)
    assert len(frames) >= 2 and frames[-1] - frames[0] > image.shape[1] * 0.7
    assert height > 900
    from neuromusic.daemon.lab.report_plots import COLOURS, SHADES

    assert len(set(COLOURS.values())) == len(COLOURS)  # each colour means one thing
    assert not set(SHADES.values()) & set(COLOURS.values())


def test_time_in_states_and_phases_from_script_and_markers(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    writer = SessionWriter(folder, {}, RecordingConfig(), t0=0.0, device_id="sim", source_name="simulated")
    writer.write(Event(0.0, "phase", "calm", {"source": "script", "level": 1.0}), 0.0)
    writer.write(Event(4.0, "phase", "stress", {"source": "script", "level": 0.0}), 4.0)
    writer.write(Event(2.0, "marker", "eyes closed", {"source": "lsl"}), 2.0)
    values = [0.9] * 20 + [0.5] * 10 + [0.1] * 10 + [0.1]  # 0.1 s apart: 2 s calm, 1 s neutral, 1 s tense
    for k, value in enumerate(values):
        writer.write(Score(k * 0.1, value, 0.9, "scoring"), k * 0.1)
    writer.close()
    reader = SessionReader(folder)
    summary = summarize(reader)
    assert summary.state_s == pytest.approx({"calm": 2.0, "neutral": 1.0, "tense": 1.0})
    assert [(p.name, p.start_s) for p in summary.phases] == [("calm", 0.0), ("stress", 4.0)]
    assert summary.phases[0].mean_score == pytest.approx((2.0 * 0.9 + 1.0 * 0.5 + 1.0 * 0.1) / 4.0)
    assert [p.name for p in summary.marker_segments] == ["before the first marker", "eyes closed"]
    index = write_report(folder)
    page = _Page()
    page.feed(index.read_text())
    assert "Phases of the simulated script (ground truth)" in page.cells and "Between markers" in page.cells
    cells = page.cells
    assert cells[cells.index("calm", cells.index("state")) + 1] == "2.0"


def test_a_calibration_gets_its_own_page(tmp_path: Path) -> None:
    folder = tmp_path / "cal"
    writer = SessionWriter(folder, {}, RecordingConfig(), t0=0.0, device_id="calibration", source_name="simulated")
    rng = np.random.default_rng(3)
    names = ("C3", "C4")
    bands = ("theta", "alpha", "beta")
    for block, kind in enumerate(("rest", "arithmetic", "rest", "arithmetic")):
        start = block * 4.0
        writer.write(Event(start, "phase", f"{kind} {block + 1}", {"block": block}), start)
        for k in range(16):
            t = start + (k + 1) * 0.25
            alpha = 3.5 if kind == "rest" else 2.5
            de = np.array([[2.0, 2.0], [alpha, alpha], [3.0, 3.0]]) + rng.normal(size=(3, 2)) * 0.01
            writer.write(Chunk(rng.normal(size=(2, 62)) * 10, np.arange(62) / 250 + t, names, 250.0), t)
            writer.write(Features(t, de, bands, names, np.array([True, k % 4 != 0]), ("", "" if k % 4 else "flat")), t)
    writer.close()
    index = write_report(folder)
    text = index.read_text()
    assert "<h1>Calibration cal</h1>" in text and "Relaxation" not in text
    page = _Page()
    page.feed(text)
    cells = page.cells
    row = cells.index("rest 1")
    assert float(cells[row + 3]) == pytest.approx(3.5, abs=0.01)  # alpha DE per block
    assert float(cells[cells.index("arithmetic 2") + 3]) == pytest.approx(2.5, abs=0.01)
    assert cells[cells.index("C4", cells.index("channel")) + 1] == "75%"
    assert cells[cells.index("C4", cells.index("channel")) + 2] == "flat"
    assert page.images == ["timeline.png", "spectra.png", "channels.png"]
