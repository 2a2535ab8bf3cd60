"""Replay a recorded session folder, an EDF/BDF/FIF file (read with MNE) or an XDF file (LabRecorder's format, read
with pyxdf) as a live Source.

XDF: the EEG stream is the one named by `stream` (--stream), else the only stream of type EEG (an error lists the
streams when there are several); its time stamps are pyxdf's, corrected to the recording computer's LSL clock, and
its samples are scaled to microvolts from the channel units in its description. The markers of a file (the XDF's text
streams, the annotations of an EDF/FIF) are read by `load_markers` and become markers of the new session
(daemon/services/replay_markers.py).

Determinism: the recording is cut into fixed chunks of `chunk_s` (never "whatever arrived since the last read"), and
each chunk carries the recorded timestamps (a session folder) or sample_index / sfreq (a file). So the same file
gives the same chunks, hence the same features and scores, at any speed and however the worker thread is scheduled.

Pacing: chunk k is handed out no earlier than open_time + (k + 1) * chunk_s / speed on the monotonic clock; speed 0
hands chunks out as fast as they are read. At the end of the recording `finished` turns true and `read` returns
None (the session then stops, or goes stale if it does not look at `finished`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from neuromusic.drivers.base import Connection, SourceInfo
from neuromusic.drivers.config import SourceConfig
from neuromusic.models.core.clock import Clock
from neuromusic.models.core.errors import DataError, SourceError, SourceNotFoundError
from neuromusic.models.core.messages import Chunk

FloatArray = npt.NDArray[np.float64]
MNE_SUFFIXES = (".edf", ".bdf", ".fif", ".fif.gz")
XDF_SUFFIXES = (".xdf", ".xdfz")


def load_recording(path: Path, stream: str = "") -> tuple[FloatArray, FloatArray, tuple[str, ...], float, str]:
    """(data in microvolts (n_channels, n_samples), timestamps, channel names, sfreq, description)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceNotFoundError(f"replay: {path} does not exist; pass a session folder or an EDF/BDF/FIF/XDF file")
    if path.is_dir():
        from neuromusic.models.sessions.store import SessionReader

        try:
            eeg = SessionReader(path).eeg()
        except DataError as error:
            raise SourceError(f"replay: {error}") from error
        if eeg.n_samples == 0:
            raise SourceError(f"replay: session {path} holds no EEG samples")
        return eeg.data, eeg.timestamps, eeg.channel_names, eeg.sfreq, f"session {path.name}"
    if path.name.lower().endswith(XDF_SUFFIXES):
        from neuromusic.drivers.xdf_file import load_xdf_eeg

        return load_xdf_eeg(path, stream)
    if not path.name.lower().endswith(MNE_SUFFIXES):
        raise SourceError(
            f"replay: {path.name} is not a session folder or an EDF/BDF/FIF/XDF file "
            f"({', '.join(MNE_SUFFIXES + XDF_SUFFIXES)})"
        )
    import mne  # only for files: a session folder replays without it

    try:
        raw = mne.io.read_raw(path, preload=True, verbose="error")
    except (ValueError, OSError, RuntimeError) as error:
        raise SourceError(f"replay: MNE cannot read {path}: {error}") from error
    picks = mne.pick_types(raw.info, eeg=True, exclude=[])
    if len(picks) == 0:
        raise SourceError(f"replay: {path} has no EEG channels (channel types: {sorted(set(raw.get_channel_types()))})")
    data = raw.get_data(picks=picks) * 1e6  # MNE holds volts; a Chunk holds microvolts
    names = tuple(raw.ch_names[i] for i in picks)
    sfreq = float(raw.info["sfreq"])
    timestamps = np.arange(data.shape[1], dtype=np.float64) / sfreq
    return np.asarray(data, dtype=np.float64), timestamps, names, sfreq, f"file {path.name}"


