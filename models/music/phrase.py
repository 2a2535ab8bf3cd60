"""Phrase form for the composer: a plan of which bars repeat or answer earlier ones, where phrases close, and when
the music travels to the dominant key and back; and the memory of the bars played that the plan refers to
(torch-free).

The music is planned in sections of 16 bars, four phrases of four bars. Each section takes one of a few forms
(seeded, so a seed gives the same music):
- AABA: a, a' (a's first two bars, its third varied, a new close on the tonic), b (new), a'' (a's first two bars,
  a' 's third varied again, a' 's close);
- ABAB: a, b (closing on the tonic), a' (two bars of a, one varied, a new close), b' (b's first bar, its second
  varied, a new bar, b's close);
- AABB: a, a', b, b' (b's first two bars, its third varied, a' 's close).
A repeated bar is offered to the composer as a candidate beside the model's own and wins when it still fits the
controls (a changed energy level or mode makes the model write afresh). A varied bar should keep the rhythm of the
bar it answers but not its notes. Every fourth bar is a half close: its last note long and on the tonic or the
dominant; every eighth a full close on the tonic. The last section of every `excursion_every` bars travels to
another key and comes home (a slow change of colour that the controls alone do not make): the excursions take the
keys of `excursion_keys` in turn, the dominant (a fifth up, same mode) or the relative (the same notes in the other
mode: B minor for D major, F major for D minor).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from neuromusic.models.music.abc import AbcNote, parse_key

SECTION = 16
PHRASE = 4
NONE, HALF, FULL = 0, 1, 2  # cadence kinds
# Cost weights, on the scale of bars.misfit (an energy level off costs 2): a form or cadence preference never
# outweighs the controls.
REPEAT_COST = 1.2  # a bar that should repeat an earlier one but does not (less when it keeps the rhythm)
SAME_WHEN_VARIED = 0.8  # a bar that should vary an earlier one but copies it
CADENCE_PITCH = 1.0  # a closing bar that does not end on the tonic (or, for a half close, the dominant)
CADENCE_LENGTH = 0.6  # ... or whose last note is short
# Shortest last note of a closing bar per energy level, in quarter beats: dense bars cannot end long.
CLOSE_LENGTH = {0: Fraction(2), 1: Fraction(1), 2: Fraction(1, 2)}
_MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
EXCURSION_KEYS = ("dominant", "relative")  # where an excursion may go


@dataclass(frozen=True)
class Role:
    """What the plan asks of one bar: repeat (`exact`) or vary bar `source` (its index in the piece), and close."""

    source: int | None = None
    exact: bool = True
    cadence: int = NONE


# Per section form: for each of the 16 positions, (position it repeats or varies, exact) or (None, _) for new.
E, V, N = True, False, None
FORMS: dict[str, tuple[tuple[int | None, bool], ...]] = {
    "AABA": ((N, E),) * 4 + ((0, E), (1, E), (2, V), (N, E)) + ((N, E),) * 4 + ((0, E), (1, E), (6, V), (7, E)),
    "ABAB": ((N, E),) * 8 + ((0, E), (1, E), (2, V), (N, E)) + ((4, E), (5, V), (N, E), (7, E)),
    "AABB": ((N, E),) * 4 + ((0, E), (1, E), (2, V), (N, E)) + ((N, E),) * 4 + ((8, E), (9, E), (10, V), (7, E)),
}


def cadence(index: int) -> int:
    position = index % (2 * PHRASE)
    return FULL if position == 2 * PHRASE - 1 else HALF if position == PHRASE - 1 else NONE


class PhrasePlan:
    """The form of the piece, section by section, from a seed."""

    def __init__(self, seed: int, excursion_every: int = 0, keys: tuple[str, ...] = ("dominant",)) -> None:
        self.seed = seed
        self.excursion_every = excursion_every
        self.keys = keys  # the excursions' keys, taken in turn (EXCURSION_KEYS)

    def form(self, section: int) -> str:
        return random.Random(self.seed * 1009 + section).choice(sorted(FORMS))

    def role(self, index: int) -> Role:
        section, position = divmod(index, SECTION)
        source, exact = FORMS[self.form(section)][position]
        return Role(None if source is None else section * SECTION + source, exact, cadence(index))

    def away(self, index: int) -> str | None:
        """Where bar `index` travels ("dominant" or "relative"), None at home: the last section of every
        `excursion_every` bars is away, the n-th such section in the n-th of `keys` (cycling)."""
        if self.excursion_every < 2 * SECTION or not self.keys:
            return None
        turn, position = divmod(index, self.excursion_every)
        return self.keys[turn % len(self.keys)] if position >= self.excursion_every - SECTION else None


def dominant(tonic: str, minor: bool) -> str:
    """The key a fifth above `tonic` (a note name), spelt so that its signature stays within seven accidentals."""
    pc = (parse_key(tonic).tonic + 7) % 12
    return (_MINOR_NAMES if minor else _MAJOR_NAMES)[pc]


def relative(tonic: str, minor: bool) -> str:
    """The relative key's tonic: a minor third below a major tonic (its minor), above a minor one (its major)."""
    pc = (parse_key(tonic).tonic + (3 if minor else -3)) % 12
    return (_MAJOR_NAMES if minor else _MINOR_NAMES)[pc]


