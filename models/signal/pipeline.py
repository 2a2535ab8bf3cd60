"""FeaturePipeline: chunks in, one Features per completed hop out.

Each chunk is filtered once per band with carried state (models/signal/filters.py). Instead of keeping filtered samples
and recomputing a window's variance every hop, the pipeline keeps per-hop sums (Σx, Σx² per band and channel, and the
quality statistics); a window is the last `window_s / hop_s` hops, so a hop costs O(new samples), whatever the
window length. Hop boundaries fall at round(k · hop_s · sfreq) samples, so rates like 250 Hz with a 0.25 s hop
(62.5 samples) alternate 62- and 63-sample hops instead of drifting.

With `reference = "average"` or `"median"`, each band's filtered signal is re-referenced, per sample, to the average
or median over the EEG channels (those with 10-20 names) before its sums are taken; the artifact rules keep judging
each electrode as recorded. `"auto"` is the median for a montage of AUTO_MEDIAN_CHANNELS or more EEG
channels and the signal as recorded for smaller headsets.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from neuromusic.models.core.messages import Chunk, Features, FloatArray
from neuromusic.models.signal.features import (
    AUTO_MEDIAN_CHANNELS,
    MIN_REFERENCE_CHANNELS,
    FeatureConfig,
    Reference,
    differential_entropy,
)
from neuromusic.models.signal.filters import FilterBank
from neuromusic.models.signal.montage import canonical_name, eye_channels
from neuromusic.models.signal.quality import (
    ArtifactRules,
    HopLevels,
    QualityFilters,
    judge,
)
from neuromusic.models.signal.repair import SpikeRepair

log = logging.getLogger(__name__)
# A window may hold this many repaired spike samples per channel, or this share of its samples if more, before the
# channel counts as glitching (a contact that spikes again and again is bad, however well each spike is repaired).
MAX_REPAIRED = 4
MAX_REPAIRED_SHARE = 0.01


@dataclass
class _Hop:
    """Sums and extremes of one hop's samples, per channel (band sums per band and channel)."""

    n: int
    band_sum: FloatArray  # (bands, channels)
    band_sq: FloatArray  # (bands, channels)
    nonfinite: FloatArray  # (channels,) count
    railed: FloatArray  # (channels,) count
    glitch: FloatArray  # (channels,) count
    repaired: FloatArray  # (channels,) samples of spikes repaired (models/signal/repair.py)
    raw_min: FloatArray
    raw_max: FloatArray
    free_peak: FloatArray  # rhythm-free view (models/signal/quality.py)
    free_sq: FloatArray
    slow_peak: FloatArray
    slow_sq: FloatArray
    fast_sq: FloatArray  # NaN where the muscle rule is off
    gap_s: float
    t_last: float
    code: np.ndarray | None = None  # the artifact rules' verdict per channel, once the hop is complete

    def copy(self) -> _Hop:
        return dataclasses.replace(
            self,
            band_sum=self.band_sum.copy(),
            band_sq=self.band_sq.copy(),
            nonfinite=self.nonfinite.copy(),
            railed=self.railed.copy(),
            glitch=self.glitch.copy(),
            repaired=self.repaired.copy(),
            raw_min=self.raw_min.copy(),
            raw_max=self.raw_max.copy(),
            free_peak=self.free_peak.copy(),
            free_sq=self.free_sq.copy(),
            slow_peak=self.slow_peak.copy(),
            slow_sq=self.slow_sq.copy(),
            fast_sq=self.fast_sq.copy(),
        )

    def add(self, other: _Hop) -> None:
        self.n += other.n
        self.band_sum += other.band_sum
        self.band_sq += other.band_sq
        self.nonfinite += other.nonfinite
        self.railed += other.railed
        self.glitch += other.glitch
        self.repaired += other.repaired
        np.minimum(self.raw_min, other.raw_min, out=self.raw_min)
        np.maximum(self.raw_max, other.raw_max, out=self.raw_max)
        np.maximum(self.free_peak, other.free_peak, out=self.free_peak)
        self.free_sq += other.free_sq
        np.maximum(self.slow_peak, other.slow_peak, out=self.slow_peak)
        self.slow_sq += other.slow_sq
        self.fast_sq += other.fast_sq
        self.gap_s = max(self.gap_s, other.gap_s)
        self.t_last = other.t_last


class DescribedSource(Protocol):
    """What the pipeline needs to know of an opened source (drivers/base.py:SourceInfo has it)."""

    @property
    def sfreq(self) -> float: ...

    @property
    def channel_names(self) -> tuple[str, ...]: ...

    @property
    def max_uv(self) -> float | None: ...


