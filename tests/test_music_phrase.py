"""Phrase form, the singable line and the listening figures, without a model: plans, costs and measures poked
with hand-written bars."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from neuromusic.models.core.messages import Bar, Controls, Note
from neuromusic.models.music import listening
from neuromusic.models.music.abc import AbcNote
from neuromusic.models.music.line import GLIDE, HALF_SPAN, Line
from neuromusic.models.music.phrase import (
    FULL,
    HALF,
    NONE,
    REPEAT_COST,
    SAME_WHEN_VARIED,
    SECTION,
    PhraseMemory,
    PhrasePlan,
    Role,
    cadence,
    dominant,
    form_cost,
    relative,
    travel,
)
from neuromusic.models.music.sketch_composer import SketchComposer


def bar(*pitches: int | None, length: Fraction = Fraction(1)) -> list[AbcNote]:
    return [AbcNote(p, length) for p in pitches]


def test_closes_fall_on_every_fourth_and_eighth_bar() -> None:
    assert [cadence(i) for i in range(16)] == [NONE, NONE, NONE, HALF, NONE, NONE, NONE, FULL] * 2


def test_plan_repeats_earlier_bars_of_its_section_and_is_seeded() -> None:
    plan = PhrasePlan(seed=3)
    roles = [plan.role(i) for i in range(4 * SECTION)]
    sources = [(i, r.source) for i, r in enumerate(roles) if r.source is not None]
    assert sources and all(i // SECTION == s // SECTION and s < i for i, s in sources)
    assert all(plan.role(i).source is None for i in range(4))  # the first phrase is always new
    assert roles == [PhrasePlan(seed=3).role(i) for i in range(4 * SECTION)]
    forms = {PhrasePlan(seed).form(0) for seed in range(30)}
    assert forms == {"AABA", "ABAB", "AABB"}


def test_excursions_to_the_dominant_and_back() -> None:
    plan = PhrasePlan(seed=1, excursion_every=64)
    away = [i for i in range(200) if plan.away(i)]
    assert away == [*range(48, 64), *range(112, 128), *range(176, 192)]
    assert not any(PhrasePlan(seed=1, excursion_every=0).away(i) for i in range(200))
    turns = PhrasePlan(seed=1, excursion_every=64, keys=("dominant", "relative"))
    assert [turns.away(i) for i in (0, 48, 63, 64, 112, 176)] == [
        None,
        "dominant",
        "dominant",
        None,
        "relative",
        "dominant",
    ]
    assert [relative("D", False), relative("D", True), relative("F#", True), relative("Eb", False)] == [
        "B",
        "F",
        "A",
        "C",
    ]
    assert travel("D", False, None) == ("D", False) and travel("D", False, "dominant") == ("A", False)
    assert travel("D", False, "relative") == ("B", True) and travel("D", True, "relative") == ("F", False)
    assert (dominant("D", False), dominant("D", True), dominant("F#", True), dominant("F", False)) == (
        "A",
        "A",
        "C#",
        "C",
    )


def test_repeat_and_variation_costs() -> None:
    memory = PhraseMemory(PhrasePlan(seed=0))
    old = bar(60, 62, 64, 65)
    role = Role(source=0, exact=True)
    memory.remember(0, old, minor=False, energy=0)
    source = memory.remembered(0)
    assert source is not None and form_cost(old, role, source, 0) == 0.0
    same_rhythm = bar(60, 64, 62, 65)
    other_rhythm = [AbcNote(60, Fraction(2)), AbcNote(67, Fraction(2))]
    assert 0 < form_cost(same_rhythm, role, source, 0) < form_cost(other_rhythm, role, source, 0) <= REPEAT_COST
    varied = Role(source=0, exact=False)
    assert form_cost(old, varied, source, 0) == SAME_WHEN_VARIED
    assert form_cost(same_rhythm, varied, source, 0) == 0.0


def test_a_remembered_bar_is_offered_only_in_the_same_mode_and_energy() -> None:
    plan = PhrasePlan(seed=0)
    index = next(i for i in range(SECTION) if plan.role(i).source is not None)
    source_index = plan.role(index).source
    assert source_index is not None
    memory = PhraseMemory(plan)
    memory.remember(source_index, bar(60, 62, 64, 65), minor=False, energy=1)
    assert memory.source(index, minor=False, energy=1)[1] is not None
    assert memory.source(index, minor=True, energy=1)[1] is None
    role, none = memory.source(index, minor=False, energy=2)
    assert none is None and role.source is None


def test_closing_bars_end_long_on_the_tonic_or_the_dominant() -> None:
    tonic_long = [AbcNote(62, Fraction(2)), AbcNote(60, Fraction(2))]
    dominant_long = [AbcNote(62, Fraction(2)), AbcNote(67, Fraction(2))]
    tonic_short = bar(64, 62, 62, 60)
    full, half = Role(cadence=FULL), Role(cadence=HALF)
    assert form_cost(tonic_long, full, None, 0) == 0.0
    assert form_cost(dominant_long, half, None, 0) == 0.0
    assert form_cost(dominant_long, full, None, 0) > 0
    assert form_cost(tonic_short, full, None, 0) > 0  # a calm close is long
    assert form_cost(tonic_short, full, None, 1) == 0.0  # a quarter note closes a livelier bar
    assert form_cost(bar(60, 62, 64, 65), Role(), None, 0) == 0.0


def test_line_centre_follows_valence_gently() -> None:
    line = Line(62, 74)
    assert line.aim(0.0) == 62
    assert line.aim(1.0) == 62 + GLIDE
    for _ in range(10):
        line.aim(1.0)
    assert line.centre == 74


def test_line_costs_leaps_distance_and_offers_octave_moves() -> None:
    line = Line(60, 72)
    line.aim(0.0)  # centre 60
    steps, leaps = bar(60, 62, 64, 62), bar(60, 67, 60, 67)
    assert line.cost(steps, 0) == 0.0
    assert line.cost(leaps, 0) > 0
    high = bar(84, 86, 88, 86)
    assert line.cost(high, 0) > line.cost(steps, 0)
    assert line.cost(high, -24) == 0.0  # the same bar two octaves lower sits at the centre
    moved = line.octave_moves(high, 0)
    assert [n.pitch for n in moved[0]] == [60, 62, 64, 62] and line.octave_moves(steps, 0) == []
    line.played(steps, 0)
    assert line.cost(bar(62 + HALF_SPAN), 0) > line.cost(bar(64), 0)  # the leap over the bar line counts


def heard(*bars: tuple[int, ...], tonic: int = 0) -> list[listening.HeardBar]:
    return [listening.HeardBar(tuple((p, float(i), 1.0) for i, p in enumerate(b)), tonic) for b in bars]


def test_listening_figures_on_a_known_piece() -> None:
    a, b, c, d = (64, 62, 60, 62), (64, 64, 64, 67), (62, 62, 64, 62), (60, 64, 67, 60)
    piece = heard(a, b, c, d, a, b, c, (60, 62, 64, 72))
    assert listening.bar_recurrence(piece) == 6 / 8
    assert listening.motif_recurrence(piece) == 4 / 7  # (a, b) and (b, c) come twice
    # Phrase ends: bar 4 ends on C, bar 8 on C: 100 %; other bars: a, c, a, c end on D, b on G: 0 %.
    assert listening.cadence_tonic(piece) == 100.0
    assert listening.melodic_range(piece) == 12.0
    assert listening.leap_share(piece) == pytest.approx(4 / 31)  # G-D twice, C-G, E-C'
    assert listening.drift(piece) == pytest.approx(508 / 8 - 507 / 8)  # bars 7-8 against bars 1-2


def test_heard_bars_from_messages_take_the_sounded_pitches_and_the_key() -> None:
    notes = (Note(pitch=66, start=0.0, duration=2.0), Note(pitch=62, start=2.0, duration=2.0))
    message = Bar(index=0, abc="", notes=notes, beats=4.0, meter="4/4", key="D", controls=Controls(70, 0.8, 0.2))
    assert listening.from_bar(message).notes == ((66, 0.0, 2.0), (62, 2.0, 2.0))
    assert listening.from_bar(message, [78, 74]).notes[0][0] == 78 and listening.from_bar(message).tonic == 2
    with pytest.raises(ValueError, match="pitches"):
        listening.from_bar(message, [78])
    rests = listening.from_abc_notes([AbcNote(None, Fraction(1)), AbcNote(60, Fraction(3))], 0)
    assert rests.notes == ((60, 1.0, 3.0),)


def test_the_sketch_composer_follows_the_same_phrase_plan() -> None:
    composer = SketchComposer(seed=4)
    steady = Controls(tempo=70, valence=0.8, energy=0.5)
    bars = [composer.next_bar(steady) for _ in range(2 * SECTION)]
    plan = PhrasePlan(seed=4)
    repeats = [(i, plan.role(i).source) for i in range(2 * SECTION) if plan.role(i).source is not None]
    exact = [(i, s) for i, s in repeats if plan.role(i).exact]
    varied = [(i, s) for i, s in repeats if not plan.role(i).exact]
    assert exact and all(bars[i].notes == bars[s].notes for i, s in exact)
    assert varied and all([n.duration for n in bars[i].notes] == [n.duration for n in bars[s].notes] for i, s in varied)
    composer.reset(4)
    sources = {s for _, s in exact}
    moving = [composer.next_bar(replace(steady, energy=0.1 if i in sources else 0.9)) for i in range(2 * SECTION)]
    assert not any(moving[i].notes == moving[s].notes for i, s in exact)  # energy moved since: new bars
