"""The arranger: one bar of melody in, the notes of four parts out, at absolute session times.

What makes a melody something to listen to for twenty minutes:
- harmony from the melody (models/music/harmony.py), one chord per half bar in 4/4, per bar otherwise, cadences on the
  tonic at phrase ends (every fourth bar);
- tempo ramps: the tempo moves toward the requested one by at most `tempo_ramp_bpm` per bar, linearly within the
  bar, so a change is heard as a gentle ritardando, never a jump; the MIDI file gets one tempo per beat;
- energy sets loudness, density and texture: low energy is block chords held and one bass note, middle is broken
  chords in quarters, high is arpeggios in eighths with the bass on every beat. Calm passages are carried by
  sustained voices (flute, slow strings, cello, pad), lively ones by plucked and struck voices (piano, harp, bass);
  in between both sound, crossfaded with equal power. Loudness and texture ramp from where the last bar ended to
  where this one asks, note by note, so an energy change is heard as a swell over a bar, never a jump, and the
  velocity range is narrow enough that energy moves the loudness by a few LU, not a volume jump;
- valence sets the register: brighter is higher; the accompaniment glides there a few semitones per bar, and the
  melody moves by whole octaves only, with hysteresis so it does not jump back and forth;
- when the mode flips (major <-> minor) the next bar is a gentle transition: held chords, softer, and the chord
  sharing most tones with the last one;
- every 32-64 bars the section changes colour (models/music/variation.py): a phrase of pad alone, the chords
  resting, a move to the dominant key and back.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from neuromusic.models.core.messages import Bar, NoteEvent
from neuromusic.models.music.harmony import Chord, bass_note, choose_chord, read_key, voice_chord
from neuromusic.models.music.variation import Form

CHANNELS = {"melody": 0, "chords": 1, "bass": 2, "pad": 3}  # the lively voices, one channel per part
CALM_CHANNELS = {"melody": 4, "chords": 5, "bass": 6}  # the sustained voices of calm passages (the pad is both)
# General MIDI programs (0-based): acoustic grand piano, orchestral harp, acoustic bass, warm pad
DEFAULT_PROGRAMS = {"melody": 0, "chords": 46, "bass": 32, "pad": 89}
# ... and for calm: flute, slow strings, cello
DEFAULT_CALM_PROGRAMS = {"melody": 73, "chords": 49, "bass": 42}
ROLES = tuple(CHANNELS)
PHRASE_BARS = 4
SILENT_WEIGHT = 0.05  # a voice crossfaded below this share is left out
# The pad's velocity as a share of the melody's, plus this much more as the calm voices take over: at one share for
# all energies the pad sat 11 LU under the melody in calm passages (5 LU when lively).
PAD_SHARE = 0.55
PAD_CALM_SHARE = 0.2


@dataclass(frozen=True)
class ArrangerConfig:
    programs: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PROGRAMS))  # role -> GM program
    # role -> GM program of the sustained voice for calm passages; {} = `programs` at every energy
    calm_programs: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CALM_PROGRAMS))
    calm_energy: float = 0.25  # at or under this energy only the calm voices play
    lively_energy: float = 0.6  # at or over this energy only the lively voices play
    roles: tuple[str, ...] = ROLES  # which parts play; "melody" alone gives the bare model output
    tempo_ramp_bpm: float = 6.0  # the most the tempo moves within one bar (BPM)
    velocity_low: int = 58  # melody loudness at energy 0
    velocity_high: int = 100  # melody loudness at energy 1
    variation: bool = True  # sections of 32-64 bars change colour (pad alone, chords resting, the dominant key)
    section_bars_min: int = 32  # shortest section (bars)
    section_bars_max: int = 64  # longest section (bars)
    form_seed: int = 0  # the same seed, the same order of sections
    melody_center_low: int = 62  # the melody's average pitch aimed for at valence 0 (MIDI)
    melody_center_high: int = 74  # ... and at valence 1
    register_glide: float = 3.0  # semitones the accompaniment's register moves per bar at most
    legato: float = 0.95  # fraction of its written length a melody note sounds

    def validate(self) -> None:
        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown or not self.roles:
            raise ValueError(f"roles must be some of {', '.join(ROLES)}; got {', '.join(self.roles) or 'none'}")
        for name, table, known in (
            ("programs", self.programs, ROLES),
            ("calm_programs", self.calm_programs, CALM_CHANNELS),
        ):
            for role, program in table.items():
                if role not in known:
                    raise ValueError(f"{name}.{role}: unknown role; known: {', '.join(known)}")
                if not 0 <= program <= 127:
                    raise ValueError(f"{name}.{role} must be a General MIDI program 0..127, got {program}")
        if not 0.0 <= self.calm_energy < self.lively_energy <= 1.0:
            raise ValueError("energies must satisfy 0 <= calm_energy < lively_energy <= 1")
        if not 4 <= self.section_bars_min <= self.section_bars_max <= 1024:
            raise ValueError("sections must satisfy 4 <= section_bars_min <= section_bars_max <= 1024")
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

    def calm_weight(self, energy: float) -> float:
        """The calm voices' share at this energy: 1 at calm_energy and under, 0 at lively_energy and over."""
        if not self.calm_programs:
            return 0.0
        return min(1.0, max(0.0, (self.lively_energy - energy) / (self.lively_energy - self.calm_energy)))


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


