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

from neuromusic.models.core.controls import CONTROLS, control_spec
from neuromusic.models.core.messages import Controls

METERS = ("2/4", "3/4", "4/4", "2/2", "3/8", "6/8", "9/8", "12/8", "3/2", "6/4", "5/4")
# The daemon's side of each level comes from the control table; the corpus measures tempo in the same BPM.
TEMPO_EDGES = control_spec("tempo").token_edges
ENERGY_EDGES = control_spec("energy").token_edges
VALENCE_EDGE = control_spec("valence").token_edges[0]
DEFAULT_TEMPO = 100.0  # a tune without Q: counts as moderate (<T1>)
DENSITY_EDGES = (1.25, 2.0)  # onsets per quarter beat

BOS, EOS, PAD, BAR, UNK = "<BOS>", "<EOS>", "<PAD>", "|", "<UNK>"


def _level(value: float, edges: tuple[float, ...]) -> int:
    return sum(value >= edge for edge in edges)


def tempo_level(bpm: float) -> int:
    return control_spec("tempo").level(bpm)


def energy_level(energy: float) -> int:
    return control_spec("energy").level(energy)


def valence_level(valence: float) -> int:
    return control_spec("valence").level(valence)


def density(onsets: int, beats: Fraction | float) -> float:
    return onsets / float(beats)


def density_level(onsets_per_beat: float) -> int:
    return _level(onsets_per_beat, DENSITY_EDGES)


def control_tokens(meter: str, *levels: int) -> list[str]:
    """The tokens that open a bar, in the order the model was trained with: the meter, then one token per control
    in the table's order (tempo, valence, energy)."""
    if len(levels) != len(CONTROLS):
        raise ValueError(f"one level per control ({', '.join(s.name for s in CONTROLS)}), got {len(levels)}")
    return [f"<M:{meter}>"] + [f"<{spec.token}{level}>" for spec, level in zip(CONTROLS, levels, strict=True)]


def tokens_for(controls: Controls, meter: str) -> list[str]:
    return control_tokens(meter, *(spec.level(value) for spec, value in zip(CONTROLS, controls.values(), strict=True)))


def special_tokens() -> list[str]:
    """Every control and structure token; the tokenizer keeps them whole and never merges across them. The order is
    the trained vocabulary's: never reorder the table's rows without retraining."""
    tokens = [PAD, BOS, EOS, BAR, UNK]
    tokens += [f"<M:{m}>" for m in METERS]
    for spec in CONTROLS:
        tokens += spec.tokens()
    return tokens
