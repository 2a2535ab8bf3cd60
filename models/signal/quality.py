"""Per-channel signal quality: which channels of a window may reach the score, and why the others may not.

Rules, checked in this order for every channel and window (the first that fires is the reason reported):
  "nan"          a NaN or ±inf sample in the window
  "railed"       a raw sample at or beyond ±rail_uv (the amplifier saturated)
  "flat"         raw peak-to-peak below flat_uv (electrode off, amplifier idle)
  "out-of-range" the 1 Hz high-passed signal beyond ±max_uv (blinks, movement, electrode pops); max_uv unset: the
                 source's declared range (SourceInfo.max_uv), else DEFAULT_MAX_UV (scalp EEG)
  "artifact"     a hop whose high-passed RMS exceeds burst_ratio × the channel's running median (muscle bursts)
Time-stamp gaps longer than gap_s are measured per hop and reported in Features.gap_s; they do not exclude channels.
Non-finite and railed samples are replaced (last good value held) before filtering, so they never poison filter
state; the channel stays bad until they have left the window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from neuromusic.models.core.messages import BoolArray, FloatArray

_MIN_HISTORY = 4  # hops of history before the burst rule judges anything
DEFAULT_MAX_UV = 150.0  # scalp EEG beyond this (1 Hz high-passed) is a blink, movement or electrode pop


@dataclass(frozen=True)
class QualityConfig:
    flat_uv: float = 0.5  # peak-to-peak below this over a window: "flat" (electrode off, amplifier idle)
    rail_uv: float = 180000.0  # |raw sample| at or beyond this: "railed" (ADS1299 rails at ±187,500 µV at gain 24)
    # |high-passed signal| beyond this: "out-of-range" (blinks, movement, electrode pops). None: the source's own
    # expected range if it declares one (BrainFlow's synthetic board), else DEFAULT_MAX_UV.
    max_uv: float | None = None
    burst_ratio: float = 3.0  # a hop's high-passed RMS above this × the channel's running median: "artifact"
    burst_history_s: float = 10.0  # how much history the running median RMS covers
    gap_s: float = 0.1  # a jump between consecutive time stamps longer than this (beyond 1/sfreq) is a gap

    def validate(self) -> None:
        for name in ("flat_uv", "rail_uv", "max_uv", "burst_ratio", "burst_history_s", "gap_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"quality.{name} must be > 0, got {value}")

    def effective_max_uv(self, source_max_uv: float | None) -> float:
        """The out-of-range limit in force: the user's max_uv, else the source's declared range, else the default."""
        if self.max_uv is not None:
            return self.max_uv
        return DEFAULT_MAX_UV if source_max_uv is None else source_max_uv


def invalid_samples(x: FloatArray, rail_uv: float) -> tuple[BoolArray, BoolArray]:
    """(non-finite, railed) masks of a raw (n_channels, n) chunk."""
    nonfinite = ~np.isfinite(x)
    with np.errstate(invalid="ignore"):
        railed = np.abs(x) >= rail_uv
    return nonfinite, railed & ~nonfinite


def hold_last_good(x: FloatArray, bad: BoolArray, last_good: FloatArray) -> FloatArray:
    """Replace bad samples by the channel's last good value (`last_good`: each channel's value before this chunk)."""
    x = x.copy()
    n = x.shape[1]
    for ch in np.flatnonzero(bad.any(axis=1)):
        idx = np.where(bad[ch], -1, np.arange(n))
        idx = np.maximum.accumulate(idx)
        filled = np.where(idx >= 0, x[ch, np.maximum(idx, 0)], last_good[ch])
        x[ch] = filled
    return x


class BurstDetector:
    """Flags hops whose high-passed RMS jumps above burst_ratio × the channel's running median RMS."""

    def __init__(self, config: QualityConfig, hop_s: float, n_channels: int) -> None:
        self.ratio = config.burst_ratio
        self._history: deque[FloatArray] = deque(maxlen=max(_MIN_HISTORY, round(config.burst_history_s / hop_s)))
        self.n_channels = n_channels

    def __call__(self, rms: FloatArray, valid: BoolArray) -> BoolArray:
        """rms: this hop's high-passed RMS per channel; valid: the hop had no invalid samples and was not flat.
        Invalid hops are neither judged nor remembered, so a channel that comes back from a dead stretch is compared
        with its live history, not with the silence."""
        burst = np.zeros(self.n_channels, dtype=bool)
        stored = np.where(valid, rms, np.nan)
        if self._history:
            hist = np.stack(self._history)  # (hops, channels)
            known = np.isfinite(hist).sum(axis=0) >= _MIN_HISTORY
            if known.any():
                median = _nanmedian(hist[:, known])
                burst[known] = valid[known] & (rms[known] > self.ratio * np.maximum(median, 1e-9))
                # A burst enters the history as the median, so a long artifact cannot become the new normal.
                stored[known] = np.where(burst[known], median, stored[known])
        self._history.append(stored)
        return burst


def _nanmedian(a: FloatArray) -> FloatArray:
    """Median over axis 0 ignoring NaN (each column has a finite value). np.nanmedian takes ~8x longer on arrays this
    small (it goes through masked arrays), which mattered for the per-hop budget."""
    n = np.isfinite(a).sum(axis=0)
    ordered = np.sort(a, axis=0)  # NaN sort last
    cols = np.arange(a.shape[1])
    return np.asarray(0.5 * (ordered[(n - 1) // 2, cols] + ordered[n // 2, cols]))


def judge(
    config: QualityConfig,
    max_uv: float,
    nonfinite: FloatArray,
    railed: FloatArray,
    ptp: FloatArray,
    hp_absmax: FloatArray,
    burst: BoolArray,
) -> tuple[BoolArray, tuple[str, ...]]:
    """Window statistics per channel -> (good, reasons). Counts and amplitudes are (n_channels,) arrays; max_uv is
    the out-of-range limit in force (QualityConfig.effective_max_uv)."""
    rules = (
        ("nan", nonfinite > 0),
        ("railed", railed > 0),
        ("flat", ptp < config.flat_uv),
        ("out-of-range", hp_absmax > max_uv),
        ("artifact", burst),
    )
    reasons = [""] * len(ptp)
    for name, hit in rules:
        for ch in np.flatnonzero(hit):
            if not reasons[ch]:
                reasons[ch] = name
    good = np.array([r == "" for r in reasons], dtype=bool)
    return good, tuple(reasons)
