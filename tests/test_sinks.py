"""Sinks: real FluidSynth rendering to WAV, real MIDI files read back, the soundfont search, the sink factory."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from pathlib import Path

import mido
import numpy as np
import pytest
from neuromusic.daemon.services.scheduler import Scheduler
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.drivers.sinks.factory import open_sinks
from neuromusic.drivers.sinks.midifile_sink import MidiFileSink
from neuromusic.drivers.sinks.soundfont import find_soundfont
from neuromusic.drivers.sinks.wav_sink import WavSink
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.errors import ConfigError, SinkError
from neuromusic.models.core.messages import Controls, NoteEvent
from neuromusic.models.music.arranger import Arranger, ArrangerConfig

from tests.playback_fixtures import SMALL_SOUNDFONT, SOUNDFONT, level_db, melody_bar, onsets, read_wav

DRY = SinkConfig(reverb=False, soundfont=SOUNDFONT)


def render(path: Path, events: list[NoteEvent], config: SinkConfig = DRY, end: float | None = None) -> None:
    """Play events through the real scheduler on a virtual clock into a WAV file."""

    async def main() -> None:
        clock = VirtualClock()
        sink = WavSink(path, config, 0.0)
        scheduler = Scheduler(clock, [sink])
        scheduler.notes(events)
        task = asyncio.create_task(scheduler.run())
        while scheduler.pending:
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sink.close(end if end is not None else clock.now())

    asyncio.run(main())


def test_rendered_wav_is_not_silent_and_its_onsets_match_the_scheduled_notes(tmp_path: Path) -> None:
    times = [0.5 + 0.37 * i for i in range(10)]
    events = [NoteEvent(t, 0.2, 60 + 2 * (i % 5), 90, 0) for i, t in enumerate(times)]
    render(tmp_path / "a.wav", events)
    samples, rate = read_wav(tmp_path / "a.wav")
    assert np.sqrt(np.mean(samples**2)) > 0.005
    found = onsets(samples, rate)
    assert len(found) == len(times)
    assert np.max(np.abs(np.array(found) - times)) < 0.012  # within two 5 ms analysis frames


def test_a_tempo_change_shows_in_the_inter_onset_intervals(tmp_path: Path) -> None:
    arranger = Arranger(ArrangerConfig(roles=("melody",), tempo_ramp_bpm=100.0, legato=0.5))
    events, t = [], 0.5
    for index, tempo in enumerate([60.0, 60.0, 90.0, 90.0]):
        bar = melody_bar([60, 64, 67, 72], index, controls=Controls(tempo, 0.6, 0.5))
        arranged = arranger.arrange_bar(bar, t)
        events += arranged.events
        t += arranged.duration
    render(tmp_path / "b.wav", events)
    samples, rate = read_wav(tmp_path / "b.wav")
    iois = np.diff(onsets(samples, rate))
    assert len(iois) == 15
    # bar 2 ramps 60 -> 90 within the bar; bars 0-1 are at 60 BPM, bar 3 at 90
    assert np.allclose(iois[:4], 1.0, atol=0.012)
    assert np.allclose(iois[-3:], 60.0 / 90.0, atol=0.012)
    assert all(a >= b - 0.012 for a, b in itertools.pairwise(iois[4:13]))  # the ramp only speeds up


def test_wav_options_sample_rate_gain_and_reverb_change_the_output(tmp_path: Path) -> None:
    # A loud chord, so the effects are measured far above the 16-bit floor (about -100 dB RMS)
    events = [NoteEvent(0.1, 0.3, pitch, 127, 0) for pitch in (48, 55, 60, 64, 67)]
    render(tmp_path / "base.wav", events, DRY, end=0.5)
    render(tmp_path / "rate.wav", events, dataclasses.replace(DRY, sample_rate=22050), end=0.5)
    render(tmp_path / "loud.wav", events, dataclasses.replace(DRY, gain=DRY.gain * 2.0), end=0.5)
    render(tmp_path / "wet.wav", events, dataclasses.replace(DRY, reverb=True), end=0.5)
    base, rate = read_wav(tmp_path / "base.wav")
    _, half = read_wav(tmp_path / "rate.wav")
    loud, _ = read_wav(tmp_path / "loud.wav")
    wet, _ = read_wav(tmp_path / "wet.wav")
    assert (rate, half) == (44100, 22050)
    note = slice(int(0.1 * rate), int(0.4 * rate))
    assert level_db(base[note]) > -40.0  # loud enough that the comparisons below measure sound, not noise
    assert level_db(loud[note]) - level_db(base[note]) == pytest.approx(6.0, abs=1.5)  # twice the gain: +6 dB
    tail = slice(int(1.2 * rate), int(2.0 * rate))  # after the note's release, while the reverb still rings
    assert level_db(wet[tail]) > -85.0  # the reverb tail is well above the 16-bit floor
    assert level_db(wet[tail]) > level_db(base[tail]) + 12.0  # and far above what is left of the dry render


def test_the_wav_keeps_in_step_with_the_session_clock(tmp_path: Path) -> None:
    sink = WavSink(tmp_path / "c.wav", DRY, t0=100.0)  # the session clock started long ago
    sink.note_on(0, 60, 90, 101.0)
    sink.note_off(0, 60, 101.2)
    sink.close(103.0)
    samples, rate = read_wav(tmp_path / "c.wav")
    assert len(samples) == pytest.approx((3.0 + 2.0) * rate, abs=1)  # up to close, plus the 2 s release tail
    assert onsets(samples, rate) == pytest.approx([1.0], abs=0.006)


def test_midi_file_holds_the_notes_at_their_times_with_tempo_changes(tmp_path: Path) -> None:
    arranger = Arranger(ArrangerConfig(roles=("melody", "bass"), tempo_ramp_bpm=10.0))
    sink = MidiFileSink(tmp_path / "s.mid", t0=5.0)
    sent = []
    t = 5.0
    for index, tempo in enumerate([60.0, 80.0, 80.0, 80.0]):
        arranged = arranger.arrange_bar(melody_bar([60, 62, 64, 65], index, controls=Controls(tempo, 0.5, 0.5)), t)
        for bt, bpm in arranged.tempi:
            sink.tempo(bpm, bt)
        for e in arranged.events:
            sink.note_on(e.channel, e.pitch, e.velocity, e.t)
            sink.note_off(e.channel, e.pitch, e.t + e.duration)
            sent.append((round(e.t - 5.0, 2), e.channel, e.pitch))
        t += arranged.duration
    sink.close(t)
    midi = mido.MidiFile(tmp_path / "s.mid")
    tempos = [round(mido.tempo2bpm(m.tempo), 1) for m in midi.tracks[0] if m.type == "set_tempo"]
    assert tempos[0] == 60.0 and max(tempos) == pytest.approx(80.0, abs=0.6) and len(set(tempos)) > 3
    now, played = 0.0, []
    for message in midi:  # mido converts ticks to seconds through the file's tempo map
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            played.append((round(now, 2), message.channel, message.note))
    assert sorted(played) == sorted(sent)


def test_soundfont_search_and_its_errors(tmp_path: Path) -> None:
    assert find_soundfont().suffix in (".sf2", ".sf3")
    with pytest.raises(SinkError, match=r"apt install fluid-soundfont-gm.*--soundfont"):
        find_soundfont(folders=[tmp_path])
    with pytest.raises(SinkError, match=r"soundfont not found: .*nope\.sf2"):
        find_soundfont(tmp_path / "nope.sf2")
    (tmp_path / "mine.sf2").write_bytes(b"")
    assert find_soundfont(folders=[tmp_path]) == (tmp_path / "mine.sf2").resolve()


def test_a_soundfont_option_is_used_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    config = dataclasses.replace(DRY, synth="none", soundfont=SMALL_SOUNDFONT, wav=Path("x.wav"))
    sinks, _ = open_sinks(config, tmp_path, 0.0)
    assert [s.name for s in sinks] == [f"wav:{tmp_path / 'x.wav'}"]
    sinks[0].close(0.0)
    (tmp_path / "bad.sf2").write_bytes(b"not a soundfont")
    with pytest.raises(SinkError, match="could not load the soundfont"):
        open_sinks(dataclasses.replace(DRY, soundfont=tmp_path / "bad.sf2"), tmp_path, 0.0)


def test_no_audio_device_renders_to_a_wav_in_the_session_folder_said_once(tmp_path: Path) -> None:
    sinks, notices = open_sinks(SinkConfig(audio_driver="oss"), tmp_path, 0.0)  # no /dev/dsp here
    assert len(notices) == 1 and "no working audio device (audio driver oss did not start)" in notices[0]
    assert [s.name for s in sinks] == [f"wav:{tmp_path / 'session.wav'}"]
    sinks[0].close(0.0)
    assert (tmp_path / "session.wav").exists()
    sinks, notices = open_sinks(SinkConfig(audio_driver="oss"), None, 0.0)  # no session folder, no --wav
    assert sinks == [] and "give --wav PATH or --session-dir DIR" in notices[0]


def test_no_audio_device_with_wav_asked_for_says_so_once_without_instead(tmp_path: Path) -> None:
    sinks, notices = open_sinks(SinkConfig(audio_driver="oss", wav=Path("x.wav")), tmp_path, 0.0)
    assert notices == [
        f"not heard on speakers (audio driver oss did not start): the music goes to the WAV file you asked for, "
        f"{tmp_path / 'x.wav'}"
    ]
    assert [s.name for s in sinks] == [f"wav:{tmp_path / 'x.wav'}"]  # the one asked for, no second fallback file
    sinks[0].close(0.0)
    assert not (tmp_path / "session.wav").exists()


def test_synth_none_midi_file_and_wav_paths(tmp_path: Path) -> None:
    config = SinkConfig(synth="none", midi_file=Path("m.mid"), wav=tmp_path / "abs.wav")
    sinks, notices = open_sinks(config, tmp_path / "session", 0.0)
    assert notices == []
    assert sorted(s.name for s in sinks) == sorted(
        [f"wav:{tmp_path / 'abs.wav'}", f"midi-file:{tmp_path / 'session/m.mid'}"]
    )
    for sink in sinks:
        sink.close(1.0)
    assert (tmp_path / "session" / "m.mid").exists()
    sinks, _ = open_sinks(SinkConfig(synth="none"), None, 0.0)
    assert sinks == []


def test_without_alsa_or_jack_a_midi_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # No ALSA sequencer here, and a JACK server name nobody runs: the error says what MIDI ports need.
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "neuromusic-test-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    expected = r"'nonexistent' not found" if Path("/dev/snd/seq").exists() else r"ALSA sequencer.*JACK server"
    with pytest.raises(SinkError, match=expected):
        open_sinks(SinkConfig(synth="none", midi_out="nonexistent"), None, 0.0)


def test_sink_config_is_validated() -> None:
    from neuromusic.daemon.config import load_config

    with pytest.raises(ConfigError, match="synth = 'timidity' is not allowed"):
        load_config(overrides={"sinks.synth": "timidity"})
    with pytest.raises(ConfigError, match="lead_bars"):
        load_config(overrides={"sinks.lead_bars": 0.1})
    assert load_config(overrides={"sinks.wav": "x.wav"}).sinks.wav == Path("x.wav")
