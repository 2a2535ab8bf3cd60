"""What a listener hears of a melody's form and line, measured on the notes played (torch-free).

A piece is a list of `HeardBar`s: the sounding notes of each bar as (pitch, start beat, length in beats) and the
pitch class of the key's tonic that bar is in. The figures (each for one piece; a benchmark takes medians):

- `bar_recurrence`: the share of bars whose notes (pitch and rhythm) occur again, identical, elsewhere in the piece.
- `motif_recurrence`: the same for two-bar spans (bars i and i + 1 together).
- `cadence_tonic`: how much more often a phrase's last bar (bars 4, 8, 12, ...) ends on the tonic than the other
  bars do, in percentage points; a melody with phrase form lands on the tonic where phrases close.
- `melodic_range`: highest minus lowest pitch, in semitones.
- `leap_share`: the share of steps from one note to the next of 5 semitones or more (bar lines included).
- `drift`: how far the mean pitch of the last quarter of the bars lies from that of the first quarter, in semitones.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from neuromusic.models.core.messages import Bar
from neuromusic.models.music.abc import AbcNote, parse_key

PHRASE = 4  # bars per phrase, as heard: a phrase closes on bars 4, 8, 12, ...
LEAP = 5  # semitones: a fourth or more is a leap


@dataclass(frozen=True)
class HeardBar:
    notes: tuple[tuple[int, float, float], ...]  # (pitch, start beat, length in beats), in time order
    tonic: int  # pitch class of the key's tonic


def from_abc_notes(notes: Sequence[AbcNote], tonic: int) -> HeardBar:
    """A bar written as AbcNotes (L:1/8 units are irrelevant here: lengths are compared, not converted)."""
    played, start = [], Fraction(0)
    for note in notes:
        if note.pitch is not None:
            played.append((note.pitch, float(start), float(note.duration)))
        start += note.duration
    return HeardBar(tuple(played), tonic)


def from_bar(bar: Bar, pitches: Sequence[int] | None = None) -> HeardBar:
    """A composed bar, optionally with the pitches a player actually sounded (an arranger may move the melody by
    octaves); `pitches` must follow the bar's notes in time order."""
    notes = sorted(bar.notes, key=lambda n: n.start)
    sounded = [n.pitch for n in notes] if pitches is None else list(pitches)
    if len(sounded) != len(notes):
        raise ValueError(f"bar {bar.index}: {len(sounded)} pitches for {len(notes)} notes")
    return HeardBar(
        tuple((p, n.start, n.duration) for p, n in zip(sounded, notes, strict=True)), parse_key(bar.key).tonic
    )


def _shares_repeated(items: Sequence[Hashable]) -> float:
    if not items:
        return float("nan")
    counts = Counter(items)
    return sum(counts[item] > 1 for item in items) / len(items)


def bar_recurrence(piece: Sequence[HeardBar]) -> float:
    return _shares_repeated([bar.notes for bar in piece if bar.notes])


def motif_recurrence(piece: Sequence[HeardBar]) -> float:
    spans = [(a.notes, b.notes) for a, b in itertools.pairwise(piece) if a.notes or b.notes]
    return _shares_repeated(spans)


def _ends_on_tonic(bar: HeardBar) -> bool | None:
    return None if not bar.notes else bar.notes[-1][0] % 12 == bar.tonic


def cadence_tonic(piece: Sequence[HeardBar]) -> float:
    """Percentage points: share of phrase-end bars ending on the tonic minus the share of the other bars."""
    ends: list[bool] = []
    others: list[bool] = []
    for index, bar in enumerate(piece):
        tonic = _ends_on_tonic(bar)
        if tonic is not None:
            (ends if index % PHRASE == PHRASE - 1 else others).append(tonic)
    if not ends or not others:
        return float("nan")
    return 100.0 * (float(np.mean(ends)) - float(np.mean(others)))


def _pitches(piece: Sequence[HeardBar]) -> list[int]:
    return [pitch for bar in piece for pitch, _, _ in bar.notes]


def melodic_range(piece: Sequence[HeardBar]) -> float:
    pitches = _pitches(piece)
    return float(max(pitches) - min(pitches)) if pitches else float("nan")


def leap_share(piece: Sequence[HeardBar]) -> float:
    steps = np.abs(np.diff(_pitches(piece)))
    return float((steps >= LEAP).mean()) if steps.size else float("nan")


def drift(piece: Sequence[HeardBar]) -> float:
    quarter = max(1, len(piece) // 4)
    first, last = _pitches(piece[:quarter]), _pitches(piece[-quarter:])
    if not first or not last:
        return float("nan")
    return abs(float(np.mean(last)) - float(np.mean(first)))


FIGURES = {
    "bars that recur exactly (%)": lambda piece: 100.0 * bar_recurrence(piece),
    "2-bar motifs that recur (%)": lambda piece: 100.0 * motif_recurrence(piece),
    "phrase ends on the tonic vs other bars (points)": cadence_tonic,
    "melodic range (semitones)": melodic_range,
    "leaps of 5+ semitones (%)": lambda piece: 100.0 * leap_share(piece),
    "drift, first to last quarter (semitones)": drift,
}


def figures(pieces: Sequence[Sequence[HeardBar]]) -> dict[str, float]:
    """The median of each figure over the pieces (NaNs, from pieces too short to tell, left out)."""
    out = {}
    for name, measure in FIGURES.items():
        values = [v for v in (measure(piece) for piece in pieces) if not np.isnan(v)]
        out[name] = float(np.median(values)) if values else float("nan")
    return out
