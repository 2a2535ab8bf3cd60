"""The training corpus: ABC tunes (music21's corpus and user folders) and MIDI melodies -> compact labelled bars.

Normalisation (documented in the README):
- key: Krumhansl-Kessler key finding on the whole tune (duration-weighted pitch classes) gives tonic and mode;
  the tune is transposed so its tonic is C (shift in -6..+5 semitones, keeping the register). The mode becomes the
  valence label. At playback the composer transposes C to the configured tonic.
- bars: only bars whose length equals the meter's are kept (pickups and repeat half-bars are dropped), written in
  the compact form of `abc.format_bar` (L:1/8, explicit accidentals, no key signature).
- labels per bar: meter, tempo level, valence level (the tune's mode), energy level (onsets per beat).
Every file or tune that cannot be used is counted under a reason; nothing stops the build.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from neuromusic.models.music import abc, keyfinding
from neuromusic.models.music.controls import (
    DEFAULT_TEMPO,
    METERS,
    density,
    density_level,
)

VALID_EVERY = 20  # one tune in 20 (by a hash of its id) is held out for validation


@dataclass
class TuneRecord:
    id: str
    source: str
    meter: str
    tempo: float
    tempo_given: bool
    minor: bool
    tonic: int  # the pitch class the tune was transposed from
    bars: list[str]
    energy: list[int]
    split: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))


@dataclass
class BuildStats:
    tunes: int = 0
    bars: int = 0
    minor: int = 0
    files: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    meters: Counter[str] = field(default_factory=Counter)
    energy: Counter[int] = field(default_factory=Counter)


def find_key(notes: list[abc.AbcNote]) -> tuple[int, bool]:
    """(tonic pitch class, minor) of the tune: the key whose Krumhansl-Kessler profile best fits the
    duration-weighted pitch-class histogram."""
    return keyfinding.find_key(keyfinding.histogram(notes))


def label_bars(
    bars: list[abc.ParsedBar], tempo: float | None, tune_id: str, source: str
) -> tuple[TuneRecord | None, str]:
    """Complete bars of one tune -> a TuneRecord in the compact form, or (None, reason)."""
    complete = [b for b in bars if b.complete and b.meter in METERS]
    if len(complete) < 4:
        return None, "fewer than 4 complete bars" if all(b.meter in METERS for b in bars) else "unsupported meter"
    meter = Counter(b.meter for b in complete).most_common(1)[0][0]
    complete = [b for b in complete if b.meter == meter]
    tonic, minor = find_key([n for b in complete for n in b.notes])
    shift = (-tonic) % 12
    if shift > 5:
        shift -= 12
    texts, energy = [], []
    for bar in complete:
        notes = [abc.AbcNote(None if n.pitch is None else n.pitch + shift, n.duration) for n in bar.notes]
        if any(n.pitch is not None and not 36 <= n.pitch <= 96 for n in notes):
            return None, "pitch out of range"
        texts.append(abc.format_bar(notes))
        onsets = sum(n.pitch is not None for n in notes)
        energy.append(density_level(density(onsets, bar.beats)))
    split = "valid" if zlib.crc32(tune_id.encode()) % VALID_EVERY == 0 else "train"
    record = TuneRecord(
        id=tune_id,
        source=source,
        meter=meter,
        tempo=float(tempo) if tempo else DEFAULT_TEMPO,
        tempo_given=tempo is not None,
        minor=minor,
        tonic=tonic,
        bars=texts,
        energy=energy,
        split=split,
    )
    return record, ""


def music21_corpus() -> Path:
    import music21  # torch-free, 0.7 s; only needed to find its corpus folder

    return Path(music21.__file__).parent / "corpus"


def abc_tunes(path: Path, root: Path) -> Iterator[tuple[str, str]]:
    """(tune id, tune text) for every X: tune in an .abc file; raises UnicodeError/OSError for unreadable files."""
    data = path.read_bytes()
    if b"\0" in data[:4096]:
        raise UnicodeError("binary file")
    text = data.decode("utf-8") if _is_utf8(data) else data.decode("latin-1")
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    for number, tune in enumerate(abc.split_tunes(text)):
        yield f"{rel}#{number}", tune


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def midi_bars(path: Path) -> tuple[list[abc.ParsedBar], float | None]:
    """The melody of a MIDI file as bars: the non-drum track with the most notes, highest note at each onset,
    quantised to sixteenths; meter from the first time signature (4/4 when none)."""
    import pretty_midi  # heavy-ish; only for MIDI folders

    pm = pretty_midi.PrettyMIDI(str(path))
    tracks = [i for i in pm.instruments if not i.is_drum and i.notes]
    if not tracks:
        raise ValueError("no melodic notes")
    track = max(tracks, key=lambda i: len(i.notes))
    sig = pm.time_signature_changes[0] if pm.time_signature_changes else None
    meter_text = f"{sig.numerator}/{sig.denominator}" if sig else "4/4"
    meter, beats = abc.parse_meter(meter_text)
    grid = Fraction(1, 4)
    resolution = pm.resolution
    onsets: dict[Fraction, tuple[int, Fraction]] = {}
    for note in track.notes:
        start = Fraction(round(pm.time_to_tick(note.start) / resolution * 4), 4)
        end = Fraction(round(pm.time_to_tick(note.end) / resolution * 4), 4)
        length = max(end - start, grid)
        if start not in onsets or note.pitch > onsets[start][0]:
            onsets[start] = (note.pitch, length)
    bars: list[abc.ParsedBar] = []
    times = sorted(onsets)
    n_bars = int((times[-1] + onsets[times[-1]][1]) // beats) + 1
    per_bar: list[list[tuple[Fraction, int, Fraction]]] = [[] for _ in range(n_bars)]
    for index, t in enumerate(times):
        pitch, length = onsets[t]
        if index + 1 < len(times):
            length = min(length, times[index + 1] - t)  # monophonic: a note ends where the next begins
        bar = int(t // beats)
        length = min(length, (bar + 1) * beats - t)
        per_bar[bar].append((t - bar * beats, pitch, length))
    for items in per_bar:
        notes, cursor = [], Fraction(0)
        for offset, pitch, length in items:
            if offset > cursor:
                notes.append(abc.AbcNote(None, offset - cursor))
            notes.append(abc.AbcNote(pitch, length))
            cursor = offset + length
        if cursor < beats:
            notes.append(abc.AbcNote(None, beats - cursor))
        if any(n.pitch is not None for n in notes):
            bars.append(abc.ParsedBar(notes, meter, beats))
    _, tempi = pm.get_tempo_changes()  # BPM in quarter notes
    tempo = float(tempi[0]) if len(tempi) else None
    return bars, tempo


def iter_records(
    abc_dirs: list[Path],
    midi_dirs: list[Path],
    include_music21: bool,
    stats: BuildStats,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[TuneRecord]:
    """Every usable tune as a TuneRecord; unusable files and tunes are counted in stats.skipped by reason."""
    jobs: list[tuple[str, Path, Path]] = []
    if include_music21:
        root = music21_corpus()
        jobs += [("abc", f, root) for f in sorted(root.rglob("*.abc"))]
    for folder in abc_dirs:
        jobs += [("abc", f, folder) for f in sorted(folder.rglob("*")) if f.is_file() and _wanted(f, ("abc",))]
    for folder in midi_dirs:
        jobs += [("midi", f, folder) for f in sorted(folder.rglob("*")) if f.is_file() and _wanted(f, ("mid", "midi"))]
    made = 0
    for kind, path, root in jobs:
        if limit is not None and made >= limit:
            break
        stats.files += 1
        for record in _records_from(kind, path, root, stats):
            yield record
            made += 1
            if limit is not None and made >= limit:
                break
        if progress is not None:
            progress(1)


def _wanted(path: Path, suffixes: tuple[str, ...]) -> bool:
    return path.suffix.lower().lstrip(".") in suffixes


def _records_from(kind: str, path: Path, root: Path, stats: BuildStats) -> Iterator[TuneRecord]:
    parts = path.relative_to(root).parts
    source = parts[0] if len(parts) > 1 else root.name
    if kind == "midi":
        try:
            bars, tempo = midi_bars(path)
        except Exception as error:  # pretty_midi/mido raise many types for a corrupt file: count it, go on
            stats.skipped[f"unreadable MIDI ({type(error).__name__})"] += 1
            return
        record, reason = label_bars(bars, tempo, path.relative_to(root).as_posix(), source)
        if record is None:
            stats.skipped[reason] += 1
        else:
            yield record
        return
    try:
        tunes = list(abc_tunes(path, root))
    except (OSError, UnicodeError) as error:
        stats.skipped[f"unreadable file ({error})"[:60]] += 1
        return
    if not tunes:
        stats.skipped["no X: tune in file"] += 1
        return
    for tune_id, text in tunes:
        try:
            parsed = abc.parse_tune(text)
        except abc.AbcError as error:
            stats.skipped[_reason(str(error))] += 1
            continue
        record, reason = label_bars(parsed.bars, parsed.tempo, tune_id, source)
        if record is None:
            stats.skipped[reason] += 1
        else:
            yield record


def _reason(message: str) -> str:
    """Group parse errors into a few countable reasons."""
    for prefix in ("unexpected character", "meter", "unreadable key", "unit length", "key"):
        if message.startswith(prefix):
            return prefix
    return message


def write_corpus(records: Iterator[TuneRecord], out: Path, stats: BuildStats) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w") as handle:
        for record in records:
            handle.write(record.to_json() + "\n")
            stats.tunes += 1
            stats.bars += len(record.bars)
            stats.minor += record.minor
            stats.meters[record.meter] += 1
            stats.energy.update(record.energy)


def read_corpus(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]
