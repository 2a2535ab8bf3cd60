"""Earlier sessions as they were played and heard, for the preference model of the next ones.

What a session measured about a listener's preference is best carried as the session itself: the bars where the music
changed and the binned scores, with the time constant and delay fitted by the end of it. The next session weighs every
preference hypothesis by its evidence in each earlier session (at that session's own dynamics, with its own level,
initial state and amplitude) as well as in its own. A summary of the session by another model (f at the settings
chosen, policies/bandit_memory.py) loses most of what a slow listener's session says: the time constant and the
delay shape how a few long stays inform each hypothesis.

Saved form, in the bandit's state under "records" (newest last; `carry_sessions` of them):

    {"bin_s": 3.0, "tau_s": 42.0, "delay_s": 5.0, "summarised": true,
     "bars": [[t, tempo, valence, energy], ...],   # the first bar and every bar whose controls changed
     "scores": [mean or null, ...]}                # per bin of bin_s from the first bar (null: too few scores)

"summarised" says whether the session also left observations in the state, so the model counts each session once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from neuromusic.models.core.controls import CONTROL_NAMES
from neuromusic.policies.bandit_record import SessionRecord
from neuromusic.policies.response_model import FloatArray

MAX_RECORD_BARS = 20_000  # a saved session larger than this is not one this release wrote
MAX_RECORD_BINS = 20_000  # 16 hours of 3-s bins


@dataclass(frozen=True)
class PastSession:
    """One earlier session: bar starts (s from the first bar), their controls (table order), the bins' middles and
    means and which bins count, the bin length, and the (tau, delay) fitted by its end."""

    bar_t: FloatArray
    bar_x: FloatArray
    bin_t: FloatArray
    bin_y: FloatArray
    observed: np.ndarray
    bin_s: float
    tau: float
    delay: float
    summarised: bool

    def to_state(self) -> dict[str, Any]:
        changed = np.ones(len(self.bar_t), dtype=bool)
        changed[1:] = np.any(np.diff(self.bar_x, axis=0) != 0, axis=1)
        bars = [
            [round(float(t), 2), *(round(float(v), 4) for v in x)]
            for t, x in zip(self.bar_t[changed], self.bar_x[changed], strict=True)
        ]
        scores = [round(float(y), 4) if seen else None for y, seen in zip(self.bin_y, self.observed, strict=True)]
        return {
            "bin_s": self.bin_s,
            "tau_s": self.tau,
            "delay_s": self.delay,
            "summarised": self.summarised,
            "bars": bars,
            "scores": scores,
        }


def from_record(record: SessionRecord, dynamics: tuple[float, float], summarised: bool) -> PastSession | None:
    """This session as the next ones will see it; None when it heard nothing usable."""
    bin_t, bin_y, observed = record.binned()
    if not record.bar_t or not observed.any():
        return None
    bar_x = np.array(record.bar_x, dtype=float).reshape(-1, len(CONTROL_NAMES))
    return PastSession(np.array(record.bar_t), bar_x, bin_t, bin_y, observed, record.bin_s, *dynamics, summarised)


def read_past(saved: Any) -> PastSession:
    """A saved session; ValueError naming what is wrong."""
    if not isinstance(saved, dict):
        raise ValueError("each bandit record must be a table")
    bin_s, tau, delay = (_number(saved, key) for key in ("bin_s", "tau_s", "delay_s"))
    if bin_s <= 0 or tau <= 0 or delay < 0:
        raise ValueError("a bandit record needs bin_s > 0, tau_s > 0 and delay_s >= 0")
    bars = _rows(
        saved.get("bars"), 1 + len(CONTROL_NAMES), MAX_RECORD_BARS, "bars", "[t, " + ", ".join(CONTROL_NAMES) + "]"
    )
    if len(bars) == 0:
        raise ValueError("a bandit record needs at least one bar")
    if np.any(np.diff(bars[:, 0]) < 0) or bars[0, 0] < 0:
        raise ValueError("a bandit record's bar times must start at >= 0 and never go back")
    bin_y, observed = _scores(saved.get("scores"))
    bin_t = (np.arange(len(bin_y), dtype=np.float64) + 0.5) * bin_s
    summarised = saved.get("summarised", True)
    if not isinstance(summarised, bool):
        raise ValueError("a bandit record's 'summarised' must be true or false")
    return PastSession(bars[:, 0], bars[:, 1:], bin_t, bin_y, observed, bin_s, tau, delay, summarised)


def read_records(state: dict[str, Any], keep: int) -> list[PastSession]:
    """The newest `keep` saved sessions of a bandit state (none saved: []); ValueError naming what is wrong."""
    saved = state.get("records", [])
    if not isinstance(saved, list):
        raise ValueError("bandit 'records' must be a list")
    return [read_past(item) for item in saved[-keep:]] if keep > 0 else []


def _number(saved: dict[str, Any], key: str) -> float:
    value = saved.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"a bandit record's {key!r} must be a finite number")
    return float(value)


def _scores(value: Any) -> tuple[FloatArray, np.ndarray]:
    if not isinstance(value, list) or len(value) > MAX_RECORD_BINS:
        raise ValueError(f"a bandit record's 'scores' must be a list of at most {MAX_RECORD_BINS} bin means or null")
    if not all(v is None or (_finite(v) and 0.0 <= v <= 1.0) for v in value) or all(v is None for v in value):
        raise ValueError("a bandit record's 'scores' must hold scores (0 to 1) or null, at least one score")
    observed = np.array([v is not None for v in value], dtype=bool)
    return np.array([0.0 if v is None else float(v) for v in value]), observed


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rows(value: Any, width: int, most: int, name: str, shape: str) -> FloatArray:
    if not isinstance(value, list) or len(value) > most:
        raise ValueError(f"a bandit record's {name!r} must be a list of at most {most} rows {shape}")
    for row in value:
        if not isinstance(row, list) or len(row) != width:
            raise ValueError(f"each of a bandit record's {name!r} must be {shape}")
        if not all(_finite(v) for v in row):
            raise ValueError(f"a bandit record's {name!r} must hold finite numbers")
    return np.array(value, dtype=float).reshape(-1, width)
