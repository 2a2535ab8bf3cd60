"""Sources and sinks as context managers: opened on entering, closed on leaving, also when the block fails; the sink
registry opens what the configuration names, in order, and the scheduler speaks the typed sink protocol."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import mido
import pytest
from neuromusic.daemon.services.scheduler import Scheduler
from neuromusic.drivers.config import SourceConfig
from neuromusic.drivers.registry import open_source
from neuromusic.drivers.sinks.base import RenderingSink
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.drivers.sinks.factory import SinkSet, sink_names, wanted_sinks
from neuromusic.drivers.sinks.midifile_sink import MidiFileSink
from neuromusic.drivers.sinks.wav_sink import WavSink
from neuromusic.models.core.clock import MonotonicClock, VirtualClock
from neuromusic.models.core.messages import NoteEvent

from tests.playback_fixtures import SMALL_SOUNDFONT, read_wav


def test_the_registry_names_the_sinks_a_configuration_asks_for_in_opening_order() -> None:
    assert sink_names() == ["fluidsynth", "wav", "midi_file", "midi_out"]
    assert wanted_sinks(SinkConfig()) == ["fluidsynth"]
    assert wanted_sinks(SinkConfig(synth="none")) == []
    everything = SinkConfig(wav=Path("a.wav"), midi_file=Path("a.mid"), midi_out="virtual")
    assert wanted_sinks(everything) == ["fluidsynth", "wav", "midi_file", "midi_out"]


async def test_a_sink_set_closes_every_sink_when_the_block_fails(tmp_path: Path) -> None:
    clock = VirtualClock()
    config = SinkConfig(synth="none", soundfont=SMALL_SOUNDFONT, wav=Path("a.wav"), midi_file=Path("a.mid"))
    with pytest.raises(RuntimeError, match="the block failed"):
        async with SinkSet(config, tmp_path, clock) as opened:
            assert [s.name for s in opened.sinks] == [f"wav:{tmp_path / 'a.wav'}", f"midi-file:{tmp_path / 'a.mid'}"]
            scheduler = Scheduler(clock, opened.sinks)
            scheduler.notes([NoteEvent(0.1, 0.2, 60, 90, 0)])
            runner = asyncio.create_task(scheduler.run())
            await clock.sleep_until(0.5)
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            raise RuntimeError("the block failed")
    assert opened.problems == []
    # both files were finished on the way out: a complete MIDI file with the note, a WAV with its tail
    notes = [m for m in mido.MidiFile(tmp_path / "a.mid") if m.type == "note_on"]
    assert [m.note for m in notes] == [60]
    samples, rate = read_wav(tmp_path / "a.wav")
    assert len(samples) >= rate * 2.0  # the release and reverb tail rendered at close


async def test_the_scheduler_closes_its_sinks_on_leaving_and_calls_the_renderers_only(tmp_path: Path) -> None:
    clock = VirtualClock()
    wav = WavSink(tmp_path / "r.wav", SinkConfig(soundfont=SMALL_SOUNDFONT, reverb=False), 0.0)
    midi = MidiFileSink(tmp_path / "r.mid", 0.0)
    assert isinstance(wav, RenderingSink) and not isinstance(midi, RenderingSink)
    with pytest.raises(KeyboardInterrupt):
        async with Scheduler(clock, [midi, wav]) as scheduler:
            assert scheduler._renderers == [wav]
            scheduler.tempo(90.0, 0.0)
            scheduler.program(0, 0, 0.0)
            scheduler.notes([NoteEvent(0.25, 0.25, 64, 100, 0), NoteEvent(0.25, 0.5, 64, 100, 0)])
            runner = asyncio.create_task(scheduler.run())
            await clock.sleep_until(1.0)
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            raise KeyboardInterrupt  # even a BaseException leaves the files finished
    assert scheduler.sinks == []
    kinds = [(m.type, getattr(m, "note", None)) for m in mido.MidiFile(tmp_path / "r.mid") if not m.is_meta]
    # the repeated key: released before it is struck again, and held until the longer note ends
    assert [k for k in kinds if k[0] in ("note_on", "note_off")] == [
        ("note_on", 64),
        ("note_off", 64),
        ("note_on", 64),
        ("note_off", 64),
    ]
    assert any(
        m.type == "set_tempo" and round(mido.tempo2bpm(m.tempo)) == 90 for m in mido.MidiFile(tmp_path / "r.mid")
    )
    assert read_wav(tmp_path / "r.wav")[0].size > 0


def test_a_source_is_a_context_manager_for_one_connection() -> None:
    source = open_source(SourceConfig(board="synthetic"), MonotonicClock())
    with pytest.raises(ValueError, match="inside"), source as info:
        assert info.kind == "brainflow" and info.sfreq == 250.0
        assert source.read(1.0) is not None
        raise ValueError("inside")
    with pytest.raises(RuntimeError, match="before open"):
        source.read(0.0)  # released on the way out
    with source as again:  # and it opens again: one object, several connections
        assert again.channel_names == info.channel_names


async def test_async_with_opens_in_a_thread_and_closes_on_error_and_on_cancel() -> None:
    source = open_source(SourceConfig(board="synthetic"), MonotonicClock())
    with pytest.raises(ValueError, match="inside"):
        async with source as info:
            assert info.sfreq == 250.0
            assert await asyncio.to_thread(source.read, 1.0) is not None
            raise ValueError("inside")
    with pytest.raises(RuntimeError, match="before open"):
        source.read(0.0)

    async def hold() -> None:
        async with source:
            await asyncio.sleep(60)

    task = asyncio.create_task(hold())
    await asyncio.sleep(0.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    with pytest.raises(RuntimeError, match="before open"):
        source.read(0.0)


def test_the_simulated_listener_has_the_same_lifetime() -> None:
    simulated = open_source(dataclasses.replace(SourceConfig(), board="simulated"), VirtualClock())
    with simulated as info:
        assert info.kind == "simulated"
    with pytest.raises(RuntimeError, match="before open"):
        simulated.read(0.0)


async def test_a_source_cancelled_while_opening_is_closed_once_it_has_opened() -> None:
    from neuromusic.drivers.base import SourceInfo
    from neuromusic.drivers.listener_profile import load_profile
    from neuromusic.drivers.simulated import ScriptedState, SimulatedListener

    class SlowToOpen(SimulatedListener):
        """The simulated listener behind a slow link: its open takes 0.3 s, as a Bluetooth headset's does."""

        closed = 0

        def open(self) -> SourceInfo:
            time.sleep(0.3)
            return super().open()

        def close(self) -> None:
            self.closed += 1
            super().close()

    source = SlowToOpen(load_profile(), ScriptedState("calm:60"), MonotonicClock())

    async def connect() -> None:
        async with source:
            pytest.fail("the block must not run: the connection was cancelled while opening")

    task = asyncio.create_task(connect())
    await asyncio.sleep(0.05)  # inside open() now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if source.closed:
            break
        await asyncio.sleep(0.02)
    assert source.closed == 1
    with pytest.raises(RuntimeError, match="before open"):
        source.read(0.0)


