"""[score] configuration and the relaxation score, calibrated to the person.

The formula (documented for the README in docs/signal.md):

    baseline  first `baseline_s` seconds of good windows -> per band b and channel c: mean μ[b,c], std σ[b,c] of DE
    z[b,c]  = (DE[b,c] - μ[b,c]) / max(σ[b,c], std_floor)
    index   = Σ_b w[b] · mean_{c good} z[b,c] / Σ_b |w[b]|        (default w: alpha +1, theta +0.5, beta -1)
    smooth  = exponential moving average of index, time constant smoothing_s
    score   = 1 / (1 + exp(-gain · smooth))                         (0.5 = as relaxed as during the baseline)

Honesty: the value is None while calibrating, when no calibrated channel is good ("poor-signal"), and when stale.
confidence = (good and calibrated channels) / channels, halved when the window held a time-stamp gap.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.models.errors import ConfigError, DataError
from neuromusic.models.messages import Features, FloatArray, Score


def _default_weights() -> dict[str, float]:
    # Relaxation raises alpha (and some theta) and lowers beta (RESEARCH.md §2: alpha/theta up, beta/alpha down).
    return {"alpha": 1.0, "theta": 0.5, "beta": -1.0}


@dataclass(frozen=True)
class ScoreConfig:
    baseline_s: float = 30.0  # calibration phase at the start of a session (skipped when a profile is loaded)
    profile: Path | None = None  # a ScoreProfile JSON saved by an earlier session: no calibration phase
    weights: dict[str, float] = field(default_factory=_default_weights)  # band -> weight of its z-score
    smoothing_s: float = 1.0  # time constant of the moving average (0: no smoothing)
    gain: float = 1.0  # slope of the logistic squashing: larger -> the score saturates sooner
    std_floor: float = 0.05  # nats; keeps z finite for a channel whose DE barely moved during the baseline
    min_baseline_windows: int = 4  # a channel needs this many good baseline windows to be calibrated

    def validate(self) -> None:
        if self.baseline_s <= 0:
            raise ValueError(f"baseline_s must be > 0, got {self.baseline_s}")
        if not self.weights or all(w == 0 for w in self.weights.values()):
            raise ValueError("weights must give at least one band a non-zero weight")
        if self.smoothing_s < 0:
            raise ValueError(f"smoothing_s must be >= 0, got {self.smoothing_s}")
        if self.gain <= 0 or self.std_floor <= 0:
            raise ValueError(f"gain and std_floor must be > 0, got {self.gain} and {self.std_floor}")
        if self.min_baseline_windows < 1:
            raise ValueError(f"min_baseline_windows must be >= 1, got {self.min_baseline_windows}")


@dataclass(frozen=True)
class ScoreProfile:
    """Per-person DE statistics from a baseline. mean/std are (n_bands, n_channels); NaN = not calibrated."""

    band_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    mean: FloatArray
    std: FloatArray
    n_windows: int
    created_unix: float = field(default_factory=time.time)

    def save(self, path: Path) -> None:
        def rows(a: FloatArray) -> list[list[float | None]]:
            return [[None if not math.isfinite(v) else float(v) for v in row] for row in a]

        doc = {
            "version": 1,
            "band_names": list(self.band_names),
            "channel_names": list(self.channel_names),
            "mean": rows(self.mean),
            "std": rows(self.std),
            "n_windows": self.n_windows,
            "created_unix": self.created_unix,
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(path)  # atomic: a crash mid-write never leaves half a profile

    @classmethod
    def load(cls, path: Path) -> ScoreProfile:
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError as error:
            raise DataError(f"score profile not found: {path}") from error
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"score profile {path} is not readable JSON: {error}") from error
        try:
            bands = tuple(str(b) for b in doc["band_names"])
            channels = tuple(str(c) for c in doc["channel_names"])
            mean = _matrix(doc["mean"], len(bands), len(channels))
            std = _matrix(doc["std"], len(bands), len(channels))
            return cls(bands, channels, mean, std, int(doc["n_windows"]), float(doc.get("created_unix", 0.0)))
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"score profile {path} is malformed ({error!r}); delete it to calibrate afresh") from error


def _matrix(rows: Any, n_rows: int, n_cols: int) -> FloatArray:
    a = np.array([[np.nan if v is None else float(v) for v in row] for row in rows], dtype=np.float64)
    if a.shape != (n_rows, n_cols):
        raise ValueError(f"expected a {n_rows}x{n_cols} matrix, got shape {a.shape}")
    return a


class RelaxationScorer:
    """Features in, Score out; see the module docstring for the formula. Pure: no clock, no I/O."""

    def __init__(
        self,
        config: ScoreConfig,
        band_names: tuple[str, ...],
        channel_names: tuple[str, ...],
        profile: ScoreProfile | None = None,
    ) -> None:
        self.config = config
        self.band_names = tuple(band_names)
        self.channel_names = tuple(channel_names)
        missing = sorted(set(config.weights) - set(self.band_names))
        if missing:
            raise ConfigError(
                f"score.weights names band(s) {', '.join(missing)} that [features] bands does not define; "
                f"bands: {', '.join(self.band_names)}"
            )
        self._band_index = np.array([self.band_names.index(b) for b in config.weights], dtype=np.intp)
        self._weights = np.array(list(config.weights.values()), dtype=np.float64)
        self._weights /= np.abs(self._weights).sum()
        if profile is None and config.profile is not None:
            profile = ScoreProfile.load(config.profile)
        self._profile: ScoreProfile | None = None
        self._mean = np.full((len(self.band_names), len(self.channel_names)), np.nan)
        self._std = np.full_like(self._mean, np.nan)
        if profile is not None:
            self._adopt(profile)
        self._baseline: list[FloatArray] = []
        self._baseline_t: list[float] = []
        self._baseline_start: float | None = None
        self._smooth: float | None = None
        self._last_t: float | None = None

    @property
    def profile(self) -> ScoreProfile | None:
        """The statistics in use (loaded or from this session's baseline); None while still calibrating."""
        return self._profile

    @property
    def calibrating(self) -> bool:
        return self._profile is None

    def update(self, features: Features) -> Score:
        if features.de.shape != self._mean.shape:
            raise ValueError(f"features of shape {features.de.shape}, scorer expects {self._mean.shape}")
        if self._profile is None:
            return self._calibrate(features)
        de = np.where(features.good[np.newaxis, :], features.de, np.nan)
        z = (de - self._mean) / np.maximum(self._std, self.config.std_floor)  # (bands, channels); NaN = unusable
        usable = np.isfinite(z[self._band_index]).all(axis=0)  # (channels,)
        n_channels = max(1, len(self.channel_names))
        if not usable.any():
            return Score(features.t, None, 0.0, "poor-signal")
        index = float(self._weights @ z[self._band_index][:, usable].mean(axis=1))
        self._smooth = self._ema(index, features.t)
        value = 1.0 / (1.0 + math.exp(-self.config.gain * self._smooth))
        confidence = float(usable.sum()) / n_channels * (0.5 if features.gap_s > 0 else 1.0)
        return Score(features.t, value, confidence, "scoring", raw=index)

    def stale(self, t: float) -> Score:
        """The score to publish while the source sends nothing: no value, no confidence."""
        return Score(t, None, 0.0, "stale")

    def _ema(self, index: float, t: float) -> float:
        if self._smooth is None or self._last_t is None or self.config.smoothing_s == 0:
            smooth = index
        else:
            dt = max(0.0, t - self._last_t)
            alpha = 1.0 - math.exp(-dt / self.config.smoothing_s)
            smooth = self._smooth + alpha * (index - self._smooth)
        self._last_t = t
        return smooth

    def _calibrate(self, features: Features) -> Score:
        if self._baseline_start is None:
            self._baseline_start = features.t
        self._baseline.append(np.where(features.good[np.newaxis, :], features.de, np.nan))
        self._baseline_t.append(features.t)
        elapsed = features.t - self._baseline_start
        if elapsed >= self.config.baseline_s:
            stack = np.stack(self._baseline)  # (windows, bands, channels)
            counts = np.isfinite(stack).sum(axis=0)
            enough = counts >= self.config.min_baseline_windows
            if enough[self._band_index].all(axis=0).any():
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.where(enough, np.nanmean(np.where(enough, stack, 0.0), axis=0), np.nan)
                    std = np.where(enough, np.nanstd(np.where(enough, stack, 0.0), axis=0), np.nan)
                self._adopt(ScoreProfile(self.band_names, self.channel_names, mean, std, len(self._baseline)))
                self._baseline, self._baseline_t = [], []
            else:
                # Not enough good signal yet: go on calibrating on the latest baseline_s only (bounded memory).
                # (Or the latest min_baseline_windows windows, if those reach further back.)
                old = next(i for i, t in enumerate(self._baseline_t) if t >= features.t - self.config.baseline_s)
                old = max(0, min(old, len(self._baseline) - self.config.min_baseline_windows))
                del self._baseline[:old], self._baseline_t[:old]
        progress = min(1.0, elapsed / self.config.baseline_s)
        return Score(features.t, None, progress * features.quality, "calibrating")

    def _adopt(self, profile: ScoreProfile) -> None:
        """Use a profile's statistics for the channels and bands it shares with this session (matched by name)."""
        shared = [c for c in self.channel_names if c in profile.channel_names]
        if not shared:
            raise DataError(
                f"the score profile was made for channels {', '.join(profile.channel_names)}; this source has "
                f"{', '.join(self.channel_names)}: no channel in common, so it cannot be used"
            )
        missing = [b for b in self.config.weights if b not in profile.band_names]
        if missing:
            raise DataError(f"the score profile has no statistics for band(s) {', '.join(missing)}")
        for bi, band in enumerate(self.band_names):
            if band not in profile.band_names:
                continue
            pb = profile.band_names.index(band)
            for ci, channel in enumerate(self.channel_names):
                if channel in shared:
                    pc = profile.channel_names.index(channel)
                    self._mean[bi, ci] = profile.mean[pb, pc]
                    self._std[bi, ci] = profile.std[pb, pc]
        self._profile = profile