class FeaturePipeline:
    def __init__(
        self,
        config: FeatureConfig,
        sfreq: float,
        channel_names: tuple[str, ...],
        *,
        source_max_uv: float | None = None,
    ) -> None:
        """source_max_uv: the source's declared amplitude range (SourceInfo.max_uv), used as the out-of-range ceiling
        when the user has not set features.quality.max_uv."""
        if not math.isfinite(sfreq) or sfreq <= 0:
            raise ValueError(f"sampling rate must be a positive number, got {sfreq}")
        self.config = config
        self.max_uv = config.quality.effective_max_uv(source_max_uv)
        self.sfreq = float(sfreq)
        self.channel_names = tuple(channel_names)
        self.band_names = tuple(config.bands)
        n_ch = len(self.channel_names)
        self._filters = FilterBank(config.bands, self.sfreq, n_ch, config.filter_order, config.notch_hz)
        self._quality_filters = QualityFilters(config.quality, self.sfreq, n_ch)
        self._rules = ArtifactRules(config.quality, config.hop_s, eye_channels(self.channel_names), self.max_uv)
        self.reference = reference_in_force(config.reference, self.channel_names)
        self._reference = reference_channels(self.reference, self.channel_names)
        self._hop_len = config.hop_s * self.sfreq  # samples per hop, possibly fractional
        self._hops: deque[_Hop] = deque(maxlen=config.hops_per_window)
        self._current: _Hop | None = None
        self._n_seen = 0  # samples pushed so far
        self._k = 1  # index of the next hop boundary
        q = config.quality
        self._spikes = SpikeRepair(n_ch, self.sfreq, self.max_uv, q.rail_uv, q.spike_s)
        self._last_t: float | None = None
        self._unpublished = np.zeros(n_ch)  # repaired samples of the hops finished since the last Features

    @classmethod
    def for_source(cls, config: FeatureConfig, info: DescribedSource) -> FeaturePipeline:
        """The pipeline for an opened source: its rate, channels and expected amplitude range."""
        return cls(config, info.sfreq, info.channel_names, source_max_uv=info.max_uv)

    def push(self, chunk: Chunk, received_t: float | None = None) -> list[Features]:
        """Feed a chunk; returns one Features per hop completed by it (none until the first full window).

        `received_t`: the session clock when the chunk arrived, which becomes each Features' `t` (its `source_t` is
        the window's last time stamp). None, for offline use where the source's clock is the only one: t = source_t.
        """
        if chunk.data.ndim != 2 or chunk.data.shape[0] != len(self.channel_names):
            raise ValueError(f"chunk has shape {chunk.data.shape}; expected ({len(self.channel_names)}, n)")
        n = chunk.n_samples
        if n == 0:
            return []
        raw = np.asarray(chunk.data, dtype=np.float64)
        cuts = self._cuts(n)
        out: list[Features] = []
        for part, end in self._parts(raw, chunk.timestamps, cuts):
            if self._current is None:
                self._current = part.copy()
            else:
                self._current.add(part)
            if end in cuts:
                window_full = len(self._hops) + 1 >= self.config.hops_per_window
                hop = self._finish_hop()
                if window_full:
                    out.append(self._features(hop, received_t))
        self._n_seen += n
        return out

    # -- internals ---------------------------------------------------------------------------------------------

    def _cuts(self, n: int) -> list[int]:
        """The hop boundaries that fall in the next `n` samples, local to them; advances the boundary index."""
        cuts = []
        while (boundary := round(self._k * self._hop_len)) <= self._n_seen + n:
            cuts.append(boundary - self._n_seen)
            self._k += 1
        return cuts

    def _parts(self, raw: FloatArray, timestamps: FloatArray, cuts: list[int]) -> list[tuple[_Hop, int]]:
        """The chunk filtered and summed per segment between hop boundaries: (sums, segment end) per segment."""
        n = raw.shape[1]
        fixed = self._spikes(raw)
        x = fixed.x
        bands, hp = self._filters(x)
        if self._reference is not None:
            bands = rereference(bands, self._reference, self.reference == "median")
        free, slow, fast = self._quality_filters(hp)
        gaps = self._gaps(timestamps)
        starts = [0, *(c for c in cuts if c < n)]
        ends = [*starts[1:], n]
        seg = np.array(starts)

        def total(a: np.ndarray) -> np.ndarray:
            return np.add.reduceat(a, seg, axis=a.ndim - 1, dtype=np.float64)

        def peak(a: FloatArray) -> FloatArray:
            return np.maximum.reduceat(np.abs(a), seg, axis=1)

        band_sum, band_sq = total(bands), total(bands * bands)  # (bands, channels, segments)
        counts = [total(a) for a in (fixed.nonfinite, fixed.railed, fixed.glitch, fixed.repaired)]
        rmin, rmax = np.minimum.reduceat(x, seg, axis=1), np.maximum.reduceat(x, seg, axis=1)
        free_sq, slow_sq = total(free * free), total(slow * slow)
        fast_sq = total(fast * fast) if fast is not None else np.full_like(free_sq, np.nan)
        free_peak, slow_peak = peak(free), peak(slow)
        gmax = np.maximum.reduceat(gaps, seg)
        parts = []
        for i, end in enumerate(ends):
            hop = _Hop(
                n=end - starts[i],
                band_sum=band_sum[:, :, i],
                band_sq=band_sq[:, :, i],
                nonfinite=counts[0][:, i],
                railed=counts[1][:, i],
                glitch=counts[2][:, i],
                repaired=counts[3][:, i],
                raw_min=rmin[:, i],
                raw_max=rmax[:, i],
                free_peak=free_peak[:, i],
                free_sq=free_sq[:, i],
                slow_peak=slow_peak[:, i],
                slow_sq=slow_sq[:, i],
                fast_sq=fast_sq[:, i],
                gap_s=float(gmax[i]),
                t_last=float(timestamps[end - 1]),
            )
            parts.append((hop, end))
        return parts

    def _gaps(self, timestamps: FloatArray) -> FloatArray:
        """Per-sample gap (s) before each sample beyond the expected 1/sfreq, 0 where none."""
        ts = np.asarray(timestamps, dtype=np.float64)
        prev = np.empty_like(ts)
        prev[0] = ts[0] - 1.0 / self.sfreq if self._last_t is None else self._last_t
        prev[1:] = ts[:-1]
        self._last_t = float(ts[-1])
        excess = np.abs(ts - prev - 1.0 / self.sfreq)  # backwards jumps count as gaps too
        return np.where(excess > self.config.quality.gap_s, excess, 0.0)

    def _features(self, hop: _Hop, received_t: float | None) -> Features:
        """Features of the window made of the last hops_per_window hops; `hop` is the newest."""
        total = self._hops[0].copy()
        for h in list(self._hops)[1:]:
            total.add(h)
        codes = np.stack([h.code for h in self._hops if h.code is not None])
        var = (total.band_sq - total.band_sum**2 / total.n) / total.n
        de = differential_entropy(var)
        ptp = total.raw_max - total.raw_min
        # A spike now and then is repaired; a channel that keeps spiking has a bad contact: its glitches count.
        glitch = np.where(
            total.repaired > max(MAX_REPAIRED, MAX_REPAIRED_SHARE * total.n), total.repaired, total.glitch
        )
        good, reasons = judge(total.nonfinite, total.railed, glitch, ptp, self.config.quality.flat_uv, codes)
        de[:, ~good] = np.nan
        features = Features(
            t=total.t_last if received_t is None else received_t,
            de=de,
            band_names=self.band_names,
            channel_names=self.channel_names,
            good=good,
            bad_reasons=reasons,
            repaired=tuple(int(k) for k in total.repaired),
            repaired_new=tuple(int(k) for k in self._unpublished),
            gap_s=hop.gap_s,
            source_t=total.t_last,
        )
        self._unpublished[:] = 0
        return features

    def _finish_hop(self) -> _Hop:
        hop = self._current
        assert hop is not None  # a boundary always follows at least one sample
        self._current = None
        clean = (hop.nonfinite == 0) & (hop.railed == 0) & (hop.glitch == 0)
        valid = clean & (hop.raw_max - hop.raw_min >= self.config.quality.flat_uv)
        levels = HopLevels(
            hop.free_peak,
            np.sqrt(hop.free_sq / hop.n),
            hop.slow_peak,
            np.sqrt(hop.slow_sq / hop.n),
            np.sqrt(hop.fast_sq / hop.n),
        )
        hop.code = self._rules(levels, valid)
        self._unpublished += hop.repaired
        self._hops.append(hop)
        return hop


