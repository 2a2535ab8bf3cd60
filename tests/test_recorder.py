"""The recorder: what goes in comes out, a crash loses at most the last second, and the folder always opens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pytest
from lab_fixtures import write_session
from neuromusic.daemon.cli.recording_options import RecordingConfig, default_sessions_root
from neuromusic.daemon.config import load_config
from neuromusic.daemon.services.recorder import SessionWriter, create, new_session_folder
from neuromusic.models.core.errors import ConfigError, DataError
from neuromusic.models.sessions import store
from neuromusic.models.sessions.store import SessionReader, find_session


def test_everything_written_reads_back(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    _, written = write_session(folder)
    reader = SessionReader(folder)
    eeg = reader.eeg()
    assert eeg.channel_names == ("EEG1", "EEG2", "EEG3", "EEG4")
    assert eeg.sfreq == 250.0 and not eeg.truncated
    np.testing.assert_allclose(eeg.data, written, rtol=1e-6)  # float32 on disk
    np.testing.assert_array_equal(eeg.timestamps, np.arange(written.shape[1]) / 250.0 + 5000.0)
    assert len(reader.scores()) == 50 and len(reader.features()) == 50 and len(reader.bars()) == 5
    assert [e["kind"] for e in reader.events()] == ["phase", "marker", "phase", "control"]
    assert reader.stream("status")[0]["state"] == "streaming"
    assert reader.manifest["features"]["band_names"] == ["delta", "theta", "alpha", "beta", "gamma"]
    assert reader.clean_exit and reader.config() == {"source": {"board": "test"}}
    assert reader.abc().count("CEG2 |") == 5
    midi = mido.MidiFile(folder / store.MIDI_FILE)  # every part that played, one named track each
    names = [track.name for track in midi.tracks]
    assert names[0] == "neuromusic" and {name.split(":")[0] for name in names[1:]} >= {"melody", "chords", "bass"}
    melody = next(track for track in midi.tracks if track.name.startswith("melody"))
    assert [m.note % 12 for m in melody if m.type == "note_on" and m.velocity > 0] == [0, 4, 7] * 5


def test_midi_rebuilt_from_bars_after_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    writer, _ = write_session(folder, close=False)
    writer.flush()
    assert not (folder / store.MIDI_FILE).exists()
    out = tmp_path / "rebuilt.mid"
    reader = SessionReader(folder)
    store.bars_to_midi(reader.bars(), out, reader.config().get("arranger"))
    rebuilt = mido.MidiFile(out)
    names = [track.name for track in rebuilt.tracks]
    assert names[0] == "neuromusic" and {name.split(":")[0] for name in names[1:]} >= {"melody", "chords", "bass"}
    melody = next(track for track in rebuilt.tracks if track.name.startswith("melody"))
    assert [m.note % 12 for m in melody if m.type == "note_on" and m.velocity > 0] == [0, 4, 7] * 5
    assert all(any(m.type == "note_on" for m in track) for track in rebuilt.tracks[1:])  # each part played
    # the bars' own tempi: the rebuilt file lasts the five bars (plus the last notes' release)
    assert rebuilt.length == pytest.approx(sum(4 * 60 / (60 + k * 2) for k in range(5)), abs=0.5)
    writer.close()
    clean = mido.MidiFile(folder / store.MIDI_FILE)  # what a clean end writes: the same parts, the same notes
    assert [t.name for t in clean.tracks] == names
    for ours, theirs in zip(rebuilt.tracks, clean.tracks, strict=True):
        assert [m for m in ours if not m.is_meta] == [m for m in theirs if not m.is_meta]


def test_truncated_tails_are_tolerated(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write_session(folder)
    full = SessionReader(folder).eeg()
    frame = store.FRAME_HEADER.size + 25 * 8 + 4 * 25 * 4
    eeg = folder / store.EEG_FILE
    eeg.write_bytes(eeg.read_bytes()[: 10 * frame + 37])  # cut inside frame 11
    scores = folder / "scores.jsonl"
    scores.write_bytes(scores.read_bytes()[:-20])  # cut inside the last line
    reader = SessionReader(folder)
    cut = reader.eeg()
    assert cut.truncated and cut.n_samples == 250
    assert reader.duration_s() == pytest.approx(1.0)  # the header-only scan agrees with the full read
    np.testing.assert_array_equal(cut.data, full.data[:, :250])
    assert len(reader.scores()) == 49


def test_damaged_frame_ends_the_readable_data(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write_session(folder)
    eeg = folder / store.EEG_FILE
    raw = bytearray(eeg.read_bytes())
    frame = len(raw) // 100
    raw[5 * frame + 100] ^= 0xFF  # a torn write: the CRC catches it
    eeg.write_bytes(bytes(raw))
    assert SessionReader(folder).eeg().n_samples == 5 * 25


def test_damage_before_the_last_line_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write_session(folder)
    events = folder / "events.jsonl"
    lines = events.read_bytes().split(b"\n")
    lines[0] = b'{"t": 1, broken'
    events.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match="line 1"):
        SessionReader(folder).events()


def test_not_a_session_and_lookup_by_name(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a neuromusic session"):
        SessionReader(tmp_path)
    write_session(tmp_path / "20260101-100000-a")
    write_session(tmp_path / "20260102-100000-b")
    assert find_session("20260102", tmp_path).name == "20260102-100000-b"
    with pytest.raises(DataError, match="matches 2 sessions"):
        find_session("2026", tmp_path)
    with pytest.raises(DataError, match="no session"):
        find_session("nope", tmp_path)


def test_existing_session_is_never_overwritten(tmp_path: Path) -> None:
    write_session(tmp_path / "s")
    with pytest.raises(DataError, match="already holds a recorded session"):
        SessionWriter(tmp_path / "s", {}, RecordingConfig(), 0.0)
    (tmp_path / "other").mkdir()  # a folder another service made first (the player's WAV) is fine
    (tmp_path / "other" / "session.wav").write_bytes(b"")
    SessionWriter(tmp_path / "other", {}, RecordingConfig(), 0.0).close()


def test_new_folders_sort_by_time_and_never_collide(tmp_path: Path) -> None:
    first = new_session_folder(tmp_path, "dev/1")
    first.mkdir()
    second = new_session_folder(tmp_path, "dev/1")
    assert first.name.endswith("-dev_1") and second.name == first.name + "-2"


def test_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_sessions_root() == tmp_path / "xdg" / "neuromusic" / "sessions"
    assert load_config().recording.sessions_root() == tmp_path / "xdg" / "neuromusic" / "sessions"
    assert load_config(overrides={"recording.root": str(tmp_path)}).recording.sessions_root() == tmp_path
    with pytest.raises(ConfigError, match="flush_interval_s"):
        load_config(overrides={"recording.flush_interval_s": 2.0})
    # raw_eeg = false: everything but the samples
    write_session(tmp_path / "noraw", options=RecordingConfig(raw_eeg=False))
    reader = SessionReader(tmp_path / "noraw")
    assert not reader.has_eeg and not (tmp_path / "noraw" / store.EEG_FILE).exists() and reader.scores()
    # enabled = false: the service is not created
    config = load_config(overrides={"recording.enabled": False})

    class Ctx:
        def __init__(self) -> None:
            self.config = config

    assert create(Ctx()) is None  # type: ignore[arg-type]


def test_flush_interval_bounds_what_a_kill_loses(tmp_path: Path) -> None:
    """Without flush() nothing reaches the file (1 MiB buffers); flush() hands it to the OS at once."""
    folder = tmp_path / "s"
    writer, _ = write_session(folder, close=False, seconds=1.0, options=RecordingConfig(fsync=False))
    before = (folder / store.EEG_FILE).stat().st_size
    writer.flush()
    assert (folder / store.EEG_FILE).stat().st_size > before
    writer.close()


def _run_until_streaming(folder: Path, extra: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "XDG_DATA_HOME": str(folder.parent / "xdg")}
    command = [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--board", "simulated", "--quiet"]
    process = subprocess.Popen(
        [*command, "--session-dir", str(folder), "--synth", "none", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        manifest = folder / store.MANIFEST
        if manifest.exists() and (folder / store.EEG_FILE).exists() and (folder / "scores.jsonl").exists():
            return process
        if process.poll() is not None:
            raise AssertionError(f"run exited early: {process.stderr.read().decode() if process.stderr else ''}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the session never started streaming")


def test_sigkill_during_a_real_run_loses_at_most_the_last_second(tmp_path: Path) -> None:
    folder = tmp_path / "killed"
    process = _run_until_streaming(folder, [])
    time.sleep(4.0)
    killed_at = time.monotonic()  # CLOCK_MONOTONIC is system-wide: the same time line as the child's session clock
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    if process.stderr:
        process.stderr.close()
    reader = SessionReader(folder)
    assert not reader.clean_exit  # it never got to say goodbye ...
    eeg = reader.eeg()  # ... but the folder opens
    assert eeg.channel_names and eeg.sfreq == 250.0
    lost = killed_at - eeg.t_received[-1]
    print(f"SIGKILL after {eeg.duration_s:.1f} s of EEG: the recording ends {lost * 1000:.0f} ms before the kill")
    assert lost <= 1.0, "more than the last second of EEG was lost"
    # No hole before the tail: the samples cover the time from the first frame to the last one.
    covered = eeg.t_received[-1] - eeg.t_received[0]
    assert eeg.duration_s >= covered
    assert eeg.duration_s >= 3.5
    scores = reader.scores()
    assert killed_at - scores[-1]["t"] <= 1.0
    assert json.loads((folder / store.CONFIG).read_text())["source"]["board"] == "simulated"


def test_cli_sessions_lists_a_cut_short_session(tmp_path: Path) -> None:
    write_session(tmp_path / "20260101-100000-lab1")
    writer, _ = write_session(tmp_path / "20260101-110000-lab1", close=False)
    writer.flush()
    cli = [sys.executable, "-m", "neuromusic.daemon.cli", "sessions", "--sessions-root", str(tmp_path)]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "20260101-100000-lab1" in lines[2] and lines[2].rstrip().endswith("ok")
    assert "0:10" in lines[2] and "test" in lines[2]
    assert lines[3].rstrip().endswith("cut short")
    as_json = subprocess.run([*cli, "--json"], capture_output=True, text=True, timeout=60)
    first = json.loads(as_json.stdout.splitlines()[0])
    assert first["markers"] == 1 and first["bars"] == 5 and first["duration_s"] == pytest.approx(10.0)
    writer.close()


def _service_context(tmp_path: Path, **recording: object) -> object:
    from neuromusic.daemon.session.context import SessionContext
    from neuromusic.daemon.session.control import SessionControl
    from neuromusic.daemon.session.hub import Hub
    from neuromusic.models.core.clock import VirtualClock
    from neuromusic.policies.base import ControlBounds

    overrides = {f"recording.{k}": v for k, v in recording.items()}
    config = load_config(overrides={"recording.root": str(tmp_path), **overrides})
    clock = VirtualClock(50.0)
    hub = Hub()
    control = SessionControl(clock, hub.publish, "mapping", ControlBounds())
    return SessionContext(config, hub, clock, control, "svc-test")


def _chunk(k: int) -> object:
    from neuromusic.models.core.messages import Chunk

    return Chunk(np.full((2, 10), float(k)), np.arange(10) / 100.0 + k / 10, ("A", "B"), 100.0)


async def test_service_flushes_on_its_interval_and_counts_drops(tmp_path: Path) -> None:
    import asyncio

    ctx = _service_context(tmp_path, flush_interval_s=0.05, queue_size=16)
    service = create(ctx)  # type: ignore[arg-type]
    assert service is not None
    folder = service.folder
    assert folder.parent == tmp_path and folder.name.endswith("-svc-test")
    task = asyncio.create_task(service.run())
    await asyncio.sleep(0.05)
    for k in range(5):
        ctx.hub.publish(_chunk(k))  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)  # more than one flush interval, no shutdown: the data must already be on disk
    assert SessionReader(folder).eeg().n_samples == 50
    for k in range(100):  # a burst larger than queue_size without yielding: the oldest are dropped and counted
        ctx.hub.publish(_chunk(k))  # type: ignore[attr-defined]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    reader = SessionReader(folder)
    assert reader.clean_exit and reader.manifest["dropped"] == 100 - 16
    assert reader.eeg().n_samples == 50 + 16 * 10
    assert reader.eeg().data[0, -1] == 99.0  # the newest were kept


@pytest.mark.slow  # one short `neuromusic run`
def test_without_a_session_dir_the_music_is_rendered_into_the_new_session_folder(tmp_path: Path) -> None:
    # No sound card here: the player renders to a WAV "in the session folder", which must be the recorder's new one.
    command = [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--board", "synthetic", "--duration", "3"]
    command += ["--quiet", "--sessions-root", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (folder / "manifest.json").exists()
    assert (folder / "session.wav").stat().st_size > 44  # more than a bare WAV header
    assert str(folder / "session.wav") in done.stderr  # and the user is told where it went
