"""Control levels shared by the corpus labels, the tokenizer, the composer and the evaluation (torch-free).

The model is conditioned by one token per control at every bar start. Levels and their thresholds:

| control | measured in the data as | levels (token) | from the daemon's Controls |
|---|---|---|---|
| tempo | Q: in quarter notes per minute (100 without Q:) | <T0> < 80 <= <T1> < 120 <= <T2> | tempo BPM, same edges |
| valence | mode of the whole tune by Krumhansl-Kessler key finding | <V0> minor, <V1> major | valence < 0.5 -> minor |
| energy | note onsets per quarter beat in the bar | <E0> < 1.25 <= <E1> < 2.0 <= <E2> | energy < 1/3, < 2/3 |
| meter | M: | <M:4/4>, <M:3/4>, ... (METERS) | the composer's configured meter |

The density edges (1.25 and 2.0 onsets per beat) split the corpus bars 25 % / 31 % / 44 %: plain running eighths
(2.0) are the commonest bar and count as high energy.
"""

from __future__ import annotations

from fractions import Fraction

from neuromusic.models.core.messages import Controls

METERS = ("2/4", "3/4", "4/4", "2/2", "3/8", "6/8", "9/8", "12/8", "3/2", "6/4", "5/4")
TEMPO_EDGES = (80.0, 120.0)
DEFAULT_TEMPO = 100.0  # a tune without Q: counts as moderate (<T1>)
DENSITY_EDGES = (1.25, 2.0)  # onsets per quarter beat
ENERGY_EDGES = (1 / 3, 2 / 3)
VALENCE_EDGE = 0.5

BOS, EOS, PAD, BAR, UNK = "<BOS>", "<EOS>", "<PAD>", "|", "<UNK>"


def _level(value: float, edges: tuple[float, ...]) -> int:
    return sum(value >= edge for edge in edges)


def tempo_level(bpm: float) -> int:
    return _level(bpm, TEMPO_EDGES)


def energy_level(energy: float) -> int:
    return _level(energy, ENERGY_EDGES)


def valence_level(valence: float) -> int:
    return int(valence >= VALENCE_EDGE)


def density(onsets: int, beats: Fraction | float) -> float:
    return onsets / float(beats)


def density_level(onsets_per_beat: float) -> int:
    return _level(onsets_per_beat, DENSITY_EDGES)


def control_tokens(meter: str, tempo: int, valence: int, energy: int) -> list[str]:
    """The tokens that open a bar, in the order the model was trained with."""
    return [f"<M:{meter}>", f"<T{tempo}>", f"<V{valence}>", f"<E{energy}>"]


def tokens_for(controls: Controls, meter: str) -> list[str]:
    return control_tokens(
        meter, tempo_level(controls.tempo), valence_level(controls.valence), energy_level(controls.energy)
    )


def special_tokens() -> list[str]:
    """Every control and structure token; the tokenizer keeps them whole and never merges across them."""
    tokens = [PAD, BOS, EOS, BAR, UNK]
    tokens += [f"<M:{m}>" for m in METERS]
    tokens += [f"<T{i}>" for i in range(3)] + ["<V0>", "<V1>"] + [f"<E{i}>" for i in range(3)]
    return tokens
