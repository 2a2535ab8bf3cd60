"""[score] configuration and the relaxation score, calibrated to the person.

The formula (documented in the README):

    x[b,c]  = DE[b,c] - ½·ln Σ_b' σ²[b',c]     features = "relative" (default): the log share of band b in the
              channel's power over all bands; immune to gain and contact changes. features = "absolute": x = DE.
    baseline  first `baseline_s` seconds of good windows -> per band b and channel c: mean μ[b,c], std σ[b,c] of x
    z[b,c]  = (x[b,c] - μ[b,c]) / s[b]       s[b] = Σ_c v[c]·max(σ[b,c], std_floor) / Σ_c v[c]: one scale per band,
              so a channel that happened to be steady in the baseline does not outweigh the others
    index   = Σ_b w[b] · Σ_{c good} v[c] z[b,c] / Σ_{c good} v[c] / Σ_b |w[b]|   (default w: alpha +1, gamma -0.25;
              v[c] the channel's region weight, models/signal/montage.py: occipital 1 ... frontopolar 0.1)
    smooth  = exponential moving average of index, time constant smoothing_s
    score   = 1 / (1 + exp(-gain · smooth))                         (0.5 = as relaxed as during the baseline)

With a per-person calibration model (`neuromusic calibrate`, models/signal/calibration.py) the baseline and the index
are replaced by the model; nothing else changes:

    decision = w · z(DE) + b        the model's log-odds of "rest" (its own z-scoring; a bad channel counts as its mean)
    score    = 1 / (1 + exp(-smooth(decision)))   the model's P(rest), smoothed on the log-odds scale

Honesty: the value is None while calibrating, when no calibrated channel is good ("poor-signal"), and when stale.
confidence = Σ v[c] over good and calibrated channels / Σ v[c] over all, halved when the window held a time-stamp gap
(with a calibration model: the fraction of this source's channels that are good and known to the model).

Time: smoothing and the baseline length run on the source's clock (`Features.source_time`), so a replay gives the
same scores at any speed; a Score's `t` is its Features' `t` on the session clock, and `source_t` is passed along.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from neuromusic.models.core.errors import ConfigError, DataError
from neuromusic.models.core.messages import Features, FloatArray, Score
from neuromusic.models.signal.calibration import RestModel
from neuromusic.models.signal.features import differential_entropy
from neuromusic.models.signal.montage import REGIONS, channel_weights, default_region_weights

FeatureKind = Literal["relative", "absolute"]


def _default_weights() -> dict[str, float]:
    # Relaxation raises the share of alpha (eyes closed, calm) and lowers that of gamma (31-50 Hz at the scalp is
    # mostly muscle tension).
    return {"alpha": 1.0, "gamma": -0.25}


def usable_weights(weights: dict[str, float], band_names: tuple[str, ...]) -> dict[str, float]:
    """The band weights in force. Weights the user set must name defined bands; the default weights leave out a
    band [features] does not define (gamma under a low sampling rate), as long as a weighted band remains."""
    missing = sorted(set(weights) - set(band_names))
    kept = {b: w for b, w in weights.items() if b in band_names}
    if missing and not (weights == _default_weights() and any(kept.values())):
        raise ConfigError(
            f"score.weights names band(s) {', '.join(missing)} that [features] bands does not define; "
            f"bands: {', '.join(band_names)}"
        )
    return kept


def band_shares(de: FloatArray) -> FloatArray:
    """(bands, channels) DE -> each band's DE less the DE of the channel's summed power over all bands: the log share
    of the band in the total (plus a constant). NaN channels stay NaN."""
    variance = np.exp(2.0 * (de - differential_entropy(np.ones(1))[0]))
    return np.asarray(de - 0.5 * np.log(variance.sum(axis=0, keepdims=True)))


@dataclass(frozen=True)
class ScoreConfig:
    baseline_s: float = 30.0  # calibration phase at the start of a session (skipped when a profile is loaded)
    weights: dict[str, float] = field(default_factory=_default_weights)  # band -> weight of its z-score
    features: FeatureKind = "relative"  # score each band's share of the power ("relative") or its power ("absolute")
    smoothing_s: float = 1.0  # time constant of the moving average (0: no smoothing)
    gain: float = 1.0  # slope of the logistic squashing: larger -> the score saturates sooner
    std_floor: float = 0.05  # nats; keeps z finite for a channel whose DE barely moved during the baseline
    min_baseline_windows: int = 4  # a channel needs this many good baseline windows to be calibrated
    # head region -> weight of its channels (relaxation shows most in posterior alpha; frontal sites carry eye and
    # muscle activity). A region left out weighs 0.
    region_weights: dict[str, float] = field(default_factory=default_region_weights)
    unknown_weight: float = 0.0  # a channel named outside 10-20 (ECG, AUX) beside known ones; none known: all 1

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
        unknown = sorted(set(self.region_weights) - set(REGIONS))
        if unknown:
            raise ValueError(
                f"region_weights names unknown region(s) {', '.join(unknown)}; regions: {', '.join(REGIONS)}"
            )
        if any(w < 0 for w in self.region_weights.values()) or self.unknown_weight < 0:
            raise ValueError("region_weights and unknown_weight must be >= 0")


@dataclass(frozen=True)
class ScoreProfile:
    """Per-person DE statistics from a baseline. mean/std are (n_bands, n_channels); NaN = not calibrated."""

    band_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    mean: FloatArray
    std: FloatArray
    n_windows: int
    created_unix: float = field(default_factory=time.time)
    kind: FeatureKind = "absolute"  # what mean/std describe (ScoreConfig.features); older profiles: absolute DE


class RelaxationScorer:
    """Features in, Score out; see the module docstring for the formula. Pure: no clock, no I/O."""

    def __init__(
        self,
        config: ScoreConfig,
        band_names: tuple[str, ...],
        channel_names: tuple[str, ...],
        profile: ScoreProfile | None = None,
        rest_model: RestModel | None = None,
    ) -> None:
        """`profile`: baseline statistics from an earlier session (no calibration phase). `rest_model`: a calibration
        model; when given it makes the score (and `profile` is only carried along)."""
        self.config = config
        self.band_names = tuple(band_names)
        self.channel_names = tuple(channel_names)
        weights = usable_weights(config.weights, self.band_names)
        self._band_index = np.array([self.band_names.index(b) for b in weights], dtype=np.intp)
        self._weights = np.array(list(weights.values()), dtype=np.float64)
        self._weights /= np.abs(self._weights).sum()
        self.channel_weights = channel_weights(self.channel_names, config.region_weights, config.unknown_weight)
        self._profile: ScoreProfile | None = None
        self._mean = np.full((len(self.band_names), len(self.channel_names)), np.nan)
        self._std = np.full_like(self._mean, np.nan)
        self._scale = np.full_like(self._mean, np.nan)
        if profile is not None:
            self._adopt(profile)
        self._baseline: list[FloatArray] = []
        self._baseline_t: list[float] = []
        self._baseline_start: float | None = None
        self._smooth: float | None = None
        self._last_t: float | None = None
        self.rest_model = rest_model
        if rest_model is not None:
            self._rest_index = self._rest_layout(rest_model)

    @property
    def profile(self) -> ScoreProfile | None:
        """The statistics in use (loaded or from this session's baseline); None while still calibrating."""
        return self._profile

    @property
    def calibrating(self) -> bool:
        return self._profile is None and self.rest_model is None

    def update(self, features: Features) -> Score:
        if features.de.shape != self._mean.shape:
            raise ValueError(f"features of shape {features.de.shape}, scorer expects {self._mean.shape}")
        if self.rest_model is not None:
            return self._score_rest(features)
        if self._profile is None:
            return self._calibrate(features)
        x = self._transform(features, self._profile.kind)
        z = (x - self._mean) / self._scale  # (bands, channels); NaN = unusable
        usable = np.isfinite(z[self._band_index]).all(axis=0) & (self.channel_weights > 0)  # (channels,)
        if not usable.any():
            return Score(features.t, None, 0.0, "poor-signal", source_t=features.source_t)
        v = self.channel_weights[usable]
        index = float(self._weights @ (z[self._band_index][:, usable] @ v) / v.sum())
        self._smooth = self._ema(index, features.source_time)
        value = 1.0 / (1.0 + math.exp(-self.config.gain * self._smooth))
        return Score(
            features.t, value, self._confidence(usable, features), "scoring", raw=index, source_t=features.source_t
        )

    @staticmethod
    def _transform(features: Features, kind: FeatureKind) -> FloatArray:
        de = np.where(features.good[np.newaxis, :], features.de, np.nan)
        return band_shares(de) if kind == "relative" else de

    def _score_rest(self, features: Features) -> Score:
        """The calibration model's P(rest), smoothed on the log-odds scale; same confidence rules as the index."""
        assert self.rest_model is not None
        bands, channels = self._rest_index
        de = np.where(features.good[np.newaxis, :], features.de, np.nan)
        # The model's layout, from this session's: a channel the source lacks (-1) is NaN, which the model treats
        # as its training mean.
        x = np.full((len(bands), len(channels)), np.nan)
        present = channels >= 0
        x[:, present] = de[np.ix_(bands, channels[present])]
        usable = np.zeros(len(self.channel_names), dtype=bool)
        usable[channels[present]] = np.isfinite(x[:, present]).all(axis=0)
        if not usable.any():
            return Score(features.t, None, 0.0, "poor-signal", source_t=features.source_t)
        decision = self.rest_model.decision(x)
        self._smooth = self._ema(decision, features.source_time)
        value = 1.0 / (1.0 + math.exp(-min(40.0, max(-40.0, self._smooth))))
        confidence = float(usable.sum()) / max(1, len(self.channel_names)) * (0.5 if features.gap_s > 0 else 1.0)
        return Score(features.t, value, confidence, "scoring", raw=decision, source_t=features.source_t)

    def _confidence(self, usable: np.ndarray, features: Features) -> float:
        """Share of the montage's weight that is usable: losing an occipital channel costs more than a frontal one."""
        total = self.channel_weights.sum()
        share = float(self.channel_weights[usable].sum() / total) if total > 0 else 0.0
        return share * (0.5 if features.gap_s > 0 else 1.0)

    def _rest_layout(self, model: RestModel) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the model's bands and channels in this session's layout (-1: a channel this source lacks)."""
        missing = [b for b in model.band_names if b not in self.band_names]
        if missing:
            raise DataError(
                f"the calibration model uses band(s) {', '.join(missing)} that [features] bands does not define; "
                "use the bands it was calibrated with, or calibrate again"
            )
        channels = np.array(
            [self.channel_names.index(c) if c in self.channel_names else -1 for c in model.channel_names]
        )
        if not (channels >= 0).any():
            raise DataError(
                f"the calibration model was fitted on channels {', '.join(model.channel_names)}; this source has "
                f"{', '.join(self.channel_names)}: no channel in common, so calibrate again with this headset"
            )
        bands = np.array([self.band_names.index(b) for b in model.band_names], dtype=np.intp)
        return bands, channels

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
        source_t = features.source_time
        if self._baseline_start is None:
            self._baseline_start = source_t
        self._baseline.append(self._transform(features, self.config.features))
        self._baseline_t.append(source_t)
        elapsed = source_t - self._baseline_start
        if elapsed >= self.config.baseline_s:
            stack = np.stack(self._baseline)  # (windows, bands, channels)
            counts = np.isfinite(stack).sum(axis=0)
            enough = counts >= self.config.min_baseline_windows
            if enough[self._band_index].all(axis=0).any():
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.where(enough, np.nanmean(np.where(enough, stack, 0.0), axis=0), np.nan)
                    std = np.where(enough, np.nanstd(np.where(enough, stack, 0.0), axis=0), np.nan)
                n = len(self._baseline)
                kind = self.config.features
                self._adopt(ScoreProfile(self.band_names, self.channel_names, mean, std, n, kind=kind))
                self._baseline, self._baseline_t = [], []
            else:
                # Not enough good signal yet: go on calibrating on the latest baseline_s only (bounded memory).
                # (Or the latest min_baseline_windows windows, if those reach further back.)
                old = next(i for i, t in enumerate(self._baseline_t) if t >= source_t - self.config.baseline_s)
                old = max(0, min(old, len(self._baseline) - self.config.min_baseline_windows))
                del self._baseline[:old], self._baseline_t[:old]
        progress = min(1.0, elapsed / self.config.baseline_s)
        return Score(features.t, None, progress * features.quality, "calibrating", source_t=features.source_t)

    def _adopt(self, profile: ScoreProfile) -> None:
        """Use a profile's statistics for the channels and bands it shares with this session (matched by name)."""
        shared = [c for c in self.channel_names if c in profile.channel_names]
        if not shared:
            raise DataError(
                f"the score profile was made for channels {', '.join(profile.channel_names)}; this source has "
                f"{', '.join(self.channel_names)}: no channel in common, so it cannot be used"
            )
        missing = [self.band_names[i] for i in self._band_index if self.band_names[i] not in profile.band_names]
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
        self._scale = self._band_scale()

    def _band_scale(self) -> FloatArray:
        """(bands, channels): each band's region-weighted mean baseline std, the same for all its channels (a band
        without weighted calibrated channels keeps each channel's own std)."""
        std = np.maximum(self._std, self.config.std_floor)  # NaN stays NaN
        v = np.where(np.isfinite(std), self.channel_weights[np.newaxis, :], 0.0)
        total = v.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            common = np.nansum(std * v, axis=1, keepdims=True) / total
        return np.where(total > 0, np.broadcast_to(common, std.shape), std)
