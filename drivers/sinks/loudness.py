"""Loudness of rendered audio as a listener's player measures it: ITU-R BS.1770 integrated loudness (LUFS),
EBU R128 loudness range (LU) and true peak (dBTP, 4x oversampled), through pyloudnorm."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TARGET_LUFS = -20.0  # what renders and the live synth aim at: calm listening, a little under streaming (-14)
PEAK_CEILING_DB = -1.0  # true peaks stay at or under this


@dataclass(frozen=True)
class Loudness:
    integrated: float  # LUFS; -inf for silence
    range: float  # LU
    true_peak: float  # dBTP

    def line(self) -> str:
        return f"{self.integrated:.1f} LUFS, range {self.range:.1f} LU, true peak {self.true_peak:.1f} dBTP"


def measure(samples: np.ndarray, rate: int) -> Loudness:
    """Loudness of (n,) or (n, channels) float samples in -1..1."""
    import pyloudnorm
    from scipy.signal import resample_poly

    data = np.asarray(samples, dtype=np.float64)
    meter = pyloudnorm.Meter(rate)
    with warnings.catch_warnings():  # pyloudnorm warns on silence and on clips shorter than its 3 s window
        warnings.simplefilter("ignore")
        integrated = float(meter.integrated_loudness(data))
        try:
            lra = float(meter.loudness_range(data))
        except (ValueError, IndexError):  # shorter than one 3 s window
            lra = math.nan
    peak = float(np.abs(resample_poly(data, 4, 1, axis=0)).max()) if len(data) else 0.0
    return Loudness(integrated, lra, 20.0 * math.log10(max(peak, 1e-10)))


def measure_file(path: Path) -> Loudness:
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    return measure(data, int(rate))
