"""Band differential entropy per channel in a sliding window. (Owned by the signal path; to be written.)"""

from __future__ import annotations

from dataclasses import dataclass, field


def _default_bands() -> dict[str, tuple[float, float]]:
    # SEED's band edges (Zheng & Lu 2015), the common choice for DE features.
    return {"delta": (1.0, 3.0), "theta": (4.0, 7.0), "alpha": (8.0, 13.0), "beta": (14.0, 30.0), "gamma": (31.0, 50.0)}


@dataclass(frozen=True)
class FeatureConfig:
    window_s: float = 2.0
    hop_s: float = 0.25
    notch_hz: float | None = None  # 50 or 60 to remove mains hum
    bands: dict[str, tuple[float, float]] = field(default_factory=_default_bands)
