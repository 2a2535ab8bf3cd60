"""The live FluidSynth sound, rendered offline through the same synth settings: its peaks at the loudest the controls
ask for, and the balance of the arranged parts."""

from __future__ import annotations

import pytest
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.drivers.sinks.loudness import PEAK_CEILING_DB, measure
from neuromusic.drivers.sinks.offline import LiveTap, arrange, play
from neuromusic.models.core.messages import Bar, Controls
from neuromusic.models.music.arranger import ROLES, Arranger
from neuromusic.models.music.sketch_composer import SketchComposer

from tests.playback_fixtures import SOUNDFONT

LIVE = SinkConfig(soundfont=SOUNDFONT)  # the live sink's defaults: calibrated gain, reverb on


def bars(valence: float, energy: float, n: int = 8) -> list[Bar]:
    composer = SketchComposer(seed=0)
    return [composer.next_bar(Controls(66.0, valence, energy)) for _ in range(n)]


def live(music: list[Bar], roles: tuple[str, ...] = ROLES) -> LiveTap:
    arranger = Arranger()
    events, tempi, end = arrange(arranger, music)
    tap = LiveTap(LIVE)
    play([tap], arranger.programs(), [e for e in events if e.role in roles], tempi, end)
    return tap


@pytest.mark.parametrize("valence", [0.1, 0.9])
def test_the_live_sound_keeps_under_the_peak_ceiling_at_full_energy(valence: float) -> None:
    """No limiter runs in the live path (FluidSynth's audio thread renders straight to the device): the gain staging
    alone keeps every part at the highest velocities under the ceiling."""
    tap = live(bars(valence, 1.0))
    loudness = measure(tap.samples, tap.rate)
    assert -23.0 <= loudness.integrated <= -14.0, loudness.line()  # the music, at its loudest
    assert loudness.true_peak <= PEAK_CEILING_DB - 2.0, loudness.line()  # with room for [sinks] gain up to ~+2 dB


def test_a_doubled_gain_is_heard_louder_in_the_live_sound() -> None:
    music = bars(0.9, 1.0, 4)
    plain = measure(live(music).samples, 44100)
    tap = LiveTap(SinkConfig(soundfont=SOUNDFONT, gain=2.0))
    arranger = Arranger()
    events, tempi, end = arrange(arranger, music)
    play([tap], arranger.programs(), events, tempi, end)
    assert measure(tap.samples, tap.rate).integrated - plain.integrated == pytest.approx(6.0, abs=1.0)


@pytest.mark.parametrize("energy", [0.1, 0.9])
def test_no_part_is_buried_under_the_melody_or_drowns_it(energy: float) -> None:
    music = bars(0.6, energy)
    level = {role: measure(live(music, (role,)).samples, 44100).integrated for role in ROLES}
    for role in ROLES:
        assert -10.0 <= level[role] - level["melody"] <= 0.0, (role, level)
