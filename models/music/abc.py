"""ABC notation <-> notes, without torch: the corpus builder, the composer, the player and the evaluation share it.

Scope is the monophonic folk ABC of the music21 corpus (Essen, O'Neill's, Aird's, Ryan's): notes, rests,
accidentals with bar-long carry, octave marks, durations (`A3/2`, `A/`, `A2/3`), broken rhythm, tuplets, ties,
chords (the top note is the melody), K:/M:/L:/Q: headers and inline fields. Grace notes, decorations, slurs, chord
symbols and annotations are dropped: they do not change the melody line. What it cannot read (several voices,
multi-bar rests, meters without a fixed bar length) raises `AbcError` with the reason, so a corpus build can count it.

Durations are Fractions of a quarter-note beat. The compact form the model reads and writes is one bar of ABC with
`L:1/8` and no key signature, every accidental explicit (see `format_bar`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from neuromusic.models.music.abc_notes import (
    ACCIDENTALS,
    COMPACT_UNIT,
    LETTER_PC,
    LETTERS,
    AbcError,
    AbcNote,
    KeySig,
    ParsedBar,
    ParsedTune,
    parse_key,
    parse_meter,
    parse_tempo,
)

__all__ = [  # the notes and keys live in abc_notes; this module is the one to import
    "COMPACT_UNIT",
    "AbcError",
    "AbcNote",
    "KeySig",
    "ParsedBar",
    "ParsedTune",
    "format_bar",
    "format_duration",
    "format_tune",
    "parse_bar",
    "parse_key",
    "parse_meter",
    "parse_tempo",
    "parse_tune",
    "split_tunes",
]

_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([',]*)(\d*)(/*)(\d*)")
_REST = re.compile(r"([zx])(\d*)(/*)(\d*)")
_TUPLET = re.compile(r"\((\d)(?::(\d?))?(?::(\d?))?")
_BARLINE = re.compile(r"(\[\||:*\|+\]?:*|:+)(\[?\d+(?:[,-]\d+)*)?")
_ENDING = re.compile(r"\[\d+(?:[,-]\d+)*")
_INLINE_FIELD = re.compile(r"\[([A-Za-z]):([^\]]*)\]")
_FIELD_LINE = re.compile(r"^([A-Za-z]):(.*)$")


def _duration(digits: str, slashes: str, denominator: str) -> Fraction:
    num = int(digits) if digits else 1
    den = int(denominator) if denominator else 2 ** len(slashes)
    if den == 0:
        raise AbcError("duration with a zero denominator")
    return Fraction(num, den)


@dataclass
class _State:
    """What the body scanner carries: units, key, meter and the bar being read."""

    unit: Fraction  # L: in quarter beats
    key: KeySig
    meter: str
    beats: Fraction
    bars: list[ParsedBar] = field(default_factory=list)
    notes: list[AbcNote] = field(default_factory=list)
    bar_accidentals: dict[tuple[str, int], int] = field(default_factory=dict)
    tuplet_left: int = 0
    tuplet_factor: Fraction = Fraction(1)
    broken_next: Fraction = Fraction(1)
    tie: bool = False

    def close_bar(self) -> None:
        if self.notes:
            self.bars.append(ParsedBar(self.notes, self.meter, self.beats))
        self.notes = []
        self.bar_accidentals = {}
        self.tie = False

    def add(self, pitch: int | None, duration: Fraction) -> None:
        duration *= self.broken_next
        self.broken_next = Fraction(1)
        if self.tuplet_left > 0:
            duration *= self.tuplet_factor
            self.tuplet_left -= 1
        if duration <= 0:
            raise AbcError("a note of zero length")
        if self.tie and self.notes and pitch is not None and self.notes[-1].pitch == pitch:
            self.notes[-1] = AbcNote(pitch, self.notes[-1].duration + duration)
        else:
            self.notes.append(AbcNote(pitch, duration))
        self.tie = False

    def set_field(self, name: str, value: str) -> None:
        if name == "K":
            self.key = parse_key(value)
        elif name == "M":
            self.meter, self.beats = parse_meter(value)
        elif name == "L":
            self.unit = _unit(value)
        elif name == "V":
            raise AbcError("several voices")


def _unit(value: str) -> Fraction:
    m = re.fullmatch(r"\s*1\s*/\s*(\d+)\s*", value.split("%")[0])
    if m is None or int(m.group(1)) == 0:
        raise AbcError(f"unit length {value.strip()!r} is not supported")
    return Fraction(4, int(m.group(1)))


def _pitch(state: _State, accidental: str | None, letter: str, octave_marks: str) -> int:
    octave = 5 if letter.islower() else 4  # C = MIDI 60, c = 72
    octave += octave_marks.count("'") - octave_marks.count(",")
    upper = letter.upper()
    if accidental is not None:
        alter = ACCIDENTALS[accidental]
        state.bar_accidentals[(upper, octave)] = alter
    else:
        alter = state.bar_accidentals.get((upper, octave), state.key.alterations.get(upper, 0))
    return 12 * (octave + 1) + LETTER_PC[upper] + alter


def _tuplet(state: _State, m: re.Match[str]) -> None:
    p = int(m.group(1))
    compound = state.meter in ("6/8", "9/8", "12/8", "6/4", "9/4")
    default_q = {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}.get(p, 3 if compound else 2)
    q = int(m.group(2)) if m.group(2) else default_q
    r = int(m.group(3)) if m.group(3) else p
    if p < 2:
        raise AbcError(f"tuplet ({p}")
    state.tuplet_factor, state.tuplet_left = Fraction(q, p), r


def scan_body(text: str, state: _State) -> None:
    """Read ABC body text (one or more lines) into state.bars; the last open bar stays in state.notes."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n\\`y$":
            i += 1
        elif c == "%":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == '"':
            j = text.find('"', i + 1)
            i = n if j < 0 else j + 1
        elif c in "!+":
            j = text.find(c, i + 1)
            i = n if j < 0 or j - i > 40 else j + 1
        elif c == "{":
            j = text.find("}", i)
            i = n if j < 0 else j + 1
        elif (m := _INLINE_FIELD.match(text, i)) is not None:
            state.set_field(m.group(1), m.group(2))
            i = m.end()
        elif c == "[" and i + 1 < n and text[i + 1] in "^_=ABCDEFGabcdefg":
            i = _chord(text, i, state)
        elif (m := _ENDING.match(text, i)) is not None:
            i = m.end()
        elif c in "|:" or text.startswith("[|", i):
            m = _BARLINE.match(text, i)
            assert m is not None  # the pattern accepts any run starting with | or :
            state.close_bar()
            i = max(m.end(), i + 1)
        elif (m := _NOTE.match(text, i)) is not None:
            pitch = _pitch(state, m.group(1), m.group(2), m.group(3))
            state.add(pitch, state.unit * _duration(m.group(4), m.group(5), m.group(6)))
            i = m.end()
        elif (m := _REST.match(text, i)) is not None:
            state.add(None, state.unit * _duration(m.group(2), m.group(3), m.group(4)))
            i = m.end()
        elif (m := _TUPLET.match(text, i)) is not None:
            _tuplet(state, m)
            i = m.end()
        elif c in "><":
            j = i
            while j < n and text[j] == c:
                j += 1
            _broken(state, c, j - i)
            i = j
        elif c == "-":
            state.tie = True
            i += 1
        elif c in "().~HIJKLMNOPQRSTUVWXYuvwh]'":
            i += 1  # slurs, decorations and stray marks do not change the melody
        elif c == "Z":
            raise AbcError("multi-bar rest")
        elif c == "&":
            raise AbcError("voice overlay")
        else:
            raise AbcError(f"unexpected character {c!r}")


