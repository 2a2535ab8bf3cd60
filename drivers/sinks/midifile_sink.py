"""The session as a standard MIDI file (type 1): a tempo track and one named track per part, tempo changes included.

Events arrive with session times in seconds and are converted to ticks through the tempo map the arranger sends, so
each note lands on the tick whose time (under that map) is the time it was played. The file streams: events wait in
a short reorder window (they may arrive a little out of order, e.g. a note-off sent with its note-on), then go as
encoded bytes into one spool file per track beside the output; at close the tracks are joined into the file. Memory
stays flat however long the session runs.
"""

from __future__ import annotations

import heapq
import shutil
import struct
import tempfile
from pathlib import Path
from typing import IO

import mido
from mido.midifiles.midifiles import encode_variable_int
from neuromusic.drivers.sinks.base import CC_ALL_NOTES_OFF
from neuromusic.drivers.sinks.base import CHANNELS as CHANNELS_16
from neuromusic.models.core.errors import SinkError
from neuromusic.models.music.arranger import CALM_CHANNELS, CHANNELS

TICKS_PER_BEAT = 480
DEFAULT_BPM = 120.0  # MIDI's own default, used until the first tempo event
REORDER_S = 10.0  # an event is final once calls have reached this far past it
TEMPO_TRACK = -1
# The arranger's parts by channel, for track names
PARTS = {ch: role for role, ch in CHANNELS.items()} | {ch: f"{role} (calm)" for role, ch in CALM_CHANNELS.items()}


def instrument(program: int) -> str:
    import pretty_midi

    return str(pretty_midi.program_to_instrument_name(program))


class MidiFileSink:
    def __init__(self, path: Path, t0: float, parts: dict[int, str] | None = None) -> None:
        self.name = f"midi-file:{path}"
        self.live = False
        self.path = path
        self._t0 = t0
        self._parts = PARTS if parts is None else parts
        # tempo map from the last final event on: (t, beats at t, bpm from t)
        self._map: list[tuple[float, float, float]] = [(t0, 0.0, DEFAULT_BPM)]
        self._pending: list[tuple[float, int, int, mido.Message | mido.MetaMessage]] = []  # (t, seq, track, msg)
        self._seq = 0
        self._latest = t0
        self._spools: dict[int, tuple[IO[bytes], list[int]]] = {}  # track -> (file, [last tick])
        self._programs: dict[int, int] = {}
        # channels that carried more than a program change: only these get a track (a voice set up for a passage
        # that never came stays out of the file)
        self._sounded: set[int] = set()
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError as error:
            raise SinkError(f"cannot write the MIDI file {path}: {error}") from error

    # -- calls ---------------------------------------------------------------------------------------------------
    def _add(self, t: float, track: int, message: mido.Message | mido.MetaMessage) -> None:
        t = max(t, self._t0)
        heapq.heappush(self._pending, (t, self._seq, track, message))
        self._seq += 1
        self._latest = max(self._latest, t)
        self._settle(self._latest - REORDER_S)

    def program(self, channel: int, program: int, t: float) -> None:
        self._programs.setdefault(channel, program)
        self._add(t, channel, mido.Message("program_change", channel=channel, program=program))

    def note_on(self, channel: int, pitch: int, velocity: int, t: float) -> None:
        self._sounded.add(channel)
        self._add(t, channel, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity))

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        self._add(t, channel, mido.Message("note_off", channel=channel, note=pitch, velocity=0))

    def tempo(self, bpm: float, t: float) -> None:
        self._add(t, TEMPO_TRACK, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))

    def all_notes_off(self, t: float) -> None:
        for channel in CHANNELS_16:  # as every sink: each channel, whatever a device may hold on it
            self._sounded.add(channel)
            self._add(t, channel, mido.Message("control_change", channel=channel, control=CC_ALL_NOTES_OFF))

    # -- conversion ----------------------------------------------------------------------------------------------
    def ticks(self, t: float) -> int:
        """Session time -> absolute tick under the tempo map known so far."""
        i = len(self._map) - 1
        while i > 0 and self._map[i][0] > t:
            i -= 1
        tt, beats, bpm = self._map[i]
        return round((beats + (t - tt) * bpm / 60.0) * TICKS_PER_BEAT)

    def _settle(self, until: float) -> None:
        """Write out every event at or before `until`, in time order (at one time, in the order sent)."""
        while self._pending and self._pending[0][0] <= until:
            t, _, track, message = heapq.heappop(self._pending)
            if track == TEMPO_TRACK:
                tt, beats, bpm = self._map[-1]
                at = (t, beats + (t - tt) * bpm / 60.0, mido.tempo2bpm(message.tempo))
                self._map = [at]  # events settle in time order: none later needs an earlier breakpoint
            self._write(track, self.ticks(t), message)

    def _write(self, track: int, tick: int, message: mido.Message | mido.MetaMessage) -> None:
        if track not in self._spools:
            try:
                self._spools[track] = (self._spool(), [0])
            except OSError as error:
                raise SinkError(f"cannot write beside the MIDI file {self.path}: {error}") from error
        spool, last = self._spools[track]
        delta = max(0, tick - last[0])
        last[0] = max(last[0], tick)
        try:
            spool.write(bytes(encode_variable_int(delta)) + bytes(message.bin()))
        except OSError as error:
            raise SinkError(f"writing {self.path} failed: {error}") from error

    def _spool(self) -> IO[bytes]:
        """An anonymous file beside the output (gone when closed, also after a crash); open until close."""
        return tempfile.TemporaryFile(dir=self.path.parent, prefix=".midi-track-")

    @property
    def held(self) -> int:
        """Events waiting in the reorder window (the only ones kept in memory)."""
        return len(self._pending)

    # -- the file ------------------------------------------------------------------------------------------------
    def _track_name(self, track: int) -> str:
        if track == TEMPO_TRACK:
            return "neuromusic"
        part = self._parts.get(track, f"channel {track + 1}")
        program = self._programs.get(track)
        return part if program is None else f"{part}: {instrument(program)}"

    def close(self, t: float) -> None:
        if self._closed:
            return
        self._closed = True
        self._settle(float("inf"))
        if TEMPO_TRACK not in self._spools:  # no tempo was sent: the tempo track still leads, with its name
            self._spools[TEMPO_TRACK] = (self._spool(), [0])
        # the tempo track (-1) first, then the parts that played
        tracks = [track for track in sorted(self._spools) if track == TEMPO_TRACK or track in self._sounded]
        try:
            with self.path.open("wb") as out:
                out.write(b"MThd" + struct.pack(">LHHH", 6, 1, len(tracks), TICKS_PER_BEAT))
                for track in tracks:
                    spool, _ = self._spools[track]
                    name = mido.MetaMessage("track_name", name=self._track_name(track))
                    head = b"\x00" + bytes(name.bin())
                    tail = b"\x00\xff\x2f\x00"  # end of track
                    size = spool.tell()
                    out.write(b"MTrk" + struct.pack(">L", len(head) + size + len(tail)) + head)
                    spool.seek(0)
                    shutil.copyfileobj(spool, out)
                    out.write(tail)
        except OSError as error:
            raise SinkError(f"writing {self.path} failed: {error}") from error
        finally:
            for spool, _ in self._spools.values():
                spool.close()