@dataclass(frozen=True)
class Level:
    """Loudness (melody velocity) and the calm voices' share, ramping linearly over the bar."""

    loud0: float
    loud1: float
    calm0: float
    calm1: float
    beats: float

    def at(self, beat: float) -> tuple[float, float]:
        x = min(1.0, max(0.0, beat / self.beats))
        return self.loud0 + (self.loud1 - self.loud0) * x, self.calm0 + (self.calm1 - self.calm0) * x


class Arranger:
    def __init__(self, config: ArrangerConfig | None = None) -> None:
        self.config = config or ArrangerConfig()
        self.tempo: float | None = None  # where the last bar's ramp ended
        self._chord: Chord | None = None
        self._voicing: tuple[int, ...] | None = None
        self._register: float | None = None  # the accompaniment's centre pitch
        self._octave_shift = 0  # the melody's current transposition
        self._minor: bool | None = None
        self._loud: float | None = None  # where the last bar's loudness ramp ended
        self._calm: float | None = None  # ... and the calm voices' share
        self._count = 0  # bars arranged: the position in the form
        cfg = self.config
        varied = cfg.variation and set(cfg.roles) != {"melody"}  # the bare melody is never transposed
        self.form = Form(cfg.form_seed, cfg.section_bars_min, cfg.section_bars_max) if varied else None

    def programs(self) -> dict[int, int]:
        """channel -> program for the voices that play."""
        cfg = self.config
        lively = {CHANNELS[role]: cfg.program(role) for role in cfg.roles}
        calm = {CALM_CHANNELS[role]: program for role, program in cfg.calm_programs.items() if role in cfg.roles}
        return lively | calm

    def voices(self) -> dict[int, str]:
        """channel -> the part it plays, e.g. "melody (calm)", for track names."""
        cfg = self.config
        names = {CHANNELS[role]: role for role in cfg.roles}
        return names | {CALM_CHANNELS[role]: f"{role} (calm)" for role in cfg.calm_programs if role in cfg.roles}

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
        section = self.form.at(self._count) if self.form is not None else None
        rests = section.rests(self._count) if section is not None else frozenset()
        self._count += 1

        key = read_key(bar.key, (n.pitch for n in bar.notes))
        transition = self._minor is not None and key.minor != self._minor
        self._minor = key.minor
        loud = cfg.velocity_low + (cfg.velocity_high - cfg.velocity_low) * controls.energy
        if transition:
            loud *= 0.85
        calm = cfg.calm_weight(controls.energy)
        level = Level(
            loud if self._loud is None else self._loud, loud, calm if self._calm is None else self._calm, calm, beats
        )
        self._loud, self._calm = loud, calm
        density = 0 if transition or controls.energy < 1 / 3 else 1 if controls.energy < 2 / 3 else 2

        def at(beat: float) -> float:
            return t0 + ramp.time(min(max(beat, 0.0), beats))

        events: list[NoteEvent] = []
        roles = [role for role in cfg.roles if role not in rests]
        if "melody" in roles:
            events += self._melody(bar, at, level, controls.valence)
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
            events += self._accompany(roles, chord, voicing, (s0, s1), at, level, density)
        tempi = _beat_tempi(ramp, at, beats)
        shift = section.shift if section is not None else 0
        if shift:
            events = [dataclasses.replace(e, pitch=max(0, min(127, e.pitch + shift))) for e in events]
        events.sort(key=lambda e: (e.t, e.channel, e.pitch))
        return ArrangedBar(bar.index, t0, ramp.duration, tuple(events), tempi, tuple(c.name for c in chords), ramp)

    def _voices(
        self, role: str, t: float, duration: float, pitch: int, velocity: float, calm: float, only: str = ""
    ) -> list[NoteEvent]:
        """The note on the lively voice, the calm voice, or both, crossfaded with equal power (a velocity's
        loudness grows about as its square, so a share w of the power is w to the 1/4 of the velocity).
        `only`: "lively" or "calm" plays that voice alone, at its share."""
        calm = calm if role in self.config.calm_programs else 0.0
        out = []
        for voice, channel, share in (("lively", CHANNELS[role], 1.0 - calm), ("calm", CALM_CHANNELS.get(role), calm)):
            if channel is not None and share >= SILENT_WEIGHT and only in ("", voice):
                out.append(NoteEvent(t, duration, pitch, _clamp_velocity(velocity * share**0.25), channel, role))
        return out

    def _melody(self, bar: Bar, at: Callable[[float], float], level: Level, valence: float) -> list[NoteEvent]:
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
            loud, calm = level.at(note.start)
            accent = 6.0 if note.start == 0.0 else 0.0
            velocity = loud + 0.3 * (note.velocity - 80) + accent
            t = at(note.start)
            t_end = at(note.start + note.duration * cfg.legato)
            events += self._voices("melody", t, max(0.02, t_end - t), pitch, velocity, calm)
        return events

    def _accompany(
        self,
        roles: list[str],
        chord: Chord,
        voicing: tuple[int, ...],
        segment: tuple[float, float],
        at: Callable[[float], float],
        level: Level,
        density: int,
    ) -> list[NoteEvent]:
        s0, s1 = segment
        events: list[NoteEvent] = []

        def note(pitch: int, b0: float, b1: float, share: float, role: str, only: str = "") -> None:
            t = at(b0)
            loud, calm = level.at(b0)
            events.extend(self._voices(role, t, max(0.02, at(b1) - t - 0.01), pitch, loud * share, calm, only))

        if "chords" in roles:
            if density == 0:
                for pitch in voicing:
                    note(pitch, s0, s1, 0.62, "chords")
            else:  # broken chords on the lively voice; the calm voice holds the chord under them
                step = 1.0 if density == 1 else 0.5
                pattern = [*voicing, voicing[1] + 12 if len(voicing) > 1 else voicing[0] + 12]
                b, i = s0, 0
                while b < s1 - 1e-9:
                    note(pattern[i % len(pattern)], b, min(s1, b + step * 2), 0.6 if i else 0.7, "chords", "lively")
                    b += step
                    i += 1
                for pitch in voicing:
                    note(pitch, s0, s1, 0.62, "chords", "calm")
        if "bass" in roles:
            root = bass_note(chord)
            if density < 2:
                note(root, s0, s1, 0.75, "bass")
            else:
                fifth = root + 7 if root + 7 < 52 else root - 5
                b, i = s0, 0
                while b < s1 - 1e-9:
                    note(root if i % 2 == 0 else fifth, b, min(s1, b + 1.0), 0.78 if i == 0 else 0.68, "bass", "lively")
                    b += 1.0
                    i += 1
                note(root, s0, s1, 0.75, "bass", "calm")
        if "pad" in roles:  # fuller where it carries a calm passage, a fill under the others when lively
            share = PAD_SHARE + PAD_CALM_SHARE * level.at(s0)[1]
            for pitch in (voicing[0] - 12, voicing[-1]):
                note(pitch, s0, s1, share, "pad")
        return events


def _beat_tempi(ramp: TempoRamp, at: Callable[[float], float], beats: float) -> tuple[tuple[float, float], ...]:
    """(time, bpm) of each beat of a bar under its tempo ramp; a last, shorter beat counts its share."""
    return tuple(
        (at(float(b)), 60.0 / (ramp.time(min(b + 1.0, beats)) - ramp.time(b)) * min(1.0, beats - b))
        for b in range(math.ceil(beats))
    )


def _segments(beats: float) -> list[tuple[float, float]]:
    """Harmonic rhythm: two chords per bar in 4/4 (and longer bars), one otherwise."""
    if beats >= 4.0:
        return [(0.0, beats / 2.0), (beats / 2.0, beats)]
    return [(0.0, beats)]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _clamp_velocity(value: float) -> int:
    return max(1, min(127, round(value)))
