"""Numbers that summarise one recorded session, for `neuromusic sessions` and the report. numpy only.

"Relaxed" means a score of at least `relaxed_threshold` (0.6 by default). A score holds until the next one, so time
relaxed is the sum of the intervals that start with a relaxed score (capped at `max_hold_s`, so a gap in the
recording does not count as relaxed time). Phases come from Event(kind="phase") messages (the text names the phase,
which lasts until the next phase event); without phase events, the scorer's baseline ("calibrating") and what
follows it are the phases, or the whole session is one phase, "session".
"""

from __future__ import annotations

import itertools
import time
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

    @property
    def relaxed_fraction(self) -> float | None:
        return self.relaxed_s / self.scored_s if self.scored_s > 0 else None


def phase_intervals(reader: SessionReader, end: float) -> list[tuple[str, float, float]]:
    """(name, start, end) in session-clock seconds, from phase events."""
    phases = [(str(e.get("text") or "?"), float(e["t"])) for e in reader.events() if e.get("kind") == "phase"]
    if not phases:
        # No phase events: the scorer's own baseline (state "calibrating") and what followed are the phases.
        times = reader.times("scores")
        scoring = [t for t, s in zip(times, reader.scores(), strict=True) if s.get("state") != "calibrating"]
        calibrating = [t for t, s in zip(times, reader.scores(), strict=True) if s.get("state") == "calibrating"]
        if calibrating and scoring and scoring[-1] > calibrating[-1]:
            return [("baseline", reader.t0, calibrating[-1]), ("after baseline", calibrating[-1], end)]
        return [("session", reader.t0, end)]
    out = []
    if phases[0][1] > reader.t0:
        out.append(("before", reader.t0, phases[0][1]))
    for (name, start), (_, stop) in zip(phases, [*phases[1:], ("", end)], strict=True):
        out.append((name, start, max(start, stop)))
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


def summarize(reader: SessionReader, relaxed_threshold: float = 0.6, max_hold_s: float = 1.0) -> SessionSummary:
    scores = reader.scores()
    intervals = _score_intervals(scores, reader.times("scores").tolist(), max_hold_s)
    scored_s = sum(hold for _, hold, _ in intervals)
    relaxed_s = sum(hold for _, hold, value in intervals if value >= relaxed_threshold)
    values = [value for _, _, value in intervals]
    start, end = reader.time_span()
    phases = []
    for name, p_start, p_end in phase_intervals(reader, reader.t0 + end):
        inside = [(hold, value) for t, hold, value in intervals if p_start <= t < p_end]
        weight = sum(hold for hold, _ in inside)
        mean = None
        if inside:  # time-weighted; a lone last score (no hold) counts plainly
            mean = sum(h * v for h, v in inside) / weight if weight > 0 else sum(v for _, v in inside) / len(inside)
        phases.append(PhaseSummary(name, p_start - reader.t0, p_end - reader.t0, mean, weight))
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
    )
