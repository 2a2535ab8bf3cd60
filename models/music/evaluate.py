"""Evaluation of the music model: held-out perplexity, parse rate, control adherence judged by an analyser
independent of the training labels (music21: Aarden-Essen key analysis for mode, its own note counts for density),
and musical statistics against held-out real tunes. Mode is also judged by a second analyser (music21's
Bellman-Budge profiles): the composer steers by two other profiles (keyfinding.py), and a result that held for one
judge only would be suspect.

Valence is judged over whole pieces of `bars` bars (16 by default): key analysis of single bars is unreliable even on
real music (8 bars agree with the whole tune 84 %, 16 bars 96 %). Energy is judged per bar. After a
control change (8 + 8 bars) energy is judged on the first bar after the change and valence on the 8 bars after it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.models.core.messages import Bar, Controls
from neuromusic.models.music.abc import format_tune, parse_bar
from neuromusic.models.music.controls import density, density_level, energy_level, valence_level
from neuromusic.models.music.corpus import read_corpus

VALENCES = (0.15, 0.85)
ENERGIES = (0.15, 0.5, 0.85)
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


@dataclass
class Confusion:
    """Counts of (asked level, measured level)."""

    counts: Counter[tuple[int, int]] = field(default_factory=Counter)

    def add(self, asked: int, measured: int) -> None:
        self.counts[(asked, measured)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def accuracy(self) -> float:
        hits = sum(v for (a, m), v in self.counts.items() if a == m)
        return hits / self.total if self.total else math.nan


def pitch_class_entropy(pitches: list[int]) -> float:
    """Entropy in bits of the pitch-class histogram (note counts), as muspy defines it."""
    if not pitches:
        return math.nan
    counts = np.bincount(np.array(pitches) % 12, minlength=12).astype(float)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def scale_consistency(pitches: list[int]) -> float:
    """Largest share of notes inside one major or minor scale over the 24 keys (muspy's definition)."""
    if not pitches:
        return math.nan
    pcs = np.array(pitches) % 12
    best = 0.0
    for tonic in range(12):
        for scale in (_MAJOR, _MINOR):
            inside = np.isin(pcs, [(tonic + s) % 12 for s in scale]).mean()
            best = max(best, float(inside))
    return best


def real_statistics(data: Path, bars: int, limit: int = 400) -> tuple[float, float]:
    """Mean pitch-class entropy and scale consistency of the first `bars` bars of held-out tunes."""
    entropies, consistencies = [], []
    records = read_corpus(data / "corpus.jsonl")
    held_out = [r for r in records if r["split"] == "valid"] or records  # a tiny corpus may hold none out
    for record in held_out[:limit]:
        pitches = [n.pitch for body in record["bars"][:bars] for n in parse_bar(body, record["meter"]).notes if n.pitch]
        if pitches:
            entropies.append(pitch_class_entropy(pitches))
            consistencies.append(scale_consistency(pitches))
    return float(np.mean(entropies)), float(np.mean(consistencies))


def music21_view(bars: list[Bar]) -> tuple[Any, list[float]] | None:
    """Parse the piece's ABC with music21 (the independent analyser): (score, onsets per beat of each measure),
    or None when music21 cannot read it or finds a different number of bars."""
    import music21

    tune = [(bar.key, parse_bar(bar.abc, bar.meter, bar.key).notes) for bar in bars]
    text = format_tune(tune, bars[0].meter, bars[0].controls.tempo)
    try:
        score = music21.converter.parse(text, format="abc")
    except Exception:  # any music21 failure is a parse failure, counted by the caller
        return None
    measures = list(score.recurse().getElementsByClass("Measure"))
    if len(measures) != len(bars):
        return None
    densities = []
    for measure in measures:
        notes = [n for n in measure.recurse().notes if n.tie is None or n.tie.type == "start"]
        densities.append(density(len(notes), measure.barDuration.quarterLength))
    return score, densities


JUDGES = {"aarden-essen": "key", "bellman-budge": "key.bellman"}  # name -> music21 analysis method


def music21_minor(score: Any, judge: str = "aarden-essen") -> bool:
    return bool(score.analyze(JUDGES[judge]).mode == "minor")


@dataclass
class Report:
    perplexity: float = math.nan
    bars: int = 0
    raw_ok: int = 0  # bars the model wrote right (parsed and of the meter's length) among the kept candidates
    pieces: int = 0
    parsed_pieces: int = 0
    valence: Confusion = field(default_factory=Confusion)
    energy: Confusion = field(default_factory=Confusion)
    switch_energy: Confusion = field(default_factory=Confusion)
    switch_valence: Confusion = field(default_factory=Confusion)
    valence_second: Confusion = field(default_factory=Confusion)  # the same pieces, judged by Bellman-Budge
    switch_valence_second: Confusion = field(default_factory=Confusion)
    entropy: list[float] = field(default_factory=list)
    consistency: list[float] = field(default_factory=list)
    real: tuple[float, float] = (math.nan, math.nan)
    compose_ms: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        return {
            "perplexity": self.perplexity,
            "raw_bar_ok": self.raw_ok / self.bars if self.bars else math.nan,
            "parse_rate": self.parsed_pieces / self.pieces if self.pieces else math.nan,
            "valence_adherence": self.valence.accuracy,
            "energy_adherence": self.energy.accuracy,
            "switch_energy_first_bar": self.switch_energy.accuracy,
            "switch_valence_next_8": self.switch_valence.accuracy,
            "valence_adherence_bellman_budge": self.valence_second.accuracy,
            "switch_valence_next_8_bellman_budge": self.switch_valence_second.accuracy,
            "pc_entropy": float(np.mean(self.entropy)) if self.entropy else math.nan,
            "pc_entropy_real": self.real[0],
            "scale_consistency": float(np.mean(self.consistency)) if self.consistency else math.nan,
            "scale_consistency_real": self.real[1],
            "compose_ms_p95": float(np.percentile(self.compose_ms, 95)) if self.compose_ms else math.nan,
        }


def _piece(composer: Any, plan: list[Controls], seed: int, report: Report) -> list[Bar]:
    composer.reset(seed)
    bars = [composer.next_bar(c) for c in plan]
    report.bars += len(bars)
    report.raw_ok += composer.raw_parsed
    report.compose_ms += [b.compose_ms for b in bars]
    return bars


def _stats(bars: list[Bar], report: Report) -> None:
    pitches = [n.pitch for b in bars for n in b.notes]
    report.entropy.append(pitch_class_entropy(pitches))
    report.consistency.append(scale_consistency(pitches))


def adherence(composer: Any, pieces: int, bars: int, tempo: float, report: Report) -> None:
    """Steady pieces for every (valence, energy) pair, then 8 + 8 bar pieces that switch both controls."""
    seed = 0
    for valence in VALENCES:
        for energy in ENERGIES:
            for _ in range(pieces):
                seed += 1
                plan = [Controls(tempo, valence, energy)] * bars
                made = _piece(composer, plan, seed, report)
                _stats(made, report)
                _judge(made, report, report.valence, report.energy)
    half = bars // 2
    for first, second in (((0.85, 0.15), (0.15, 0.85)), ((0.15, 0.85), (0.85, 0.15)), ((0.85, 0.85), (0.15, 0.15))):
        for _ in range(pieces):
            seed += 1
            plan = [Controls(tempo, *first)] * half + [Controls(tempo, *second)] * half
            made = _piece(composer, plan, seed, report)
            view = _view(made, report)
            if view is None:
                continue
            _, densities = view
            report.switch_energy.add(energy_level(second[1]), density_level(densities[half]))
            after = music21_view(made[half:])
            if after is not None:
                asked = valence_level(second[0])
                report.switch_valence.add(asked, int(not music21_minor(after[0])))
                report.switch_valence_second.add(asked, int(not music21_minor(after[0], "bellman-budge")))


def _view(bars: list[Bar], report: Report) -> tuple[Any, list[float]] | None:
    report.pieces += 1
    view = music21_view(bars)
    report.parsed_pieces += view is not None
    return view


def _judge(bars: list[Bar], report: Report, valence: Confusion, energy: Confusion) -> None:
    view = _view(bars, report)
    if view is None:
        return
    score, densities = view
    valence.add(valence_level(bars[0].controls.valence), int(not music21_minor(score)))
    report.valence_second.add(valence_level(bars[0].controls.valence), int(not music21_minor(score, "bellman-budge")))
    for bar, measured in zip(bars, densities, strict=True):
        energy.add(energy_level(bar.controls.energy), density_level(measured))
