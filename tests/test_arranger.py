"""Arranger, harmony and the sketch composer: pure functions of their inputs, no clock and no sound needed."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
from neuromusic.daemon.config import load_config
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Bar, Controls, NoteEvent
from neuromusic.models.music.abc import parse_bar
from neuromusic.models.music.arranger import CALM_CHANNELS, CHANNELS, Arranger, ArrangerConfig, TempoRamp
from neuromusic.models.music.controls import energy_level
from neuromusic.models.music.harmony import choose_chord, infer_key, read_key, voice_chord
from neuromusic.models.music.sketch_composer import SketchComposer
from neuromusic.models.music.variation import Form

from tests.playback_fixtures import melody_bar


def role(events: tuple[NoteEvent, ...] | list[NoteEvent], name: str) -> list[NoteEvent]:
    return [e for e in events if e.role == name]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


# -- harmony ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pitches", "key", "chord"),
    [
        ([60, 64, 67, 72], "C", "C"),
        ([67, 71, 74, 71], "C", "G"),
        ([65, 69, 72, 69], "C", "F"),
        ([69, 72, 76, 72], "C", "Am"),
        ([57, 60, 64, 60], "Am", "Am"),
        ([64, 68, 71, 68], "Am", "E"),  # harmonic minor: the major dominant
    ],
)
def test_the_chord_comes_from_the_melody(pitches: list[int], key: str, chord: str) -> None:
    assert choose_chord([(p, 1.0) for p in pitches], read_key(key)).name == chord


def test_a_cadence_prefers_the_tonic_and_an_unreadable_key_is_inferred() -> None:
    ambiguous = [(67, 1.0), (64, 1.0)]  # E and G: in C and in Em
    key = read_key("C")
    assert choose_chord(ambiguous, key, cadence=True).name == "C"
    assert read_key("not a key", [57, 60, 64, 57, 60, 64, 59]).name == "Am"
    assert infer_key([]).name == "C"


def test_voicings_move_little_and_sit_near_the_requested_register() -> None:
    key = read_key("C")
    c, f = choose_chord([(60, 1)], key), choose_chord([(65, 1), (69, 1)], key)
    first = voice_chord(c, 55.0)
    second = voice_chord(f, 55.0, first)
    assert abs(mean(list(first)) - 55.0) <= 4.0
    assert sum(abs(a - b) for a, b in zip(first, second, strict=True)) <= 4  # C -> F by common-tone voice leading
    assert mean(list(voice_chord(c, 70.0))) > mean(list(voice_chord(c, 50.0))) + 12


# -- arranger --------------------------------------------------------------------------------------------------------
def test_tempo_ramp_integrates_the_changing_tempo() -> None:
    ramp = TempoRamp(60.0, 90.0, 4.0)
    steps = 4000
    numeric = sum(60.0 / (60.0 + 30.0 * (i + 0.5) / steps) * 4.0 / steps for i in range(steps))
    assert ramp.duration == pytest.approx(numeric, rel=1e-6)
    assert TempoRamp(80.0, 80.0, 4.0).duration == pytest.approx(3.0)


def test_tempo_moves_in_ramps_never_jumps() -> None:
    arranger = Arranger(ArrangerConfig(tempo_ramp_bpm=5.0))
    ends = []
    for i, tempo in enumerate([60.0, 90.0, 90.0, 90.0, 50.0]):
        arranged = arranger.arrange_bar(melody_bar([60, 62, 64, 65], i, controls=Controls(tempo, 0.5, 0.5)), 0.0)
        ends.append((arranged.ramp.start, arranged.ramp.end))
    assert ends == [(60.0, 60.0), (60.0, 65.0), (65.0, 70.0), (70.0, 75.0), (75.0, 70.0)]
    fast = Arranger(ArrangerConfig(tempo_ramp_bpm=50.0))
    fast.arrange_bar(melody_bar([60], 0, controls=Controls(60.0, 0.5, 0.5)), 0.0)
    assert fast.arrange_bar(melody_bar([60], 1, controls=Controls(90.0, 0.5, 0.5)), 0.0).ramp.end == 90.0


def test_energy_sets_loudness_and_density() -> None:
    def arranged(energy: float) -> tuple[NoteEvent, ...]:
        return Arranger().arrange_bar(melody_bar([60, 64, 67, 64], controls=Controls(70.0, 0.6, energy)), 0.0).events

    low, mid, high = arranged(0.1), arranged(0.5), arranged(0.9)

    def onsets(events: tuple[NoteEvent, ...]) -> int:
        return len({round(e.t, 6) for e in events if e.role != "melody"})

    assert onsets(low) < onsets(mid) < onsets(high)
    for name in ("melody", "chords", "bass"):
        assert mean([e.velocity for e in role(low, name)]) < mean([e.velocity for e in role(high, name)])
    assert all(e.duration >= 0.9 for e in role(low, "chords"))  # held chords at low energy


def test_valence_sets_the_register_and_the_accompaniment_glides() -> None:
    arranger = Arranger(ArrangerConfig(register_glide=3.0))
    centres = []
    for i, valence in enumerate([0.0, 0.0, 1.0, 1.0, 1.0, 1.0]):
        bar = melody_bar([60, 62, 64, 62], i, controls=Controls(70.0, valence, 0.2))
        centres.append(mean([e.pitch for e in role(arranger.arrange_bar(bar, 0.0).events, "chords")]))
    steps = [b - a for a, b in itertools.pairwise(centres)]
    assert centres[-1] > centres[0] + 6
    assert max(abs(s) for s in steps) <= 3.0 + 2.0  # a glide (plus voicing rounding), not a leap
    low = Arranger().arrange_bar(melody_bar([72, 74, 76, 74], controls=Controls(70.0, 0.0, 0.5)), 0.0)
    high = Arranger().arrange_bar(melody_bar([60, 62, 64, 62], controls=Controls(70.0, 1.0, 0.5)), 0.0)
    assert mean([e.pitch for e in role(low.events, "melody")]) < mean([e.pitch for e in role(high.events, "melody")])


def test_a_mode_flip_is_a_gentle_transition() -> None:
    arranger = Arranger()
    calm = Controls(70.0, 0.7, 0.8)
    arranger.arrange_bar(melody_bar([60, 64, 67, 64], 0, "C", calm), 0.0)
    steady = arranger.arrange_bar(melody_bar([60, 64, 67, 64], 1, "C", calm), 0.0)
    flip = arranger.arrange_bar(melody_bar([57, 60, 64, 60], 2, "Am", dataclasses.replace(calm, valence=0.3)), 0.0)
    assert len(role(flip.events, "chords")) < len(role(steady.events, "chords"))  # held, not arpeggiated
    # softer: the loudness ramps down over the flip bar
    assert mean([e.velocity for e in role(flip.events, "melody")]) < mean(
        [e.velocity for e in role(steady.events, "melody")]
    )


def test_events_are_timed_by_the_bar_start_and_channels_follow_roles() -> None:
    arranged = Arranger().arrange_bar(melody_bar([60, 62, 64, 65], controls=Controls(60.0, 0.5, 0.5)), 10.0)
    melody = [e for e in role(arranged.events, "melody") if e.channel == CHANNELS["melody"]]
    assert [e.t for e in melody] == pytest.approx([10.0, 11.0, 12.0, 13.0])
    assert arranged.duration == pytest.approx(4.0)
    assert all(e.channel in (CHANNELS[e.role], CALM_CHANNELS.get(e.role)) for e in arranged.events)
    assert min(e.t for e in arranged.events) >= 10.0 and max(e.t + e.duration for e in arranged.events) <= 14.0
    assert [t for t, _ in arranged.tempi] == pytest.approx([10.0, 11.0, 12.0, 13.0])
    assert [bpm for _, bpm in arranged.tempi] == pytest.approx([60.0] * 4)
    assert Arranger().arrange(melody_bar([60]), 0.0, 60.0) == list(
        Arranger().arrange_bar(melody_bar([60]), 0.0, 60.0).events
    )


def test_arranger_options_change_the_output() -> None:
    bar = melody_bar([60, 64, 67, 64], controls=Controls(60.0, 0.5, 0.5))
    default = Arranger().arrange_bar(bar, 0.0).events
    assert {e.role for e in Arranger(ArrangerConfig(roles=("melody", "bass"))).arrange_bar(bar, 0.0).events} == {
        "melody",
        "bass",
    }
    assert Arranger(ArrangerConfig(programs={"melody": 73})).programs()[0] == 73
    assert Arranger().programs() == {0: 0, 1: 46, 2: 32, 3: 89, 4: 73, 5: 49, 6: 42}
    assert Arranger(ArrangerConfig(calm_programs={})).programs() == {0: 0, 1: 46, 2: 32, 3: 89}
    loud = Arranger(ArrangerConfig(velocity_low=90, velocity_high=120)).arrange_bar(bar, 0.0).events
    assert mean([e.velocity for e in loud]) > mean([e.velocity for e in default]) + 12
    high = Arranger(ArrangerConfig(melody_center_low=80, melody_center_high=90)).arrange_bar(bar, 0.0).events
    assert mean([e.pitch for e in role(high, "melody")]) > mean([e.pitch for e in role(default, "melody")]) + 10
    short = Arranger(ArrangerConfig(legato=0.5)).arrange_bar(bar, 0.0).events
    assert role(short, "melody")[0].duration == pytest.approx(0.5 * role(default, "melody")[0].duration / 0.95)


def channels_of(events: tuple[NoteEvent, ...], name: str) -> set[int]:
    return {e.channel for e in role(events, name)}


def test_calm_is_carried_by_sustained_voices_and_energy_by_the_lively_ones() -> None:
    def arranged(energy: float, config: ArrangerConfig | None = None) -> tuple[NoteEvent, ...]:
        bar = melody_bar([60, 64, 67, 64], controls=Controls(70.0, 0.6, energy))
        return Arranger(config).arrange_bar(bar, 0.0).events

    calm, middle, lively = arranged(0.1), arranged(0.45), arranged(0.9)
    for name in ("melody", "chords", "bass"):
        assert channels_of(calm, name) == {CALM_CHANNELS[name]}
        assert channels_of(middle, name) == {CHANNELS[name], CALM_CHANNELS[name]}  # crossfaded: both sound
        assert channels_of(lively, name) == {CHANNELS[name]}
    assert channels_of(calm, "pad") == channels_of(lively, "pad") == {CHANNELS["pad"]}
    assert all(e.duration >= 0.9 for e in calm if e.role != "melody")  # everything held under a calm melody
    plain = arranged(0.1, ArrangerConfig(calm_programs={}))
    assert {e.channel for e in plain} <= set(CHANNELS.values())  # calm_programs = {}: the same voices throughout


def test_an_energy_change_swells_over_a_bar_and_moves_the_level_a_little() -> None:
    arranger = Arranger(ArrangerConfig(calm_programs={}, variation=False))
    bars = [
        arranger.arrange_bar(melody_bar([60] * 8, i, controls=Controls(60.0, 0.6, e), length=0.5), 4.0 * i)
        for i, e in enumerate([0.1, 0.1, 0.9, 0.9])
    ]
    quiet, swell, loud = (role(bars[i].events, "melody") for i in (1, 2, 3))
    steps = [b.velocity - a.velocity for a, b in itertools.pairwise(swell)]
    assert swell[0].velocity <= quiet[0].velocity + 1  # the swell starts where the last bar ended
    assert all(0 <= step <= 8 for step in steps[1:])  # and rises note by note (the first note carries an accent)
    assert loud[-1].velocity - 8 <= swell[-1].velocity < loud[-1].velocity  # nearly there by the last eighth
    assert loud[-1].velocity - quiet[-1].velocity <= 45  # a narrow velocity range: a few LU, not a volume jump


def test_sections_of_32_to_64_bars_change_colour() -> None:
    form = Form(seed=3)
    sections = []
    for bar in range(1200):  # about 20 minutes at 60 BPM
        section = form.at(bar)
        if not sections or section != sections[-1]:
            sections.append(section)
    assert all(32 <= s.bars <= 64 and s.bars % 4 == 0 for s in sections)
    assert all(a.colour != b.colour for a, b in itertools.pairwise(sections))
    assert {s.colour for s in sections} == {"home", "open", "thin", "dominant"}
    assert all(b.start == a.start + a.bars for a, b in itertools.pairwise(sections))


def test_the_same_controls_do_not_mean_the_same_loop() -> None:
    arranger = Arranger(ArrangerConfig(section_bars_min=8, section_bars_max=8, form_seed=1))
    same = Controls(70.0, 0.6, 0.5)
    colours = []
    for i in range(40):
        arranged = arranger.arrange_bar(melody_bar([60, 64, 67, 64], i, "C", same), 0.0)
        section = arranger.form.at(i) if arranger.form else None
        assert section is not None
        colours.append(section.colour)
        chords = role(arranged.events, "chords")
        melody = sorted(e.pitch for e in role(arranged.events, "melody") if e.channel == CHANNELS["melody"])
        if section.colour == "thin" or (section.colour == "open" and i - section.start < 4):
            assert not chords
        else:
            assert chords
        if section.colour == "dominant":
            assert melody[0] % 12 == 7  # C moved to its dominant, G
        else:
            assert melody[0] % 12 == 0
    assert len(set(colours)) >= 3
    plain = Arranger(ArrangerConfig(variation=False))
    assert all(role(plain.arrange_bar(melody_bar([60, 64], i, "C", same), 0.0).events, "chords") for i in range(80))


def test_arranger_config_is_validated_with_the_toml_key() -> None:
    with pytest.raises(ConfigError, match=r"calm_programs\.pad: unknown role"):
        load_config(overrides={"arranger.calm_programs": {"pad": 50}})
    with pytest.raises(ConfigError, match="calm_energy < lively_energy"):
        load_config(overrides={"arranger.calm_energy": 0.7})
    with pytest.raises(ConfigError, match="section_bars_min"):
        load_config(overrides={"arranger.section_bars_min": 2})
    with pytest.raises(ConfigError, match="roles must be some of"):
        load_config(overrides={"arranger.roles": ["melody", "drums"]})
    with pytest.raises(ConfigError, match=r"programs\.pad must be a General MIDI program"):
        load_config(overrides={"arranger.programs": {"pad": 200}})
    with pytest.raises(ConfigError, match="tempo_ramp_bpm"):
        load_config(overrides={"arranger.tempo_ramp_bpm": 0})
    assert load_config(overrides={"arranger.programs": {"melody": 11}}).arranger.program("melody") == 11


# -- sketch composer -------------------------------------------------------------------------------------------------
def test_sketch_composer_honours_energy_and_valence() -> None:
    composer = SketchComposer(seed=3)
    for energy in (0.1, 0.5, 0.9):
        for valence in (0.2, 0.8):
            bar = composer.next_bar(Controls(70.0, valence, energy))
            density = len(bar.notes) / bar.beats
            assert {0: density < 1.25, 1: 1.25 <= density < 2.25, 2: density >= 2.25}[energy_level(energy)]
            assert bar.key == ("Em" if valence < 0.5 else "G")
            assert sum(n.duration for n in bar.notes) == pytest.approx(bar.beats)


def test_sketch_bars_are_valid_abc_and_phrases_cadence_on_the_tonic() -> None:
    composer = SketchComposer(seed=1)
    bars: list[Bar] = [composer.next_bar(Controls(70.0, 0.8, 0.5)) for _ in range(8)]
    for bar in bars:
        parsed = parse_bar(bar.abc, bar.meter, bar.key)  # written under the key's signature
        assert [n.pitch for n in parsed.notes] == [n.pitch for n in bar.notes]
        assert parsed.complete
    for bar in [composer.next_bar(Controls(70.0, 0.2, 0.9)) for _ in range(4)]:  # E minor, dense
        assert [n.pitch for n in parse_bar(bar.abc, bar.meter, bar.key).notes] == [n.pitch for n in bar.notes]
    assert bars[3].notes[-1].pitch % 12 == 7 and bars[7].notes[-1].pitch % 12 == 7  # G at each phrase end
    again = SketchComposer(seed=1)
    assert [again.next_bar(Controls(70.0, 0.8, 0.5)).notes for _ in range(8)] == [b.notes for b in bars]
    assert all(math.isfinite(b.compose_ms) and b.compose_ms < 50 for b in bars)


def test_texture_edges_and_form_seed_change_the_output() -> None:
    bar = melody_bar([60, 64, 67, 64], controls=Controls(70.0, 0.6, 0.35))
    default = Arranger().arrange_bar(bar, 0.0).events  # between the edges: both voices
    calmer = Arranger(ArrangerConfig(calm_energy=0.4, lively_energy=0.8)).arrange_bar(bar, 0.0).events
    assert channels_of(default, "melody") == {CHANNELS["melody"], CALM_CHANNELS["melody"]}
    assert channels_of(calmer, "melody") == {CALM_CHANNELS["melody"]}

    def colours(seed: int) -> list[str]:
        form = Form(seed)
        return [form.at(bar).colour for bar in range(0, 600, 8)]

    assert colours(0) == colours(0) and colours(0) != colours(1)
