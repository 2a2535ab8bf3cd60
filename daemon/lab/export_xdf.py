"""`neuromusic export --format xdf`: a session as one XDF file with the streams `--lsl-out` publishes live, so a
session recorded without LabRecorder opens in the same tools (pyxdf, MNE-LSL, EEGLAB's XDF plug-in, SigViewer).

Streams: <prefix>-<device>-eeg (EEG, microvolts, at the recorded rate), -score (RelaxationScore: score, confidence;
NaN while there was no score), -controls (MusicControls: tempo, valence, energy, one sample per bar) and -markers
(Markers: "marker/<label>", "phase/<name>", "control/<text>", "bar/<n> key=<key> chords=<...>"). All time stamps are
on the session clock (seconds), the EEG's derived from when each frame arrived as `export --format fif` does.

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
from xml.sax.saxutils import escape

import numpy as np
from neuromusic.daemon.lab.export import sample_times
from neuromusic.daemon.lab.export_quality import SessionQuality, session_quality
from neuromusic.daemon.lab.xdf import XdfStream, write_xdf
from neuromusic.models.core.controls import CONTROL_NAMES, CONTROLS
from neuromusic.models.sessions.store import SessionReader

MARKER_KINDS = ("marker", "phase", "control")


def session_streams(reader: SessionReader, prefix: str = "neuromusic") -> list[XdfStream]:
    device = str(reader.manifest.get("device_id") or "session")
    name = f"{prefix}-{device}"
    streams: list[XdfStream] = []
    start = 0.0  # without EEG, quality times stay on the session clock
    if reader.has_eeg and reader.eeg().n_samples:
        eeg = reader.eeg()
        start, sfreq = sample_times(reader)
        stamps = start + np.arange(eeg.n_samples) / sfreq
        labels = [(channel, "microvolts", "EEG") for channel in eeg.channel_names]
        streams.append(
            XdfStream(f"{name}-eeg", "EEG", "float32", sfreq, f"{prefix}:{device}:eeg", stamps, eeg.data.T, labels)
        )
    scores = reader.scores()
    values = np.array(
        [[math.nan if s.get("value") is None else float(s["value"]), float(s.get("confidence") or 0.0)] for s in scores]
    ).reshape(-1, 2)
    streams.append(
        XdfStream(
            f"{name}-score", "RelaxationScore", "double64", 0.0, f"{prefix}:{device}:score", reader.times("scores"),
            values, [("score", "normalized", "score"), ("confidence", "normalized", "confidence")],
        )
    )  # fmt: skip
    bars = reader.bars()
    bar_times = np.array([float(b.get("start_t") or b["t"]) for b in bars])
    controls = np.array([[b["controls"][name] for name in CONTROL_NAMES] for b in bars])
    streams.append(
        XdfStream(
            f"{name}-controls", "MusicControls", "float32", 0.0, f"{prefix}:{device}:controls", bar_times,
            controls.reshape(-1, len(CONTROLS)), [spec.lsl_channel() for spec in CONTROLS],
        )
    )  # fmt: skip
    marks = [
        (float(e["t"]), f"{e['kind']}/{e.get('text', '')}") for e in reader.events() if e.get("kind") in MARKER_KINDS
    ]
    for bar, when in zip(bars, bar_times, strict=True):
        chords = " ".join(bar.get("chords") or []) or "-"
        marks.append((float(when), f"bar/{bar['index']} key={bar.get('key', '')} chords={chords}"))
    marks.sort()
    streams.append(
        XdfStream(
            f"{name}-markers", "Markers", "string", 0.0, f"{prefix}:{device}:markers",
            np.array([t for t, _ in marks]), [[text] for _, text in marks], [("marker", "", "marker")],
        )
    )  # fmt: skip
    quality = session_quality(reader, start)
    if quality.hops:
        streams.append(quality_stream(quality, start, f"{name}-quality", f"{prefix}:{device}:quality"))
    return streams


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
