"""The recorder service: one session folder per run, written as it goes so that a crash loses at most a flush interval.

Crash safety comes from three rules (layout in models/sessions/store.py):
1. the manifest and the configuration are written (and fsync'd) before anything else, so the folder always opens;
2. every stream is append-only, so a crash can only cut its tail, which the reader tolerates;
3. buffered appends are flushed every `flush_interval_s` and fsync'd on a worker thread, so the event loop never
   waits for the disk while a power loss still loses at most one interval (a SIGKILL loses only what was not yet
   flushed: the OS already holds the rest).
The manifest is replaced atomically (temporary file, fsync, rename, fsync of the folder) when the EEG layout becomes
known and at the end; music.mid is written at the end and can be rebuilt from bars.jsonl after a crash.
A session folder is private (0700, its files 0600): it holds a person's EEG. Secrets (the broker password) are
replaced by "***" in the configuration and the command line it keeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from neuromusic.daemon.cli.recording_options import RecordingConfig
from neuromusic.daemon.mqtt.secrets import redact, redact_argv
from neuromusic.daemon.session.context import SessionContext
from neuromusic.drivers.sinks.offline import write_session_midi
from neuromusic.models.core.errors import DataError
from neuromusic.models.core.messages import Bar, Chunk, Controls, Event, Features, Score, SourceStatus
from neuromusic.models.sessions import store

log = logging.getLogger(__name__)

RECORDED_TYPES = (Chunk, Features, Score, Controls, Bar, Event, SourceStatus)
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def _private(path: str, flags: int) -> int:
    """`open(..., opener=_private)`: a new file readable by this user only."""
    return os.open(path, flags, FILE_MODE)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


def new_session_folder(root: Path, device_id: str) -> Path:
    """root/<YYYYmmdd-HHMMSS>-<device>: names sort by start time; a numbered suffix keeps two runs apart."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    safe_device = "".join(c if c.isalnum() or c in "-_" else "_" for c in device_id) or "session"
    folder = root / f"{stamp}-{safe_device}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = root / f"{stamp}-{safe_device}-{suffix}"
    return folder


def check_folder(folder: Path) -> None:
    """Refuse a folder that already holds a session: recording into it would mix two sessions."""
    if (folder / store.MANIFEST).exists():
        raise DataError(f"{folder} already holds a recorded session; choose another --session-dir")
    if folder.exists() and not folder.is_dir():
        raise DataError(f"session folder {folder} is a file; choose another --session-dir")


# -- one line of each stream: the session format of models/sessions/store.py -----------------------------------------
def score_record(score: Score) -> dict[str, Any]:
    return {
        "t": score.t,
        "source_t": score.source_t,
        "value": _finite(score.value),
        "confidence": _finite(score.confidence),
        "state": score.state,
        "raw": _finite(score.raw),
    }


def features_record(features: Features) -> dict[str, Any]:
    return {
        "t": features.t,
        "source_t": features.source_t,
        "de": [[v if math.isfinite(v) else None for v in row] for row in features.de.tolist()],
        "good": features.good.tolist(),
        "bad": [r for r in features.bad_reasons],
        "gap_s": features.gap_s,
        "repaired": list(features.repaired),  # spike samples repaired in the window, per channel
        "repaired_new": list(features.repaired_new),  # of those, the ones not in the previous line
    }


def bar_record(bar: Bar, now: float) -> dict[str, Any]:
    return {
        "t": now,
        "index": bar.index,
        "abc": bar.abc,
        "notes": [[n.pitch, n.start, n.duration, n.velocity] for n in bar.notes],
        "beats": bar.beats,
        "meter": bar.meter,
        "key": bar.key,
        "controls": bar.controls.as_dict(),
        "repaired": bar.repaired,
        "compose_ms": bar.compose_ms,
        "chords": list(bar.chords),
        "start_t": bar.start_t,
    }


