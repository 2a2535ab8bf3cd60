"""XDF both ways: files written by neuromusic's XDF writer are read back by pyxdf (an independent reader) and replayed
with `--board replay --file x.xdf [--stream NAME]`, markers included; `export --format xdf` round-trips a session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import pyxdf
from lab_fixtures import write_session
from neuromusic.daemon.config import load_config
from neuromusic.daemon.lab.export import export_session
from neuromusic.daemon.lab.xdf import XdfStream, write_xdf
from neuromusic.daemon.session.runner import Session
from neuromusic.drivers.replay_source import ReplaySource, load_markers
from neuromusic.models.core.errors import SourceError
from neuromusic.models.sessions.store import SessionReader

SFREQ = 250.0


def _eeg(name: str, n: int, channels: int, start: float, unit: str = "microvolts", seed: int = 0) -> XdfStream:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, channels)) * 20.0
    labels = [(f"Ch{c + 1}", unit, "EEG") for c in range(channels)]
    return XdfStream(name, "EEG", "float32", SFREQ, f"sid-{name}", start + np.arange(n) / SFREQ, values, labels)


def _markers(stamps: list[float], labels: list[str]) -> XdfStream:
    return XdfStream(
        "psychopy", "Markers", "string", 0.0, "sid-psy", np.array(stamps), [[x] for x in labels], [("m", "", "")]
    )


@pytest.fixture
def two_eeg(tmp_path: Path) -> tuple[Path, XdfStream, XdfStream]:
    a, b = _eeg("headset", 1500, 4, 2000.0, seed=1), _eeg("other", 500, 2, 2000.0, unit="volts", seed=2)
    path = write_xdf(tmp_path / "two.xdf", [_markers([2001.0, 2003.5], ["start", "stop"]), a, b])
    return path, a, b


def _drain(source: ReplaySource) -> tuple[np.ndarray, np.ndarray]:
    source.open()
    chunks = []
    while not source.finished:
        chunk = source.read(0.5)
        if chunk is not None:
            chunks.append(chunk)
    return np.hstack([c.data for c in chunks]), np.concatenate([c.timestamps for c in chunks])


def test_pyxdf_reads_what_the_writer_wrote(two_eeg: tuple[Path, XdfStream, XdfStream]) -> None:
    path, a, _ = two_eeg
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    by_name = {s["info"]["name"][0]: s for s in streams}
    assert set(by_name) == {"headset", "other", "psychopy"}
    np.testing.assert_array_equal(by_name["headset"]["time_series"], np.asarray(a.values, dtype=np.float32))
    np.testing.assert_array_equal(by_name["headset"]["time_stamps"], a.timestamps)
    assert [m[0] for m in by_name["psychopy"]["time_series"]] == ["start", "stop"]


def test_replay_chooses_the_stream_by_name_and_scales_units(two_eeg: tuple[Path, XdfStream, XdfStream]) -> None:
    path, a, b = two_eeg
    info = ReplaySource(path, speed=0, stream="headset").open()
    assert info.channel_names == ("Ch1", "Ch2", "Ch3", "Ch4") and info.sfreq == SFREQ
    data, stamps = _drain(ReplaySource(path, speed=0, stream="headset"))
    np.testing.assert_allclose(data, np.asarray(a.values, dtype=np.float32).T, rtol=1e-6)
    np.testing.assert_allclose(stamps, a.timestamps, atol=1e-6)  # pyxdf's clock-corrected time stamps
    volts, _ = _drain(ReplaySource(path, speed=0, stream="other"))
    np.testing.assert_allclose(volts, np.asarray(b.values, dtype=np.float32).T * 1e6, rtol=1e-5)  # V -> µV


def test_two_eeg_streams_without_stream_is_an_error_listing_them(two_eeg: tuple[Path, XdfStream, XdfStream]) -> None:
    path, _, _ = two_eeg
    with pytest.raises(SourceError, match=r"2 EEG streams.*--stream.*'headset'.*'other'"):
        ReplaySource(path, speed=0).open()
    with pytest.raises(SourceError, match=r"no stream named 'nope'.*'headset'"):
        ReplaySource(path, speed=0, stream="nope").open()
    with pytest.raises(SourceError, match="text markers"):
        ReplaySource(path, speed=0, stream="psychopy").open()


def test_the_only_eeg_stream_is_found_by_type(tmp_path: Path) -> None:
    path = write_xdf(tmp_path / "one.xdf", [_markers([1.0], ["x"]), _eeg("cap", 300, 3, 0.0)])
    assert ReplaySource(path, speed=0).open().channel_names == ("Ch1", "Ch2", "Ch3")
    assert load_markers(path) == [(1.0, "x")]


def test_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xdf"
    path.write_bytes(b"not an XDF file")
    with pytest.raises(SourceError, match="pyxdf cannot read"):
        ReplaySource(path, speed=0).open()
    path.write_bytes(b"XDF:\x01\x05garbage")  # pyxdf skips what it cannot parse: nothing is left to replay
    with pytest.raises(SourceError, match=r"no EEG stream with samples; pass --stream NAME \(none\)"):
        ReplaySource(path, speed=0).open()


async def test_replayed_xdf_markers_are_recorded_where_the_eeg_put_them(tmp_path: Path) -> None:
    eeg = _eeg("cap", int(6 * SFREQ), 4, 500.0)
    path = write_xdf(tmp_path / "lab.xdf", [eeg, _markers([501.0, 504.0], ["eyes closed", "eyes open"])])
    folder = tmp_path / "session"
    config = load_config(
        None,
        {"source.board": "replay", "source.file": str(path), "source.replay_speed": 4.0,
         "session.session_dir": str(folder)},
    )  # fmt: skip
    session = Session(config, services=["recorder", "replay_markers"])
    await asyncio.wait_for(session.run(), timeout=60)
    reader = SessionReader(folder)
    markers = [e for e in reader.events() if e["kind"] == "marker"]
    assert [m["text"] for m in markers] == ["eyes closed", "eyes open"]
    # At 4x, the markers 3 s apart in the file are 0.75 s apart in the session, within a chunk's arrival jitter.
    assert markers[1]["t"] - markers[0]["t"] == pytest.approx(0.75, abs=0.1)
    # Each marker sits where the session received the EEG sample of its file time (the chunk's arrival less how far
    # the sample lies before the chunk's end, at 4x), within one 40 ms chunk.
    eeg_record = reader.eeg()
    for marker, file_t in zip(markers, (501.0, 504.0), strict=True):
        k = int(np.searchsorted(eeg_record.timestamps, file_t))
        chunk_end = int(np.searchsorted(eeg_record.t_received, eeg_record.t_received[k], side="right")) - 1
        expected = eeg_record.t_received[k] - (eeg_record.timestamps[chunk_end] - file_t) / 4.0
        assert marker["t"] == pytest.approx(expected, abs=0.04)


def test_export_xdf_round_trips_a_session(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    _, written = write_session(folder, seconds=4.0)
    target = export_session(folder, "xdf")
    assert target.suffix == ".xdf"
    streams, _ = pyxdf.load_xdf(str(target), synchronize_clocks=False, dejitter_timestamps=False)
    by_type = {s["info"]["type"][0]: s for s in streams if not s["info"]["name"][0].endswith("-quality")}
    assert set(by_type) == {"EEG", "RelaxationScore", "MusicControls", "Markers"}
    quality = next(s for s in streams if s["info"]["name"][0] == "neuromusic-lab1-quality")  # features, all usable
    assert quality["info"]["type"] == ["Markers"] and len(quality["time_stamps"]) == 0
    np.testing.assert_array_equal(by_type["EEG"]["time_series"].T, written.astype(np.float32))
    assert float(by_type["EEG"]["info"]["nominal_srate"][0]) == 250.0
    reader = SessionReader(folder)
    assert len(by_type["RelaxationScore"]["time_series"]) == len(reader.scores())
    texts = [m[0] for m in by_type["Markers"]["time_series"]]
    assert "marker/eyes closed" in texts and "phase/music" in texts and any(t.startswith("bar/0 key=C") for t in texts)
    marker_t = by_type["Markers"]["time_stamps"][texts.index("marker/eyes closed")]
    event_t = next(e["t"] for e in reader.events() if e["kind"] == "marker")
    assert marker_t == pytest.approx(event_t)
    with pytest.raises(Exception, match="exists"):
        export_session(folder, "xdf")


def test_the_stream_option_reaches_the_replay_source(two_eeg: tuple[Path, XdfStream, XdfStream]) -> None:
    from neuromusic.drivers.config import SourceConfig
    from neuromusic.drivers.registry import open_source
    from neuromusic.models.core.clock import MonotonicClock

    path, _, _ = two_eeg
    config = load_config(None, {"source.board": "replay", "source.file": str(path), "source.stream": "other"})
    assert config.source.stream == "other"
    source = open_source(config.source, MonotonicClock())
    assert source.open().channel_names == ("Ch1", "Ch2")
    assert open_source(SourceConfig(board="replay", file=path, stream="headset"), MonotonicClock()).open().sfreq == 250
