"""The simulated listener: plausible multichannel EEG whose relaxation follows a hidden state.

Per channel: an aperiodic 1/f^exponent background, band-limited rhythms (alpha, theta, beta, ... from the listener
profile) whose rms moves linearly with the hidden relaxation r(t) in [0, 1], white sensor noise, and optional blinks
(frontal bumps) and muscle bursts (broadband > 20 Hz, more frequent under stress). Every noise source is filtered with
carried state, so the signal is continuous across chunks; the same seed and chunk sizes give the same EEG.

Two ways to pull samples: `read(max_wait)` paces them by the injected clock (live use, from the source worker
thread); `generate(n)` returns the next n samples at once (simulation on a virtual clock).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from neuromusic.drivers.base import Connection, SourceInfo
from neuromusic.drivers.config import SourceConfig
from neuromusic.drivers.listener_profile import ListenerProfile, _prefix_weight, load_profile
from neuromusic.models.core.clock import Clock
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Chunk, FloatArray
from scipy import signal

_STATE_NAMES = {"calm": 1.0, "relaxed": 0.8, "neutral": 0.5, "tense": 0.25, "stress": 0.0, "stressed": 0.0}
_R_STEP_S = 0.05  # the hidden state is sampled this often and interpolated in between
_CHUNK_S = 0.04  # read() hands out samples in chunks of about this length
_MAX_CATCH_UP_S = 5.0  # read() never returns more than this much signal at once


class HiddenState(Protocol):
    """The listener's true relaxation over time (t in session seconds). The music-responsive state in
    drivers/listener_response.py adds `hear(controls, t)`."""

    def relaxation(self, t: float) -> float: ...


@dataclass(frozen=True)
class _Segment:
    level: float
    seconds: float


class ScriptedState:
    """Relaxation following a script "calm:60,stress:60,0.3:20" (a named state or a level in 0..1, then seconds).

    Time starts at `start` (default: the first time asked); the script loops. Between segments the level ramps
    linearly over `ramp_s` seconds, ending at the segment boundary, as physiology does not switch instantly."""

    def __init__(self, script: str, start: float | None = None, ramp_s: float = 4.0) -> None:
        self.script = script
        self.segments = parse_script(script)
        self.period = sum(s.seconds for s in self.segments)
        self.start = start
        self.ramp_s = ramp_s
        self._edges = np.cumsum([0.0] + [s.seconds for s in self.segments])

    def relaxation(self, t: float) -> float:
        if self.start is None:
            self.start = t
        u = (t - self.start) % self.period
        i = int(np.searchsorted(self._edges, u, side="right") - 1)
        i = min(max(i, 0), len(self.segments) - 1)
        level = self.segments[i].level
        # Ramp towards the next segment during the last ramp_s seconds of this one (wrapping at the end).
        nxt = self.segments[(i + 1) % len(self.segments)].level
        ramp = min(self.ramp_s, self.segments[i].seconds)
        to_end = self._edges[i + 1] - u
        if ramp > 0 and to_end < ramp:
            level = nxt + (level - nxt) * (to_end / ramp)
        return float(level)


def parse_script(script: str) -> list[_Segment]:
    segments = []
    for part in script.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, seconds = part.partition(":")
        try:
            length = float(seconds)
        except ValueError:
            length = math.nan
        if not sep or not math.isfinite(length) or length <= 0:
            raise ConfigError(f"source.script: bad segment {part!r}; write <state>:<seconds>, e.g. calm:60,stress:60")
        name = name.strip().lower()
        if name in _STATE_NAMES:
            level = _STATE_NAMES[name]
        else:
            try:
                level = float(name)
            except ValueError:
                level = math.nan
            if not 0.0 <= level <= 1.0:
                raise ConfigError(
                    f"source.script: unknown state {name!r}; use a level in 0..1 or one of {', '.join(_STATE_NAMES)}"
                )
        segments.append(_Segment(level, length))
    if not segments:
        raise ConfigError("source.script is empty; write <state>:<seconds>, e.g. calm:60,stress:60")
    return segments


def _unit_rms(sos: FloatArray) -> float:
    """rms of the filter's output for unit-variance white noise: sqrt(mean |H|² over 0..Nyquist)."""
    _, h = signal.sosfreqz(sos, worN=1 << 15)
    return float(np.sqrt(np.mean(np.abs(h) ** 2)))


