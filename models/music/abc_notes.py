"""The vocabulary of ABC notation: notes, keys, meters and tempi, and the error raised for what cannot be read.

`neuromusic.models.music.abc` reads and writes whole bars and tunes with it, and is the module to import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

LETTERS = "CDEFGAB"
LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SHARP_ORDER = "FCGDAEB"
MODE_FIFTHS = {"maj": 0, "ion": 0, "mix": -1, "dor": -2, "m": -3, "min": -3, "aeo": -3, "phr": -4, "loc": -5, "lyd": 1}
MINOR_MODES = {"dor", "m", "min", "aeo", "phr", "loc"}
TONIC_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F": -1}
COMPACT_UNIT = Fraction(1, 2)  # L:1/8 in quarter-note beats
ACCIDENTALS = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}


class AbcError(ValueError):
    """The ABC text cannot be turned into a melody; the message is the reason, short enough to count by."""


@dataclass(frozen=True)
class AbcNote:
    pitch: int | None  # MIDI number, None for a rest
    duration: Fraction  # quarter-note beats


@dataclass(frozen=True)
class KeySig:
    """A key: tonic pitch class, minor or not, and the signature as letter -> alteration."""

    tonic: int
    minor: bool
    fifths: int  # sharps (>0) or flats (<0) of the signature
    tonic_letter: str

    @property
    def alterations(self) -> dict[str, int]:
        if self.fifths >= 0:
            return {letter: 1 for letter in SHARP_ORDER[: self.fifths]}
        return {letter: -1 for letter in SHARP_ORDER[::-1][: -self.fifths]}

    @property
    def name(self) -> str:
        return self.tonic_letter + ("m" if self.minor else "")


@dataclass
class ParsedBar:
    notes: list[AbcNote]
    meter: str
    beats: Fraction  # the length the meter asks for

    @property
    def length(self) -> Fraction:
        return sum((n.duration for n in self.notes), Fraction(0))

    @property
    def complete(self) -> bool:
        return self.length == self.beats


@dataclass
class ParsedTune:
    title: str
    key: KeySig
    tempo: float | None  # quarter notes per minute from Q:, None when absent
    bars: list[ParsedBar] = field(default_factory=list)


def parse_key(text: str) -> KeySig:
    """`K:` value -> KeySig. "Gm", "Ador", "F# minor", "Bb", "none", "HP" (Highland pipes: no signature)."""
    text = text.strip().split("%")[0].strip()
    if not text or text.lower() in ("none", "hp"):
        return KeySig(0, False, 0, "C")
    if text == "Hp":  # Highland pipes with the signature written out: F#, C#, G#
        return KeySig(9, False, 3, "A")
    m = re.match(r"([A-Ga-g])([#b]?)\s*([A-Za-z]*)", text)
    if m is None:
        raise AbcError(f"unreadable key {text!r}")
    letter, accidental, mode_word = m.group(1).upper(), m.group(2), m.group(3).lower()
    mode = "m" if mode_word == "m" else mode_word[:3] or "maj"
    if mode not in MODE_FIFTHS:
        mode = "maj"  # words such as "exp" or clef names: read the tonic, assume major
    alter = {"#": 1, "b": -1, "": 0}[accidental]
    fifths = TONIC_FIFTHS[letter] + 7 * alter + MODE_FIFTHS[mode]
    if not -7 <= fifths <= 7:
        raise AbcError(f"key {text!r} needs more than 7 accidentals")
    return KeySig((LETTER_PC[letter] + alter) % 12, mode in MINOR_MODES, fifths, letter + accidental)


def parse_meter(text: str) -> tuple[str, Fraction]:
    """`M:` value -> (normalised text, bar length in quarter beats). Raises AbcError for free or additive meters."""
    text = text.strip().split("%")[0].strip()
    if text == "C":
        return "4/4", Fraction(4)
    if text == "C|":
        return "2/2", Fraction(4)
    m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if m is None:
        raise AbcError(f"meter {text or 'none'!r} has no fixed bar length")
    num, den = int(m.group(1)), int(m.group(2))
    if num <= 0 or den not in (1, 2, 4, 8, 16):
        raise AbcError(f"meter {text!r} is not supported")
    return f"{num}/{den}", Fraction(4 * num, den)


def parse_tempo(text: str) -> float | None:
    """`Q:` value -> quarter notes per minute, or None when it gives no number (e.g. only "Allegro")."""
    m = re.search(r"(\d+)\s*/\s*(\d+)\s*=\s*(\d+)", text)
    if m:
        return float(int(m.group(3)) * Fraction(int(m.group(1)), int(m.group(2))) * 4)
    m = re.fullmatch(r"\s*(?:C\s*=\s*)?(\d+)\s*", text)
    return float(m.group(1)) if m else None
