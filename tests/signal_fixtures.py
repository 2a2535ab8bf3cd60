"""Helpers for the signal-path tests: chunks from arrays, and pushing a signal through a pipeline."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
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


REPO = Path(__file__).resolve().parents[1]
REAL_EEG_ENV = "NEUROMUSIC_REAL_EEG"


def real_eeg_dir() -> Path:
    """The real-EEG recordings: $NEUROMUSIC_REAL_EEG, else shared/data/real-eeg beside the repository (a fresh clone
    sits next to its shared/ folder). A test that needs them is skipped, with the path it looked at, only when that
    folder does not exist at all; a folder that exists but lacks a recording fails the test."""
    folder = Path(os.environ[REAL_EEG_ENV]) if os.environ.get(REAL_EEG_ENV) else REPO.parent / "shared/data/real-eeg"
    if not folder.is_dir():
        pytest.skip(f"real-EEG recordings not found at {folder} (set ${REAL_EEG_ENV} to their folder)")
    return folder


def real_eeg_benchmark() -> ModuleType:
    """benchmarks/real_eeg.py as a module: the tests check the figures it prints, computed the same way."""
    return load_benchmark("real_eeg")


def load_benchmark(stem: str) -> ModuleType:
    """benchmarks/<stem>.py as a module named <stem>_benchmark."""
    spec = importlib.util.spec_from_file_location(f"{stem}_benchmark", REPO / "benchmarks" / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
