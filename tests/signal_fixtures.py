"""Helpers for the signal-path tests: chunks from arrays, and pushing a signal through a pipeline."""

from __future__ import annotations

import numpy as np
from neuromusic.models.core.messages import Chunk, Features, FloatArray
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.pipeline import FeaturePipeline


def names(n: int) -> tuple[str, ...]:
    return tuple(f"C{i + 1}" for i in range(n))


def run_pipeline(
    x: FloatArray,
    sfreq: float,
    config: FeatureConfig | None = None,
    chunk: int | list[int] = 25,
    timestamps: FloatArray | None = None,
    channel_names: tuple[str, ...] | None = None,
) -> list[Features]:
    """Push x (channels, n) through a fresh pipeline in chunks (a size or a list of sizes, cycled); channels are
    named C1, C2, ... unless `channel_names` says otherwise."""
    n_ch, n = x.shape
    ts = np.arange(n) / sfreq if timestamps is None else timestamps
    labels = channel_names or names(n_ch)
    pipe = FeaturePipeline(config or FeatureConfig(), sfreq, labels)
    sizes = [chunk] if isinstance(chunk, int) else chunk
    out: list[Features] = []
    i = k = 0
    while i < n:
        size = sizes[k % len(sizes)]
        k += 1
        out += pipe.push(Chunk(x[:, i : i + size], ts[i : i + size], labels, sfreq))
        i += size
    return out


def band_limited_noise(
    rng: np.random.Generator, n_ch: int, n: int, sfreq: float, low: float, high: float, variance: float
) -> FloatArray:
    """Gaussian noise whose spectrum is flat inside [low, high] Hz and zero outside, scaled to exactly `variance`."""
    spectrum = np.fft.rfft(rng.standard_normal((n_ch, n)), axis=1)
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    spectrum[:, (freqs < low) | (freqs > high)] = 0.0
    x = np.fft.irfft(spectrum, n, axis=1)
    x -= x.mean(axis=1, keepdims=True)
    return np.asarray(x / x.std(axis=1, keepdims=True) * np.sqrt(variance))
