"""What the daemon knew about channel quality, read from a session's features.jsonl, for the exports.

Every feature hop judged each channel over its window (`features.window_s` of signal ending at the hop): usable, or
excluded from the score with the first rule that fired ("railed", "glitch", "flat", "out-of-range", "eye", ...:
models/signal/quality.py); and it counted the spike samples it repaired. Three things are derived from that:

  bad spans     per channel, each run of consecutive hops excluded for one reason becomes one span, from the start
                of the first excluded window to the end of the last: every sample that went into an excluded
                window (the artifact itself lies inside). Spans of the same channel and reason less than one hop
                apart (or overlapping) are one.
  repairs       per channel, each hop whose `repaired_new` counted spike samples: that hop (hop_s up to its end)
                and the count.
  bad channels  channels excluded in more than MOSTLY_BAD_SHARE of the judged hops, with the share of each reason.

Times are seconds from the first recorded sample, the time base of every export annotation
(daemon/lab/export_times.py). A hop's window end is placed at its last sample, found by its source time among the
recorded EEG time stamps (exact, whatever the speed of a replay); where the EEG does not hold it (no raw EEG
recorded, or a session from before source times were kept) it is placed by its session-clock time, as markers are.

A features.jsonl damaged before its last line is read line by line, skipping the lines that are not JSON (a warning
says how many); a record whose quality fields are not of the recorded shape is skipped. Nothing here raises for
what the file holds.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np
from neuromusic.daemon.lab.export_times import SampleClock
from neuromusic.models.sessions.store import MalformedSessionError, SessionReader
from neuromusic.models.signal.features import FeatureConfig

log = logging.getLogger(__name__)

# A channel excluded from the score in more than this share of the judged hops is a bad channel of the session: in
# FIF info["bads"], in BIDS channels.tsv (status bad), in the XDF quality stream's header.
MOSTLY_BAD_SHARE = 0.5
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")  # reasons go into annotation texts: keep them one plain word


@dataclass(frozen=True)
class BadSpan:
    channel: str
    reason: str
    onset: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.onset


@dataclass(frozen=True)
class Repair:
    channel: str
    onset: float
    duration: float
    count: int  # spike samples repaired


@dataclass(frozen=True)
class BadChannel:
    channel: str
    share: float  # of the judged hops, excluded for any reason
    reasons: tuple[tuple[str, float], ...]  # (reason, share of the judged hops), most frequent first

    def description(self) -> str:
        """E.g. "excluded from the score in 80% of hops: railed 75%, glitch 5%"."""
        parts = ", ".join(
            f"{reason} {share:.0%}" if share >= 0.005 else f"{reason} <1%" for reason, share in self.reasons
        )
        return f"excluded from the score in {self.share:.0%} of hops: {parts}"


@dataclass(frozen=True)
class SessionQuality:
    hops: int  # hops with a usable quality record
    spans: tuple[BadSpan, ...] = ()
    repairs: tuple[Repair, ...] = ()
    bad_channels: tuple[BadChannel, ...] = ()


@dataclass(frozen=True)
class _Hop:
    t: float  # session clock
    source_t: float  # NaN: not recorded
    bad: tuple[str, ...]  # per channel: "" usable, else the reason
    repaired_new: tuple[int, ...]


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _reason(value: Any) -> str:
    text = _UNSAFE.sub("-", value.strip())[:32].strip("-") if isinstance(value, str) else ""
    return text or "unspecified"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_hop(record: Any, n_channels: int) -> _Hop | None:
    """One features.jsonl record as a hop, or None where its time or per-channel verdicts are not of the recorded
    shape. Reasons and repair counts that are missing or malformed read as "unspecified" and 0."""
    if not isinstance(record, dict) or not _number(record.get("t")):
        return None
    good = record.get("good")
    if not isinstance(good, list) or len(good) != n_channels or not all(isinstance(g, bool) for g in good):
        return None
    reasons = record.get("bad")
    reasons = reasons if isinstance(reasons, list) and len(reasons) == n_channels else [None] * n_channels
    repaired = record.get("repaired_new")
    repaired = repaired if isinstance(repaired, list) and len(repaired) == n_channels else [0] * n_channels
    source_t = record.get("source_t")
    return _Hop(
        t=float(record["t"]),
        source_t=float(source_t) if _number(source_t) else math.nan,
        bad=tuple("" if ok else _reason(why) for ok, why in zip(good, reasons, strict=True)),
        repaired_new=tuple(_count(k) for k in repaired),
    )


def _records(reader: SessionReader) -> list[Any]:
    """The features records by the reader's rules; a file damaged mid-way line by line, skipping the damage."""
    try:
        return list(reader.features())
    except OSError as error:
        path = reader.folder / "features.jsonl"
        log.warning("%s: cannot read it (%s); the export carries no quality annotations", path, error.strerror)
        return []
    except MalformedSessionError as error:
        path = reader.folder / "features.jsonl"
        records: list[Any] = []
        skipped = 0
        for line in path.read_bytes().split(b"\n"):  # read once already: the reader found it damaged
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                skipped += 1
        log.warning("%s; the quality annotations skip %d damaged line(s)", error, skipped)
        return records