def _broken(state: _State, symbol: str, count: int) -> None:
    if not state.notes:
        raise AbcError("broken rhythm without a note before it")
    short = Fraction(1, 2**count)
    long = 2 - short
    first, second = (long, short) if symbol == ">" else (short, long)
    last = state.notes[-1]
    state.notes[-1] = AbcNote(last.pitch, last.duration * first)
    state.broken_next = second


def _chord(text: str, i: int, state: _State) -> int:
    j = text.find("]", i)
    if j < 0:
        raise AbcError("unclosed chord")
    inner = list(_NOTE.finditer(text[i + 1 : j]))
    if not inner:
        raise AbcError("empty chord")
    pitches = [_pitch(state, m.group(1), m.group(2), m.group(3)) for m in inner]
    first = inner[0]
    length = _duration(first.group(4), first.group(5), first.group(6))
    m = re.compile(r"(\d*)(/*)(\d*)").match(text, j + 1)
    assert m is not None  # matches the empty string at least
    state.add(max(pitches), state.unit * length * _duration(m.group(1), m.group(2), m.group(3)))
    return m.end()


def split_tunes(text: str) -> list[str]:
    """A multi-tune .abc file -> one text per tune, each starting at its X: line."""
    parts = re.split(r"(?m)^(?=X:)", text)
    return [p for p in parts if p.startswith("X:")]


