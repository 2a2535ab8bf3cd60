"""A population of simulated listeners: a distribution over the response model of drivers/listener_response.py.

Policies are judged on listeners they were never tuned on: `draw_population(n, seed)` draws n response models
independently from the distribution below (listener i of seed S is the same whatever n). Preferences lie anywhere
within the control bounds, so the best music may sit in any corner of the box.

| parameter | distribution |
|---|---|
| preferred_<control> | uniform within the control's bounds (default tempo 50..90 BPM, valence and energy 0..1) |
| <control>_width | log-uniform 0.2..0.5 of the span of its default bounds (tempo 8..20 BPM, others 0.2..0.5) |
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

import numpy as np
from neuromusic.drivers.listener_response import NATURAL_RANGE, ResponseConfig, response_fields
from neuromusic.models.core.controls import CONTROLS

WIDTH = (0.2, 0.5)  # of each control's natural range (the span of its default bounds)
REST = (0.2, 0.4)
PEAK = (0.7, 0.9)
TIME_CONSTANT_S = (20.0, 120.0)
DELAY_S = (2.0, 20.0)
NOISE = (0.02, 0.05)
HABITUATION_DEPTH = (0.0, 0.3)
HABITUATION_S = (150.0, 600.0)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


Box = tuple[tuple[float, float], ...]  # where preferences may lie: (low, high) per control, in the table's order


def draw_listener(seed: int, index: int, box: Box | None = None) -> ResponseConfig:
    """Listener `index` of population `seed`: its own random stream, so it does not depend on how many are drawn.
    Preferences lie within `box` (the control bounds; each row's default bounds when None)."""
    box = box or tuple(spec.bounds for spec in CONTROLS)
    if len(box) != len(CONTROLS):
        raise ValueError(f"a preference box has one (low, high) per control, got {len(box)}")
    rng = np.random.default_rng([seed, index])
    rest = float(rng.uniform(*REST))
    preferred = {
        response_fields(spec.name)[0]: float(rng.uniform(low, high))
        for spec, (low, high) in zip(CONTROLS, box, strict=True)
    }
    widths = {
        response_fields(spec.name)[1]: _log_uniform(rng, WIDTH[0] * span, WIDTH[1] * span)
        for spec, span in zip(CONTROLS, NATURAL_RANGE, strict=True)
    }
    config = ResponseConfig(
        **preferred,
        **widths,
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


def draw_population(n: int, seed: int = 0, box: Box | None = None) -> list[ResponseConfig]:
    """n listeners drawn from the population (listeners 0..n-1 of population `seed`)."""
    if n < 1:
        raise ValueError(f"a population needs at least 1 listener, got {n}")
    return [draw_listener(seed, i, box) for i in range(n)]


def describe(config: ResponseConfig) -> str:
    """One line: where this listener's preference lies and how it responds."""
    prefers = ", ".join(
        f"{spec.label} {spec.show(value)}" for spec, value in zip(CONTROLS, config.preferred(), strict=True)
    )
    return f"prefers {prefers}; tau {config.time_constant_s:.0f} s, delay {config.delay_s:.0f} s"
