"""Reading a long recording: the EEG goes straight from the file into its arrays, one frame at a time."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
from neuromusic.models.sessions import store


def write_session(folder: Path, frames: int, channels: int = 8, n: int = 250) -> None:
    folder.mkdir()
    manifest = {"format": store.FORMAT_NAME, "version": 1, "t0": 0.0}
    manifest["eeg"] = {"channel_names": [f"C{i}" for i in range(channels)], "sfreq": 250.0}
    (folder / store.MANIFEST).write_text(json.dumps(manifest))
    rng = np.random.default_rng(1)
    with open(folder / store.EEG_FILE, "wb") as handle:
        for i in range(frames):
            data = rng.standard_normal((channels, n)).astype(np.float32)
            handle.write(store.frame_bytes(data, np.arange(i * n, (i + 1) * n) / 250.0, float(i)))
        handle.write(b"NMEG\x08")  # a tail cut by a crash


def test_reading_eeg_needs_little_more_than_its_arrays(tmp_path: Path) -> None:
    write_session(tmp_path / "long", frames=800)  # 800 s of 8 channels: a 8.0 MB file
    reader = store.SessionReader(tmp_path / "long")
    tracemalloc.start()
    eeg = reader.eeg()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrays = eeg.data.nbytes + eeg.timestamps.nbytes + eeg.t_received.nbytes
    assert eeg.n_samples == 800 * 250 and eeg.truncated
    assert np.allclose(np.diff(eeg.timestamps), 1 / 250.0)
    assert peak < 1.1 * arrays, f"peak {peak / 1e6:.1f} MB for {arrays / 1e6:.1f} MB of arrays"