def reference_in_force(reference: Reference, channel_names: tuple[str, ...]) -> Reference:
    """The reference a source gets: "auto" is the median with AUTO_MEDIAN_CHANNELS or more EEG channels (10-20
    names), else as recorded; the average or median of too few channels (see reference_channels) is as recorded."""
    known = sum(canonical_name(name) is not None for name in channel_names)
    if reference == "auto":
        return "median" if known >= AUTO_MEDIAN_CHANNELS else "recorded"
    if reference != "recorded" and (known or len(channel_names)) < MIN_REFERENCE_CHANNELS:
        log.warning(
            "features.reference = %r needs at least %d EEG channels, this source has %d (%s): the signal is used "
            "as recorded",
            reference,
            MIN_REFERENCE_CHANNELS,
            known or len(channel_names),
            ", ".join(channel_names),
        )
        return "recorded"
    return reference


def reference_channels(reference: Reference, channel_names: tuple[str, ...]) -> np.ndarray | None:
    """Indices of the channels whose average or median is the reference (those with 10-20 names; all when none
    has one), None for the signal as recorded (the average of one or two channels would cancel the signal itself)."""
    if reference == "recorded":
        return None
    known = [i for i, name in enumerate(channel_names) if canonical_name(name) is not None]
    return np.array(known or list(range(len(channel_names))), dtype=np.intp)


def rereference(bands: FloatArray, rows: np.ndarray, median: bool) -> FloatArray:
    """(bands, channels, n) band signals less, per band and sample, the average or median over `rows`. Taken per
    band after the band-pass, so DC offsets and slow drifts never enter it; the median lets a blink or a loose
    electrode on a few channels leave the others alone."""
    sources = bands[:, rows, :]
    if not median:
        return np.asarray(bands - sources.mean(axis=1, keepdims=True))
    # A sort along the channels, then the middle: several times faster than np.median for many short rows.
    ordered = np.sort(sources, axis=1)
    k = len(rows)
    centre = 0.5 * (ordered[:, (k - 1) // 2] + ordered[:, k // 2])
    return np.asarray(bands - centre[:, np.newaxis, :])
