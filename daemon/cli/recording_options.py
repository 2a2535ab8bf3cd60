"""[recording] configuration and the `run` flags that set it (and --speed for replay). Kept free of heavy imports:
`cmd_run` calls these.

Every `neuromusic run` records a session folder (see models/sessions/store.py for the layout) under `root`, by default
the user's data directory: `$XDG_DATA_HOME/neuromusic/sessions`, or `~/.local/share/neuromusic/sessions`.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


def add_recording_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("recording")
    group.add_argument(
        "--sessions-root",
        type=Path,
        metavar="DIR",
        dest="recording_root",
        help="folder in which each run's session folder is made (TOML recording.root; default "
        "$XDG_DATA_HOME/neuromusic/sessions); --session-dir names this run's folder exactly",
    )
    group.add_argument(
        "--no-record",
        action="store_true",
        help="do not record this session (TOML recording.enabled = false)",
    )
    group.add_argument(
        "--flush-interval",
        type=float,
        metavar="SECONDS",
        help="flush and fsync the recording this often (TOML recording.flush_interval_s, default 0.25)",
    )
    group.add_argument(
        "--speed",
        type=float,
        metavar="N",
        help="--board replay: play the recording N times faster than real time, 0 = as fast as possible "
        "(TOML source.replay_speed, default 1)",
    )


def recording_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """{"recording.key": value} for the flags given; flags left out are None and do not override the TOML."""
    return {
        "recording.root": str(args.recording_root) if getattr(args, "recording_root", None) else None,
        "recording.enabled": False if getattr(args, "no_record", False) else None,
        "recording.flush_interval_s": getattr(args, "flush_interval", None),
        "source.replay_speed": getattr(args, "speed", None),
    }
