"""Harmony for the arranger: which chord fits a stretch of melody, and how to voice it smoothly.

Chords come from the melody, not from chance: each diatonic triad of the key is scored by how much of the melody's
sounding time (strong beats counting double) falls on its tones, minus the time on tones outside it, plus a small
prior for the common degrees and a bonus for tones shared with the previous chord (smooth harmonic rhythm).
Minor keys use the harmonic minor's major V, the usual choice in tonal music. Diminished triads are left out:
they want to resolve, and this music should not pull.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from neuromusic.models.music.abc import AbcError, KeySig, parse_key
from neuromusic.models.music.keyfinding import PROFILES

# Krumhansl-Kessler key profiles (C major, C minor), for bars whose key cannot be read.
_KK_MAJOR, _KK_MINOR = PROFILES["krumhansl-kessler"]
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# (interval of the root above the tonic, quality, prior weight): the triads worth choosing in each mode.
_MAJOR_TRIADS = ((0, "maj", 1.0), (5, "maj", 0.7), (7, "maj", 0.7), (9, "min", 0.5), (2, "min", 0.4), (4, "min", 0.25))
_MINOR_TRIADS = ((0, "min", 1.0), (5, "min", 0.7), (7, "maj", 0.6), (8, "maj", 0.6), (3, "maj", 0.5), (10, "maj", 0.45))
_THIRDS = {"maj": 4, "min": 3}


@dataclass(frozen=True)
class Chord:
    root: int  # pitch class
    quality: str  # "maj" or "min"
    prior: float = 0.5

    @property
    def pitch_classes(self) -> tuple[int, int, int]:
        return (self.root, (self.root + _THIRDS[self.quality]) % 12, (self.root + 7) % 12)

    @property
    def name(self) -> str:
        return _NAMES[self.root] + ("m" if self.quality == "min" else "")


def read_key(text: str, pitches: Iterable[int] = ()) -> KeySig:
    """The bar's key; when it cannot be read, the key whose profile best fits the pitches (C major if none)."""
    try:
        return parse_key(text)
    except AbcError:
        return infer_key(list(pitches))


def infer_key(pitches: Sequence[int]) -> KeySig:
    if not pitches:
        return parse_key("C")
    histogram = [0.0] * 12
    for pitch in pitches:
        histogram[pitch % 12] += 1.0
    best, best_fit = "C", -1e9
    for tonic in range(12):
        for profile, suffix in ((_KK_MAJOR, ""), (_KK_MINOR, "m")):
            fit = sum(histogram[(tonic + i) % 12] * profile[i] for i in range(12))
            if fit > best_fit:
                best, best_fit = _NAMES[tonic] + suffix, fit
    return parse_key(best)


def diatonic_chords(key: KeySig) -> list[Chord]:
    table = _MINOR_TRIADS if key.minor else _MAJOR_TRIADS
    return [Chord((key.tonic + interval) % 12, quality, prior) for interval, quality, prior in table]


def choose_chord(
    melody: Sequence[tuple[int, float]],
    key: KeySig,
    previous: Chord | None = None,
    cadence: bool = False,
    smoothness: float = 0.15,
) -> Chord:
    """The chord that fits `melody` [(pitch, weight), ...] best. `cadence`: end of a phrase, prefer the tonic."""
    chords = diatonic_chords(key)
    total = sum(weight for _, weight in melody) or 1.0
    best, best_score = chords[0], -1e9
    for chord in chords:
        tones = set(chord.pitch_classes)
        inside = sum(weight for pitch, weight in melody if pitch % 12 in tones) / total
        score = inside - 0.5 * (1.0 - inside) + 0.2 * chord.prior
        if previous is not None:
            score += smoothness * len(tones & set(previous.pitch_classes)) / 3.0
            if chord == previous:
                score += 0.05  # hold the harmony rather than wobble between equals
        if cadence and chord.root == key.tonic:
            score += 0.3
        if score > best_score:
            best, best_score = chord, score
    return best


def voice_chord(chord: Chord, center: float, previous: Sequence[int] | None = None) -> tuple[int, ...]:
    """A close three-note voicing near `center` (MIDI), moving as little as possible from `previous`."""
    candidates = []
    for octave in range(2, 8):
        base = 12 * octave + chord.root
        tones = sorted(base + (pc - chord.root) % 12 for pc in chord.pitch_classes)
        for inversion in range(3):
            voicing = tones[inversion:] + [p + 12 for p in tones[:inversion]]
            candidates.append(tuple(voicing))

    def spread(voicing: tuple[int, ...]) -> float:
        return abs(sum(voicing) / len(voicing) - center)

    # Voice leading among the voicings near the register asked for: the register leads, the voices follow closely.
    near = [v for v in candidates if spread(v) <= 4.0] or candidates

    def cost(voicing: tuple[int, ...]) -> float:
        movement = sum(abs(a - b) for a, b in zip(voicing, previous, strict=False)) if previous else 0.0
        return spread(voicing) + 0.5 * movement

    return min(near, key=cost)


def bass_note(chord: Chord, low: int = 36) -> int:
    """The chord's root in the octave starting at `low`."""
    return low + (chord.root - low) % 12
