"""Causal IIR filters that carry their state from one chunk to the next.

Each incoming chunk is filtered once: an optional mains notch, then one Butterworth band-pass per band, plus a 1 Hz
high-pass that the quality checks read. Filtering a stream chunk by chunk with carried state gives exactly the output
of filtering the whole recording at once; re-filtering every window from zero state instead adds a start-up
transient that inflates DE (RESEARCH.md §1). A channel's state starts at the filter's steady state for its first
sample, so a DC offset (thousands of µV on many amplifiers) does not ring through the bands.
"""

from __future__ import annotations

import numpy as np
from neuromusic.models.errors import ConfigError
from neuromusic.models.messages import FloatArray
from scipy import signal

HIGHPASS_HZ = 1.0  # the quality checks' view of the signal: drift removed, everything else kept
NOTCH_Q = 30.0  # notch width = notch_hz / Q (about 1.7 Hz at 50 Hz)


def band_sos(low: float, high: float, sfreq: float, order: int = 4, name: str = "band") -> FloatArray:
    """Second-order sections of a Butterworth band-pass of total order `order` (even)."""
    nyquist = sfreq / 2.0
    if high >= nyquist:
        raise ConfigError(
            f"band {name} ({low:g}-{high:g} Hz) reaches the Nyquist frequency ({nyquist:g} Hz) of a {sfreq:g} Hz "
            f"source; lower its upper edge in [features] bands"
        )
    return np.asarray(signal.butter(order // 2, [low, high], btype="bandpass", fs=sfreq, output="sos"), np.float64)


class StatefulSos:
    """One SOS filter applied along the last axis of (n_channels, n) chunks, its state carried across calls."""

    def __init__(self, sos: FloatArray, n_channels: int) -> None:
        self.sos = sos
        self._zi_unit = signal.sosfilt_zi(sos)  # (n_sections, 2): steady state for a unit step
        self._zi: FloatArray | None = None
        self.n_channels = n_channels

    def __call__(self, x: FloatArray) -> FloatArray:
        if self._zi is None:
            self._zi = self._steady(x[:, 0])
        y, self._zi = signal.sosfilt(self.sos, x, axis=-1, zi=self._zi)
        return np.asarray(y)

    def reset(self, channels: np.ndarray, values: FloatArray) -> None:
        """Restart the given channels as if their input had always been `values` (one per selected channel)."""
        if self._zi is not None:
            self._zi[:, channels, :] = self._zi_unit[:, np.newaxis, :] * values[np.newaxis, :, np.newaxis]

    def _steady(self, first: FloatArray) -> FloatArray:
        return np.asarray(self._zi_unit[:, np.newaxis, :] * first[np.newaxis, :, np.newaxis], dtype=np.float64)


class FilterBank:
    """Notch (optional) -> one band-pass per band, and a high-passed copy for the quality checks."""

    def __init__(
        self,
        bands: dict[str, tuple[float, float]],
        sfreq: float,
        n_channels: int,
        order: int = 4,
        notch_hz: float | None = None,
    ) -> None:
        self.band_names = tuple(bands)
        self.notch: StatefulSos | None = None
        if notch_hz is not None:
            if notch_hz >= sfreq / 2:
                raise ConfigError(
                    f"features.notch_hz = {notch_hz:g} is at or above the Nyquist frequency of a {sfreq:g} Hz source"
                )
            b, a = signal.iirnotch(notch_hz, NOTCH_Q, fs=sfreq)
            self.notch = StatefulSos(np.asarray(signal.tf2sos(b, a), np.float64), n_channels)
        self.bands = [StatefulSos(band_sos(lo, hi, sfreq, order, name), n_channels) for name, (lo, hi) in bands.items()]
        hp = np.asarray(signal.butter(2, HIGHPASS_HZ, btype="highpass", fs=sfreq, output="sos"), np.float64)
        self.highpass = StatefulSos(hp, n_channels)

    def __call__(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """x (n_channels, n) -> band-filtered (n_bands, n_channels, n) and high-passed (n_channels, n)."""
        if self.notch is not None:
            x = self.notch(x)
        out = np.empty((len(self.bands), *x.shape))
        for i, band in enumerate(self.bands):
            out[i] = band(x)
        return out, self.highpass(x)
