"""Per-channel signal quality: which channels of a window may reach the score, and why the others may not.

The rules tell artifacts from rhythms. Every rule but the first three reads the 1 Hz high-passed signal, so a DC
offset (consumer headsets sit at millivolts) never trips anything; the amplitude rules read it with the alpha band
(`rhythm_hz`) stopped, so an alpha rise of any size (eyes closed, calm) is never an artifact. Rules, checked in this
order for every channel and window (the first that fires is the reason reported):
  "nan"          a NaN or ±inf sample in the window
  "railed"       raw samples at or beyond ±rail_uv for longer than spike_s (the amplifier saturated)
  "glitch"       a jump of more than max_uv from the channel's level that does not come back within spike_s (the
                 first sample of an electrode pop, a step): no scalp rhythm moves that fast. A spike that comes
                 back in time (an amplifier glitch of a sample or two, railed or not) is repaired instead and the
                 channel stays good; Features.repaired counts its samples (models/signal/repair.py), and more
                 than a few of them in a window (a contact that keeps spiking) count as a glitch
  "flat"         raw peak-to-peak below flat_uv (electrode off, amplifier idle)
  "out-of-range" the rhythm-free signal beyond ±max_uv: the generous absolute ceiling for electrode pops and jumps
                 (max_uv unset: the source's declared range, else DEFAULT_MAX_UV)
  "eye"          frontal sites only (Fp, AF, F): a slow (< eye_hz) deflection beyond eye_ratio × the channel's own
                 typical slow RMS and beyond eye_min_uv, that makes up most of the deflection (blinks, eye movements)
  "muscle"       power above muscle_hz beyond muscle_ratio² × the channel's own typical (its RMS beyond muscle_ratio
                 ×): muscle is broadband high frequency, alpha is not
  "amplitude"    the rhythm-free signal beyond amplitude_ratio × the channel's own typical RMS (movement, cable sway)
"Own typical" is the median over the channel's last history_s of clean hops, learned from the start of the session;
a hop where a rule fired enters the history capped at ADAPT × typical, so a burst never becomes the norm while a
lasting change of level (a re-seated electrode) does, over about history_s. The learned rules wait for MIN_HISTORY_S
of clean signal. Time-stamp gaps longer than gap_s are measured per hop and reported in Features.gap_s; they do
not exclude channels. Non-finite, railed, glitch and spike samples are replaced (last good value held) before
filtering, so they never poison filter state (a spike would otherwise ring through the band filters for a second or
more); a channel with an unrepaired one stays bad until it has left the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import BoolArray, FloatArray
from neuromusic.models.signal.filters import StatefulSos
from scipy import signal

ADAPT = 1.5  # a hop where a rule fired is remembered as at most this × the channel's typical level
MIN_HISTORY_S = 2.0  # clean signal a channel needs before the learned rules judge it
DEFAULT_MAX_UV = 500.0  # scalp EEG with alpha stopped beyond this (1 Hz high-passed) is a pop, jump or glitch
# Reasons in the order they are checked; a window reports the first that fired in any of its hops.
RULES = ("nan", "railed", "glitch", "flat", "out-of-range", "eye", "muscle", "amplitude")
_CODE = {name: i + 1 for i, name in enumerate(RULES)}
_NONE = len(RULES) + 1  # "no reason": sorts after every rule


@dataclass(frozen=True)
class QualityConfig:
    flat_uv: float = 0.5  # peak-to-peak below this over a window: "flat" (electrode off, amplifier idle)
    rail_uv: float = 180000.0  # |raw sample| at or beyond this: "railed" (ADS1299 rails at ±187,500 µV at gain 24)
    # |rhythm-free signal| beyond this: "out-of-range" (electrode pops, jumps). None: the source's own expected
    # range if it declares one (BrainFlow's synthetic board), else DEFAULT_MAX_UV.
    max_uv: float | None = None
    # stopped (order-6 band-stop, these its -3 dB edges) before the amplitude rules: alpha is never an artifact.
    # 6-17 Hz keeps 8-13 Hz alpha down to a tenth of its size or less.
    rhythm_hz: tuple[float, float] = (6.0, 17.0)
    amplitude_ratio: float = 8.0  # rhythm-free peak beyond this × the channel's typical RMS: "amplitude"
    eye_hz: float = 4.0  # blinks and eye movements are slower than this
    eye_ratio: float = 6.0  # frontal slow peak beyond this × the channel's typical slow RMS: "eye"...
    eye_min_uv: float = 60.0  # ...and beyond this many µV
    muscle_hz: float = 30.0  # muscle is judged on the signal above this (the rule is off when Nyquist is below 1.2x)
    muscle_ratio: float = 3.0  # RMS above muscle_hz beyond this × the channel's typical: "muscle"
    history_s: float = 30.0  # how much clean history "typical" covers
    gap_s: float = 0.1  # a jump between consecutive time stamps longer than this (beyond 1/sfreq) is a gap
    # a glitch (a jump beyond max_uv, or a railed sample) that comes back within this is a spike: its samples are
    # repaired from the signal before it and the channel stays good. 0: every glitch excludes the channel.
    spike_s: float = 0.01

    def validate(self) -> None:
        for name in (
            "flat_uv",
            "rail_uv",
            "max_uv",
            "amplitude_ratio",
            "eye_hz",
            "eye_ratio",
            "eye_min_uv",
            "muscle_hz",
            "muscle_ratio",
            "history_s",
            "gap_s",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"quality.{name} must be > 0, got {value}")
        if self.spike_s < 0:
            raise ValueError(f"quality.spike_s must be >= 0, got {self.spike_s}")
        low, high = self.rhythm_hz
        if not 0 < low < high:
            raise ValueError(f"quality.rhythm_hz must be (low, high) with 0 < low < high, got {self.rhythm_hz}")

    def effective_max_uv(self, source_max_uv: float | None) -> float:
        """The out-of-range ceiling in force: the user's max_uv, else the source's declared range, else the default."""
        if self.max_uv is not None:
            return self.max_uv
        return DEFAULT_MAX_UV if source_max_uv is None else source_max_uv


class QualityFilters:
    """From the 1 Hz high-passed signal: the rhythm-free view (alpha band stopped), the slow view (< eye_hz) and
    the fast view (> muscle_hz; None where the rate is too low to see muscle)."""

    def __init__(self, config: QualityConfig, sfreq: float, n_channels: int) -> None:
        nyquist = sfreq / 2.0
        low, high = config.rhythm_hz
        if high >= nyquist or config.eye_hz >= nyquist:
            raise ConfigError(
                f"features.quality.rhythm_hz {config.rhythm_hz} and eye_hz {config.eye_hz:g} must lie below the "
                f"Nyquist frequency ({nyquist:g} Hz) of a {sfreq:g} Hz source"
            )

        def design(cutoff: float | list[float], kind: str, order: int = 2) -> StatefulSos:
            sos = signal.butter(order, cutoff, btype=kind, fs=sfreq, output="sos")
            return StatefulSos(np.asarray(sos, np.float64), n_channels)

        self.rhythm_free = design([low, high], "bandstop", order=3)
        self.slow = design(config.eye_hz, "lowpass")
        # Order 4: a large alpha at 13 Hz must not leak into the muscle view ((13/30)^4 = 3 % of its size).
        self.fast = design(config.muscle_hz, "highpass", order=4) if config.muscle_hz * 1.2 < nyquist else None

    def __call__(self, hp: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        return self.rhythm_free(hp), self.slow(hp), None if self.fast is None else self.fast(hp)


@dataclass
class HopLevels:
    """One hop's amplitudes per channel, (n_channels,) each: peaks and RMS of the quality views."""

    free_peak: FloatArray
    free_rms: FloatArray
    slow_peak: FloatArray
    slow_rms: FloatArray
    fast_rms: FloatArray  # NaN where the muscle rule is off


