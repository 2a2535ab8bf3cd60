"""Numbers that summarise one recorded session, for `neuromusic sessions` and the report. numpy only.

"Relaxed" means a score of at least `relaxed_threshold` (0.6 by default). A score holds until the next one, so time
relaxed is the sum of the intervals that start with a relaxed score (capped at `max_hold_s`, so a gap in the
recording does not count as relaxed time). The same intervals split the scored time into calm (>= relaxed_threshold),
tense (< tense_threshold, 0.4 by default) and neutral (in between).

Phases come from Event(kind="phase") messages (the text names the phase, which lasts until the next phase event of
the same origin): the simulated listener's script (data["source"] == "script": the ground truth of a simulated run),
a calibration's blocks (data["block"]), or any other. Without phase events, the scorer's baseline ("calibrating")
and what follows it are the phases, or the whole session is one phase, "session". Markers cut the session into
segments too, each named by the marker that starts it.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from neuromusic.models.sessions.store import SessionReader


@dataclass(frozen=True)
class PhaseSummary:
    name: str
    start_s: float  # from the session start
    end_s: float
    mean_score: float | None
    scored_s: float


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    started: str  # local date and time
    source: str
    duration_s: float
    clean_exit: bool
    mean_score: float | None
    relaxed_s: float
    scored_s: float
    markers: int
    bars: int
    repaired_bars: int
    control_changes: int  # bars whose controls differ from the previous bar's, plus operator control events
    dropped: int
    phases: list[PhaseSummary] = field(default_factory=list)
    marker_segments: list[PhaseSummary] = field(default_factory=list)
    state_s: dict[str, float] = field(default_factory=dict)  # seconds scored calm / neutral / tense
    repaired_samples: int = 0  # spike samples repaired over the session, all channels together

    @property
    def relaxed_fraction(self) -> float | None:
        return self.relaxed_s / self.scored_s if self.scored_s > 0 else None


STATES = ("calm", "neutral", "tense")


def phase_events(reader: SessionReader) -> list[dict[str, Any]]:
    return [e for e in reader.events() if e.get("kind") == "phase"]


def is_calibration(reader: SessionReader) -> bool:
    """A session recorded by `neuromusic calibrate`: blocks as phases, no scores."""
    return any("block" in (e.get("data") or {}) for e in phase_events(reader)) and not reader.scores()


def _intervals(
    marks: list[tuple[str, float]], reader: SessionReader, end: float, before: str
) -> list[tuple[str, float, float]]:
    if not marks:
        return []
    out = []
    if marks[0][1] > reader.t0 + 0.5 and before:  # a sliver before the first mark is no phase of its own
        out.append((before, reader.t0, marks[0][1]))
    for (name, start), (_, stop) in zip(marks, [*marks[1:], ("", end)], strict=True):
        out.append((name, start, max(start, stop)))
    return out


def phase_intervals(reader: SessionReader, end: float) -> list[tuple[str, float, float]]:
    """(name, start, end) in session-clock seconds, from phase events (the script's when it ran one)."""
    events = phase_events(reader)
    script = [e for e in events if (e.get("data") or {}).get("source") == "script"]
    phases = [(str(e.get("text") or "?"), float(e["t"])) for e in (script or events)]
    if not phases:
        # No phase events: the scorer's own baseline (state "calibrating") and what followed are the phases.
        times = reader.times("scores")
        scoring = [t for t, s in zip(times, reader.scores(), strict=True) if s.get("state") != "calibrating"]
        calibrating = [t for t, s in zip(times, reader.scores(), strict=True) if s.get("state") == "calibrating"]
        if calibrating and scoring and scoring[-1] > calibrating[-1]:
            return [("baseline", reader.t0, calibrating[-1]), ("after baseline", calibrating[-1], end)]
        return [("session", reader.t0, end)]
    return _intervals(phases, reader, end, "before")


def baseline_interval(reader: SessionReader) -> tuple[float, float] | None:
    """The scorer's baseline (its "calibrating" scores) in session-clock seconds, None when there was none."""
    times = reader.times("scores")
    calibrating = [t for t, s in zip(times, reader.scores(), strict=True) if s.get("state") == "calibrating"]
    return (reader.t0, max(calibrating)) if calibrating else None


def marker_intervals(reader: SessionReader, end: float) -> list[tuple[str, float, float]]:
    """Segments from each marker to the next (the last to the end), named by the marker that starts them."""
    marks = [(str(e.get("text") or "?"), float(e["t"])) for e in reader.events() if e.get("kind") == "marker"]
    return _intervals(sorted(marks, key=lambda m: m[1]), reader, end, "before the first marker")


def score_state(value: float, relaxed_threshold: float, tense_threshold: float) -> str:
    return "calm" if value >= relaxed_threshold else "tense" if value < tense_threshold else "neutral"


def channel_quality(reader: SessionReader) -> list[tuple[str, float, str]]:
    """(channel, fraction of hops it was good, its most frequent reason when bad) from the recorded features."""
    features = reader.features()
    names = list((reader.manifest.get("features") or {}).get("channel_names", []))
    out = []
    for c, name in enumerate(names):
        good = [bool(f["good"][c]) for f in features if c < len(f.get("good", []))]
        reasons = Counter(str(f["bad"][c]) for f in features if c < len(f.get("bad", [])) and f["bad"][c])
        fraction = sum(good) / len(good) if good else 0.0
        out.append((name, fraction, reasons.most_common(1)[0][0] if reasons else ""))
    return out


def channel_repairs(reader: SessionReader) -> list[tuple[str, float, int]]:
    """(channel, fraction of windows holding a repaired spike sample, spike samples repaired over the session) from
    the recorded features; zeros for a session recorded before repairs were.
    """
    features = reader.features()
    names = list((reader.manifest.get("features") or {}).get("channel_names", []))
    out = []
    for c, name in enumerate(names):
        windows = [_count(f.get("repaired"), c) for f in features]
        fraction = sum(1 for k in windows if k > 0) / len(windows) if windows else 0.0
        out.append((name, fraction, sum(_count(f.get("repaired_new"), c) for f in features)))
    return out


def _count(counts: Any, c: int) -> int:
    """Channel c's count in a recorded per-channel list; 0 where it is missing or not a count."""
    value = counts[c] if isinstance(counts, list) and c < len(counts) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _segment_summaries(
    segments: list[tuple[str, float, float]], intervals: list[tuple[float, float, float]], t0: float
) -> list[PhaseSummary]:
    out = []
    for name, p_start, p_end in segments:
        inside = [(hold, value) for t, hold, value in intervals if p_start <= t < p_end]
        weight = sum(hold for hold, _ in inside)
        mean = None
        if inside:  # time-weighted; a lone last score (no hold) counts plainly
            mean = sum(h * v for h, v in inside) / weight if weight > 0 else sum(v for _, v in inside) / len(inside)
        out.append(PhaseSummary(name, p_start - t0, p_end - t0, mean, weight))
    return out


def _score_intervals(
    scores: list[dict[str, Any]], times: list[float], max_hold_s: float
) -> list[tuple[float, float, float]]:
    """(t, hold seconds, value) for every scored (non-null) score; `times` on the session clock."""
    out: list[tuple[float, float, float]] = []
    for i, current in enumerate(scores):
        value = current.get("value")
        if value is None:
            continue
        hold = times[i + 1] - times[i] if i + 1 < len(scores) else 0.0
        out.append((times[i], min(max(hold, 0.0), max_hold_s), float(value)))
    return out


def summarize(
    reader: SessionReader, relaxed_threshold: float = 0.6, max_hold_s: float = 1.0, tense_threshold: float = 0.4
) -> SessionSummary:
    scores = reader.scores()
    intervals = _score_intervals(scores, reader.times("scores").tolist(), max_hold_s)
    scored_s = sum(hold for _, hold, _ in intervals)
    relaxed_s = sum(hold for _, hold, value in intervals if value >= relaxed_threshold)
    state_s = dict.fromkeys(STATES, 0.0)
    for _, hold, value in intervals:
        state_s[score_state(value, relaxed_threshold, tense_threshold)] += hold
    values = [value for _, _, value in intervals]
    start, end = reader.time_span()
    end_t = reader.t0 + end
    phases = _segment_summaries(phase_intervals(reader, end_t), intervals, reader.t0)
    marker_segments = _segment_summaries(marker_intervals(reader, end_t), intervals, reader.t0)
    bars = reader.bars()
    changes = sum(1 for a, b in itertools.pairwise(bars) if a.get("controls") != b.get("controls"))
    changes += sum(1 for e in reader.events() if e.get("kind") == "control")
    wall = reader.wall_t0
    return SessionSummary(
        session_id=reader.session_id,
        started=time.strftime("%Y-%m-%d %H:%M", time.localtime(wall)) if wall > 0 else "?",
        source=reader.source_name,
        duration_s=reader.duration_s() if reader.has_eeg else end - start,
        clean_exit=reader.clean_exit,
        mean_score=sum(values) / len(values) if values else None,
        relaxed_s=relaxed_s,
        scored_s=scored_s,
        markers=sum(1 for e in reader.events() if e.get("kind") == "marker"),
        bars=len(bars),
        repaired_bars=sum(1 for b in bars if b.get("repaired")),
        control_changes=changes,
        dropped=int(reader.manifest.get("dropped", 0) or 0),
        phases=phases,
        marker_segments=marker_segments if any(e.get("kind") == "marker" for e in reader.events()) else [],
        state_s=state_s,
        repaired_samples=sum(total for _, _, total in channel_repairs(reader)),
    )
