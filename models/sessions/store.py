"""The on-disk session format and its reader. Torch-free; tolerant of a truncated tail.

A session folder is written as it goes by `daemon/services/recorder.py` so that a SIGKILL or a power loss loses at
most the last flush interval and the folder still opens:

    manifest.json    written first, then replaced atomically (write + fsync + rename) when the EEG layout is known
                     and at a clean end: format version, ids, wall time of t0, channel names, sfreq, units, drops
    config.json      the configuration the session ran with
    eeg.bin          append-only frames, one per Chunk (layout below)
    <stream>.jsonl   append-only JSON lines, one per message: events, status, features, scores, controls, bars
    music.abc        the composed bars in ABC, appended as they come
    music.mid        written at the end, one named track per part; `bars_to_midi` makes it again from bars.jsonl
                     after a crash

Every record's `t` is the message's own time on the session clock (models/core/messages.py). Features and scores also
hold `source_t`, the scored window's end on the EEG source's clock (BrainFlow: unix time; LSL: its clock; null for a
stale score). `SessionReader.times(stream)` gives every record's time on the session clock (recordings made before
this rule kept it in `tr`, which it still reads).
`manifest["t0"]` is the session clock when recording started and `manifest["wall_t0"]` the unix time of that instant.

An EEG frame is a 24-byte header `<4sIIdI` (magic b"NMEG", n_channels, n_samples, t_received, crc32 of the payload)
followed by the source timestamps (float64 x n_samples) and the samples (float32, microvolts, (n_channels, n_samples)
in C order). A frame that is cut short, or whose magic or CRC does not match (a torn write after a power loss),
ends the readable data: everything before it is kept.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from neuromusic.models.core.errors import DataError

FORMAT_NAME = "neuromusic-session"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
EEG_FILE = "eeg.bin"
ABC_FILE = "music.abc"
MIDI_FILE = "music.mid"
STREAMS = ("events", "status", "features", "scores", "controls", "bars")
FRAME_MAGIC = b"NMEG"
FRAME_HEADER = struct.Struct("<4sIIdI")
EEG_DTYPE = np.dtype("<f4")
TIME_DTYPE = np.dtype("<f8")

FloatArray = npt.NDArray[np.float64]


def frame_bytes(data: npt.NDArray[Any], timestamps: npt.NDArray[Any], t_received: float) -> bytes:
    """Encode one EEG frame. data is (n_channels, n_samples) in microvolts."""
    samples = np.ascontiguousarray(data, dtype=EEG_DTYPE).tobytes()
    stamps = np.ascontiguousarray(timestamps, dtype=TIME_DTYPE).tobytes()
    payload = stamps + samples
    header = FRAME_HEADER.pack(FRAME_MAGIC, data.shape[0], data.shape[1], t_received, zlib.crc32(payload))
    return header + payload


@dataclass(frozen=True)
class EegRecord:
    """All readable EEG of a session: data (n_channels, n_samples) in microvolts, per-sample source timestamps and
    the session-clock time each sample's chunk was received (for aligning EEG with scores and events)."""

    data: FloatArray
    timestamps: FloatArray
    t_received: FloatArray
    channel_names: tuple[str, ...]
    sfreq: float
    truncated: bool  # the file ended in a partial or damaged frame

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sfreq if self.sfreq > 0 else 0.0


class MalformedSessionError(DataError):
    """A session folder whose files are there but do not hold what the format says (edited, or not ours)."""

    exit_code = 2


def read_eeg_frames(path: Path, n_channels: int) -> tuple[list[tuple[int, int, float]], bool]:
    """Walk the frames of eeg.bin one at a time, checking each one's CRC; returns (payload offset, n_samples,
    t_received) per intact frame and whether the tail was damaged. Only one frame is in memory at a time, so a long
    session is read into its arrays without first holding the whole file."""
    frames: list[tuple[int, int, float]] = []
    if not path.exists():
        return frames, False
    size = path.stat().st_size
    truncated = False
    with open(path, "rb") as handle:
        offset = 0
        while offset < size:
            header = handle.read(FRAME_HEADER.size)
            if len(header) < FRAME_HEADER.size:
                truncated = True
                break
            magic, channels, n, t_received, crc = FRAME_HEADER.unpack(header)
            frame_size = n * TIME_DTYPE.itemsize + channels * n * EEG_DTYPE.itemsize
            start = offset + FRAME_HEADER.size
            if magic != FRAME_MAGIC or channels != n_channels or start + frame_size > size:
                truncated = True
                break
            if zlib.crc32(handle.read(frame_size)) != crc:
                truncated = True
                break
            frames.append((start, n, t_received))
            offset = start + frame_size
    return frames, truncated