class SessionWriter:
    """Writes one session folder. Not thread-safe: call `write` and `flush` from one thread (the event loop); the
    fsync runs on the writer's own worker thread."""

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        options: RecordingConfig,
        t0: float,
        device_id: str = "",
        source_name: str = "",
    ) -> None:
        self.folder = folder
        self.options = options
        self._arranger = config.get("arranger")
        check_folder(folder)
        try:
            # exist_ok: other services (the player's WAV) may put their outputs into the same folder first
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, FOLDER_MODE)
        except OSError as error:
            raise DataError(f"cannot create session folder {folder}: {error}") from error
        self.manifest: dict[str, Any] = {
            "format": store.FORMAT_NAME,
            "version": store.FORMAT_VERSION,
            "session_id": folder.name,
            "device_id": device_id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime()),
            "t0": t0,
            "wall_t0": time.time(),
            "argv": redact_argv(sys.argv),
            "source": {"name": source_name},
            "eeg": None,
            "features": None,
            "clean_exit": False,
            "ended_wall": None,
            "dropped": 0,
        }
        self._write_atomic(store.MANIFEST, self.manifest)  # first: from here on the folder opens
        self._write_atomic(store.CONFIG, redact(config))
        self._files: dict[str, IO[bytes]] = {}
        self._eeg_channels: tuple[str, ...] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder-fsync")
        self._pending: Future[None] | None = None
        self.samples_written = 0
        self.skipped_chunks = 0
        self._closed = False

    # -- writing -----------------------------------------------------------------------------------------------
    def _file(self, name: str) -> IO[bytes]:
        handle = self._files.get(name)
        if handle is None:
            handle = open(self.folder / name, "ab", buffering=1 << 20, opener=_private)  # noqa: SIM115 - kept open
            self._files[name] = handle
        return handle

    def _line(self, stream: str, record: dict[str, Any]) -> None:
        text = json.dumps(record, separators=(",", ":"), default=_json_default)
        self._file(f"{stream}.jsonl").write(text.encode() + b"\n")

    def write(self, message: Any, now: float) -> None:
        """Append one hub message. `now` is the session clock, used for messages that carry no time of their own."""
        if isinstance(message, Chunk):
            self._write_chunk(message, now)
        elif isinstance(message, Features):
            self._write_features(message, now)
        elif isinstance(message, Score):
            self._line("scores", score_record(message))
        elif isinstance(message, Controls):
            self._line("controls", {"t": now, **message.as_dict()})
        elif isinstance(message, Bar):
            self._write_bar(message, now)
        elif isinstance(message, Event):
            self._line("events", {"t": message.t, "kind": message.kind, "text": message.text, "data": message.data})
        elif isinstance(message, SourceStatus):
            self._line("status", {"t": message.t, "state": message.state, "detail": message.detail})

    def _write_chunk(self, chunk: Chunk, now: float) -> None:
        if not self.options.raw_eeg or chunk.n_samples == 0:
            return
        if self._eeg_channels is None:
            self._eeg_channels = tuple(chunk.channel_names)
            self.manifest["eeg"] = {
                "channel_names": list(chunk.channel_names),
                "sfreq": float(chunk.sfreq),
                "units": "uV",
                "dtype": "float32",
            }
            self._write_atomic(store.MANIFEST, self.manifest)
        elif tuple(chunk.channel_names) != self._eeg_channels:
            # A reconnect to a different montage cannot go in the same file; keep the first montage, say so once.
            if self.skipped_chunks == 0:
                text = "recorder: channel layout changed; EEG after it is not recorded"
                self._line("events", {"t": now, "kind": "warning", "text": text})
            self.skipped_chunks += 1
            return
        self._file(store.EEG_FILE).write(store.frame_bytes(chunk.data, chunk.timestamps, now))
        self.samples_written += chunk.n_samples

    def _write_features(self, features: Features, now: float) -> None:
        if self.manifest["features"] is None:
            self.manifest["features"] = {
                "band_names": list(features.band_names),
                "channel_names": list(features.channel_names),
                "units": "nats",
            }
            self._write_atomic(store.MANIFEST, self.manifest)
        self._line("features", features_record(features))

    def _write_bar(self, bar: Bar, now: float) -> None:
        self._line("bars", bar_record(bar, now))
        abc = self._file(store.ABC_FILE)
        if bar.index == 0 or abc.tell() == 0:
            abc.write(f"X:1\nT:{self.folder.name}\nM:{bar.meter}\nL:1/8\nK:{bar.key}\n".encode())
        abc.write(f"{bar.abc} |\n".encode())

    # -- durability --------------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Hand buffered appends to the OS now and fsync them on the worker thread (never blocks on the disk)."""
        for handle in self._files.values():
            handle.flush()
        if self.options.fsync and (self._pending is None or self._pending.done()):
            descriptors = [handle.fileno() for handle in self._files.values()]
            self._pending = self._executor.submit(self._fsync, descriptors)

    @staticmethod
    def _fsync(descriptors: list[int]) -> None:
        for fd in descriptors:
            os.fsync(fd)

    def _write_atomic(self, name: str, document: dict[str, Any]) -> None:
        target = self.folder / name
        temporary = target.with_suffix(target.suffix + ".tmp")
        with open(temporary, "w", opener=_private) as handle:
            json.dump(document, handle, indent=1, default=_json_default)
            handle.flush()
            if self.options.fsync:
                os.fsync(handle.fileno())
        os.replace(temporary, target)
        if self.options.fsync:
            directory = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def close(self, dropped: int = 0) -> None:
        """Flush everything, write music.mid and mark the manifest as a clean end."""
        if self._closed:
            return
        self._closed = True
        for handle in self._files.values():
            handle.flush()
        self._executor.shutdown(wait=True)  # an fsync in flight must finish before its descriptor closes
        for handle in self._files.values():
            if self.options.fsync:
                os.fsync(handle.fileno())
            handle.close()
        bars = store.read_jsonl(self.folder / "bars.jsonl")
        if bars:  # every part that played, one track each: the bars arranged again as the player arranged them
            write_session_midi(bars, self.folder / store.MIDI_FILE, self._arranger)
        self.manifest.update(clean_exit=True, ended_wall=time.time(), dropped=dropped)
        self._write_atomic(store.MANIFEST, self.manifest)
        for path in self.folder.iterdir():  # what other services wrote here (music.mid, a WAV) is private too
            if path.is_file():
                os.chmod(path, FILE_MODE)


