"""The fast closed loop: the listener's score computed straight from its hidden relaxation, without EEG.

The full loop (simulated EEG -> features -> score, a composer and the arranger for every bar) is what a real session
runs; drawing a population of listeners needs thousands of sessions, so `neuromusic simulate --loop direct` replaces
the EEG path by an observation model of what it delivers for the shipped EEG profiles:

    score(t) = clip(0.5 + gain * (hidden(t - latency_s) - calibration level) + n(t), 0, 1)

n is a first-order autoregressive noise (std `noise`, time constant `noise_time_s`); one score every `hop_s`; no
usable score during the first `calibration_s` seconds (the scorer's baseline), whose mean hidden relaxation is the
calibration level. Bars last four beats at the mean of the previous and the new tempo (the arranger's ramp), and
the listener hears that mean tempo, as in the full loop. The default figures are a least-squares fit of the full
loop's scores on the hidden relaxation of the default listener (slope 0.64, residual std 0.025, correlation time
about a second, best alignment 2 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from neuromusic.models.core.messages import Score


@dataclass(frozen=True)
class DirectScoreModel:
    gain: float = 0.64
    latency_s: float = 2.0
    noise: float = 0.025
    noise_time_s: float = 1.0
    hop_s: float = 0.25
    calibration_s: float = 32.0
    beats_per_bar: float = 4.0


class DirectScorer:
    """Scores for one session: call `scores(t0, t1, hidden)` bar by bar with times going forward."""

    def __init__(self, model: DirectScoreModel, seed: int) -> None:
        self.model = model
        self._rng = np.random.default_rng([seed, 7])
        self._next_t = model.hop_s
        self._noise = 0.0
        self._calibration: list[float] = []
        self._level: float | None = None

    def scores(self, t1: float, hidden: object) -> list[Score]:
        """Every score due up to t1. `hidden` is the listener (its `relaxation(t)`)."""
        m = self.model
        keep = math.exp(-m.hop_s / m.noise_time_s)
        relaxation = hidden.relaxation  # type: ignore[attr-defined]
        out: list[Score] = []
        while self._next_t <= t1 + 1e-9:
            t = self._next_t
            self._next_t += m.hop_s
            self._noise = self._noise * keep + m.noise * math.sqrt(1 - keep * keep) * float(self._rng.standard_normal())
            h = float(relaxation(max(0.0, t - m.latency_s)))
            if t < m.calibration_s:
                self._calibration.append(h)
                out.append(Score(t, None, 0.0, "calibrating"))
                continue
            if self._level is None:
                self._level = float(np.mean(self._calibration)) if self._calibration else h
            value = min(1.0, max(0.0, 0.5 + m.gain * (h - self._level) + self._noise))
            out.append(Score(t, value, 1.0, "scoring"))
        return out


def bar_seconds(model: DirectScoreModel, previous_tempo: float | None, tempo: float) -> tuple[float, float]:
    """(duration, heard tempo) of a bar ramping from the previous bar's tempo to `tempo`."""
    heard = tempo if previous_tempo is None else (previous_tempo + tempo) / 2.0
    return model.beats_per_bar * 60.0 / heard, heard
