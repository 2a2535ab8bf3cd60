"""The session as a standard MIDI file (type 1: a tempo track and one track per channel), tempo changes included.

Events arrive with session times in seconds. They are kept and converted to ticks at close through the tempo map
the arranger sent, so each note lands on the tick whose time (under that map) is the time it was played.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import mido
from neuromusic.drivers.sinks.base import CC_ALL_NOTES_OFF
from neuromusic.models.core.errors import SinkError

TICKS_PER_BEAT = 480
DEFAULT_BPM = 120.0  # MIDI's own default, used until the first tempo event


class MidiFileSink:
    def __init__(self, path: Path, t0: float) -> None:
        self.name = f"midi-file:{path}"
        self.live = False
        self.path = path
        self._t0 = t0
        self._tempi: list[tuple[float, float]] = []  # (t, bpm), t increasing
        self._events: list[tuple[float, int, mido.Message]] = []  # (t, order, message)
        self._closed = False
        self._map: tuple[list[float], list[float], list[float]] | None = None  # fixed at close
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError as error:
            raise SinkError(f"cannot write the MIDI file {path}: {error}") from error

    def _add(self, t: float, message: mido.Message) -> None:
        self._events.append((max(t, self._t0), len(self._events), message))

    def program(self, channel: int, program: int, t: float) -> None:
        self._add(t, mido.Message("program_change", channel=channel, program=program))

    def note_on(self, channel: int, pitch: int, velocity: int, t: float) -> None:
        self._add(t, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity))

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        self._add(t, mido.Message("note_off", channel=channel, note=pitch, velocity=0))

    def tempo(self, bpm: float, t: float) -> None:
        t = max(t, self._t0)
        if self._tempi and t <= self._tempi[-1][0]:
            self._tempi[-1] = (self._tempi[-1][0], bpm)  # same instant: the later tempo wins
        else:
            self._tempi.append((t, bpm))

    def all_notes_off(self, t: float) -> None:
        for channel in range(16):
            self._add(t, mido.Message("control_change", channel=channel, control=CC_ALL_NOTES_OFF, value=0))

    def _tempo_map(self) -> tuple[list[float], list[float], list[float]]:
        """Breakpoints (t, beats at t, bpm from t) of the tempo map, starting at the file's start."""
        tempi = self._tempi
        if not tempi or tempi[0][0] > self._t0:
            tempi = [(self._t0, DEFAULT_BPM), *tempi]
        times, beats, bpms = [tempi[0][0]], [0.0], [tempi[0][1]]
        for tt, bpm in tempi[1:]:
            beats.append(beats[-1] + (tt - times[-1]) * bpms[-1] / 60.0)
            times.append(tt)
            bpms.append(bpm)
        return times, beats, bpms

    def ticks(self, t: float) -> int:
        """Session time -> absolute tick under the tempo map."""
        times, beats, bpms = self._map if self._map is not None else self._tempo_map()
        i = max(0, bisect.bisect_right(times, t) - 1)
        return round((beats[i] + (t - times[i]) * bpms[i] / 60.0) * TICKS_PER_BEAT)

    def close(self, t: float) -> None:
        if self._closed:
            return
        self._closed = True
        self._map = self._tempo_map()
        tempo_track = mido.MidiTrack()
        tempo_track.append(mido.MetaMessage("track_name", name="neuromusic", time=0))
        times, _, bpms = self._map
        timed: list[tuple[int, mido.MetaMessage | mido.Message]] = [
            (self.ticks(tt), mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
            for tt, bpm in zip(times, bpms, strict=True)
        ]
        _append_delta(tempo_track, timed)
        midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        midi.tracks.append(tempo_track)
        for channel in sorted({m.channel for _, _, m in self._events}):
            track = mido.MidiTrack()
            # at one tick, the order the scheduler sent them in (it sends note-offs before note-ons)
            events = sorted(
                (self.ticks(tt), order, message) for tt, order, message in self._events if message.channel == channel
            )
            _append_delta(track, [(tick, message) for tick, _, message in events])
            midi.tracks.append(track)
        try:
            midi.save(str(self.path))
        except OSError as error:
            raise SinkError(f"writing {self.path} failed: {error}") from error


def _append_delta(track: mido.MidiTrack, timed: list[tuple[int, mido.MetaMessage | mido.Message]]) -> None:
    """Absolute ticks -> MIDI delta times."""
    last = 0
    for tick, message in timed:
        track.append(message.copy(time=max(0, tick - last)))
        last = max(last, tick)
