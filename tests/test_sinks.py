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
from neuromusic.drivers.sinks.limiter import Limiter
from neuromusic.drivers.sinks.loudness import PEAK_CEILING_DB, measure_file
from neuromusic.drivers.sinks.midifile_sink import MidiFileSink
from neuromusic.drivers.sinks.offline import arrange, play
from neuromusic.drivers.sinks.soundfont import find_soundfont
from neuromusic.drivers.sinks.wav_sink import WavSink
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.errors import ConfigError, SinkError
from neuromusic.models.core.messages import Controls, NoteEvent
from neuromusic.models.music.arranger import Arranger, ArrangerConfig
from neuromusic.models.music.sketch_composer import SketchComposer

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
    # A chord loud enough to measure the effects far above the 16-bit floor (about -100 dB RMS), and under the
    # limiter's ceiling even at twice the gain, so the gain is measured, not the limiter
    events = [NoteEvent(0.1, 0.3, pitch, 64, 0) for pitch in (48, 55, 60, 64, 67)]
    half = dataclasses.replace(DRY, gain=0.5)
    render(tmp_path / "base.wav", events, half, end=0.5)
    render(tmp_path / "rate.wav", events, dataclasses.replace(half, sample_rate=22050), end=0.5)
    render(tmp_path / "loud.wav", events, dataclasses.replace(half, gain=1.0), end=0.5)
    render(tmp_path / "wet.wav", events, dataclasses.replace(half, reverb=True), end=0.5)
    base, rate = read_wav(tmp_path / "base.wav")
    _, rate_half = read_wav(tmp_path / "rate.wav")
    loud, _ = read_wav(tmp_path / "loud.wav")
    wet, _ = read_wav(tmp_path / "wet.wav")
    assert (rate, rate_half) == (44100, 22050)
    assert np.abs(loud).max() < 10 ** (-1.5 / 20)  # under the limiter's ceiling
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


def test_the_limiter_shapes_peaks_without_a_step_and_leaves_quiet_audio_alone() -> None:
    rate = 44100
    rng = np.random.default_rng(0)
    quiet = (0.1 * rng.standard_normal((rate, 2))).astype(np.float32)
    burst = quiet.copy()
    burst[20000:20400] *= 12.0  # a peak about +10 dB over full scale
    for audio, touched in ((quiet, False), (burst, True)):
        limiter = Limiter(rate, ceiling_db=-1.5)
        out = np.concatenate([limiter.process(audio[i : i + 4096]) for i in range(0, rate, 4096)] + [limiter.flush()])
        assert out.shape == audio.shape  # delayed inside, but nothing lost or added
        assert 20 * np.log10(np.abs(out).max()) <= -1.5 + 1e-3
        assert (limiter.reduced > 0) == touched
        assert np.array_equal(out[:19000], audio[:19000])  # far from the peak the samples pass untouched
    gain = np.abs(out[19000:22000, 0]) / np.maximum(np.abs(burst[19000:22000, 0]), 1e-9)
    assert np.max(np.abs(np.diff(gain[np.abs(burst[19000:22000, 0]) > 0.05]))) < 0.05  # a ramp, not a step


def test_an_arranged_render_lands_near_the_loudness_target_with_peaks_under_the_ceiling(tmp_path: Path) -> None:
    composer = SketchComposer(seed=0)
    for energy in (0.1, 0.9):
        arranger = Arranger()
        bars = [composer.next_bar(Controls(90.0, 0.6, energy)) for _ in range(8)]
        events, tempi, end = arrange(arranger, bars)
        path = tmp_path / f"e{energy}.wav"
        play([WavSink(path, DRY, 0.0)], arranger.programs(), events, tempi, end)
        loudness = measure_file(path)
        assert -23.0 <= loudness.integrated <= -16.0, loudness.line()
        assert loudness.true_peak <= PEAK_CEILING_DB, loudness.line()
    assert (tmp_path / "e0.1.wav").read_bytes()[:4] == b"RIFF"  # a plain WAV while it fits one (RF64 past 4 GiB)


def test_a_louder_gain_is_limited_not_clipped(tmp_path: Path) -> None:
    events = [NoteEvent(0.1 + 0.25 * i, 0.6, pitch, 127, 0) for i, pitch in enumerate((48, 55, 60, 64, 67, 72))]
    render(tmp_path / "hot.wav", events, dataclasses.replace(DRY, gain=4.0), end=2.0)
    loudness = measure_file(tmp_path / "hot.wav")
    samples, _ = read_wav(tmp_path / "hot.wav")
    assert loudness.true_peak <= PEAK_CEILING_DB + 0.5  # 16-bit rounding and peaks between samples
    assert np.count_nonzero(np.abs(samples) > 0.99) == 0  # no sample at full scale: nothing clipped


def test_the_midi_file_streams_a_long_session_with_one_named_track_per_part(tmp_path: Path) -> None:
    sink = MidiFileSink(tmp_path / "long.mid", t0=0.0)
    sink.program(0, 0, 0.0)
    sink.program(5, 49, 0.0)
    sink.program(1, 46, 0.0)  # a part that never plays gets no track
    held = []
    for beat in range(3600):  # an hour at 60 BPM: a melody note each beat, a held string chord each bar
        t = float(beat)
        sink.tempo(60.0, t)
        sink.note_on(0, 60 + beat % 12, 80, t)
        sink.note_off(0, 60 + beat % 12, t + 0.9)
        if beat % 4 == 0:
            sink.note_on(5, 48, 60, t)
            sink.note_off(5, 48, t + 4.0)
        held.append(sink.held)
    sink.close(3600.0)
    assert max(held) < 100  # events wait only in the short reorder window: memory stays flat
    assert not list(tmp_path.glob(".midi-track-*"))  # the spool files are gone
    midi = mido.MidiFile(tmp_path / "long.mid")
    assert [track.name for track in midi.tracks] == [
        "neuromusic",
        "melody: Acoustic Grand Piano",
        "chords (calm): String Ensemble 2",
    ]
    melody = [m for m in midi.tracks[1] if m.type == "note_on"]
    assert len(melody) == 3600 and sum(m.time for m in midi.tracks[1]) == pytest.approx(3599.9 * 480, abs=1)
    assert midi.length == pytest.approx(3600.0, abs=0.01)