def scan_eeg(path: Path) -> tuple[int, list[float]]:
    """(samples, receipt time of every frame) in eeg.bin from the frame headers only (fast for long sessions; a
    partial last frame does not count, and no CRC is checked)."""
    total = 0
    received: list[float] = []
    size = path.stat().st_size
    with open(path, "rb") as handle:
        offset = 0
        while offset + FRAME_HEADER.size <= size:
            handle.seek(offset)
            magic, channels, n, t_received, _ = FRAME_HEADER.unpack(handle.read(FRAME_HEADER.size))
            end = offset + FRAME_HEADER.size + n * TIME_DTYPE.itemsize + channels * n * EEG_DTYPE.itemsize
            if magic != FRAME_MAGIC or end > size:
                break
            total += n
            received.append(t_received)
            offset = end
    return total, received


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines stream. A last line cut short by a crash is dropped; damage before it is an error."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            if number >= len(lines) - 1:  # the final line: a write the crash interrupted
                break
            raise MalformedSessionError(f"{path}: line {number} is not valid JSON ({error})") from error
        if not isinstance(record, dict):
            raise MalformedSessionError(f"{path}: line {number} is not a JSON object")
        records.append(record)
    return records


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Refuse, in one line, a manifest whose fields the reader relies on are of the wrong kind."""
    for key in ("t0", "wall_t0", "version"):
        if key in manifest and not _number(manifest[key]):
            raise MalformedSessionError(f"{path}: {key} must be a number")
    if not isinstance(manifest.get("source") or {}, dict):
        raise MalformedSessionError(f"{path}: source must be an object")
    eeg = manifest.get("eeg")
    if not eeg:
        return
    if not isinstance(eeg, dict):
        raise MalformedSessionError(f"{path}: eeg must be an object")
    names = eeg.get("channel_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise MalformedSessionError(f"{path}: eeg.channel_names must be a non-empty list of names")
    sfreq = eeg.get("sfreq")
    if not isinstance(sfreq, int | float) or not _number(sfreq) or sfreq <= 0:
        raise MalformedSessionError(f"{path}: eeg.sfreq must be a positive number of samples per second")


class SessionReader:
    """Opens a session folder. Streams are read lazily and cached; missing streams read as empty."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        manifest_path = self.folder / MANIFEST
        if not manifest_path.exists():
            raise DataError(f"{self.folder} is not a neuromusic session (no {MANIFEST})")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise MalformedSessionError(f"{manifest_path}: damaged manifest ({error})") from error
        except OSError as error:
            raise DataError(f"{manifest_path}: cannot read it ({error.strerror or error})") from error
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise MalformedSessionError(f"{manifest_path}: not a neuromusic session manifest")
        self.manifest: dict[str, Any] = manifest
        _check_manifest(manifest_path, manifest)
        if int(self.manifest.get("version", 0)) > FORMAT_VERSION:
            raise DataError(
                f"{self.folder} was written by a newer neuromusic (format {self.manifest.get('version')}); "
                "upgrade neuromusic to read it"
            )
        self._cache: dict[str, list[dict[str, Any]]] = {}
        self._eeg: EegRecord | None = None

    # -- identity ----------------------------------------------------------------------------------------------
    @property
    def session_id(self) -> str:
        return str(self.manifest.get("session_id", self.folder.name))

    @property
    def t0(self) -> float:
        return float(self.manifest.get("t0", 0.0))

    @property
    def wall_t0(self) -> float:
        return float(self.manifest.get("wall_t0", 0.0))

    @property
    def clean_exit(self) -> bool:
        return bool(self.manifest.get("clean_exit", False))

    @property
    def source_name(self) -> str:
        source = self.manifest.get("source") or {}
        return str(source.get("name") or self.config().get("source", {}).get("board", "?"))

    def config(self) -> dict[str, Any]:
        path = self.folder / CONFIG
        if not path.exists():
            return {}
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise MalformedSessionError(f"{path}: damaged configuration ({error})") from error
        return loaded if isinstance(loaded, dict) else {}

    # -- streams -----------------------------------------------------------------------------------------------
    def stream(self, name: str) -> list[dict[str, Any]]:
        if name not in STREAMS:
            raise ValueError(f"unknown stream {name!r}; known: {', '.join(STREAMS)}")
        if name not in self._cache:
            self._cache[name] = read_jsonl(self.folder / f"{name}.jsonl")
        return self._cache[name]

    def events(self) -> list[dict[str, Any]]:
        return self.stream("events")

    def scores(self) -> list[dict[str, Any]]:
        return self.stream("scores")

    def controls(self) -> list[dict[str, Any]]:
        return self.stream("controls")

    def bars(self) -> list[dict[str, Any]]:
        return self.stream("bars")

    def features(self) -> list[dict[str, Any]]:
        return self.stream("features")

    def times(self, name: str) -> FloatArray:
        """Each record's time on the session clock (see the module docstring)."""
        times = [r.get("tr", r.get("t")) for r in self.stream(name)]
        if not all(_number(t) for t in times):
            raise MalformedSessionError(f"{self.folder / (name + '.jsonl')}: a record has no time (t) as a number")
        return np.array(times, dtype=np.float64)

    def abc(self) -> str:
        path = self.folder / ABC_FILE
        return path.read_text(errors="replace") if path.exists() else ""

    # -- EEG ---------------------------------------------------------------------------------------------------
    @property
    def has_eeg(self) -> bool:
        return bool(self.manifest.get("eeg"))

    def eeg(self) -> EegRecord:
        if self._eeg is None:
            self._eeg = self._read_eeg()
        return self._eeg

    def _read_eeg(self) -> EegRecord:
        info = self.manifest.get("eeg")
        if not info:
            raise DataError(f"{self.folder}: the session holds no EEG (the source never streamed)")
        names = tuple(str(n) for n in info["channel_names"])
        path = self.folder / EEG_FILE
        frames, truncated = read_eeg_frames(path, len(names))
        total = sum(n for _, n, _ in frames)
        data = np.empty((len(names), total), dtype=np.float64)
        timestamps = np.empty(total, dtype=np.float64)
        received = np.empty(total, dtype=np.float64)
        at = 0
        if frames:
            with open(path, "rb") as handle:
                for offset, n, t_received in frames:  # a second pass, straight into the arrays
                    handle.seek(offset)
                    timestamps[at : at + n] = np.frombuffer(handle.read(n * TIME_DTYPE.itemsize), dtype=TIME_DTYPE)
                    samples = np.frombuffer(handle.read(len(names) * n * EEG_DTYPE.itemsize), dtype=EEG_DTYPE)
                    data[:, at : at + n] = samples.reshape(len(names), n)
                    received[at : at + n] = t_received
                    at += n
        return EegRecord(data, timestamps, received, names, float(info["sfreq"]), truncated)

    # -- summary -----------------------------------------------------------------------------------------------
    def time_span(self) -> tuple[float, float]:
        """First and last session-clock time seen in any stream, relative to t0 (0, 0 for an empty session)."""
        times: list[float] = []
        for name in ("scores", "features", "events", "controls", "status"):
            stream_times = self.times(name)
            if stream_times.size:
                times.extend((float(stream_times.min()), float(stream_times.max())))
        if self.has_eeg and (self.folder / EEG_FILE).exists():
            _, received = scan_eeg(self.folder / EEG_FILE)
            if received:
                times.extend((received[0], received[-1]))
        if not times:
            return 0.0, 0.0
        return max(0.0, min(times) - self.t0), max(times) - self.t0

    def duration_s(self) -> float:
        """Seconds of EEG (from the frame headers only, so listing long sessions stays fast), else the time span."""
        if self.has_eeg and (self.folder / EEG_FILE).exists():
            return scan_eeg(self.folder / EEG_FILE)[0] / float(self.manifest["eeg"]["sfreq"])
        start, end = self.time_span()
        return end - start