def _timing(reader: SessionReader) -> tuple[float, float]:
    """(window_s, hop_s) the session ran with, the defaults where its config.json does not say."""
    defaults = FeatureConfig()
    try:
        section = reader.config().get("features")
    except MalformedSessionError:
        section = None
    section = section if isinstance(section, dict) else {}
    window, hop = section.get("window_s"), section.get("hop_s")
    if _number(window) and _number(hop) and 0 < hop <= window:
        return float(window), float(hop)
    return defaults.window_s, defaults.hop_s


def _spans(hops: list[_Hop], ends: np.ndarray, names: list[str], window_s: float, hop_s: float) -> list[BadSpan]:
    spans: list[BadSpan] = []
    for c, name in enumerate(names):
        run: tuple[str, float, float] | None = None  # reason, first window end, last window end
        for hop, end in zip(hops, ends, strict=True):
            reason = hop.bad[c]
            if run is not None and reason == run[0]:
                run = (reason, run[1], float(end))
                continue
            if run is not None:
                spans.append(BadSpan(name, run[0], max(0.0, run[1] - window_s), run[2]))
            run = (reason, float(end), float(end)) if reason else None
        if run is not None:
            spans.append(BadSpan(name, run[0], max(0.0, run[1] - window_s), run[2]))
    return _merge(spans, hop_s)


def _merge(spans: list[BadSpan], hop_s: float) -> list[BadSpan]:
    """Spans of one channel and reason less than one hop apart (or overlapping) become one."""
    merged: list[BadSpan] = []
    for span in sorted(spans, key=lambda s: (s.channel, s.reason, s.onset)):
        last = merged[-1] if merged else None
        if last and (last.channel, last.reason) == (span.channel, span.reason) and span.onset - last.end < hop_s:
            merged[-1] = BadSpan(span.channel, span.reason, last.onset, max(last.end, span.end))
        else:
            merged.append(span)
    return sorted(merged, key=lambda s: (s.onset, s.channel))


def _bad_channels(hops: list[_Hop], names: list[str]) -> list[BadChannel]:
    out = []
    for c, name in enumerate(names):
        reasons = Counter(h.bad[c] for h in hops if h.bad[c])
        share = sum(reasons.values()) / len(hops)
        if share > MOSTLY_BAD_SHARE:
            ranked = tuple((reason, n / len(hops)) for reason, n in reasons.most_common())
            out.append(BadChannel(name, share, ranked))
    return out


def session_quality(reader: SessionReader, clock: SampleClock) -> SessionQuality:
    """The session's bad spans, repairs and bad channels, in seconds from the first sample of `clock` (the session's
    `sample_clock`); an empty SessionQuality for a session that recorded no features."""
    names = [str(n) for n in (reader.manifest.get("features") or {}).get("channel_names") or []]
    if not names and reader.has_eeg:
        names = list(reader.eeg().channel_names)
    parsed = [parse_hop(record, len(names)) for record in _records(reader)] if names else []
    hops = sorted((h for h in parsed if h is not None), key=lambda h: h.t)
    if not hops:
        return SessionQuality(0)
    window_s, hop_s = _timing(reader)
    ends = clock.window_ends([h.source_t for h in hops], [h.t for h in hops])
    order = np.argsort(ends, kind="stable")
    hops, ends = [hops[i] for i in order], ends[order]
    repairs = tuple(
        Repair(name, max(0.0, float(end) - hop_s), hop_s, hop.repaired_new[c])
        for hop, end in zip(hops, ends, strict=True)
        for c, name in enumerate(names)
        if hop.repaired_new[c]
    )
    spans = _spans(hops, ends, names, window_s, hop_s)
    return SessionQuality(len(hops), tuple(spans), repairs, tuple(_bad_channels(hops, names)))


Annotation = tuple[float, float, str, tuple[str, ...]]  # onset, duration, description, channels it concerns


def quality_annotations(quality: SessionQuality, channels: list[str], names_in_text: bool) -> list[Annotation]:
    """Annotations for the exports: "BAD_<reason>" per bad span, "repaired/<channel> n=<samples>" per repair and
    "bad-channel/<channel>: <description>" at 0 s per bad channel. Each concerns its channel; `names_in_text` (for a
    format that cannot store an annotation's channels, BIDS events.tsv) or a channel not among `channels` puts the
    name into the text instead ("BAD_<reason>/<channel>")."""

    def placed(channel: str, text: str, own: str) -> tuple[str, tuple[str, ...]]:
        if names_in_text or channel not in channels:
            return own, ()
        return text, (channel,)

    out: list[Annotation] = []
    for span in quality.spans:
        text, where = placed(span.channel, f"BAD_{span.reason}", f"BAD_{span.reason}/{span.channel}")
        out.append((span.onset, span.duration, text, where))
    for repair in quality.repairs:
        text = f"repaired/{repair.channel} n={repair.count}"
        out.append((repair.onset, repair.duration, *placed(repair.channel, text, text)))
    for bad in quality.bad_channels:
        text = f"bad-channel/{bad.channel}: {bad.description()}"
        out.append((0.0, 0.0, *placed(bad.channel, text, text)))
    return sorted(out, key=lambda a: a[0])
