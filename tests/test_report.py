"""The report: an HTML page with the four plots and a summary that matches the recorded numbers."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pytest
from lab_fixtures import write_session
from neuromusic.daemon.cli.recording_options import RecordingConfig
from neuromusic.daemon.lab.report import write_report
from neuromusic.daemon.services.recorder import SessionWriter
from neuromusic.models.core.errors import DataError
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
    assert page.images == ["score.png", "de.png", "controls.png", "quality.png"]
    for name in page.images:
        image = matplotlib.image.imread(index.parent / name)
        assert image.shape[0] > 200 and image.shape[1] > 800
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
    assert (tmp_path / "out" / "index.html").exists() and (tmp_path / "out" / "score.png").exists()
    bad = subprocess.run([*cli, "--relaxed-threshold", "3"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--relaxed-threshold" in bad.stderr
