"""A listener whose hidden relaxation follows the music it hears (the `[response]` section of a listener profile).

The model, per integration step of `step_s` seconds on a fixed time grid (so the same seed gives the same noise
whatever the caller's query pattern):

    appeal    a = exp(-1/2 * sum over the controls of ((value - preferred_<name>) / <name>_width)^2)
    goal      r* = rest + (peak - rest) * a * (1 - habituation_depth * h)
    state     r += (r* - r) * (1 - exp(-step / time_constant_s))
    output    clip(r + n, 0, 1),   n an Ornstein-Uhlenbeck fluctuation (std `noise`, time constant `noise_time_s`)

Controls act `delay_s` after `hear()`. Habituation h in [0, 1] grows toward 1 with time constant `habituation_s`
while the music stays the same, and a change of distance d (in units of each control's natural range, the span of its
default bounds: 40 BPM, 1, 1) shrinks it by exp(-d / habituation_reset): the same music slowly loses some of its
effect; new music restores it.
Before any music is heard, a = 0 (the listener rests at `rest`).
"""

from __future__ import annotations

import bisect
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.models.core.controls import CONTROLS
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Controls, FloatArray

# the natural range of each control for habituation distances: the span of its default bounds (40 BPM, 1, 1)
NATURAL_RANGE = tuple(spec.bounds[1] - spec.bounds[0] for spec in CONTROLS)


def response_fields(name: str) -> tuple[str, str]:
    """The ResponseConfig fields of one control: the value this listener prefers and how far from it the appeal
    falls to exp(-1/2)."""
    return f"preferred_{name}", f"{name}_width"


@dataclass(frozen=True)
class ResponseConfig:
    """Two fields per row of the control table (`preferred_<name>`, `<name>_width`), then the response's shape."""

    preferred_tempo: float = 62.0  # BPM this listener relaxes to best
    preferred_valence: float = 0.7
    preferred_energy: float = 0.25
    tempo_width: float = 14.0  # BPM away from the preference at which the appeal falls to exp(-1/2)
    valence_width: float = 0.35
    energy_width: float = 0.3
    rest: float = 0.3  # relaxation with music that does nothing for this listener
    peak: float = 0.85  # relaxation under the preferred music, before habituation
    start: float = 0.3  # hidden relaxation at t = 0
    time_constant_s: float = 40.0
    delay_s: float = 5.0
    noise: float = 0.03
    noise_time_s: float = 20.0
    habituation_s: float = 300.0
    habituation_depth: float = 0.15
    habituation_reset: float = 0.2
    step_s: float = 0.5

    def preferred(self) -> tuple[float, ...]:
        """The preferred value of each control, in the table's order."""
        return tuple(getattr(self, response_fields(spec.name)[0]) for spec in CONTROLS)

    def widths(self) -> tuple[float, ...]:
        """The width of each control's appeal, in the table's order."""
        return tuple(getattr(self, response_fields(spec.name)[1]) for spec in CONTROLS)

    def validate(self) -> None:
        for spec in CONTROLS:
            preferred, width = response_fields(spec.name)
            if not getattr(self, width) > 0:
                raise ValueError(f"response.{width} must be positive, got {getattr(self, width)}")
            if not spec.low <= getattr(self, preferred) <= spec.high:
                raise ValueError(
                    f"response.{preferred} must be within {spec.range_text()}, got {getattr(self, preferred)}"
                )
        for name in (
            "time_constant_s",
            "noise_time_s",
            "habituation_s",
            "habituation_reset",
            "step_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"response.{name} must be positive, got {getattr(self, name)}")
        for name in ("rest", "peak", "start", "habituation_depth"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"response.{name} must be within 0..1, got {getattr(self, name)}")
        for name in ("delay_s", "noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"response.{name} must be >= 0, got {getattr(self, name)}")


def response_from_table(table: Any, where: str = "response") -> ResponseConfig:
    """Build a ResponseConfig from a TOML table, naming the key on any error."""
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table")
    known = {f.name for f in fields(ResponseConfig)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]}; known keys: {', '.join(sorted(known))}")
    values: dict[str, float] = {}
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where}.{key} must be a finite number, got {value!r}")
        values[key] = float(value)
    config = ResponseConfig(**values)
    try:
        config.validate()
    except ValueError as error:
        raise ConfigError(str(error)) from error
    return config


def load_response(path: Path) -> ResponseConfig:
    """The `[response]` section of a listener profile TOML file (defaults if the file has none)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"listener profile not found: {path}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    return response_from_table(data.get("response", {}), "response")


def appeal(config: ResponseConfig, controls: Controls) -> float:
    """How much this listener likes the controls: 1 at its preference, exp(-1/2) one width away on one control."""
    z = sum(
        ((value - preferred) / width) ** 2
        for value, preferred, width in zip(controls.values(), config.preferred(), config.widths(), strict=True)
    )
    return math.exp(-0.5 * z)


def distance(a: Controls, b: Controls) -> float:
    """How far apart two settings are, in units of each control's natural range."""
    return math.sqrt(
        sum(((x - y) / span) ** 2 for x, y, span in zip(a.values(), b.values(), NATURAL_RANGE, strict=True))
    )


