"""Small frozen messages passed between the stages of one session.

source -> Chunk -> (window, filters) -> Features -> (scorer) -> Score -> (policy) -> Controls
       -> (composer) -> Bar -> (arranger) -> list[NoteEvent] -> (scheduler) -> sinks

Times, one rule: every `t` field is seconds on the session's clock (`Clock.now()`: monotonic in a live session,
virtual in a simulation) unless the name says `unix`. A message made from EEG samples also carries `source_t`, the
time of its newest sample on the source's own clock (BrainFlow: unix time; LSL: the LSL clock; simulator and replay:
seconds of the recording); that clock is only used to space samples and hops (gaps, smoothing, baseline length),
never to place a message on the session's time line. Only a Chunk's `timestamps` are on the source's clock.
Arrays are numpy and are never mutated after the message is made.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from neuromusic.models.core.controls import CONTROL_NAMES, CONTROLS

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SourceState = Literal["connecting", "streaming", "stale", "reconnecting", "stopped"]
ScoreState = Literal["calibrating", "scoring", "stale", "poor-signal"]


@dataclass(frozen=True)
class Chunk:
    """Samples as they arrived from a source. data is (n_channels, n_samples) in microvolts; timestamps (n_samples,)
    are in the source's own time base (LSL clock, BrainFlow unix time, simulator seconds)."""

    data: FloatArray
    timestamps: FloatArray
    channel_names: tuple[str, ...]
    sfreq: float

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[1])


@dataclass(frozen=True)
class SourceStatus:
    """A change of a source's connection state, with a human-readable reason."""

    t: float
    state: SourceState
    detail: str = ""


@dataclass(frozen=True)
class Features:
    """Band differential entropy for one hop. de is (n_bands, n_channels) in nats; bad channels hold NaN.
    t: session clock when the window was complete (its last sample received); source_t: that sample's source time
    (None: the same as t, for features made offline where the source's clock is the only one)."""

    t: float
    de: FloatArray
    band_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    good: BoolArray  # (n_channels,) channels that passed the quality checks in this window
    bad_reasons: tuple[str, ...]  # (n_channels,) "" for a good channel, else why it was excluded
    gap_s: float = 0.0  # largest timestamp gap seen in this hop (0 if none)
    source_t: float | None = None
    repaired: tuple[int, ...] = ()  # (n_channels,) spike samples repaired in this window (the channel stays good)
    # (n_channels,) of those, the ones not in the previous Features: summed over a session, each repaired sample once
    repaired_new: tuple[int, ...] = ()

    @property
    def source_time(self) -> float:
        """The window's end on the source's clock (t where no source time was given)."""
        return self.t if self.source_t is None else self.source_t

    @property
    def quality(self) -> float:
        """Fraction of channels usable in this window."""
        return float(self.good.mean()) if self.good.size else 0.0


@dataclass(frozen=True)
class Score:
    """The relaxation score. value is in [0, 1] or None while calibrating or stale; confidence in [0, 1].
    t: session clock (the Features' t, or when a held or stale score was published); source_t: the scored window's
    end on the source's clock, None when no window stands behind it (stale, before the first window)."""

    t: float
    value: float | None
    confidence: float
    state: ScoreState
    raw: float | None = None  # the unsmoothed index before the squashing function, for analysis
    source_t: float | None = None


@dataclass(frozen=True)
class Controls:
    """Musical controls for one bar, one field per row of the control table (models/core/controls.py): tempo in BPM,
    valence and energy in [0, 1]. Fields are in the table's order."""

    tempo: float
    valence: float
    energy: float

    def __post_init__(self) -> None:
        for spec in CONTROLS:
            value = getattr(self, spec.name)
            if not math.isfinite(value):
                raise ValueError(f"{spec.name} must be a finite number, got {value!r}")
            if not spec.low <= value <= spec.high:
                raise ValueError(f"{spec.name} must be within {spec.range_text()}, got {value}")

    @classmethod
    def from_values(cls, values: Iterable[float]) -> Controls:
        """Controls from values in the table's order."""
        return cls(**dict(zip(CONTROL_NAMES, (float(v) for v in values), strict=True)))

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> Controls:
        """Controls from a mapping with one value per control (other keys are ignored)."""
        return cls(**{name: float(values[name]) for name in CONTROL_NAMES})

    def values(self) -> tuple[float, ...]:
        """The values in the table's order."""
        return tuple(getattr(self, name) for name in CONTROL_NAMES)

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in CONTROL_NAMES}


@dataclass(frozen=True)
class Note:
    """One note of a composed bar, in beats from the bar's start (a beat is a quarter note)."""

    pitch: int  # MIDI note number
    start: float  # beats from the bar start
    duration: float  # beats
    velocity: int = 80


@dataclass(frozen=True)
class Bar:
    """One composed bar of melody. abc is the bar in ABC notation in its real key; notes are what to play."""

    index: int
    abc: str
    notes: tuple[Note, ...]
    beats: float  # bar length in quarter-note beats (4.0 for 4/4, 3.0 for 3/4, 3.0 for 6/8)
    meter: str  # "4/4", "3/4", "6/8", ...
    key: str  # "C", "Am", "D", ...
    controls: Controls
    repaired: bool = False  # the model's output was fixed up (or replaced by a fallback) to fit the bar
    compose_ms: float = 0.0
    chords: tuple[str, ...] = ()  # the arranger's chord symbols, in order, once the bar is arranged
    start_t: float | None = None  # session clock when the bar starts sounding (None: not scheduled yet)


@dataclass(frozen=True)
class NoteEvent:
    """A note as the scheduler plays it: absolute session time in seconds, channel and program per role."""

    t: float
    duration: float
    pitch: int
    velocity: int
    channel: int
    role: str = "melody"  # "melody", "chords", "bass", "pad"


@dataclass(frozen=True)
class Event:
    """Something an operator should see: markers, reconnects, errors, phase changes."""

    t: float
    kind: str  # "marker", "reconnect", "error", "warning", "phase", "info"
    text: str
    data: dict[str, Any] = field(default_factory=dict)