def iter_sessions(root: Path) -> Iterator[Path]:
    """Session folders directly below `root`, oldest first (folder names start with a sortable timestamp)."""
    if not root.is_dir():
        return
    for child in sorted(root.iterdir()):
        if (child / MANIFEST).is_file():
            yield child


def find_session(spec: str | Path, root: Path) -> Path:
    """A session given as a path, or as a folder name (or unique prefix / suffix) under `root`."""
    path = Path(spec).expanduser()
    if (path / MANIFEST).is_file():
        return path
    if path.exists():
        raise DataError(f"{path} is not a neuromusic session (no {MANIFEST})")
    matches = [p for p in iter_sessions(root) if p.name.startswith(str(spec)) or p.name.endswith(str(spec))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DataError(f"no session {str(spec)!r} (not a folder, and no session of that name under {root})")
    raise DataError(f"{str(spec)!r} matches {len(matches)} sessions under {root}: {', '.join(p.name for p in matches)}")


def bars_to_midi(bars: list[dict[str, Any]], path: Path, arranger: dict[str, Any] | None = None) -> None:
    """Write the recorded bars (bars.jsonl records) as the session's MIDI file: the bars arranged again as the
    player arranged them (the arranger is deterministic), every part that played in its own named track, each bar at
    its own tempo; the same file a clean end writes. `arranger` is the session's `[arranger]` settings
    (`SessionReader.config().get("arranger")`; None: the defaults)."""
    from neuromusic.drivers.sinks.offline import write_session_midi  # the MIDI file sink and the arranger

    write_session_midi(bars, path, arranger)
