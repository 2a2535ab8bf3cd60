"""[recording] configuration (its flags are the RECORDING table in daemon/cli/run_options.py). Kept free of heavy
imports: `neuromusic run --help` and the configuration loader read this module.

Every `neuromusic run` records a session folder (see models/sessions/store.py for the layout) under `root`, by default
the user's data directory: `$XDG_DATA_HOME/neuromusic/sessions`, or `~/.local/share/neuromusic/sessions`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_sessions_root() -> Path:
    """Where sessions go unless told otherwise (the XDG base-directory rule for user data)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "neuromusic" / "sessions"


@dataclass(frozen=True)
class RecordingConfig:
    enabled: bool = True  # write a session folder for every run
    root: Path | None = None  # folder that holds the session folders; None: the user's data directory
    flush_interval_s: float = 0.25  # append-only files are flushed and fsync'd this often: a crash loses at most this
    fsync: bool = True  # false: less disk traffic, but a power loss may lose more (a SIGKILL still loses <= a flush)
    raw_eeg: bool = True  # record the raw EEG samples (false: features, scores, controls and music only)
    queue_size: int = 8192  # messages buffered between the hub and the writer before the oldest are dropped

    def validate(self) -> None:
        if not 0.0 < self.flush_interval_s <= 1.0:
            raise ValueError(
                f"recording.flush_interval_s must be within (0, 1] seconds so a crash loses at most a second, "
                f"got {self.flush_interval_s}"
            )
        if self.queue_size < 16:
            raise ValueError(f"recording.queue_size must be at least 16, got {self.queue_size}")

    def sessions_root(self) -> Path:
        return self.root if self.root is not None else default_sessions_root()
