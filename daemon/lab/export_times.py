"""The time base of every export: seconds from the first recorded EEG sample, and where a session's events fall on it.

An event has a session-clock time `t` (when it happened); the EEG has a session-clock time per frame (`t_received`,
when the frame's last sample arrived, models/sessions/store.py). An event is placed at the sample that had been
received when it happened: the end of the last frame received at or before `t`, plus the session-clock time since
that receipt, at most the length of the frame that came next. In a live session the samples arrive at the pace they
were taken, so that is the sample taken at `t` (the first sample's session-clock time plus seconds from it, as the
session clock measures); in a replay faster than real time the session clock runs compressed against the samples,
and the position in the recording is still the one the replay had reached, to within a frame or two (the recorder
notes a frame's receipt when it writes the frame; the service that made the event may have been handed that frame
a little before or after). That is the recorder's view: as fast as a replay goes (speed 0), the recorder can trail
the source, and an event timed from outside the session (an MQTT marker) lands where the recorder had got to.
Before the first sample and after the last one the session clock is the only measure: the offset runs on at one
second per second (exports drop an annotation outside the recording).

A replayed file's own marker (`data.file_t`, its time in the file, daemon/services/replay_markers.py) is placed
exactly: at the recorded sample whose source time stamp it is (to within half a sample), as feature hops are
placed by their `source_t`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from neuromusic.models.sessions.store import SessionReader

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SampleClock:
    """Session-clock times to seconds from the first sample. `received` (increasing) and `offsets` pair each frame
    receipt with the seconds of EEG received by then; `stamps` are the samples' source time stamps."""

    start: float  # session-clock time of the first sample
    sfreq: float
    received: FloatArray
    offsets: FloatArray
    stamps: FloatArray = field(default_factory=lambda: np.empty(0))

    @classmethod
    def session_only(cls, start: float) -> SampleClock:
        """Without EEG samples: seconds from `start` on the session clock."""
        return cls(start, 0.0, np.array([start]), np.array([0.0]))

    @property
    def duration(self) -> float:
        return float(self.offsets[-1])

    def offset(self, times: npt.ArrayLike) -> FloatArray:
        """Seconds from the first sample of each session-clock time (see the module docstring)."""
        t = np.asarray(times, dtype=np.float64)
        last = np.searchsorted(self.received, t, side="right") - 1  # the last receipt at or before t
        at = np.maximum(last, 0)
        arriving = np.diff(self.offsets, append=np.inf)[at]  # seconds of EEG in the frame that came next
        since = np.minimum(t - self.received[at], arriving)
        return np.where(last >= 0, self.offsets[at] + since, t - self.received[0] + self.offsets[0])

    def sample_at(self, source_times: npt.ArrayLike) -> IntArray:
        """Index of the recorded sample whose source time stamp each time is (the nearest, within half a sample);
        -1 where none is (NaN, outside the recording, a gap, or no usable stamps)."""
        source = np.asarray(source_times, dtype=np.float64)
        stamps = self.stamps
        if stamps.size == 0 or self.sfreq <= 0 or not np.all(np.diff(stamps) >= 0):
            return np.full(source.shape, -1, dtype=np.int64)
        after = np.searchsorted(stamps, source)  # the first sample at or after; NaN sorts past the end
        below, above = np.clip(after - 1, 0, stamps.size - 1), np.clip(after, 0, stamps.size - 1)
        nearest = np.where(np.abs(stamps[below] - source) <= np.abs(stamps[above] - source), below, above)
        close = np.abs(stamps[nearest] - source) <= 0.5 / self.sfreq  # False for NaN
        return np.where(close, nearest, -1).astype(np.int64)

    def window_ends(self, source_times: npt.ArrayLike, times: npt.ArrayLike) -> FloatArray:
        """Seconds from the first sample to the end of a window (a feature hop, a score) whose last sample has the
        source time stamp `source_times` (NaN: not recorded), made at session-clock `times`: just after that sample
        where the recording holds it, else by the session clock."""
        last = self.sample_at(source_times)
        return np.where(last >= 0, (last + 1) / max(self.sfreq, 1e-12), self.offset(times))


def sample_clock(reader: SessionReader) -> SampleClock:
    """The session's clock of its recorded EEG (a session without EEG samples: the session clock from t0). A frame's
    t_received is when its last sample arrived, so the first sample is placed (frame length / sfreq) before the first
    receipt."""
    if not reader.has_eeg or reader.eeg().n_samples == 0:
        return SampleClock.session_only(reader.t0)
    eeg = reader.eeg()
    received = np.maximum.accumulate(eeg.t_received)  # the session clock is monotonic; a damaged file may not be
    last_of_frame = np.flatnonzero(np.append(received[1:] > received[:-1], True))  # frames received at once: one
    seconds = (last_of_frame + 1) / eeg.sfreq
    start = float(received[0]) - seconds[0]
    return SampleClock(
        start,
        eeg.sfreq,
        np.concatenate(([start], received[last_of_frame])),
        np.concatenate(([0.0], seconds)),
        eeg.timestamps,
    )


def file_time(event: dict[str, Any]) -> float:
    """A replayed file's marker's time in that file, else NaN."""
    data = event.get("data")
    value = data.get("file_t") if isinstance(data, dict) and data.get("source") == "replay" else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)  # NaN and infinities find no sample
    return math.nan


def event_offsets(clock: SampleClock, reader: SessionReader) -> FloatArray:
    """Seconds from the first sample of each record of the session's events.jsonl, in its order."""
    by_clock = clock.offset(reader.times("events"))
    index = clock.sample_at([file_time(event) for event in reader.events()])
    return np.where(index >= 0, index / max(clock.sfreq, 1e-12), by_clock)
