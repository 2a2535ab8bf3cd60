"""Bars between the model and the player (torch-free): repair to the meter, fallback bars, how well a bar fits its
controls, and conversion to the `Bar` message in the real key."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from neuromusic.models.core.messages import Bar, Controls, Note
from neuromusic.models.music.abc import AbcNote, KeySig, format_bar, parse_key
from neuromusic.models.music.controls import density, density_level
from neuromusic.models.music.keyfinding import histogram, key_margin

# Pitch classes (relative to the tonic C) of each mode's scale (minor: natural minor plus the leading tone), and
# those outside it, as index arrays into a pitch-class histogram.
_SCALE = {False: {0, 2, 4, 5, 7, 9, 11}, True: {0, 2, 3, 5, 7, 8, 10, 11}}
_OUTSIDE = {minor: np.array([pc for pc in range(12) if pc not in scale]) for minor, scale in _SCALE.items()}
GOOD_ENOUGH = 0.75  # a misfit below this (right length and energy, mostly in mode) ends the search for a bar
# The key the music so far (since the mode was last asked to change) plus the candidate bar would be heard in must
# be C in the requested mode by at least KEY_MARGIN in profile correlation; each unit short costs KEY_WEIGHT.
KEY_MARGIN = 0.2
KEY_WEIGHT = 10.0
_SMALLEST = Fraction(1, 4)  # shortest note a repair creates: a sixteenth


def repair(notes: list[AbcNote], beats: Fraction) -> tuple[list[AbcNote], bool]:
    """Notes cut or stretched to exactly `beats`: overlong bars lose their tail, short bars hold the last note
    longer (or end with a rest). Returns (notes, changed)."""
    out: list[AbcNote] = []
    total = Fraction(0)
    for note in notes:
        if total >= beats:
            break
        length = min(note.duration, beats - total)
        out.append(AbcNote(note.pitch, length))
        total += length
    if total < beats:
        if out:
            last = out[-1]
            out[-1] = AbcNote(last.pitch, last.duration + beats - total)
        else:
            out.append(AbcNote(None, beats))
    return out, out != notes


def fallback(beats: Fraction, minor: bool, energy: int) -> list[AbcNote]:
    """A safe bar when the model cannot give one (C-tonic space): a tonic-triad figure that starts and ends on the
    tonic so it is heard in the asked mode, with note lengths that measure as the asked energy level (one note per
    beat, long-short pairs, or two notes per beat)."""
    third = 63 if minor else 64
    figure = [60, third, 67, 60]
    lengths = {0: [Fraction(1)], 1: [Fraction(1), Fraction(1, 2)], 2: [Fraction(1, 2)]}[energy]
    notes: list[AbcNote] = []
    total = Fraction(0)
    while total < beats:
        length = min(lengths[len(notes) % len(lengths)], beats - total)
        notes.append(AbcNote(figure[len(notes) % len(figure)], length))
        total += length
    return notes


def onsets(notes: list[AbcNote] | tuple[AbcNote, ...]) -> int:
    return sum(n.pitch is not None for n in notes)


def misfit(notes: list[AbcNote], beats: Fraction, minor: bool, energy: int, heard: np.ndarray | None = None) -> float:
    """How badly a bar in C-tonic space fits the requested mode, energy level and bar length; 0 is a perfect fit.
    Length counts most (a wrong length must be repaired), then energy levels off, then whether the music heard so
    far in this mode (`heard`, a pitch-class histogram) plus this bar is in C of the requested mode, then the share
    of the bar's duration outside the mode's scale. (An earlier extra cost for notes off the tonic triad made the
    melodies poorer, pitch-class entropy -9 %, and the key term made it unnecessary.)"""
    length = sum((n.duration for n in notes), Fraction(0))
    score = 4.0 * (length != beats)
    score += 2.0 * abs(density_level(density(onsets(notes), beats)) - energy)
    bar = histogram(notes)
    total = float(bar.sum())
    if total:
        # A natural-minor melody shares every note with its relative major, and a listener (or key analysis) hears
        # whichever tonic the notes lean on: judge the key of the whole passage, not the bar's scale alone.
        margin = key_margin(bar if heard is None else heard + bar, 0, minor)
        score += KEY_WEIGHT * max(0.0, KEY_MARGIN - margin)
        score += 2.0 * float(bar[_OUTSIDE[minor]].sum()) / total
    return score


def tonic_shift(tonic: str) -> int:
    """Semitones from C to the tonic, in -6..+5 so the register stays near the training data's."""
    shift = parse_key(tonic).tonic
    return shift - 12 if shift > 5 else shift


def key_name(tonic: str, minor: bool) -> str:
    return tonic.strip() + ("m" if minor else "")


def to_bar(
    index: int,
    notes: list[AbcNote],
    tonic: str,
    minor: bool,
    meter: str,
    beats: Fraction,
    controls: Controls,
    repaired: bool,
    compose_ms: float,
) -> Bar:
    """C-tonic notes -> the Bar message: pitches moved to the tonic, ABC written under the real key signature."""
    shift = tonic_shift(tonic)
    real = [AbcNote(None if n.pitch is None else n.pitch + shift, n.duration) for n in notes]
    name = key_name(tonic, minor)
    key: KeySig = parse_key(name)
    played, start = [], Fraction(0)
    for note in real:
        if note.pitch is not None:
            played.append(Note(pitch=note.pitch, start=float(start), duration=float(note.duration)))
        start += note.duration
    return Bar(
        index=index,
        abc=format_bar(real, key),
        notes=tuple(played),
        beats=float(beats),
        meter=meter,
        key=name,
        controls=controls,
        repaired=repaired,
        compose_ms=compose_ms,
    )
