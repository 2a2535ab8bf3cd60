"""Replay: a recorded session or an EDF/FIF file as a source; the same file gives the same chunks and scores."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from lab_fixtures import write_session
from neuromusic.daemon.config import load_config
from neuromusic.daemon.lab.export import export_session
from neuromusic.drivers.registry import open_source
from neuromusic.drivers.replay_source import ReplaySource
from neuromusic.models.core.clock import MonotonicClock
from neuromusic.models.core.errors import SourceError, SourceNotFoundError
from neuromusic.models.sessions.store import SessionReader
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.pipeline import FeaturePipeline
from neuromusic.models.signal.score import RelaxationScorer, ScoreConfig


def _drain(source: ReplaySource) -> list[tuple[np.ndarray, np.ndarray]]:
    source.open()
    chunks = []
    while not source.finished:
        chunk = source.read(0.5)
        if chunk is not None:
            chunks.append((chunk.data, chunk.timestamps))
    source.close()
    return chunks


def _scores(source: ReplaySource) -> list[tuple[float, float | None]]:
    info = source.open()
    pipeline = FeaturePipeline(FeatureConfig(), info.sfreq, info.channel_names)
    scorer = RelaxationScorer(ScoreConfig(baseline_s=2.0), tuple(FeatureConfig().bands), info.channel_names)
    out = []
    while not source.finished:
        chunk = source.read(0.5)
        if chunk is not None:
            out.extend((s.t, s.value) for s in map(scorer.update, pipeline.push(chunk)))
    return out


@pytest.fixture
def session(tmp_path: Path) -> Path:
    folder = tmp_path / "rec"
    write_session(folder, seconds=6.0)
    return folder


def test_session_replay_hands_out_the_recording(session: Path) -> None:
    chunks = _drain(ReplaySource(session, speed=0))
    recorded = SessionReader(session).eeg()
    np.testing.assert_array_equal(np.hstack([c for c, _ in chunks]), recorded.data)
    np.testing.assert_array_equal(np.concatenate([t for _, t in chunks]), recorded.timestamps)
    assert {c.shape[1] for c, _ in chunks} == {10}  # fixed 40 ms chunks at 250 Hz


def test_same_file_same_scores_at_any_speed(session: Path) -> None:
    flat_out = _scores(ReplaySource(session, speed=0))
    again = _scores(ReplaySource(session, speed=0))
    paced = _scores(ReplaySource(session, speed=50))
    assert len(flat_out) > 10 and any(v is not None for _, v in flat_out)
    assert flat_out == again == paced


def test_speed_paces_real_time(session: Path) -> None:
    source = ReplaySource(session, speed=20)
    started = time.monotonic()
    _drain(source)
    elapsed = time.monotonic() - started
    assert 6.0 / 20 * 0.9 <= elapsed <= 6.0 / 20 + 0.5


def test_fif_and_edf_files_replay(session: Path) -> None:
    recorded = SessionReader(session).eeg()
    fif = export_session(session, "fif")
    chunks = _drain(ReplaySource(fif, speed=0))
    np.testing.assert_allclose(np.hstack([c for c, _ in chunks]), recorded.data, rtol=1e-12)
    assert _scores(ReplaySource(fif, speed=0)) == _scores(ReplaySource(fif, speed=0))
    edf = export_session(session, "edf")
    info = ReplaySource(edf, speed=0).open()
    assert info.channel_names == recorded.channel_names and info.sfreq == 250.0 and info.kind == "replay"


def test_registry_and_clear_errors(session: Path, tmp_path: Path) -> None:
    config = load_config(overrides={"source.board": "replay", "source.file": str(session), "source.replay_speed": 0})
    source = open_source(config.source, MonotonicClock())
    assert isinstance(source, ReplaySource) and source.speed == 0
    with pytest.raises(SourceError, match="needs --file"):
        open_source(load_config(overrides={"source.board": "replay"}).source, MonotonicClock())
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        ReplaySource(tmp_path / "missing").open()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match="EDF/BDF/FIF"):
        ReplaySource(tmp_path / "notes.txt").open()


def _replayed(session: Path, out: Path) -> tuple[list[tuple[float, float | None]], list[object]]:
    command = [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--board", "replay", "--file", str(session)]
    # Scores only: no music (its model loading would only slow the run), and room to shut down on a loaded machine.
    extra = ["--speed", "0", "--duration", "2", "--baseline", "2", "--quiet", "--without", "player"]
    extra += ["--stop-timeout", "20"]
    extra += ["--session-dir", str(out)]
    done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    reader = SessionReader(out)
    # Scores and features computed from the replayed EEG (stale scores in between depend on timing, not data), by
    # their time in the recording: `t` is when this run's session clock saw them, which differs from run to run.
    scores = [(s["source_t"], s["value"]) for s in reader.scores() if s["state"] == "scoring"]
    return scores, [(f["source_t"], f["de"]) for f in reader.features()]


@pytest.mark.slow  # two `neuromusic run` subprocesses: about 25 s here, most of it run start-up
def test_run_board_replay_is_deterministic(session: Path, tmp_path: Path) -> None:
    first, first_features = _replayed(session, tmp_path / "a")
    second, second_features = _replayed(session, tmp_path / "b")
    # Each run replays as much as its 2 s allow (a loaded machine may get less far): compare what both reached.
    n, m = min(len(first), len(second)), min(len(first_features), len(second_features))
    assert n >= 8 and first[:n] == second[:n]
    assert m >= 12 and first_features[:m] == second_features[:m]
    # The replayed session recorded the same EEG again.
    replayed = SessionReader(tmp_path / "a").eeg().data
    np.testing.assert_array_equal(replayed, SessionReader(session).eeg().data[:, : replayed.shape[1]])
