"""Play arranged music into offline sinks (WAV, MIDI file) without a clock: every event in time order; and render
what the live FluidSynth sink plays, offline, to measure it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.drivers.sinks.base import Sink
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.drivers.sinks.fluidsynth_sink import PulledSynth
from neuromusic.models.core.messages import Bar, Controls, Note, NoteEvent
from neuromusic.models.music.arranger import Arranger, ArrangerConfig


def arrange(
    arranger: Arranger, bars: Iterable[Bar], t0: float = 0.0
) -> tuple[list[NoteEvent], list[tuple[float, float]], float]:
    """(events, tempi, end time) of `bars` arranged one after another from `t0`."""
    events: list[NoteEvent] = []
    tempi: list[tuple[float, float]] = []
    t = t0
    for bar in bars:
        arranged = arranger.arrange_bar(bar, t)
        events += arranged.events
        tempi += arranged.tempi
        t += arranged.duration
    return events, tempi, t


def play(
    sinks: Sequence[Sink],
    programs: dict[int, int],
    events: Iterable[NoteEvent],
    tempi: Iterable[tuple[float, float]] = (),
    end: float | None = None,
    t0: float = 0.0,
) -> None:
    """Send everything in time order, as the scheduler would (at one instant: note-offs, tempo, programs, note-ons),
    then close the sinks at `end` (default: the last note-off)."""
    OFF, TEMPO, PROGRAM, ON = range(4)
    timeline: list[tuple[float, int, int, tuple[float, ...]]] = []
    for channel, program in programs.items():
        timeline.append((t0, PROGRAM, len(timeline), (channel, program)))
    for t, bpm in tempi:
        timeline.append((t, TEMPO, len(timeline), (bpm,)))
    last = t0
    for e in events:
        timeline.append((e.t, ON, len(timeline), (e.channel, e.pitch, e.velocity)))
        timeline.append((e.t + e.duration, OFF, len(timeline), (e.channel, e.pitch)))
        last = max(last, e.t + e.duration)
    timeline.sort()
    for sink in sinks:
        for t, kind, _, args in timeline:
            if kind == ON:
                sink.note_on(int(args[0]), int(args[1]), int(args[2]), t)
            elif kind == OFF:
                sink.note_off(int(args[0]), int(args[1]), t)
            elif kind == TEMPO:
                sink.tempo(args[0], t)
            else:
                sink.program(int(args[0]), int(args[1]), t)
        sink.close(last if end is None else end)


class LiveTap(PulledSynth):
    """A sink that renders what the live FluidSynth sink sounds like: a synth made with the same settings
    (`new_synth`: soundfont, gain, reverb), pulled sample-exactly like the WAV sink, kept as floats in memory with
    no limiter (the live sound has none). For measuring the live path's loudness and peaks."""

    live = False

    def __init__(self, config: SinkConfig) -> None:
        from neuromusic.drivers.sinks.fluidsynth_sink import new_synth

        self.name = "live-tap"
        self.rate = int(config.sample_rate)
        self._synth = new_synth(config)
        self._blocks: list[np.ndarray] = []
        self._frames = 0

    def _render_to(self, t: float) -> None:
        from neuromusic.drivers.sinks.fluidsynth_sink import render_float

        n = round(t * self.rate) - self._frames
        if n > 0:
            self._blocks.append(render_float(self._synth, n))
            self._frames += n

    def tempo(self, bpm: float, t: float) -> None:
        pass

    def all_notes_off(self, t: float) -> None:
        pass

    def close(self, t: float) -> None:
        self._render_to(t + 2.0)  # the release and the reverb's tail
        self._synth.delete()

    @property
    def samples(self) -> np.ndarray:
        """(n, 2) float samples rendered so far."""
        return np.concatenate(self._blocks) if self._blocks else np.zeros((0, 2), dtype=np.float32)


def bar_from_record(record: dict[str, Any]) -> Bar:
    """A Bar from its bars.jsonl record (what the recorder writes)."""
    controls = record.get("controls", {})
    return Bar(
        index=int(record["index"]),
        abc=str(record.get("abc", "")),
        notes=tuple(Note(int(p), float(s), float(d), int(v)) for p, s, d, v in record["notes"]),
        beats=float(record["beats"]),
        meter=str(record.get("meter", "4/4")),
        key=str(record.get("key", "")),
        controls=Controls(
            float(controls.get("tempo", 120.0)), float(controls.get("valence", 0.5)), float(controls.get("energy", 0.5))
        ),
    )


def arranger_config(settings: dict[str, Any] | None) -> ArrangerConfig:
    """The [arranger] section as a session's config.json holds it; the defaults where it is missing or unusable."""
    if not settings:
        return ArrangerConfig()
    known = {f.name for f in dataclasses.fields(ArrangerConfig)}
    values: dict[str, Any] = {k: tuple(v) if k == "roles" else v for k, v in settings.items() if k in known}
    try:
        config = ArrangerConfig(**values)
        config.validate()
    except (TypeError, ValueError):
        return ArrangerConfig()
    return config


def write_session_midi(records: list[dict[str, Any]], path: Path, settings: dict[str, Any] | None = None) -> None:
    """The recorded bars arranged again as the session's arranger played them (it is deterministic: same bars,
    same config, same notes), into a MIDI file with one named track per part."""
    from neuromusic.drivers.sinks.midifile_sink import MidiFileSink

    arranger = Arranger(arranger_config(settings))
    bars = [bar_from_record(r) for r in sorted(records, key=lambda r: int(r["index"]))]
    events, tempi, end = arrange(arranger, bars)
    play([MidiFileSink(path, 0.0, arranger.voices())], arranger.programs(), events, tempi, end)