class MusicResponsiveState:
    """A HiddenState (`relaxation(t)` in [0, 1]) that also hears music: `hear(controls, t)`.

    Any time may be queried (the past is kept); `hear()` times must not go backwards. Deterministic per seed: the
    noise is drawn on a fixed time grid, whatever the query pattern.
    """

    def __init__(self, config: ResponseConfig, seed: int = 0, t0: float = 0.0) -> None:
        config.validate()
        self.config = config
        self._rng = np.random.default_rng(seed)
        self._t0 = t0
        self._k = 0  # grid index of the newest computed state
        self._r = config.start
        self._n = 0.0
        self._h = 0.0
        self._history = [config.start]  # output at each grid step, so any past time can be read back
        self._times: list[float] = []  # when each heard control takes effect (delay included), ascending
        self._heard: list[Controls] = []
        self._last_effective: Controls | None = None

    def hear(self, controls: Controls, t: float) -> None:
        effective = t + self.config.delay_s
        if self._times and effective < self._times[-1]:
            raise ValueError("hear() times must not go backwards")
        self._times.append(effective)
        self._heard.append(controls)

    def controls_at(self, t: float) -> Controls | None:
        """The controls acting on the listener at time t (None before any music)."""
        i = bisect.bisect_right(self._times, t) - 1
        return self._heard[i] if i >= 0 else None

    def goal(self, controls: Controls | None) -> float:
        """r* for these controls with the current habituation."""
        c = self.config
        if controls is None:
            return c.rest
        a = appeal(c, controls)
        return c.rest + (c.peak - c.rest) * a * (1.0 - c.habituation_depth * self._h)

    def _step(self) -> None:
        c = self.config
        t = self._t0 + self._k * c.step_s
        controls = self.controls_at(t)
        if controls is not None and self._last_effective is not None and controls is not self._last_effective:
            self._h *= math.exp(-distance(controls, self._last_effective) / c.habituation_reset)
        if controls is not None:
            self._h += (1.0 - self._h) * (1.0 - math.exp(-c.step_s / c.habituation_s))
            self._last_effective = controls
        goal = self.goal(controls)
        self._r += (goal - self._r) * (1.0 - math.exp(-c.step_s / c.time_constant_s))
        # exact OU discretisation: stationary std `noise` whatever the step
        keep = math.exp(-c.step_s / c.noise_time_s)
        self._n = self._n * keep + c.noise * math.sqrt(1.0 - keep * keep) * float(self._rng.standard_normal())
        self._k += 1
        self._history.append(min(1.0, max(0.0, self._r + self._n)))

    def relaxation(self, t: float) -> float:
        position = max(0.0, (t - self._t0) / self.config.step_s)
        while self._k < math.ceil(position - 1e-9):
            self._step()
        below = min(int(position), self._k)
        above = min(below + 1, self._k)
        frac = min(1.0, position - below)
        return self._history[below] + (self._history[above] - self._history[below]) * frac

    @property
    def habituation(self) -> float:
        return self._h


def fixed_trajectories(config: ResponseConfig, controls: FloatArray, duration_s: float, seed: int = 0) -> FloatArray:
    """Hidden relaxation (n_steps + 1, K) for K fixed settings (controls is (K, one column per control)), each
    heard from t = 0 for the whole duration. Exactly what MusicResponsiveState gives for one fixed setting with the
    same seed, computed for all K at once (the grid search for the best fixed controls)."""
    c = config
    rng = np.random.default_rng(seed)
    n_steps = max(0, math.ceil(duration_s / c.step_s - 1e-9))
    z = sum(
        ((controls[:, i] - preferred) / width) ** 2
        for i, (preferred, width) in enumerate(zip(c.preferred(), c.widths(), strict=True))
    )
    gain = (c.peak - c.rest) * np.exp(-0.5 * z)  # (K,)
    r = np.full(len(controls), c.start)
    h, n = 0.0, 0.0
    follow = 1.0 - math.exp(-c.step_s / c.time_constant_s)
    grow = 1.0 - math.exp(-c.step_s / c.habituation_s)
    keep = math.exp(-c.step_s / c.noise_time_s)
    out = np.empty((n_steps + 1, len(controls)))
    out[0] = c.start
    for k in range(n_steps):
        hearing = k * c.step_s >= c.delay_s
        if hearing:
            h += (1.0 - h) * grow
        goal = c.rest + gain * (1.0 - c.habituation_depth * h) if hearing else np.full(len(controls), c.rest)
        r += (goal - r) * follow
        n = n * keep + c.noise * math.sqrt(1.0 - keep * keep) * float(rng.standard_normal())
        out[k + 1] = np.clip(r + n, 0.0, 1.0)
    return out