def aperiodic_sos(exponent: float, sfreq: float, f_low: float = 0.1, per_decade: int = 3) -> FloatArray:
    """First-order pole/zero pairs spaced evenly on a log axis: power ~ 1/f^exponent above f_low (exponent < 2).

    A pole at f and a zero at f·ratio^(exponent/2) per step of `ratio` gives an average slope of -10·exponent dB per
    decade in power; ripple stays under about 1 dB with three pairs per decade."""
    ratio = 10.0 ** (1.0 / per_decade)
    sections = []
    f = f_low
    while f < sfreq / 2:
        fz = f * ratio ** (exponent / 2.0)
        p = math.exp(-2.0 * math.pi * f / sfreq)
        z = math.exp(-2.0 * math.pi * fz / sfreq)
        sections.append([1.0, -z, 0.0, 1.0, -p, 0.0])
        f *= ratio
    return np.array(sections, dtype=np.float64)


class _NoiseFilter:
    """White noise through a fixed SOS filter with carried state, scaled to unit rms output."""

    def __init__(self, sos: FloatArray, n_channels: int) -> None:
        self.sos = sos
        self.scale = 1.0 / _unit_rms(sos)
        self.zi = np.zeros((sos.shape[0], n_channels, 2))

    def __call__(self, white: FloatArray) -> FloatArray:
        y, self.zi = signal.sosfilt(self.sos, white, axis=-1, zi=self.zi)
        return np.asarray(y) * self.scale


@dataclass
class _Event:
    t: float  # centre time
    channel_gain: FloatArray  # (channels,)