class ReplaySource(Connection):
    """A Source over a recording. Used from one worker thread, like every source."""

    def __init__(self, path: Path, speed: float = 1.0, chunk_s: float = 0.04, stream: str = "") -> None:
        if speed < 0:
            raise SourceError(f"replay: speed must be >= 0 (0: as fast as possible), got {speed}")
        self.path = Path(path)
        self.stream = stream
        self.speed = speed
        self.chunk_s = chunk_s
        self.finished = False
        self._data: FloatArray | None = None
        self._timestamps: FloatArray = np.empty(0)
        self._names: tuple[str, ...] = ()
        self._sfreq = 0.0
        self._chunk_n = 1
        self._position = 0
        self._chunks_out = 0
        self._opened_at = 0.0

    def open(self) -> SourceInfo:
        if self._data is None:
            data, timestamps, names, sfreq, description = load_recording(self.path, self.stream)
            self._data, self._timestamps, self._names, self._sfreq = data, timestamps, names, sfreq
            self._description = description
            self._chunk_n = max(1, round(self.chunk_s * sfreq))
        # Opening again (a reconnect) goes on where it stopped: a replay never loses or repeats samples.
        self._opened_at = time.monotonic() - self._chunks_out * self._chunk_n / self._sfreq / max(self.speed, 1e-9)
        return SourceInfo(f"replay of {self._description}", self._sfreq, self._names, "replay")

    def _due(self, index: int) -> float:
        return self._opened_at + (index + 1) * self._chunk_n / self._sfreq / self.speed

    def read(self, max_wait: float) -> Chunk | None:
        if self._data is None:
            raise SourceError("replay: read() before open()")
        if self._position >= self._data.shape[1]:
            self.finished = True
            time.sleep(max(0.0, min(max_wait, 0.05)))
            return None
        if self.speed > 0:
            wait = self._due(self._chunks_out) - time.monotonic()
            if wait > max_wait:
                time.sleep(max(0.0, max_wait))
                return None
            if wait > 0:
                time.sleep(wait)
        start, stop = self._position, min(self._position + self._chunk_n, self._data.shape[1])
        self._position = stop
        self._chunks_out += 1
        return Chunk(self._data[:, start:stop].copy(), self._timestamps[start:stop].copy(), self._names, self._sfreq)

    def close(self) -> None:
        pass  # nothing is held open between reads; the loaded recording stays for a reconnect

    @property
    def progress(self) -> float:
        """Fraction of the recording handed out so far."""
        return 0.0 if self._data is None else self._position / max(1, self._data.shape[1])


def open_replay(file: Path | None, speed: float = 1.0, stream: str = "") -> ReplaySource:
    """The registry's hook for `--board replay --file SESSION_OR_FILE [--speed N] [--stream NAME]`."""
    if file is None:
        raise SourceError("--board replay needs --file SESSION_FOLDER_OR_EDF_BDF_FIF_XDF")
    return ReplaySource(Path(file), speed=speed, stream=stream)


def load_markers(path: Path, stream: str = "") -> list[tuple[float, str]]:
    """(time on the replayed EEG's clock, label) of a file's markers, oldest first; none for a session folder."""
    path = Path(path).expanduser()
    name = path.name.lower()
    if path.is_dir() or not path.exists():
        return []
    if name.endswith(XDF_SUFFIXES):
        from neuromusic.drivers.xdf_file import load_xdf_markers

        return load_xdf_markers(path)
    if name.endswith(MNE_SUFFIXES):
        import mne

        raw = mne.io.read_raw(path, preload=False, verbose="error")
        return sorted((float(a["onset"]) - raw.first_time, str(a["description"])) for a in raw.annotations)
    return []


def create(config: SourceConfig, clock: Clock) -> ReplaySource:
    """Registry factory (drivers/registry.py "replay"). Pacing uses the monotonic clock of the worker thread."""
    return open_replay(config.file, config.replay_speed, config.stream)