class ArtifactRules:
    """The per-hop rules (out-of-range, eye, muscle, amplitude) against each channel's own clean history."""

    def __init__(self, config: QualityConfig, hop_s: float, eye_mask: BoolArray, max_uv: float) -> None:
        self.config = config
        self.max_uv = max_uv
        self.eye_mask = eye_mask
        self.min_history = max(1, round(MIN_HISTORY_S / hop_s))
        length = max(self.min_history, round(config.history_s / hop_s))
        self._history = np.full((length, 3, len(eye_mask)), np.nan)  # a ring of hops: (hops, views, channels)
        self._hops = 0  # hops remembered so far

    def __call__(self, levels: HopLevels, valid: BoolArray) -> np.ndarray:
        """This hop's rule code per channel (_NONE: nothing fired). `valid`: the hop had no invalid samples and was
        not flat; invalid hops are neither judged by the learned rules nor remembered."""
        c = self.config
        n = len(valid)
        code = np.full(n, _NONE, dtype=np.int8)
        rms = np.stack([levels.free_rms, levels.slow_rms, levels.fast_rms])  # (3, channels)
        stored = np.where(valid, rms, np.nan)
        code[valid & (levels.free_peak > self.max_uv)] = _CODE["out-of-range"]
        if self._hops >= self.min_history:
            typical = _typical(self._history, self.min_history)  # (3, channels), NaN: not learned
            with np.errstate(invalid="ignore"):
                hits = (
                    (
                        "eye",
                        self.eye_mask
                        & (levels.slow_peak > c.eye_ratio * typical[1])
                        & (levels.slow_peak > c.eye_min_uv)
                        & (levels.slow_peak >= 0.5 * levels.free_peak),
                    ),
                    ("muscle", levels.fast_rms > c.muscle_ratio * typical[2]),
                    ("amplitude", levels.free_peak > c.amplitude_ratio * typical[0]),
                )
            for name, hit in reversed(hits):  # the earlier rule wins: write it last
                code[valid & hit & (code > _CODE[name])] = _CODE[name]
            # A hop that fired enters the history at most ADAPT x typical: a burst never moves the median, while a
            # lasting change of level (a re-seated electrode) becomes the new norm over about a history's length.
            fired = code < _NONE
            capped = np.fmin(stored[:, fired], ADAPT * typical[:, fired])
            stored[:, fired] = np.where(np.isfinite(typical[:, fired]), capped, np.nan)
        else:
            stored[:, code < _NONE] = np.nan
        self._history[self._hops % len(self._history)] = stored
        self._hops += 1
        return code