async def test_acquisition_closes_the_source_when_streaming_fails_unexpectedly() -> None:
    from neuromusic.daemon.session.acquisition import Acquisition
    from neuromusic.daemon.session.hub import Hub
    from neuromusic.drivers.listener_profile import load_profile
    from neuromusic.drivers.simulated import ScriptedState, SimulatedListener
    from neuromusic.models.core.messages import Chunk

    class Faulty(SimulatedListener):
        """The simulated listener whose driver has a bug on its third read (not a SourceError: no reconnect)."""

        reads = 0
        closed = 0

        def read(self, max_wait: float) -> Chunk | None:
            self.reads += 1
            if self.reads == 3:
                raise ZeroDivisionError("a bug in the driver")
            return super().read(max_wait)

        def close(self) -> None:
            self.closed += 1
            super().close()

    clock = MonotonicClock()
    source = Faulty(load_profile(), ScriptedState("calm:60"), clock)
    acquisition = Acquisition(
        lambda: source,
        lambda chunk, info: None,
        clock,
        Hub(),
        stale_after_s=2.0,
        reconnect_after_s=5.0,
        reconnect_base_s=0.1,
        reconnect_max_s=1.0,
    )
    with pytest.raises(ZeroDivisionError):
        await asyncio.wait_for(acquisition.run(), 10)
    assert source.closed == 1 and acquisition.state == "stopped"
