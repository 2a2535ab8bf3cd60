"""[features] configuration and band differential entropy (DE).

DE of a Gaussian signal of variance σ² is ½·ln(2πeσ²) nats (Duan et al. 2013). EEG filtered to a narrow band is close
to Gaussian, so DE per band is log band power plus a constant; it is what the score z-scores per person.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from neuromusic.models.core.messages import FloatArray
from neuromusic.models.signal.quality import QualityConfig

# ½·ln(2πe): DE = _DE_OFFSET + ½·ln(σ²)
_DE_OFFSET = 0.5 * math.log(2.0 * math.pi * math.e)
Reference = Literal["recorded", "average", "median", "auto"]
REFERENCES: tuple[Reference, ...] = ("recorded", "average", "median", "auto")
MIN_REFERENCE_CHANNELS = 3  # re-referencing fewer EEG channels than this would cancel the signal itself
# "auto" takes the median reference from this many EEG channels (10-20 names) up: enough of them to cover the head,
# so their median is close to a reference-free zero; fewer (1-4 channel headsets), the signal as recorded
AUTO_MEDIAN_CHANNELS = 8

# Variance floor (µV²) so a zero-variance band gives a finite, very low DE instead of -inf.
_VAR_FLOOR = 1e-12


def _default_bands() -> dict[str, tuple[float, float]]:
    # SEED's band edges (Zheng & Lu 2015), the common choice for DE features.
    return {"delta": (1.0, 3.0), "theta": (4.0, 7.0), "alpha": (8.0, 13.0), "beta": (14.0, 30.0), "gamma": (31.0, 50.0)}


@dataclass(frozen=True)
class FeatureConfig:
    window_s: float = 2.0  # DE is computed over this much signal...
    hop_s: float = 0.25  # ...every hop_s seconds; window_s must be a whole multiple of hop_s
    notch_hz: float | None = None  # 50 or 60 to remove mains hum
    bands: dict[str, tuple[float, float]] = field(default_factory=_default_bands)  # name -> (low Hz, high Hz)
    filter_order: int = 4  # Butterworth band-pass order per band (even; 4 = two second-order sections)
    # each band's signal as recorded, or less the average / median over the EEG channels at each sample (a
    # reference-free view, for a headset whose reference sits where the rhythm is, e.g. parietal CMS/DRL);
    # "auto": the median with 8 or more channels with 10-20 names (AUTO_MEDIAN_CHANNELS), else as recorded
    reference: Reference = "recorded"
    quality: QualityConfig = field(default_factory=QualityConfig)

    def validate(self) -> None:
        if self.hop_s <= 0 or self.window_s <= 0:
            raise ValueError(f"window_s and hop_s must be > 0, got {self.window_s} and {self.hop_s}")
        ratio = self.window_s / self.hop_s
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f"window_s ({self.window_s}) must be a whole multiple of hop_s ({self.hop_s})")
        if not self.bands:
            raise ValueError("bands must name at least one band")
        for name, (low, high) in self.bands.items():
            if not 0 < low < high:
                raise ValueError(f"band {name}: need 0 < low < high, got ({low}, {high})")
        if self.notch_hz is not None and self.notch_hz <= 0:
            raise ValueError(f"notch_hz must be > 0 (50 or 60), got {self.notch_hz}")
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {', '.join(REFERENCES)}, got {self.reference!r}")
        if self.filter_order < 2 or self.filter_order % 2:
            raise ValueError(f"filter_order must be an even number >= 2, got {self.filter_order}")

    @property
    def hops_per_window(self) -> int:
        return round(self.window_s / self.hop_s)


def differential_entropy(variance: FloatArray) -> FloatArray:
    """DE in nats of Gaussian signals with the given variances (any shape)."""
    return _DE_OFFSET + 0.5 * np.log(np.maximum(variance, _VAR_FLOOR))


def differential_entropy_of(x: FloatArray) -> FloatArray:
    """DE in nats of each row of a band-filtered signal (..., n_samples), from its variance over the last axis."""
    return differential_entropy(np.var(x, axis=-1))