def parse_tune(text: str) -> ParsedTune:
    """One tune (X: header to the blank line after its body) -> ParsedTune. Raises AbcError with a reason."""
    title, key_text, tempo = "", None, None
    meter: tuple[str, Fraction] | None = None
    unit: Fraction | None = None
    lines = text.splitlines()
    body_start = None
    for index, line in enumerate(lines):
        m = _FIELD_LINE.match(line.strip())
        if m is None:
            continue
        name, value = m.group(1), m.group(2)
        if name == "T" and not title:
            title = value.strip()
        elif name == "M":
            meter = parse_meter(value)
        elif name == "L":
            unit = _unit(value)
        elif name == "Q":
            tempo = parse_tempo(value)
        elif name == "V":
            raise AbcError("several voices")
        elif name == "K":
            key_text, body_start = value, index + 1
            break
    if body_start is None or key_text is None:
        raise AbcError("no K: field")
    if meter is None:
        raise AbcError("no M: field")
    if unit is None:  # the ABC standard's default unit: 1/16 below a 3/4 bar, 1/8 otherwise
        unit = Fraction(1, 4) if meter[1] < 3 else Fraction(1, 2)
    state = _State(unit=unit, key=parse_key(key_text), meter=meter[0], beats=meter[1])
    tune_key = state.key
    for line in lines[body_start:]:
        stripped = line.strip()
        if not stripped:
            if state.bars or state.notes:
                break  # a blank line ends the tune
            continue
        m = _FIELD_LINE.match(stripped)
        if m is not None and not stripped.startswith("|"):
            state.set_field(m.group(1), m.group(2))
            continue
        scan_body(line, state)
    state.close_bar()
    if not state.bars:
        raise AbcError("no notes")
    return ParsedTune(title=title, key=tune_key, tempo=float(tempo) if tempo is not None else None, bars=state.bars)


def parse_bar(body: str, meter: str = "4/4", key: str | None = None) -> ParsedBar:
    """One bar with L:1/8 under `key` (None: the compact form, no key signature) -> ParsedBar. Raises AbcError."""
    meter_text, beats = parse_meter(meter)
    signature = parse_key(key) if key is not None else KeySig(0, False, 0, "C")
    state = _State(unit=COMPACT_UNIT, key=signature, meter=meter_text, beats=beats)
    scan_body(body, state)
    if state.bars:
        raise AbcError("a bar line inside one bar")
    return ParsedBar(state.notes, meter_text, beats)


# Spelling of the five pitch classes outside the major scale, as (degree steps above the tonic letter, semitones):
# b2, b3, #4, b6, b7. Key-relative spelling reads the same in every key and matches folk practice.
_CHROMATIC_DEGREE = {1: 1, 3: 2, 6: 3, 8: 5, 10: 6}
_MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)


def _spell(pitch: int, key: KeySig) -> tuple[str, int, int]:
    """MIDI pitch -> (letter, alteration, octave) spelled relative to the key's tonic."""
    interval = (pitch - key.tonic) % 12
    tonic_index = LETTERS.index(key.tonic_letter[0])
    degree = _MAJOR_STEPS.index(interval) if interval in _MAJOR_STEPS else _CHROMATIC_DEGREE[interval]
    letter = LETTERS[(tonic_index + degree) % 7]
    natural = LETTER_PC[letter]
    alter = (pitch - natural + 6) % 12 - 6
    octave = (pitch - natural - alter) // 12 - 1
    return letter, alter, octave


def format_duration(beats: Fraction, unit: Fraction = COMPACT_UNIT) -> str:
    k = Fraction(beats) / unit
    if k == 1:
        return ""
    if k.denominator == 1:
        return str(k.numerator)
    if k.numerator == 1:
        return "/" if k.denominator == 2 else f"/{k.denominator}"
    return f"{k.numerator}/{k.denominator}"


def format_bar(notes: Sequence[AbcNote], key: KeySig | None = None) -> str:
    """Notes -> one bar of ABC body with L:1/8 under `key` (None: no signature, the compact form of the model).
    Accidentals are written where the signature or an earlier note of the bar would otherwise say something else;
    in the compact form every sharp or flat is written, so a token means the same pitch wherever it stands."""
    explicit = key is None
    key = key or KeySig(0, False, 0, "C")
    signature = key.alterations
    carried: dict[tuple[str, int], int] = {}
    out = []
    for note in notes:
        if note.pitch is None:
            out.append("z" + format_duration(note.duration))
            continue
        letter, alter, octave = _spell(note.pitch, key)
        current = carried.get((letter, octave), signature.get(letter, 0))
        accidental = ""
        if alter != current or (explicit and alter != 0):
            accidental = {2: "^^", 1: "^", 0: "=", -1: "_", -2: "__"}[alter]
            carried[(letter, octave)] = alter
        name = letter.lower() + "'" * (octave - 5) if octave >= 5 else letter + "," * (4 - octave)
        out.append(accidental + name + format_duration(note.duration))
    return "".join(out)


def format_tune(
    bars: Sequence[tuple[str, Sequence[AbcNote]]],
    meter: str,
    tempo: float,
    title: str = "neuromusic",
) -> str:
    """A whole tune from (key name, notes) per bar; a key change is written as an inline [K:] field."""
    lines = ["X:1", f"T:{title}", f"M:{meter}", "L:1/8", f"Q:1/4={round(tempo)}"]
    first_key = bars[0][0] if bars else "C"
    lines.append(f"K:{first_key}")
    body, current = [], first_key
    for key_name, notes in bars:
        prefix = ""
        if key_name != current:
            prefix, current = f"[K:{key_name}] ", key_name
        body.append(prefix + format_bar(notes, parse_key(key_name)))
    for start in range(0, len(body), 4):
        lines.append(" | ".join(body[start : start + 4]) + " |")
    return "\n".join(lines) + "\n"