def travel(tonic: str, minor: bool, where: str | None) -> tuple[str, bool]:
    """(tonic, minor) of the key a bar is played in: home, or the dominant or relative key of home."""
    if where == "dominant":
        return dominant(tonic, minor), minor
    if where == "relative":
        return relative(tonic, minor), not minor
    return tonic, minor


@dataclass(frozen=True)
class Remembered:
    notes: tuple[AbcNote, ...]  # in C-tonic space
    minor: bool
    energy: int


class PhraseMemory:
    """The bars played so far (C-tonic space) and what the plan asks of the next."""

    def __init__(self, plan: PhrasePlan) -> None:
        self.plan = plan
        self._bars: dict[int, Remembered] = {}

    def remember(self, index: int, notes: list[AbcNote], minor: bool, energy: int) -> None:
        self._bars[index] = Remembered(tuple(notes), minor, energy)
        for old in [i for i in self._bars if i < index - 2 * SECTION]:  # the plan looks back one section at most
            del self._bars[old]

    def remembered(self, index: int) -> Remembered | None:
        return self._bars.get(index)

    def source(self, index: int, minor: bool, energy: int) -> tuple[Role, Remembered | None]:
        """The bar's role and the bar it refers to, if that was played in the same mode, energy level and key."""
        role = self.plan.role(index)
        if role.source is None:
            return role, None
        old = self._bars.get(role.source)
        same_key = self.plan.away(role.source) == self.plan.away(index)
        if old is None or old.minor != minor or old.energy != energy or not same_key:
            return Role(cadence=role.cadence), None
        return role, old


def _onsets(notes: tuple[AbcNote, ...] | list[AbcNote]) -> frozenset[Fraction]:
    starts, at = set(), Fraction(0)
    for note in notes:
        if note.pitch is not None:
            starts.add(at)
        at += note.duration
    return frozenset(starts)


def rhythm_likeness(a: tuple[AbcNote, ...] | list[AbcNote], b: tuple[AbcNote, ...] | list[AbcNote]) -> float:
    """Shared onsets over all onsets (Jaccard), 1 for the same rhythm."""
    first, second = _onsets(a), _onsets(b)
    union = first | second
    return len(first & second) / len(union) if union else 1.0


def form_cost(notes: list[AbcNote], role: Role, source: Remembered | None, energy: int) -> float:
    """How far a candidate bar (C-tonic space) is from what the plan asks: repetition or variation of its source
    bar, and the close."""
    cost = 0.0
    if source is not None:
        same = tuple(notes) == source.notes
        if role.exact and not same:
            cost += REPEAT_COST * (1.0 - 0.5 * rhythm_likeness(notes, source.notes))
        elif not role.exact:
            cost += SAME_WHEN_VARIED if same else 0.5 * REPEAT_COST * (1.0 - rhythm_likeness(notes, source.notes))
    if role.cadence != NONE:
        sounding = [n for n in notes if n.pitch is not None]
        if not sounding or notes[-1].pitch is None:
            return cost + CADENCE_PITCH + CADENCE_LENGTH
        last = sounding[-1]
        allowed = (0,) if role.cadence == FULL else (0, 7)
        cost += CADENCE_PITCH * (last.pitch is not None and last.pitch % 12 not in allowed)
        cost += CADENCE_LENGTH * (last.duration < CLOSE_LENGTH[energy])
    return cost
