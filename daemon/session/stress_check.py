"""How the music answered each tension of a scripted listener (`neuromusic simulate --script calm:180,stress:120`).

For every fall of the script's level by more than 0.3 (calm -> stress) after the first minute: how many bars after
the fall the music had moved toward the tense listener (tempo up by at least 6 BPM, or energy up or valence down by
at least 0.15, from the bar playing at the fall), and whether it then led back (by the end of the tense segment, or
`lead_s` after the fall if shorter, the tempo, valence and energy are back at least half way from the largest move).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from neuromusic.drivers.simulated import parse_script
from neuromusic.models.core.messages import FloatArray

MEET_TEMPO_BPM = 6.0
MEET_UNIT = 0.15
FIRST_S = 60.0


@dataclass(frozen=True)
class StressResponse:
    onset_s: float
    bars_to_meet: int | None  # None: the music did not move toward the listener within the segment
    tempo_move: float  # largest move toward tense music within the segment (BPM)
    unit_move: float  # ... of energy up or valence down
    led_back: bool


def stress_onsets(script: str, duration_s: float) -> list[tuple[float, float]]:
    """(start, end) of every tense segment that starts after the first minute (the script loops)."""
    segments = parse_script(script)
    out, t, i = [], 0.0, 0
    while t < duration_s:
        here, before = segments[i % len(segments)], segments[(i - 1) % len(segments)]
        if i > 0 and before.level - here.level > 0.3 and t >= FIRST_S:
            out.append((t, min(t + here.seconds, duration_s)))
        t += here.seconds
        i += 1
    return out


def stress_responses(script: str, bar_t: FloatArray, controls: FloatArray, duration_s: float) -> list[StressResponse]:
    results = []
    for start, end in stress_onsets(script, duration_s):
        before = int(np.searchsorted(bar_t, start, side="right") - 1)
        inside = np.nonzero((bar_t >= start) & (bar_t < end))[0]
        if before < 0 or len(inside) == 0:
            continue
        c0 = controls[before]
        tempo = controls[inside, 0] - c0[0]
        unit = np.maximum(controls[inside, 2] - c0[2], c0[1] - controls[inside, 1])
        met = np.nonzero((tempo >= MEET_TEMPO_BPM - 1e-9) | (unit >= MEET_UNIT - 1e-9))[0]
        peak = int(np.argmax(np.maximum(tempo / MEET_TEMPO_BPM, unit / MEET_UNIT)))
        last = inside[-1]
        back = (
            controls[last, 0] - c0[0] <= 0.5 * max(tempo[peak], 0.0) + 1e-9
            and max(controls[last, 2] - c0[2], c0[1] - controls[last, 1]) <= 0.5 * max(unit[peak], 0.0) + 1e-9
        )
        results.append(
            StressResponse(
                start,
                int(met[0]) + 1 if len(met) else None,
                float(tempo.max()),
                float(unit.max()),
                bool(len(met)) and back,
            )
        )
    return results
