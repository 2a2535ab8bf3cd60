"""Phrase form and the singable line with the shipped checkpoint: each option changes what is heard."""

from __future__ import annotations

from dataclasses import replace

from neuromusic.models.core.messages import Bar, Controls
from neuromusic.models.music import listening
from neuromusic.models.music.composer import Composer
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.music.phrase import PhrasePlan

PLAIN = ComposerConfig(seed=3, phrase_memory=False, shape_line=False)


def piece(config: ComposerConfig, controls: Controls, bars: int = 16) -> list[Bar]:
    composer = Composer.load(config)
    return [composer.next_bar(controls) for _ in range(bars)]


def planned_repeats(bars: list[Bar], seed: int) -> int:
    plan = PhrasePlan(seed)
    roles = [plan.role(bar.index) for bar in bars]
    return sum(
        r.source is not None and r.exact and bars[r.source].notes == bar.notes
        for r, bar in zip(roles, bars, strict=True)
    )


def test_phrase_memory_repeats_planned_bars_and_closes_phrases_on_the_tonic() -> None:
    controls = Controls(tempo=66, valence=0.9, energy=0.5)
    plain = piece(PLAIN, controls)
    formed = piece(replace(PLAIN, phrase_memory=True), controls)
    assert planned_repeats(formed, 3) >= 4 > planned_repeats(plain, 3)
    heard = [listening.from_bar(bar) for bar in formed]
    assert listening.bar_recurrence(heard) > listening.bar_recurrence([listening.from_bar(b) for b in plain])
    assert all(heard[i].notes[-1][0] % 12 == heard[i].tonic for i in (7, 15))  # full closes on the tonic


def test_shape_line_keeps_the_melody_near_its_centre_and_mostly_by_step() -> None:
    controls = Controls(tempo=66, valence=0.9, energy=0.9)
    wild = [listening.from_bar(bar) for bar in piece(PLAIN, controls)]
    sung = [listening.from_bar(bar) for bar in piece(replace(PLAIN, shape_line=True), controls)]
    assert listening.melodic_range(sung) <= 18
    assert listening.leap_share(sung) < listening.leap_share(wild)
    centre = PLAIN.melody_center_low + 0.9 * (PLAIN.melody_center_high - PLAIN.melody_center_low)
    pitches = [p for bar in sung for p, _, _ in bar.notes]
    assert abs(sum(pitches) / len(pitches) - centre) <= 4