class Recorder:
    """Session service: subscribes to every stage's messages and writes them to the session folder."""

    name = "recorder"

    def __init__(self, ctx: SessionContext, folder: Path) -> None:
        self._ctx = ctx
        self.folder = folder
        self.options = ctx.config.recording

    async def run(self) -> None:
        ctx = self._ctx
        subscription = ctx.hub.subscribe(*RECORDED_TYPES, maxsize=self.options.queue_size)
        writer = SessionWriter(
            self.folder,
            dataclasses.asdict(ctx.config),
            self.options,
            t0=ctx.clock.now(),
            device_id=ctx.device_id,
            source_name=ctx.config.source.board,
        )
        log.info("recording session to %s", self.folder)
        loop = asyncio.get_running_loop()
        next_flush = loop.time() + self.options.flush_interval_s
        # One pending get() at a time, waited on with asyncio.wait: unlike wait_for (Python 3.11), it never swallows
        # the cancellation that ends the session when a message arrives at the same moment.
        getter: asyncio.Future[Any] = asyncio.ensure_future(subscription.get())
        try:
            while True:
                done, _ = await asyncio.wait({getter}, timeout=max(0.0, next_flush - loop.time()))
                if done:
                    writer.write(getter.result(), ctx.clock.now())
                    while not subscription.queue.empty():  # drain what piled up without a wakeup each
                        writer.write(subscription.get_nowait(), ctx.clock.now())
                    getter = asyncio.ensure_future(subscription.get())
                if loop.time() >= next_flush:
                    writer.flush()
                    next_flush = loop.time() + self.options.flush_interval_s
        finally:
            # Cancelled at shutdown: write what is still queued, then close cleanly.
            if getter.done() and not getter.cancelled():
                writer.write(getter.result(), ctx.clock.now())
            getter.cancel()
            while not subscription.queue.empty():
                writer.write(subscription.get_nowait(), ctx.clock.now())
            subscription.close()
            if subscription.dropped:
                log.warning("recorder lost %d messages (disk too slow?)", subscription.dropped)
            writer.close(dropped=subscription.dropped)


def create(ctx: SessionContext) -> Recorder | None:
    options: RecordingConfig = ctx.config.recording
    if not options.enabled:
        return None
    folder = ctx.session_dir or new_session_folder(options.sessions_root(), ctx.device_id)
    check_folder(folder)  # now, so the session refuses to start rather than run unrecorded
    # Services created after this one (the player's WAV and MIDI renders) put their outputs in the same folder.
    ctx.session_dir = folder
    return Recorder(ctx, folder)
