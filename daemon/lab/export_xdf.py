"""`neuromusic export --format xdf`: a session as one XDF file with the streams `--lsl-out` publishes live, so a
session recorded without LabRecorder opens in the same tools (pyxdf, MNE-LSL, EEGLAB's XDF plug-in, SigViewer).

Streams: <prefix>-<device>-eeg (EEG, microvolts, at the recorded rate), -score (RelaxationScore: score, confidence;
NaN while there was no score), -controls (MusicControls: tempo, valence, energy, one sample per bar) and -markers
(Markers: "marker/<label>", "phase/<name>", "control/<text>", "bar/<n> key=<key> chords=<...>"). The EEG is stamped
at its recorded rate from its first sample's session-clock time; every other stream is placed on that time base as
`export --format fif` places annotations (daemon/lab/export_times.py; a score just after its window's last sample),
so a marker's time stamp is its sample's, also in a replay faster than real time, where the session clock ran
compressed against the samples. In a live session these are session-clock times.

A session that recorded features also gets -quality (type Markers, one string channel), what the daemon knew about
channel quality (daemon/lab/export_quality.py), on the EEG stream's time base: "BAD_<reason>/<channel> begin" and
"... end" around every span a channel was excluded from the score, "repaired/<channel> n=<samples>" at the start of
a hop whose spike samples were repaired. Its header's <desc> lists the channels excluded in more than half the hops:
<bad_channels><channel><label>O1</label><status_description>excluded from the score in 80% of hops: railed
75%</status_description></channel>...</bad_channels>. Begin/end pairs, not one marker per change of state, because
a channel can be excluded for two reasons at once (their windows overlap).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from neuromusic.daemon.lab.export_quality import SessionQuality, session_quality
from neuromusic.daemon.lab.export_times import SampleClock, event_offsets, sample_clock
from neuromusic.daemon.lab.xdf import XdfStream, write_xdf
from neuromusic.models.core.controls import CONTROL_NAMES, CONTROLS
from neuromusic.models.sessions.store import SessionReader

MARKER_KINDS = ("marker", "phase", "control")


def session_streams(reader: SessionReader, prefix: str = "neuromusic") -> list[XdfStream]:
    device = str(reader.manifest.get("device_id") or "session")
    name = f"{prefix}-{device}"
    streams: list[XdfStream] = []
    clock = sample_clock(reader)  # without EEG, every stamp stays on the session clock
    if clock.sfreq > 0:
        eeg = reader.eeg()
        stamps = clock.start + np.arange(eeg.n_samples) / clock.sfreq
        labels = [(channel, "microvolts", "EEG") for channel in eeg.channel_names]
        streams.append(
            XdfStream(
                f"{name}-eeg", "EEG", "float32", clock.sfreq, f"{prefix}:{device}:eeg", stamps, eeg.data.T, labels
            )
        )
    scores = reader.scores()
    values = np.array(
        [[math.nan if s.get("value") is None else float(s["value"]), float(s.get("confidence") or 0.0)] for s in scores]
    ).reshape(-1, 2)
    streams.append(
        XdfStream(
            f"{name}-score", "RelaxationScore", "double64", 0.0, f"{prefix}:{device}:score",
            clock.start + clock.window_ends(score_sources(scores), reader.times("scores")),
            values, [("score", "normalized", "score"), ("confidence", "normalized", "confidence")],
        )
    )  # fmt: skip
    bars = reader.bars()
    bar_times = np.array([float(b.get("start_t") or b["t"]) for b in bars])
    controls = np.array([[b["controls"][name] for name in CONTROL_NAMES] for b in bars])
    streams.append(
        XdfStream(
            f"{name}-controls", "MusicControls", "float32", 0.0, f"{prefix}:{device}:controls",
            on_eeg(clock, bar_times),
            controls.reshape(-1, len(CONTROLS)), [spec.lsl_channel() for spec in CONTROLS],
        )
    )  # fmt: skip
    events = reader.events()
    marks = [
        (clock.start + float(at), f"{e['kind']}/{e.get('text', '')}")
        for e, at in zip(events, event_offsets(clock, reader), strict=True)
        if e.get("kind") in MARKER_KINDS
    ]
    for bar, when in zip(bars, on_eeg(clock, bar_times), strict=True):
        chords = " ".join(bar.get("chords") or []) or "-"
        marks.append((float(when), f"bar/{bar['index']} key={bar.get('key', '')} chords={chords}"))
    marks.sort()
    streams.append(
        XdfStream(
            f"{name}-markers", "Markers", "string", 0.0, f"{prefix}:{device}:markers",
            np.array([t for t, _ in marks]), [[text] for _, text in marks], [("marker", "", "marker")],
        )
    )  # fmt: skip
    quality = session_quality(reader, clock)
    if quality.hops:
        streams.append(quality_stream(quality, clock.start, f"{name}-quality", f"{prefix}:{device}:quality"))
    return streams


def score_sources(scores: list[dict[str, Any]]) -> list[float]:
    """Each score's source_t (its window's last sample on the source's clock), NaN where it has none (stale)."""
    values = [s.get("source_t") for s in scores]
    return [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan for v in values]


def on_eeg(clock: SampleClock, times: np.ndarray) -> np.ndarray:
    """Session-clock times as time stamps on the EEG stream's time base (daemon/lab/export_times.py)."""
    return clock.start + clock.offset(times)


def quality_stream(quality: SessionQuality, start: float, name: str, source_id: str) -> XdfStream:
    """The -quality marker stream (see the module docstring); `start` is the first sample's session-clock time."""
    marks = [(span.onset, f"BAD_{span.reason}/{span.channel} begin") for span in quality.spans]
    marks += [(span.end, f"BAD_{span.reason}/{span.channel} end") for span in quality.spans]
    marks += [(r.onset, f"repaired/{r.channel} n={r.count}") for r in quality.repairs]
    marks.sort(key=lambda m: m[0])
    bads = "".join(
        f"<channel><label>{escape(bad.channel)}</label>"
        f"<status_description>{escape(bad.description())}</status_description></channel>"
        for bad in quality.bad_channels
    )
    return XdfStream(
        name, "Markers", "string", 0.0, source_id, np.array([start + t for t, _ in marks], dtype=np.float64),
        [[text] for _, text in marks], [("quality", "", "marker")], desc_xml=f"<bad_channels>{bads}</bad_channels>",
    )  # fmt: skip


def export_xdf(reader: SessionReader, target: Path) -> Path:
    return write_xdf(target, session_streams(reader))