class SimulatedListener(Connection):
    """A Source (drivers/base.py) producing simulated EEG in microvolts; see the module docstring."""

    def __init__(self, profile: ListenerProfile, hidden_state: HiddenState, clock: Clock, seed: int = 0) -> None:
        self.profile = profile
        self.hidden_state = hidden_state
        self.clock = clock
        self.sfreq = profile.sfreq
        self.channel_names = tuple(profile.channels)
        n = len(self.channel_names)
        self._rng = np.random.default_rng(seed)
        # Fixed per-channel gain scatter (skull thickness, electrode impedance): ±15 %.
        self._gain = 1.0 + 0.15 * (2.0 * self._rng.random(n) - 1.0)
        bg = profile.background
        self._background = _NoiseFilter(aperiodic_sos(bg.exponent, self.sfreq), n)
        self._rhythms = []
        for rhythm in profile.rhythms.values():
            low, high = rhythm.freq_hz - rhythm.bandwidth_hz / 2, rhythm.freq_hz + rhythm.bandwidth_hz / 2
            sos = np.asarray(signal.butter(2, [low, high], btype="bandpass", fs=self.sfreq, output="sos"))
            weights = np.array([rhythm.weight(c) for c in self.channel_names])
            self._rhythms.append((rhythm, _NoiseFilter(sos, n), weights))
        emg_sos = np.asarray(signal.butter(4, 20.0, btype="highpass", fs=self.sfreq, output="sos"))
        self._emg = _NoiseFilter(emg_sos, n)
        self._blink_w = np.array([_prefix_weight(profile.blinks.weights, c) for c in self.channel_names])
        self._muscle_w = np.array([_prefix_weight(profile.muscle.weights, c) for c in self.channel_names])
        self._blinks: list[_Event] = []
        self._bursts: list[_Event] = []
        self._next_blink: float | None = None
        self._next_burst: float | None = None
        self._t0: float | None = None
        self._emitted = 0
        self._lock = threading.Lock()
        self._open = False

    # -- Source ----------------------------------------------------------------------------------------------------

    def open(self) -> SourceInfo:
        """Start (or resume) streaming. After a close(), the samples that fell due meanwhile are skipped, as with a
        headset that was switched off."""
        with self._lock:
            if self._t0 is None:
                self._t0 = self.clock.now()
            else:
                self._emitted = max(self._emitted, self._due())
            self._open = True
        return SourceInfo(f"simulated listener {self.profile.name!r}", self.sfreq, self.channel_names, "simulated")

    def read(self, max_wait: float) -> Chunk | None:
        """Samples that fell due on the clock since the last read, waiting up to max_wait seconds for some."""
        if not self._open:
            raise RuntimeError("read() before open()")
        deadline = time.monotonic() + max(0.0, max_wait)
        block = max(1, round(_CHUNK_S * self.sfreq))
        while True:
            with self._lock:
                due = self._due() - self._emitted
                if due >= block or (due > 0 and time.monotonic() >= deadline):
                    return self._generate(min(due, round(_MAX_CATCH_UP_S * self.sfreq)))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            assert self._t0 is not None
            wait_for = (self._emitted + block) / self.sfreq + self._t0 - self.clock.now()
            time.sleep(min(remaining, max(0.001, wait_for)))

    def close(self) -> None:
        self._open = False

    # -- simulation ------------------------------------------------------------------------------------------------

    def generate(self, n: int) -> Chunk:
        """The next n samples, without pacing (for simulation on a virtual clock)."""
        with self._lock:
            if self._t0 is None:
                self._t0 = self.clock.now()
            return self._generate(n)

    def _due(self) -> int:
        assert self._t0 is not None
        return math.floor((self.clock.now() - self._t0) * self.sfreq + 1e-6)  # 1e-6: float error in t0 + k/sfreq

    def _generate(self, n: int) -> Chunk:
        assert self._t0 is not None
        n_ch = len(self.channel_names)
        t = self._t0 + (self._emitted + np.arange(n)) / self.sfreq
        self._emitted += n
        r = self._relaxation(t)
        bg = self.profile.background
        white = self._rng.standard_normal((n_ch, n))
        x = bg.amplitude_uv * self._background(white)
        for rhythm, noise, weights in self._rhythms:
            rms = rhythm.stress_uv + (rhythm.calm_uv - rhythm.stress_uv) * r  # (n,)
            x += noise(self._rng.standard_normal((n_ch, n))) * rms[np.newaxis, :] * weights[:, np.newaxis]
        x *= self._gain[:, np.newaxis]
        x += bg.noise_uv * self._rng.standard_normal((n_ch, n))
        if n:
            x += self._blink_signal(t)
            x += self._muscle_signal(t, r)
        return Chunk(data=x, timestamps=t, channel_names=self.channel_names, sfreq=self.sfreq)

    def _relaxation(self, t: FloatArray) -> FloatArray:
        if t.size == 0:
            return np.zeros(0)
        knots = np.arange(t[0], t[-1] + _R_STEP_S, _R_STEP_S)
        levels = np.array([self.hidden_state.relaxation(float(k)) for k in knots])
        return np.clip(np.interp(t, knots, levels), 0.0, 1.0)

    def _schedule(
        self,
        events: list[_Event],
        next_t: float | None,
        rate_per_min: float,
        t: FloatArray,
        weights: FloatArray,
        half_width: float,
    ) -> float | None:
        """Add Poisson events up to the chunk's end; drop those that ended; return the next event time."""
        if rate_per_min <= 0:
            return None
        if next_t is None:
            next_t = float(t[0]) + self._rng.exponential(60.0 / rate_per_min)
        while next_t <= t[-1]:
            scatter = 1.0 + 0.2 * self._rng.standard_normal()
            events.append(_Event(next_t, weights * max(0.3, scatter)))
            next_t += self._rng.exponential(60.0 / rate_per_min)
        events[:] = [e for e in events if e.t + half_width >= t[0]]
        return next_t

    def _blink_signal(self, t: FloatArray) -> FloatArray:
        blinks = self.profile.blinks
        self._next_blink = self._schedule(
            self._blinks, self._next_blink, blinks.rate_per_min, t, self._blink_w, blinks.duration_s
        )
        out = np.zeros((len(self.channel_names), t.size))
        sigma = blinks.duration_s / 4.0
        for e in self._blinks:
            shape = np.exp(-0.5 * ((t - e.t) / sigma) ** 2)  # a blink's potential rises and falls in ~duration_s
            out += blinks.amplitude_uv * e.channel_gain[:, np.newaxis] * shape[np.newaxis, :]
        return out

    def _muscle_signal(self, t: FloatArray, r: FloatArray) -> FloatArray:
        muscle = self.profile.muscle
        if muscle.rate_per_min <= 0:
            return np.zeros((len(self.channel_names), t.size))
        # Tension makes bursts more frequent: the rate doubles at r = 0.
        rate = muscle.rate_per_min * (2.0 - float(r.mean()))
        self._next_burst = self._schedule(self._bursts, self._next_burst, rate, t, self._muscle_w, muscle.duration_s)
        emg = self._emg(self._rng.standard_normal((len(self.channel_names), t.size)))
        envelope = np.zeros((len(self.channel_names), t.size))
        half = muscle.duration_s / 2.0
        for e in self._bursts:
            u = np.clip((t - e.t) / half, -1.0, 1.0)
            shape = np.where(np.abs(t - e.t) < half, 0.5 + 0.5 * np.cos(np.pi * u), 0.0)  # Hann envelope
            envelope += e.channel_gain[:, np.newaxis] * shape[np.newaxis, :]
        return muscle.amplitude_uv * emg * envelope


def create(config: SourceConfig, clock: Clock) -> SimulatedListener:
    """Registry entry for `--board simulated`: [source] listener (profile TOML), script and seed."""
    return SimulatedListener(load_profile(config.listener), ScriptedState(config.script), clock, seed=config.seed)
