"""A singable line: the melody keeps near a centre set by valence, moves mostly by step, and does not creep away
(torch-free).

The centre is a real pitch between `low` (valence 0) and `high` (valence 1); when valence changes it glides there
by at most GLIDE semitones a bar, so the melody follows without a jump. Each candidate bar is costed for notes
more than HALF_SPAN semitones from the centre (so a piece spans about an octave and a half), for a bar whose mean
strays from the centre, and for leaps (from the last note played, across the bar line, too). A candidate is also
offered an octave up or down when that brings it nearer the centre: the model writes in the register of its
training tunes, and this is how the line is brought home without a leap being preferred.
"""

from __future__ import annotations

import itertools

from neuromusic.models.music.abc import AbcNote

HALF_SPAN = 8  # semitones either side of the centre
GLIDE = 3.0  # semitones the centre moves per bar at most
STRAY = 4.0  # semitones a bar's mean may lie from the centre before it costs
# Costs, on the scale of bars.misfit (an energy level off costs 2).
OUTSIDE_COST = 0.25  # per semitone beyond HALF_SPAN, the bar's worst note
STRAY_COST = 0.15  # per semitone the bar's mean strays beyond STRAY
LEAP_COSTS = ((5, 0.15), (8, 0.35), (13, 1.0))  # (interval in semitones, cost added at and above it)
LOWEST, HIGHEST = 24, 108  # what a candidate may be moved to


class Line:
    """The melody's centre and last note (real pitches)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.reset()

    def reset(self) -> None:
        self.centre: float | None = None
        self.last: int | None = None

    def aim(self, valence: float) -> float:
        """The centre for this bar: toward the valence's, by at most GLIDE semitones."""
        target = self.low + (self.high - self.low) * min(1.0, max(0.0, valence))
        if self.centre is None:
            self.centre = target
        else:
            self.centre += max(-GLIDE, min(GLIDE, target - self.centre))
        return self.centre

    def cost(self, notes: list[AbcNote], shift: int) -> float:
        """How unsingable the bar (C-tonic space, played `shift` semitones higher) is after the line so far."""
        pitches = [n.pitch + shift for n in notes if n.pitch is not None]
        if not pitches or self.centre is None:
            return 0.0
        worst = max(abs(p - self.centre) for p in pitches)
        cost = OUTSIDE_COST * max(0.0, worst - HALF_SPAN)
        cost += STRAY_COST * max(0.0, abs(sum(pitches) / len(pitches) - self.centre) - STRAY)
        path = pitches if self.last is None else [self.last, *pitches]
        for a, b in itertools.pairwise(path):
            cost += sum(price for interval, price in LEAP_COSTS if abs(b - a) >= interval)
        return cost

    def octave_moves(self, notes: list[AbcNote], shift: int) -> list[list[AbcNote]]:
        """The bar moved by whole octaves so its mean lies nearest the centre, when that is not where it is."""
        pitches = [n.pitch + shift for n in notes if n.pitch is not None]
        if not pitches or self.centre is None:
            return []
        move = 12 * round((self.centre - sum(pitches) / len(pitches)) / 12)
        if move == 0 or min(pitches) + move - shift < LOWEST or max(pitches) + move - shift > HIGHEST:
            return []
        return [[AbcNote(None if n.pitch is None else n.pitch + move, n.duration) for n in notes]]

    def played(self, notes: list[AbcNote], shift: int) -> None:
        pitches = [n.pitch + shift for n in notes if n.pitch is not None]
        if pitches:
            self.last = pitches[-1]