def _typical(history: FloatArray, min_count: int) -> FloatArray:
    """Median over axis 0 ignoring NaN, NaN where fewer than min_count values (np.nanmedian is ~8x slower on arrays
    this small, which matters for the per-hop budget)."""
    count = np.isfinite(history).sum(axis=0)
    ordered = np.sort(history, axis=0)  # NaN sort last
    lo = np.take_along_axis(ordered, (np.maximum(count - 1, 0) // 2)[np.newaxis], axis=0)[0]
    hi = np.take_along_axis(ordered, np.minimum(count // 2, len(history) - 1)[np.newaxis], axis=0)[0]
    return np.where(count >= min_count, 0.5 * (lo + hi), np.nan)


def judge(
    nonfinite: FloatArray,
    railed: FloatArray,
    glitch: FloatArray,
    ptp: FloatArray,
    flat_uv: float,
    hop_codes: np.ndarray,
) -> tuple[BoolArray, tuple[str, ...]]:
    """Window statistics per channel -> (good, reasons). Counts and peak-to-peak are (n_channels,) arrays; hop_codes
    (n_hops, n_channels) are the per-hop rule codes of the window's hops."""
    code = np.min(hop_codes, axis=0) if len(hop_codes) else np.full(len(ptp), _NONE)
    code = np.where(ptp < flat_uv, _CODE["flat"], code)
    code = np.where(glitch > 0, _CODE["glitch"], code)
    code = np.where(railed > 0, _CODE["railed"], code)
    code = np.where(nonfinite > 0, _CODE["nan"], code)
    reasons = tuple("" if k == _NONE else RULES[k - 1] for k in code)
    return code == _NONE, reasons
