"""A gentle look-ahead peak limiter for rendered audio, in blocks, vectorised.

The gain needed at each sample is min(1, ceiling / |x|). It is spread with a minimum filter over the next `attack`
and the last `hold` samples, then smoothed with a moving average `attack` long: since every sample the average
covers already saw the peak through the minimum filter, the gain never exceeds what a sample needs (no overshoot),
and it moves smoothly (a ramp, never a step). Output is delayed by the look-ahead; `flush()` releases the rest.
Levels that stay under the ceiling pass untouched, so with the gain staging the renders aim at, the limiter only
shaves the occasional peak.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

ATTACK_S = 0.005  # gain ramps down over 5 ms before a peak
HOLD_S = 0.05  # and stays down 50 ms after it before ramping back, so a burst of peaks is not a tremolo


class Limiter:
    def __init__(self, rate: int, ceiling_db: float = -1.5) -> None:
        self.ceiling = 10.0 ** (ceiling_db / 20.0)
        self.attack = max(2, round(ATTACK_S * rate))
        self.hold = max(1, round(HOLD_S * rate))
        # samples whose gain is not known yet (look-ahead) and the needed gains seen before them (hold)
        self._pending = np.zeros((0, 2), dtype=np.float32)
        self._history = np.ones(self.hold + self.attack, dtype=np.float32)
        self.reduced = 0  # samples whose gain was below 1, for reports and tests

    @property
    def delay(self) -> int:
        """Samples held back for the look-ahead."""
        return 2 * self.attack

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed (n, 2) float samples; return the limited samples that are final now (fewer, then more, than fed)."""
        self._pending = np.concatenate([self._pending, block.astype(np.float32, copy=False)])
        ready = len(self._pending) - self.delay
        return self._emit(ready) if ready > 0 else np.zeros((0, 2), dtype=np.float32)

    def flush(self) -> np.ndarray:
        """Everything still held back (the future is taken as silence)."""
        n = len(self._pending)
        self._pending = np.concatenate([self._pending, np.zeros((self.delay, 2), dtype=np.float32)])
        out = self._emit(n)
        self._pending = np.zeros((0, 2), dtype=np.float32)
        return out

    def _emit(self, n: int) -> np.ndarray:
        peak = np.abs(self._pending).max(axis=1)
        needed = np.minimum(1.0, self.ceiling / np.maximum(peak, 1e-12)).astype(np.float32)
        if needed.min() >= 1.0 and self._history.min() >= 1.0:  # the usual case: nothing near the ceiling
            out = self._pending[:n]
        else:
            context = np.concatenate([self._history, needed])
            # minimum over [k - hold, k + attack], then the mean over [k - attack/2, k + attack/2]
            size = self.hold + self.attack + 1
            spread = minimum_filter1d(context, size, mode="nearest", origin=self.hold - size // 2)
            gain = uniform_filter1d(spread, self.attack, mode="nearest")[len(self._history) :][:n]
            gain = np.minimum(gain, needed[:n])  # exact at the edges of what is known
            self.reduced += int(np.count_nonzero(gain < 1.0))
            out = self._pending[:n] * gain[:, np.newaxis]
        self._history = np.concatenate([self._history, needed[:n]])[-len(self._history) :]
        self._pending = self._pending[n:]
        return out
