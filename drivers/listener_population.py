"""A population of simulated listeners: a distribution over the response model of drivers/listener_response.py.

Policies are judged on listeners they were never tuned on: `draw_population(n, seed)` draws n response models
independently from the distribution below (listener i of seed S is the same whatever n). Preferences lie anywhere
within the control bounds, so the best music may sit in any corner of the box.

| parameter | distribution |
|---|---|
| preferred_tempo | uniform within the tempo bounds (default 50..90 BPM) |
| preferred_valence, preferred_energy | uniform within their bounds (default 0..1) |
| tempo_width | log-uniform 8..20 BPM |
| valence_width, energy_width | log-uniform 0.2..0.5 |
| rest | uniform 0.2..0.4 (also the starting relaxation) |
| peak | uniform 0.7..0.9 |
| time_constant_s | log-uniform 20..120 s |
| delay_s | uniform 2..20 s |
| noise | uniform 0.02..0.05 (Ornstein-Uhlenbeck std; noise_time_s 20 s) |
| habituation_depth | uniform 0..0.3 |
| habituation_s | log-uniform 150..600 s (habituation_reset 0.2) |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from neuromusic.drivers.listener_response import ResponseConfig

TEMPO_WIDTH_BPM = (8.0, 20.0)
UNIT_WIDTH = (0.2, 0.5)
REST = (0.2, 0.4)
PEAK = (0.7, 0.9)
TIME_CONSTANT_S = (20.0, 120.0)
DELAY_S = (2.0, 20.0)
NOISE = (0.02, 0.05)
HABITUATION_DEPTH = (0.0, 0.3)
HABITUATION_S = (150.0, 600.0)


@dataclass(frozen=True)
class PreferenceBox:
    """Where preferences may lie: the control bounds (tempo in BPM, valence and energy in 0..1)."""

    tempo_min: float = 50.0
    tempo_max: float = 90.0
    valence_min: float = 0.0
    valence_max: float = 1.0
    energy_min: float = 0.0
    energy_max: float = 1.0


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def draw_listener(seed: int, index: int, box: PreferenceBox | None = None) -> ResponseConfig:
    """Listener `index` of population `seed`: its own random stream, so it does not depend on how many are drawn."""
    box = box or PreferenceBox()
    rng = np.random.default_rng([seed, index])
    rest = float(rng.uniform(*REST))
    config = ResponseConfig(
        preferred_tempo=float(rng.uniform(box.tempo_min, box.tempo_max)),
        preferred_valence=float(rng.uniform(box.valence_min, box.valence_max)),
        preferred_energy=float(rng.uniform(box.energy_min, box.energy_max)),
        tempo_width=_log_uniform(rng, *TEMPO_WIDTH_BPM),
        valence_width=_log_uniform(rng, *UNIT_WIDTH),
        energy_width=_log_uniform(rng, *UNIT_WIDTH),
        rest=rest,
        peak=float(rng.uniform(*PEAK)),
        start=rest,
        time_constant_s=_log_uniform(rng, *TIME_CONSTANT_S),
        delay_s=float(rng.uniform(*DELAY_S)),
        noise=float(rng.uniform(*NOISE)),
        habituation_depth=float(rng.uniform(*HABITUATION_DEPTH)),
        habituation_s=_log_uniform(rng, *HABITUATION_S),
    )
    config.validate()
    return config


def draw_population(n: int, seed: int = 0, box: PreferenceBox | None = None) -> list[ResponseConfig]:
    """n listeners drawn from the population (listeners 0..n-1 of population `seed`)."""
    if n < 1:
        raise ValueError(f"a population needs at least 1 listener, got {n}")
    return [draw_listener(seed, i, box) for i in range(n)]


def describe(config: ResponseConfig) -> str:
    """One line: where this listener's preference lies and how it responds."""
    return (
        f"prefers {config.preferred_tempo:.0f} BPM, valence {config.preferred_valence:.2f}, energy "
        f"{config.preferred_energy:.2f}; tau {config.time_constant_s:.0f} s, delay {config.delay_s:.0f} s"
    )
