"""A fixed-size ring buffer of multichannel samples with their time stamps, and a window API.

Writes and reads take a lock, so a worker thread may write while the event loop reads the latest window.
`get_data(n)` copies the newest n samples out in time order.
"""

from __future__ import annotations

import threading

import numpy as np
from neuromusic.models.core.messages import FloatArray


class RingBuffer:
    def __init__(self, n_channels: int, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.n_channels = n_channels
        self.capacity = capacity
        self._data = np.zeros((n_channels, capacity))
        self._times = np.zeros(capacity)
        self._head = 0  # index where the next sample goes
        self._count = 0  # valid samples held (<= capacity)
        self._total = 0  # samples ever written
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    @property
    def total(self) -> int:
        """Samples written since creation (including those already overwritten)."""
        return self._total

    def push(self, data: FloatArray, timestamps: FloatArray) -> None:
        """Append (n_channels, n) samples and their (n,) time stamps; the oldest fall out when full."""
        n = data.shape[1]
        if data.shape[0] != self.n_channels or timestamps.shape != (n,):
            raise ValueError(
                f"expected ({self.n_channels}, n) data and (n,) timestamps, got {data.shape}, {timestamps.shape}"
            )
        with self._lock:
            self._total += n
            if n >= self.capacity:  # only the newest `capacity` samples survive
                self._data[:] = data[:, -self.capacity :]
                self._times[:] = timestamps[-self.capacity :]
                self._head, self._count = 0, self.capacity
                return
            first = min(n, self.capacity - self._head)
            self._data[:, self._head : self._head + first] = data[:, :first]
            self._times[self._head : self._head + first] = timestamps[:first]
            rest = n - first
            if rest:
                self._data[:, :rest] = data[:, first:]
                self._times[:rest] = timestamps[first:]
            self._head = (self._head + n) % self.capacity
            self._count = min(self.capacity, self._count + n)

    def get_data(self, n: int | None = None) -> tuple[FloatArray, FloatArray]:
        """The newest n samples (all held if None or more than held): ((n_channels, n) data, (n,) timestamps)."""
        with self._lock:
            n = self._count if n is None else max(0, min(n, self._count))
            idx = (self._head - n + np.arange(n)) % self.capacity
            return self._data[:, idx].copy(), self._times[idx].copy()
