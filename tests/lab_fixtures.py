"""Recorded sessions for the lab tests (recorder, export, replay, report), written by the real SessionWriter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from neuromusic.daemon.cli.recording_options import RecordingConfig
from neuromusic.daemon.services.recorder import SessionWriter
from neuromusic.models.core.messages import Bar, Chunk, Controls, Event, Features, Note, Score, SourceStatus

BANDS = ("delta", "theta", "alpha", "beta", "gamma")


def write_session(
    folder: Path,
    *,
    seconds: float = 10.0,
    sfreq: float = 250.0,
    n_channels: int = 4,
    chunk: int = 25,
    seed: int = 1,
    close: bool = True,
    options: RecordingConfig | None = None,
) -> tuple[SessionWriter, np.ndarray]:
    """A session with EEG, features, scores, controls, bars, a phase, a marker and a control change.
    Returns the writer and the EEG written (n_channels, n_samples), in microvolts."""
    rng = np.random.default_rng(seed)
    names = tuple(f"EEG{i + 1}" for i in range(n_channels))
    writer = SessionWriter(
        folder,
        {"source": {"board": "test"}},
        options or RecordingConfig(),
        t0=100.0,
        device_id="lab1",
        source_name="test",
    )
    n_chunks = round(seconds * sfreq / chunk)
    written = []
    t = 100.0
    dt = chunk / sfreq
    writer.write(SourceStatus(t, "streaming", "test source"), t)
    writer.write(Event(t, "phase", "baseline"), t)
    for k in range(n_chunks):
        t += dt
        data = rng.normal(size=(n_channels, chunk)) * 20.0
        written.append(data)
        stamps = np.arange(k * chunk, (k + 1) * chunk) / sfreq + 5000.0
        writer.write(Chunk(data, stamps, names, sfreq), t)
        if k % 2 == 0:
            de = rng.normal(size=(len(BANDS), n_channels)) + 2.0
            good = np.ones(n_channels, dtype=bool)
            writer.write(Features(t, de, BANDS, names, good, ("",) * n_channels), t)
            value = float(0.5 + 0.4 * np.sin(k / 10))
            writer.write(Score(t, value, 0.9, "scoring", raw=value), t)
        if k % 20 == 0:
            controls = Controls(60.0 + k / 10, 0.5, 0.3 + k / 1000)
            writer.write(controls, t)
            notes = (Note(60, 0.0, 1.0), Note(64, 1.0, 1.0), Note(67, 2.0, 2.0))
            writer.write(Bar(k // 20, "CEG2", notes, 4.0, "4/4", "C", controls), t)
        if k == n_chunks // 3:
            writer.write(Event(t, "marker", "eyes closed"), t)
        if k == n_chunks // 2:
            writer.write(Event(t, "phase", "music"), t)
            writer.write(Event(t, "control", "policy set to mapping", {"what": "policy"}), t)
        if k % 5 == 0:
            writer.flush()
    if close:
        writer.close()
    return writer, np.hstack(written)
