"""Slow variation: the arrangement changes every 32-64 bars, so the same controls do not mean the same loop.

A session is cut into sections of 32 to 64 bars (whole four-bar phrases). Each section has a colour, never the
same twice in a row:
- home: every part as the controls ask;
- open: the section begins with a phrase of pad and melody alone (chords and bass rest), then fills in;
- thin: the chords rest the whole section; bass, pad and melody carry it;
- dominant: the music moves to the dominant key (a fourth down, so the register barely moves) and back after.
The order is drawn from a seeded generator: the same seed gives the same form.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

COLOURS = ("home", "open", "thin", "dominant")
PHRASE = 4
DOMINANT_SHIFT = -5  # semitones: the dominant key a fourth below


@dataclass(frozen=True)
class Section:
    start: int  # first bar
    bars: int
    colour: str

    def rests(self, bar: int) -> frozenset[str]:
        """The roles that rest in this bar."""
        if self.colour == "open" and bar - self.start < PHRASE:
            return frozenset({"chords", "bass"})
        if self.colour == "thin":
            return frozenset({"chords"})
        return frozenset()

    @property
    def shift(self) -> int:
        return DOMINANT_SHIFT if self.colour == "dominant" else 0


class Form:
    """Sections drawn lazily; `at(bar)` is the section a bar (counted from the session start) belongs to."""

    def __init__(self, seed: int = 0, shortest: int = 32, longest: int = 64) -> None:
        if not PHRASE <= shortest <= longest:
            raise ValueError(f"section lengths must satisfy {PHRASE} <= shortest <= longest")
        self._rng = random.Random(seed)
        self._shortest, self._longest = shortest, longest
        self._sections = [Section(0, self._length(), "home")]  # the first section sets the scene plainly

    def _length(self) -> int:
        return PHRASE * self._rng.randint(-(-self._shortest // PHRASE), self._longest // PHRASE)

    def at(self, bar: int) -> Section:
        while bar >= self._sections[-1].start + self._sections[-1].bars:
            last = self._sections[-1]
            colour = self._rng.choice([c for c in COLOURS if c != last.colour])
            self._sections.append(Section(last.start + last.bars, self._length(), colour))
            del self._sections[:-2]  # only the current one is asked for; keep memory flat over long sessions
        for section in reversed(self._sections):
            if section.start <= bar:
                return section
        return self._sections[0]
