"""ABC <-> notes (torch-free): the folk ABC the corpus uses, the compact bar form, keys, repair and fit."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from neuromusic.models.core.messages import Controls
from neuromusic.models.music import abc, bars, keyfinding
from neuromusic.models.music.controls import density_level, energy_level, tempo_level, tokens_for, valence_level
from neuromusic.models.music.corpus import find_key
from neuromusic.models.music.keyfinding import PROFILES, histogram, key_margin

TUNE = """X:7
T:Test Reel
M:C|
L:1/8
Q:1/4=120
K:Gm
"Gm"G2 (3Bcd {e}f>e d^c|[Bd]2 B-B =B2 z2|
|:g2 (ag) ~f2 !trill!e2|d8:|
"""


def pitches(bar: abc.ParsedBar) -> list[int | None]:
    return [n.pitch for n in bar.notes]


def test_folk_tune_reads_headers_accidentals_and_rhythm() -> None:
    tune = abc.parse_tune(TUNE)
    assert tune.title == "Test Reel"
    assert tune.key.name == "G" + "m" and tune.key.minor
    assert tune.tempo == 120.0
    assert len(tune.bars) == 4 and all(b.complete for b in tune.bars)
    first, second = tune.bars[0], tune.bars[1]
    # G2, a triplet B c d (B flat from the key), grace note dropped, broken rhythm f>e, d, c sharp
    assert pitches(first) == [67, 70, 72, 74, 77, 75, 74, 73]
    assert [n.duration for n in first.notes] == [1, F(1, 3), F(1, 3), F(1, 3), F(3, 4), F(1, 4), F(1, 2), F(1, 2)]
    # chord -> top note; a tie joins B-B into one note; =B naturalises for the rest of the bar; rest
    assert pitches(second) == [74, 70, 71, None]
    assert [n.duration for n in second.notes] == [1, 1, 1, 1]


def test_accidental_carries_to_the_end_of_the_bar_only() -> None:
    tune = abc.parse_tune("X:1\nM:2/4\nL:1/8\nK:C\n^FF GF|F4|\n")
    assert pitches(tune.bars[0]) == [66, 66, 67, 66]
    assert pitches(tune.bars[1]) == [65]


@pytest.mark.parametrize(
    ("text", "tonic", "minor", "fifths"),
    [("C", 0, False, 0), ("Gm", 7, True, -2), ("Ador", 9, True, 1), ("Bb", 10, False, -2), ("F#m", 6, True, 3),
     ("Dmix", 2, False, 1), ("none", 0, False, 0), ("E minor", 4, True, 1)],
)  # fmt: skip
def test_keys(text: str, tonic: int, minor: bool, fifths: int) -> None:
    key = abc.parse_key(text)
    assert (key.tonic, key.minor, key.fifths) == (tonic, minor, fifths)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("X:1\nM:none\nK:C\nCDE|\n", "no fixed bar length"),
        ("X:1\nM:4/4\nV:1\nK:C\nCDEF|\n", "several voices"),
        ("X:1\nM:4/4\nK:C\nZ4|\n", "multi-bar rest"),
        ("X:1\nM:4/4\nCDEF|\n", "no K: field"),
        ("X:1\nM:4/4\nK:C\nC#DEF|\n", "unexpected character"),
    ],
)
def test_unreadable_tunes_say_why(text: str, reason: str) -> None:
    with pytest.raises(abc.AbcError, match=reason):
        abc.parse_tune(text)


def test_split_tunes_and_meters() -> None:
    assert len(abc.split_tunes("% comment\nX:1\nK:C\nC\n\nX:2\nK:D\nD\n")) == 2
    assert abc.parse_meter("6/8") == ("6/8", F(3))
    assert abc.parse_meter("C") == ("4/4", F(4))
    assert abc.parse_tempo("3/8=60") == 90.0
    assert abc.parse_tempo("Allegro") is None


NOTE = st.builds(
    abc.AbcNote,
    st.one_of(st.none(), st.integers(min_value=40, max_value=90)),
    st.sampled_from([F(1, 4), F(1, 2), F(3, 4), F(1), F(3, 2), F(2), F(1, 3), F(4)]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(NOTE, min_size=1, max_size=12), st.sampled_from(["C", "D", "Bb", "F#m", "Ebm", "A"]))
def test_format_then_parse_gives_the_same_notes(notes: list[abc.AbcNote], key: str) -> None:
    for key_name in (None, key):  # the compact form and a real key signature
        text = abc.format_bar(notes, abc.parse_key(key_name) if key_name else None)
        assert abc.parse_bar(text, "4/4", key_name).notes == notes, text


def test_compact_form_writes_every_accidental() -> None:
    notes = [abc.AbcNote(63, F(1, 2)), abc.AbcNote(63, F(1, 2)), abc.AbcNote(64, F(1))]
    assert abc.format_bar(notes) == "_E_E=E2"
    assert abc.format_bar(notes, abc.parse_key("Cm")) == "EE=E2"


def test_repair_fits_the_meter_and_reports_it() -> None:
    long = [abc.AbcNote(60, F(3)), abc.AbcNote(62, F(3))]
    fixed, changed = bars.repair(long, F(4))
    assert changed and sum(n.duration for n in fixed) == 4 and fixed[-1] == abc.AbcNote(62, F(1))
    short = [abc.AbcNote(60, F(1))]
    fixed, changed = bars.repair(short, F(3))
    assert changed and fixed == [abc.AbcNote(60, F(3))]
    exact = [abc.AbcNote(60, F(2)), abc.AbcNote(None, F(2))]
    assert bars.repair(exact, F(4)) == (exact, False)


@pytest.mark.parametrize("beats", [F(3), F(4)])
@pytest.mark.parametrize("energy", [0, 1, 2])
@pytest.mark.parametrize("minor", [False, True])
def test_fallback_bars_are_full_in_mode_and_at_the_asked_energy(beats: F, energy: int, minor: bool) -> None:
    notes = bars.fallback(beats, minor, energy)
    assert sum(n.duration for n in notes) == beats
    assert density_level(len(notes) / float(beats)) == energy
    assert {n.pitch for n in notes} <= {60, 63 if minor else 64, 67}
    assert key_margin(histogram(notes), 0, minor) > 0  # heard in C of the asked mode, by both guide profiles


def test_misfit_prefers_the_asked_mode_and_density() -> None:
    major = [abc.AbcNote(p, F(1)) for p in (60, 64, 67, 69)]
    minor = [abc.AbcNote(p, F(1)) for p in (60, 63, 67, 68)]
    assert bars.misfit(major, F(4), False, 0) < bars.misfit(minor, F(4), False, 0)
    assert bars.misfit(minor, F(4), True, 0) < bars.misfit(major, F(4), True, 0)
    busy = [abc.AbcNote(60, F(1, 2))] * 8
    assert bars.misfit(busy, F(4), False, 2) < bars.misfit(busy, F(4), False, 0)


def test_to_bar_moves_to_the_tonic_and_writes_the_real_key() -> None:
    notes = [abc.AbcNote(60, F(1)), abc.AbcNote(63, F(1)), abc.AbcNote(None, F(1)), abc.AbcNote(67, F(1))]
    bar = bars.to_bar(3, notes, "D", True, "4/4", F(4), Controls(70, 0.1, 0.1), False, 5.0)
    assert bar.key == "Dm" and bar.beats == 4.0 and bar.index == 3
    assert [n.pitch for n in bar.notes] == [62, 65, 69]
    assert [n.start for n in bar.notes] == [0.0, 1.0, 3.0]
    assert bar.abc == "D2F2z2A2"  # F natural is in D minor's signature
    assert [n.pitch for n in abc.parse_bar(bar.abc, "4/4", "Dm").notes if n.pitch] == [62, 65, 69]


def test_control_levels_and_tokens() -> None:
    assert [tempo_level(b) for b in (60, 80, 119, 120)] == [0, 1, 1, 2]
    assert [valence_level(v) for v in (0.0, 0.49, 0.5, 1.0)] == [0, 0, 1, 1]
    assert [energy_level(e) for e in (0.0, 0.34, 0.7)] == [0, 1, 2]
    assert tokens_for(Controls(70, 0.8, 0.2), "6/8") == ["<M:6/8>", "<T0>", "<V1>", "<E0>"]


def test_misfit_judges_the_key_of_the_passage_heard_so_far() -> None:
    # Bars that dwell on Eb, G and Bb are heard in Eb major, the relative major: a C-minor bar after them fits the
    # scale either way, but only one that leans on C and G brings the passage back to C minor.
    relative_major = histogram([abc.AbcNote(p, F(1)) for p in (63, 67, 70, 63, 65, 67, 70, 63) * 2])
    assert key_margin(relative_major, 0, True) < 0
    back_home = [abc.AbcNote(p, F(1)) for p in (60, 67, 63, 60)]
    drifting = [abc.AbcNote(p, F(1)) for p in (63, 70, 67, 63)]
    assert bars.misfit(back_home, F(4), True, 0, relative_major) < bars.misfit(drifting, F(4), True, 0, relative_major)
    assert key_margin(relative_major + histogram(back_home), 0, True) > key_margin(relative_major, 0, True)


def test_key_margin_needs_every_guide_profile_to_agree() -> None:
    # Tonic and minor third without the fifth: Krumhansl-Kessler hears C minor, Temperley hears Ab major (C and Eb
    # are its third and fifth), so the guide's margin is the doubtful one.
    hist = histogram([abc.AbcNote(p, F(1)) for p in (60, 60, 60, 63, 63, 68, 70)])
    assert key_margin(hist, 0, True, ("krumhansl-kessler",)) > 0
    assert key_margin(hist, 0, True) == min(key_margin(hist, 0, True, (name,)) for name in PROFILES)
    assert keyfinding.find_key(np.zeros(12)) == (0, False) and key_margin(np.zeros(12), 0, True) == 0.0


def test_key_finding_tells_major_from_minor() -> None:
    c_major = [abc.AbcNote(p, F(1)) for p in (60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60)]
    a_minor = [abc.AbcNote(p, F(1)) for p in (57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57)]
    assert find_key(c_major) == (0, False)
    assert find_key(a_minor) == (9, True)
