"""The terminal view laid out for an 80×24 terminal with BrainFlow's 16 synthetic channels: everything fits, the band
table collapses to a summary row when it cannot, and numbers share one format."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from neuromusic.daemon.config import load_config
from neuromusic.daemon.services.terminal_view import TerminalView, number
from neuromusic.daemon.session.runner import Session
from neuromusic.models.core.messages import Bar, Controls, Event, Features, Score, SourceStatus
from rich.console import Console

BANDS = ("delta", "theta", "alpha", "beta", "gamma")
CHANNELS = ("Fz", "C3", "Cz", "C4", "Pz", "PO7", "Oz", "PO8", "F5", "F7", "F3", "F1", "F2", "F4", "F6", "F8")


def features(t: float, bad: dict[int, str] | None = None) -> Features:
    de = np.linspace(0.5, 6.5, len(BANDS) * len(CHANNELS)).reshape(len(BANDS), len(CHANNELS))  # up to ~10^5 µV²
    good = np.ones(len(CHANNELS), dtype=bool)
    reasons = [""] * len(CHANNELS)
    for c, reason in (bad or {}).items():
        good[c] = False
        reasons[c] = reason
    return Features(t, de, BANDS, CHANNELS, good, tuple(reasons), source_t=1000.0 + t)


def view_of(tmp_path: Path, width: int = 80, height: int = 24) -> tuple[Session, TerminalView]:
    session = Session(load_config(None, {"source.board": "synthetic", "score.baseline_s": 20.0}))
    session.ctx.session_dir = tmp_path / "20261130-001500-lab"
    console = Console(file=io.StringIO(), width=width, height=height, force_terminal=True, color_system=None)
    return session, TerminalView(session.ctx, console)


def screen(view: TerminalView) -> list[str]:
    view.console.print(view.render())
    text: str = view.console.file.getvalue()  # type: ignore[attr-defined]
    return text.rstrip("\n").split("\n")


def playing(view: TerminalView) -> None:
    view.take(SourceStatus(0.0, "streaming", "opened BrainFlow SYNTHETIC_BOARD: 16 channels at 250 Hz"))
    view.take(features(30.0))
    view.take(Score(30.0, 0.62, 0.9, "scoring", source_t=1030.0))
    view.take(Controls(72.0, 0.55, 0.4))
    view.take(Bar(6, "F3FF2Ac", (), 4.0, "4/4", "D", Controls(72.0, 0.55, 0.4), chords=("D", "F#m")))
    view.take(Event(1.0, "info", "playing to wav:/tmp/x.wav"))


def test_sixteen_channels_fit_80_by_24(tmp_path: Path) -> None:
    session, view = view_of(tmp_path)
    playing(view)
    session.control.pause()
    lines = screen(view)
    assert len(lines) <= 23 and max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    for channel in CHANNELS:
        assert any(line.startswith(f"{channel} ") for line in lines), channel
    assert "policy mapping paused" in text
    assert "bar 6 D 4/4  D F#m" in text and "72 BPM" in text
    assert any(line.startswith("session ") and line.endswith("/20261130-001500-lab") for line in lines)
    assert "playing to wav" in text  # the newest event still shows
    assert "e+" not in text and "e-" not in text  # no exponents
    assert "10" in text and "," in text  # large powers are grouped: e.g. 61,200


def test_the_table_collapses_to_a_summary_row_when_it_does_not_fit(tmp_path: Path) -> None:
    _, view = view_of(tmp_path)
    playing(view)
    view.take(features(31.0, bad={2: "flat", 9: "railed"}))
    for panel in ("bandit", "arranger", "composer"):
        view.take(Event(2.0, "view", f"{panel} line", data={"panel": panel}))
    lines = screen(view)
    assert len(lines) <= 23 and max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "median of 14/16" in text and "bad: Cz flat, F7 railed" in text
    assert not any(line.startswith("PO7 ") for line in lines)
    assert "bandit line" in text and "policy mapping playing" in text


def test_a_taller_terminal_shows_every_channel_and_more_events(tmp_path: Path) -> None:
    _, view = view_of(tmp_path, width=100, height=40)
    playing(view)
    view.take(Event(2.0, "reconnect", "reconnected"))
    lines = screen(view)
    assert all(any(line.startswith(f"{c} ") for line in lines) for c in CHANNELS)
    assert "reconnected" in "\n".join(lines) and "playing to wav" in "\n".join(lines)


def test_calibration_counts_down_in_source_time(tmp_path: Path) -> None:
    _, view = view_of(tmp_path)
    view.take(features(1.0))
    view.take(Score(1.0, None, 0.5, "calibrating"))
    view.take(features(8.0))
    view.take(Score(8.0, None, 0.5, "calibrating"))
    assert view.calibration_left() == pytest.approx(13.0)
    assert "calibrating 13 s left" in "\n".join(screen(view))
    view.take(Score(9.0, 0.5, 0.5, "scoring"))
    assert view.calibration_left() is None


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.4331, "0.433"), (0.0123, "0.012"), (1.016, "1.02"), (12.34, "12.3"), (123.4, "123"), (10111.0, "10,111"),
     (0.0, "0.000"), (float("nan"), "—")],
)  # fmt: skip
def test_numbers_have_one_format(value: float, text: str) -> None:
    assert number(value) == text
