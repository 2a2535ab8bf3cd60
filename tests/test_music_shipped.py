"""The checkpoint that ships in the package: it loads without configuration and composes valid, controllable bars."""

from __future__ import annotations

from fractions import Fraction

from neuromusic.models.core.messages import Controls
from neuromusic.models.music.abc import parse_bar
from neuromusic.models.music.composer import Composer
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.music.model import SHIPPED


def test_shipped_checkpoint_is_small_and_complete() -> None:
    names = {p.name for p in SHIPPED.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "MODEL_CARD.md"} <= names
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) <= 25 * 2**20


def test_shipped_model_composes_full_bars_that_follow_energy() -> None:
    composer = Composer.load(ComposerConfig(seed=7))
    onsets = {}
    for energy in (0.1, 0.9):
        composer.reset(7)
        bars = [composer.next_bar(Controls(tempo=70, valence=0.8, energy=energy)) for _ in range(8)]
        for bar in bars:
            assert parse_bar(bar.abc, bar.meter, bar.key).complete
            assert sum(Fraction(n.duration).limit_denominator(48) for n in bar.notes) <= 4
        onsets[energy] = sum(len(bar.notes) for bar in bars)
    assert onsets[0.9] > onsets[0.1] * 1.5
