"""A fast rule-based BarComposer: plays from the first second while the GPT-2 loads, and stands in for a bar the
model fails on.

It honours the controls the way the model is conditioned (models/music/controls.py): valence below 0.5 gives the
relative minor (so a flip keeps most notes), energy sets the note density level (<E0> under 1.25 onsets per beat,
<E1> under 2.25, <E2> above), and tempo is left to the arranger. The melody is a seeded random walk on the scale:
mostly steps, chord tones on strong beats, four-bar phrases that end on the dominant (bar 2) and the tonic (bar 4).
It follows the same phrase plan as the model's composer (models/music/phrase.py): a bar the plan repeats is played
again when mode and energy level are unchanged, and a bar it varies keeps the earlier bar's rhythm with new notes.
"""

from __future__ import annotations

import random
import time
from fractions import Fraction

from neuromusic.models.core.messages import Bar, Controls, Note
from neuromusic.models.music.abc import AbcNote, KeySig, format_bar, parse_key
from neuromusic.models.music.controls import VALENCE_EDGE, energy_level
from neuromusic.models.music.phrase import PhrasePlan

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Rhythms per density level, in quarter-note beats; each sums to 4 (a 4/4 bar) and is cut to fit shorter meters.
RHYTHMS: dict[int, tuple[tuple[float, ...], ...]] = {
    0: ((2.0, 2.0), (3.0, 1.0), (1.0, 1.0, 2.0), (2.0, 1.0, 1.0), (4.0,)),
    1: ((1.0, 0.5, 0.5, 0.5, 0.5, 1.0), (1.0, 0.5, 0.5, 1.0, 1.0), (1.5, 0.5, 1.0, 0.5, 0.5), (0.5, 0.5, 1.0) * 2),
    2: ((0.5, 0.25, 0.25, 0.5, 0.5) * 2, (0.5, 0.5, 0.25, 0.25, 0.5) * 2, (0.25, 0.25, 0.5) * 4, (0.5, 0.25, 0.25) * 4),
}
STEPS = (-3, -2, -1, -1, -1, 0, 1, 1, 1, 2, 3)  # scale-degree moves, steps favoured
PHRASE = 4


class SketchComposer:
    """A BarComposer: `next_bar(controls) -> Bar`. Deterministic for a seed; cheap (well under a millisecond)."""

    def __init__(self, seed: int = 0, major_key: str = "G", minor_key: str = "Em", meter: str = "4/4") -> None:
        if meter not in ("4/4", "3/4", "2/4"):
            raise ValueError(f"the sketch composer plays 4/4, 3/4 or 2/4, not {meter}")
        self.meter = meter
        self.beats = float(Fraction(meter) * 4)
        self.keys = (parse_key(minor_key), parse_key(major_key))
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._index = 0
        self._degree = 0  # scale degree of the last note, 0 = the tonic at the home octave
        self._plan = PhrasePlan(seed or 0)
        # bar index -> (minor, energy level, notes, degree of the last note), for the plan's repeats
        self._played: dict[int, tuple[bool, int, tuple[Note, ...], int]] = {}

    def next_bar(self, controls: Controls) -> Bar:
        started = time.perf_counter()
        key = self.keys[int(controls.valence >= VALENCE_EDGE)]
        scale = MINOR if key.minor else MAJOR
        home = 60 + key.tonic if key.tonic <= 7 else 48 + key.tonic  # tonic between E3.. and G4
        level = energy_level(controls.energy)
        rhythm = self._fit(self._rng.choice(RHYTHMS[level]))
        role = self._plan.role(self._index)
        earlier = self._played.get(role.source) if role.source is not None else None
        if earlier is not None and earlier[:2] == (key.minor, level):
            if role.exact:
                return self._emit(earlier[2], key, controls, started, earlier[3])
            rhythm = tuple(n.duration for n in earlier[2])
        position = self._index % PHRASE
        notes: list[Note] = []
        beat = 0.0
        for i, length in enumerate(rhythm):
            last = i == len(rhythm) - 1
            if last and position == PHRASE - 1:
                degree = 0 if abs(self._degree) < abs(self._degree - 7) else 7  # phrase end: the tonic
            elif last and position == 1:
                degree = 4  # half cadence on the dominant
            else:
                degree = max(-3, min(9, self._degree + self._rng.choice(STEPS)))
                if beat in (0.0, self.beats / 2) and degree % 7 not in (0, 2, 4):
                    degree += 1 if degree < 9 else -1  # strong beats lean on chord tones
            self._degree = degree
            octave, step = divmod(degree, 7)
            pitch = home + 12 * octave + scale[step]
            velocity = 80 + self._rng.randint(-6, 6)
            notes.append(Note(pitch=pitch, start=beat, duration=length, velocity=velocity))
            beat += length
        return self._emit(tuple(notes), key, controls, started, self._degree)

    def _emit(self, notes: tuple[Note, ...], key: KeySig, controls: Controls, started: float, degree: int) -> Bar:
        self._degree = degree
        self._played[self._index] = (key.minor, energy_level(controls.energy), notes, degree)
        self._played.pop(self._index - 32, None)
        bar = Bar(
            index=self._index,
            abc=format_bar([AbcNote(n.pitch, Fraction(n.duration)) for n in notes], key),
            notes=tuple(notes),
            beats=self.beats,
            meter=self.meter,
            key=key.name,
            controls=controls,
            compose_ms=(time.perf_counter() - started) * 1000.0,
        )
        self._index += 1
        return bar

    def _fit(self, rhythm: tuple[float, ...]) -> tuple[float, ...]:
        """Cut a 4-beat rhythm to the bar's length, lengthening the last note to fill it."""
        out: list[float] = []
        for length in rhythm:
            if sum(out) + length > self.beats:
                break
            out.append(length)
        rest = self.beats - sum(out)
        if rest > 0:
            out = [*out[:-1], out[-1] + rest] if out else [self.beats]
        return tuple(out)
