"""[session] configuration: how one `neuromusic run` behaves as a service (identity, output, shutdown, recovery).

Source, feature and score options live beside their own code; these are the daemon's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

OutputMode = Literal["auto", "json", "view", "quiet"]
ServiceFailure = Literal["stop", "continue"]


@dataclass(frozen=True)
class SessionConfig:
    session_dir: Path | None = None  # folder for this session's recording and outputs; None = the recorder's default
    duration_s: float | None = None  # stop after this many seconds (None = run until stopped)
    profile: Path | None = None  # the listener's profile JSON: loaded at start if it exists, saved at the end
    without: tuple[str, ...] = ()  # registered services not to run, e.g. ["player"] for the score alone
    output: OutputMode = "auto"  # auto = live view on a terminal, else nothing on stdout; json = one line per hop
    stop_timeout_s: float = 5.0  # a clean shutdown must finish within this; then stages are cancelled, exit code 9
    reconnect_after_s: float = 5.0  # a source silent this long (already "stale") is closed and opened again
    reconnect_base_s: float = 0.5  # first reconnect delay; doubles per failed attempt, with jitter
    reconnect_max_s: float = 30.0  # longest delay between reconnect attempts
    view_history_s: float = 60.0  # seconds of score trace the terminal view shows
    # when a service crashes: "stop" ends the run cleanly with exit code 8 (systemd's Restart=on-failure then
    # starts a fresh daemon); "continue" reports it and goes on without that service
    on_service_failure: ServiceFailure = "stop"

    def validate(self) -> None:
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {self.duration_s}")
        if self.stop_timeout_s <= 0:
            raise ValueError(f"stop_timeout_s must be positive, got {self.stop_timeout_s}")
        if not 0 < self.reconnect_base_s <= self.reconnect_max_s:
            raise ValueError("reconnect delays must satisfy 0 < reconnect_base_s <= reconnect_max_s")
        if self.reconnect_after_s <= 0:
            raise ValueError(f"reconnect_after_s must be positive, got {self.reconnect_after_s}")
        if self.view_history_s <= 0:
            raise ValueError(f"view_history_s must be positive, got {self.view_history_s}")
