"""The arranger: one bar of melody in, the notes of four parts out, at absolute session times.

What makes a melody something to listen to for twenty minutes:
- harmony from the melody (models/music/harmony.py), one chord per half bar in 4/4, per bar otherwise, cadences on the
  tonic at phrase ends (every fourth bar);
- tempo ramps: the tempo moves toward the requested one by at most `tempo_ramp_bpm` per bar, linearly within the
  bar, so a change is heard as a gentle ritardando, never a jump; the MIDI file gets one tempo per beat;
- energy sets loudness and density: low energy is block chords held and one bass note, middle is broken chords in
  quarters, high is arpeggios in eighths with the bass on every beat;
- valence sets the register: brighter is higher; the accompaniment glides there a few semitones per bar, and the
  melody moves by whole octaves only, with hysteresis so it does not jump back and forth;
- when the mode flips (major <-> minor) the next bar is a gentle transition: held chords, softer, and the chord
  sharing most tones with the last one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from neuromusic.models.core.messages import Bar, NoteEvent
from neuromusic.models.music.harmony import Chord, bass_note, choose_chord, read_key, voice_chord

CHANNELS = {"melody": 0, "chords": 1, "bass": 2, "pad": 3}
# General MIDI programs (0-based): acoustic grand piano, orchestral harp, acoustic bass, warm pad
DEFAULT_PROGRAMS = {"melody": 0, "chords": 46, "bass": 32, "pad": 89}
ROLES = tuple(CHANNELS)
PHRASE_BARS = 4


@dataclass(frozen=True)
class ArrangerConfig:
    programs: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PROGRAMS))  # role -> GM program
    roles: tuple[str, ...] = ROLES  # which parts play; "melody" alone gives the bare model output
    tempo_ramp_bpm: float = 6.0  # the most the tempo moves within one bar (BPM)
    velocity_low: int = 42  # melody loudness at energy 0
    velocity_high: int = 100  # melody loudness at energy 1
    melody_center_low: int = 62  # the melody's average pitch aimed for at valence 0 (MIDI)
    melody_center_high: int = 74  # ... and at valence 1
    register_glide: float = 3.0  # semitones the accompaniment's register moves per bar at most
    legato: float = 0.95  # fraction of its written length a melody note sounds

    def validate(self) -> None:
        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown or not self.roles:
            raise ValueError(f"roles must be some of {', '.join(ROLES)}; got {', '.join(self.roles) or 'none'}")
        for role, program in self.programs.items():
            if role not in ROLES:
                raise ValueError(f"programs.{role}: unknown role; known: {', '.join(ROLES)}")
            if not 0 <= program <= 127:
                raise ValueError(f"programs.{role} must be a General MIDI program 0..127, got {program}")
        if not 0.0 < self.tempo_ramp_bpm <= 100.0:
            raise ValueError(f"tempo_ramp_bpm must be within 0 (exclusive)..100, got {self.tempo_ramp_bpm}")
        if not 1 <= self.velocity_low <= self.velocity_high <= 127:
            raise ValueError("velocities must satisfy 1 <= velocity_low <= velocity_high <= 127")
        if not 24 <= self.melody_center_low <= self.melody_center_high <= 108:
            raise ValueError("melody centres must satisfy 24 <= melody_center_low <= melody_center_high <= 108")
        if not 0.0 < self.register_glide <= 24.0:
            raise ValueError(f"register_glide must be within 0 (exclusive)..24, got {self.register_glide}")
        if not 0.1 <= self.legato <= 1.0:
            raise ValueError(f"legato must be within 0.1..1, got {self.legato}")

    def program(self, role: str) -> int:
        return self.programs.get(role, DEFAULT_PROGRAMS[role])


@dataclass(frozen=True)
class TempoRamp:
    """Tempo moving linearly (in beats) from `start` to `end` BPM over `beats`."""

    start: float
    end: float
    beats: float

    def time(self, beat: float) -> float:
        """Seconds from the bar start to `beat`: the integral of 60 / tempo(b) db."""
        slope = (self.end - self.start) / self.beats
        if abs(slope) < 1e-9:
            return 60.0 * beat / self.start
        return 60.0 / slope * math.log((self.start + slope * beat) / self.start)

    @property
    def duration(self) -> float:
        return self.time(self.beats)


@dataclass(frozen=True)
class ArrangedBar:
    index: int
    t0: float
    duration: float
    events: tuple[NoteEvent, ...]
    tempi: tuple[tuple[float, float], ...]  # (t, BPM) once per beat, for files that keep a tempo map
    chords: tuple[str, ...]
    ramp: TempoRamp


class Arranger:
    def __init__(self, config: ArrangerConfig | None = None) -> None:
        self.config = config or ArrangerConfig()
        self.tempo: float | None = None  # where the last bar's ramp ended
        self._chord: Chord | None = None
        self._voicing: tuple[int, ...] | None = None
        self._register: float | None = None  # the accompaniment's centre pitch
        self._octave_shift = 0  # the melody's current transposition
        self._minor: bool | None = None

    def programs(self) -> dict[int, int]:
        """channel -> program for the parts that play."""
        return {CHANNELS[role]: self.config.program(role) for role in self.config.roles}

    def arrange(self, bar: Bar, t0: float, tempo: float) -> list[NoteEvent]:
        """The contract in ARCHITECTURE.md: the events of `bar` starting at `t0`, ramping toward `tempo`."""
        return list(self.arrange_bar(bar, t0, tempo).events)

    def arrange_bar(self, bar: Bar, t0: float, tempo: float | None = None) -> ArrangedBar:
        cfg = self.config
        controls = bar.controls
        target = controls.tempo if tempo is None else tempo
        start = target if self.tempo is None else self.tempo
        end = start + max(-cfg.tempo_ramp_bpm, min(cfg.tempo_ramp_bpm, target - start))
        beats = bar.beats if bar.beats > 0 else 4.0
        ramp = TempoRamp(start, end, beats)
        self.tempo = end

        key = read_key(bar.key, (n.pitch for n in bar.notes))
        transition = self._minor is not None and key.minor != self._minor
        self._minor = key.minor
        loud = cfg.velocity_low + (cfg.velocity_high - cfg.velocity_low) * controls.energy
        if transition:
            loud *= 0.85
        density = 0 if transition or controls.energy < 1 / 3 else 1 if controls.energy < 2 / 3 else 2

        def at(beat: float) -> float:
            return t0 + ramp.time(min(max(beat, 0.0), beats))

        events: list[NoteEvent] = []
        if "melody" in cfg.roles:
            events += self._melody(bar, at, loud, controls.valence)
        segments = _segments(beats)
        chords: list[Chord] = []
        target_register = 50.0 + 10.0 * controls.valence
        if self._register is None:
            self._register = target_register
        step = max(-cfg.register_glide, min(cfg.register_glide, target_register - self._register))
        self._register += step
        for i, (s0, s1) in enumerate(segments):
            melody = [
                (n.pitch, _overlap(n.start, n.start + n.duration, s0, s1) * (2.0 if n.start in (s0, 0.0) else 1.0))
                for n in bar.notes
                if _overlap(n.start, n.start + n.duration, s0, s1) > 0
            ]
            cadence = bar.index % PHRASE_BARS == PHRASE_BARS - 1 and i == len(segments) - 1
            chord = choose_chord(melody, key, self._chord, cadence, smoothness=0.6 if transition else 0.15)
            chords.append(chord)
            voicing = voice_chord(chord, self._register, self._voicing)
            self._chord, self._voicing = chord, voicing
            events += self._accompany(chord, voicing, s0, s1, at, loud, density)
        tempi = tuple(
            (at(float(b)), 60.0 / (ramp.time(min(b + 1.0, beats)) - ramp.time(b)) * min(1.0, beats - b))
            for b in range(math.ceil(beats))
        )
        events.sort(key=lambda e: (e.t, e.channel, e.pitch))
        return ArrangedBar(bar.index, t0, ramp.duration, tuple(events), tempi, tuple(c.name for c in chords), ramp)

    def _melody(self, bar: Bar, at: Callable[[float], float], loud: float, valence: float) -> list[NoteEvent]:
        cfg = self.config
        if not bar.notes:
            return []
        mean = sum(n.pitch for n in bar.notes) / len(bar.notes)
        center = cfg.melody_center_low + (cfg.melody_center_high - cfg.melody_center_low) * valence
        if abs(mean + self._octave_shift - center) > 8.0:  # hysteresis: move only when clearly out of place
            self._octave_shift = 12 * round((center - mean) / 12.0)
        events = []
        for note in bar.notes:
            pitch = note.pitch + self._octave_shift
            while pitch > 96:
                pitch -= 12
            while pitch < 36:
                pitch += 12
            accent = 6.0 if note.start == 0.0 else 0.0
            velocity = _clamp_velocity(loud + 0.3 * (note.velocity - 80) + accent)
            t = at(note.start)
            t_end = at(note.start + note.duration * cfg.legato)
            events.append(NoteEvent(t, max(0.02, t_end - t), pitch, velocity, CHANNELS["melody"], "melody"))
        return events

    def _accompany(
        self,
        chord: Chord,
        voicing: tuple[int, ...],
        s0: float,
        s1: float,
        at: Callable[[float], float],
        loud: float,
        density: int,
    ) -> list[NoteEvent]:
        roles = self.config.roles
        events: list[NoteEvent] = []

        def note(pitch: int, b0: float, b1: float, velocity: float, role: str) -> None:
            t = at(b0)
            events.append(
                NoteEvent(t, max(0.02, at(b1) - t - 0.01), pitch, _clamp_velocity(velocity), CHANNELS[role], role)
            )

        if "chords" in roles:
            if density == 0:
                for pitch in voicing:
                    note(pitch, s0, s1, loud * 0.62, "chords")
            else:
                step = 1.0 if density == 1 else 0.5
                pattern = [*voicing, voicing[1] + 12 if len(voicing) > 1 else voicing[0] + 12]
                b, i = s0, 0
                while b < s1 - 1e-9:
                    note(pattern[i % len(pattern)], b, min(s1, b + step * 2), loud * (0.6 if i else 0.7), "chords")
                    b += step
                    i += 1
        if "bass" in roles:
            root = bass_note(chord)
            if density < 2:
                note(root, s0, s1, loud * 0.75, "bass")
            else:
                fifth = root + 7 if root + 7 < 52 else root - 5
                b, i = s0, 0
                while b < s1 - 1e-9:
                    note(root if i % 2 == 0 else fifth, b, min(s1, b + 1.0), loud * (0.78 if i == 0 else 0.68), "bass")
                    b += 1.0
                    i += 1
        if "pad" in roles:
            for pitch in (voicing[0] - 12, voicing[-1]):
                note(pitch, s0, s1, loud * 0.45, "pad")
        return events


def _segments(beats: float) -> list[tuple[float, float]]:
    """Harmonic rhythm: two chords per bar in 4/4 (and longer bars), one otherwise."""
    if beats >= 4.0:
        return [(0.0, beats / 2.0), (beats / 2.0, beats)]
    return [(0.0, beats)]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _clamp_velocity(value: float) -> int:
    return max(1, min(127, round(value)))
