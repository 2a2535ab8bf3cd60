"""What the bandit has played and heard in this session, and its comfort guard.

`SessionRecord` keeps every bar played (time since the session's first bar, controls) and the usable scores averaged
in bins of `bin_s`, the form the response model fits. `ComfortWatch` compares each closed bin with the session's
running median and says when the score has stayed well below it for long.
"""

from __future__ import annotations

import statistics

import numpy as np
from neuromusic.models.core.messages import Controls
from neuromusic.policies.config import BanditConfig
from neuromusic.policies.response_model import FloatArray

MIN_BIN_SCORES = 2  # scores a bin needs to count


class SessionRecord:
    """Bars played and scores heard in one session, on the session's own clock (0 at the first bar)."""

    def __init__(self, bin_s: float) -> None:
        self.bin_s = bin_s
        self.t0: float | None = None
        self.bar_t: list[float] = []
        self.bar_x: list[tuple[float, ...]] = []  # each bar's controls, in the table's order
        self.bins: dict[int, list[float]] = {}  # bin index -> [sum, count]

    def add_bar(self, t: float, controls: Controls) -> None:
        if self.t0 is None:
            self.t0 = t
        self.bar_t.append(t - self.t0)
        self.bar_x.append(controls.values())

    def add_score(self, t: float, value: float) -> int | None:
        """Add a usable score (ignored before the first bar); the index of the bin this score closed, if any."""
        if self.t0 is None:
            return None
        k = int((t - self.t0) // self.bin_s)
        cell = self.bins.setdefault(k, [0.0, 0.0])
        first = cell[1] == 0
        cell[0] += value
        cell[1] += 1
        return k - 1 if first and k - 1 in self.bins else None

    def bin_mean(self, k: int) -> float | None:
        total, count = self.bins[k]
        return total / count if count >= MIN_BIN_SCORES else None

    def binned(self) -> tuple[FloatArray, FloatArray, np.ndarray]:
        """Bin middles (s), bin means, and which bins have enough scores to count."""
        n_bins = (max(self.bins) + 1) if self.bins else 0
        bin_t: FloatArray = (np.arange(n_bins, dtype=np.float64) + 0.5) * self.bin_s
        bin_y = np.zeros(n_bins)
        observed = np.zeros(n_bins, dtype=bool)
        for k, (total, count) in self.bins.items():
            if count >= MIN_BIN_SCORES and k >= 0:
                bin_y[k], observed[k] = total / count, True
        return bin_t, bin_y, observed


class ComfortWatch:
    """Exploring must not keep music that drives the score down: due once a bin's mean has stayed more than
    `comfort_drop` below the running median of bin means for `comfort_s` (at most once per `comfort_s`)."""

    def __init__(self, cfg: BanditConfig) -> None:
        self.cfg = cfg
        self._means: list[float] = []
        self._below_since: float | None = None

    def bin_closed(self, mean: float, now: float, settings_played: int) -> bool:
        """A bin has closed with this mean score; True when the bandit should return to the best music."""
        self._means.append(mean)
        if len(self._means) * self.cfg.bin_s < self.cfg.comfort_s:
            return False
        median = statistics.median(self._means)
        if mean >= median - self.cfg.comfort_drop:
            self._below_since = None
        elif self._below_since is None:
            self._below_since = now
        elif now - self._below_since >= self.cfg.comfort_s and settings_played > 1:
            self._below_since = now  # at most once per comfort_s
            return True
        return False
