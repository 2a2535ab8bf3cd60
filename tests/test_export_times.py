"""Events land at the sample that had been received when they happened, in every export, at any replay speed.

A replay faster than real time runs the session clock compressed against the samples: the UCI recording's 117 s go
by in a few seconds. Its labelled eye-state periods are replayed as the session's markers, and must come out of the
exports where the original file has them. A real-time session (BrainFlow's synthetic board, a marker sent while it
runs) keeps the placement by the session clock it always had.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mne
import mne_bids
import numpy as np
import pytest
import pyxdf
from neuromusic.daemon.config import load_config
from neuromusic.daemon.lab.export import export_session, session_annotations
from neuromusic.daemon.lab.export_times import SampleClock, sample_clock
from neuromusic.daemon.session.runner import Session
from neuromusic.models.sessions.store import SessionReader
from signal_fixtures import real_eeg_dir

UCI = "uci_eeg_eye_state_raw.fif.gz"
SFREQ = 128.0
FRAME_S = 5 / SFREQ  # the replay hands out 40 ms chunks: 5 samples at 128 Hz


@pytest.fixture(scope="module")
def original() -> list[tuple[float, str]]:
    """(onset, label) of the recording's 24 eye-state periods, as MNE reads them from the file."""
    raw = mne.io.read_raw_fif(real_eeg_dir() / UCI, verbose="error")
    return [(float(a["onset"]) - raw.first_time, f"marker/{a['description']}") for a in raw.annotations]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The UCI recording replayed as fast as it goes through the daemon and recorded (a few seconds for 117 s)."""
    folder = tmp_path_factory.mktemp("times") / "20260101-120000-emotiv"
    command = [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--board", "replay", "--speed", "0"]
    command += ["--file", str(real_eeg_dir() / UCI), "--synth", "none", "--session-dir", str(folder)]
    command += ["--device-id", "emotiv"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


def markers(onsets: np.ndarray, texts: list[str]) -> list[tuple[float, str]]:
    return sorted((float(o), t) for o, t in zip(onsets, texts, strict=True) if t.startswith("marker/"))


def assert_placed(found: list[tuple[float, str]], expected: list[tuple[float, str]], tolerance: float) -> None:
    assert [text for _, text in found] == [text for _, text in expected]
    errors = np.array([at for at, _ in found]) - np.array([at for at, _ in expected])
    assert np.all(np.abs(errors) <= tolerance), np.round(errors, 4)


def test_the_replay_ran_faster_than_real_time(replay: Path) -> None:
    reader = SessionReader(replay)
    received = reader.eeg().t_received
    assert reader.eeg().duration_s > 10 * (received[-1] - received[0])  # else the tests below prove nothing


@pytest.mark.parametrize("fmt", ["fif", "edf"])
def test_fif_and_edf_put_the_replayed_markers_where_the_file_has_them(
    replay: Path, original: list[tuple[float, str]], fmt: str
) -> None:
    raw = mne.io.read_raw(export_session(replay, fmt, replay / f"out_raw.{fmt}"), verbose="error")  # type: ignore[arg-type]
    notes = raw.annotations
    assert_placed(markers(notes.onset, list(notes.description)), original, 0.5 / SFREQ + 1e-4)  # EDF+: 100 µs


def test_bids_events_put_the_replayed_markers_where_the_file_has_them(
    replay: Path, original: list[tuple[float, str]]
) -> None:
    root = export_session(replay, "bids", replay.parent / "bids")
    path = mne_bids.BIDSPath(
        subject="emotiv", session="20260101120000emotiv", task="neurofeedback", datatype="eeg", root=root
    )
    notes = mne_bids.read_raw_bids(path, verbose=False).annotations
    assert_placed(markers(notes.onset, list(notes.description)), original, 0.5 / SFREQ + 1e-4)


def test_xdf_markers_and_scores_line_up_with_the_eeg_samples(replay: Path, original: list[tuple[float, str]]) -> None:
    streams, _ = pyxdf.load_xdf(str(export_session(replay, "xdf")), synchronize_clocks=False,
                                dejitter_timestamps=False)  # fmt: skip
    by_name = {s["info"]["name"][0]: s for s in streams}
    first_sample = float(by_name["neuromusic-emotiv-eeg"]["time_stamps"][0])
    stream = by_name["neuromusic-emotiv-markers"]
    texts = [row[0] for row in stream["time_series"]]
    assert_placed(markers(stream["time_stamps"] - first_sample, texts), original, 0.5 / SFREQ + 1e-9)
    # each score is stamped just after its window's last sample (source_t, its time in the file)
    scores = SessionReader(replay).scores()
    made = np.array([float(s["source_t"]) for s in scores if s.get("source_t") is not None])
    stamped = by_name["neuromusic-emotiv-score"]["time_stamps"] - first_sample
    stamped = stamped[[s.get("source_t") is not None for s in scores]]
    assert len(made) > 100 and np.allclose(stamped, made + 1 / SFREQ, rtol=0, atol=1e-9)


def test_without_the_file_times_markers_are_placed_by_the_frames_received(
    replay: Path, original: list[tuple[float, str]], tmp_path: Path
) -> None:
    """A marker that has only its session-clock time (sent while a fast replay ran) lands at the frame the replay
    had reached. The replay's markers are published by a service of their own as the hub hands it each chunk, the
    recorder notes the chunk's receipt as the hub hands it the same chunk, in either order: within one frame,
    either way (and a chunk's worth of scheduling delay)."""
    copy = tmp_path / "session"
    shutil.copytree(replay, copy, ignore=shutil.ignore_patterns("*.fif", "*.edf", "*.xdf", "bids"))
    events = [json.loads(line) for line in (copy / "events.jsonl").read_text().splitlines()]
    for event in events:
        event.get("data", {}).pop("file_t", None)
    (copy / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    found = [(t, text) for t, text in session_annotations(SessionReader(copy)) if text.startswith("marker/")]
    assert_placed(found, original, 2 * FRAME_S)


async def test_a_real_time_session_keeps_its_markers_at_their_session_clock_time(tmp_path: Path) -> None:
    folder = tmp_path / "live"
    overrides = {"source.board": "synthetic", "session.duration_s": 3.0, "session.session_dir": str(folder)}
    session = Session(load_config(None, overrides), services=["recorder"])

    async def send_markers() -> None:
        await session.ctx.started.wait()
        for label in ("one", "two"):
            await asyncio.sleep(1.0)
            session.control.marker(label)

    sender = asyncio.create_task(send_markers())
    await asyncio.wait_for(session.run(), timeout=30)
    await sender
    reader = SessionReader(folder)
    eeg, clock = reader.eeg(), sample_clock(reader)
    sent = [(float(e["t"]), f"marker/{e['text']}") for e in reader.events() if e["kind"] == "marker"]
    assert [text for _, text in sent] == ["marker/one", "marker/two"]
    longest = float(np.diff(np.unique(eeg.t_received)).max())  # the longest wait between two frames
    assert longest < 0.5
    by_session_clock = [(t - clock.start, text) for t, text in sent]  # the rule before frames were looked at
    # it counted from the first frame only, so they differ by how much later that frame came in than the others did
    # (the synthetic board's start: about 20 ms), within a frame or two
    for fmt in ("fif", "edf"):
        notes = mne.io.read_raw(export_session(folder, fmt, folder / f"live_raw.{fmt}"), verbose="error").annotations  # type: ignore[arg-type]
        assert_placed(markers(notes.onset, list(notes.description)), by_session_clock, 2 * longest)
    # each is at the sample received when it was sent: after every frame that had come in, within the next one
    placed = markers(*zip(*session_annotations(reader, clock), strict=True))  # type: ignore[arg-type]
    for (t, _), (onset, _) in zip(sent, placed, strict=True):
        done = int(np.searchsorted(eeg.t_received, t, side="right"))
        following = int(np.searchsorted(eeg.t_received, eeg.t_received[min(done, eeg.n_samples - 1)], side="right"))
        assert done <= round(onset * eeg.sfreq, 6) <= following, (done, onset * eeg.sfreq, following)


def test_a_session_clock_before_and_after_the_samples_runs_at_one_second_per_second() -> None:
    clock = SampleClock(10.0, 100.0, np.array([10.0, 10.01, 10.02]), np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(
        clock.offset([9.0, 10.0, 10.005, 10.01, 10.015, 10.02, 11.0]), [-1.0, 0.0, 0.005, 0.5, 0.505, 1.0, 1.98]
    )
    assert clock.duration == 1.0
    assert SampleClock.session_only(5.0).offset([7.5]).tolist() == [2.5]
