"""Play arranged music into offline sinks (WAV, MIDI file) without a clock: every event in time order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from neuromusic.drivers.sinks.base import Sink
from neuromusic.models.core.messages import Bar, NoteEvent
from neuromusic.models.music.arranger import Arranger


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
