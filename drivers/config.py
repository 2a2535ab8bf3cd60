"""[source] configuration: which EEG source to read and how."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceConfig:
    board: str = "synthetic"  # synthetic | simulated | playback | lsl | replay | any BrainFlow board name or id
    # BrainFlowInputParams, passed through unchanged for hardware boards
    serial_port: str = ""
    mac_address: str = ""
    ip_address: str = ""
    ip_port: int = 0
    ip_protocol: int = 0  # BrainFlow IpProtocolTypes: 0 none, 1 UDP, 2 TCP
    serial_number: str = ""
    other_info: str = ""
    timeout: int = 0  # BrainFlow discovery timeout in seconds (0: the board's default)
    file: Path | None = None  # playback/replay file
    master_board: str = "synthetic"  # playback: the board that recorded the file (its channel layout)
    playback_loop: bool = False  # playback: start again at the end of the file instead of going stale
    replay_speed: float = 1.0  # replay: 1 = real time, 4 = four times faster, 0 = as fast as it is read
    stream: str = ""  # replay of an XDF file: the EEG stream's name ("" = the only stream of type EEG)
    # LSL
    lsl_name: str = ""
    lsl_type: str = "EEG"
    lsl_source_id: str = ""
    resolve_timeout_s: float = 5.0  # LSL: how long open() looks for the stream before SourceNotFoundError
    # simulated listener
    script: str = "calm:60,stress:60"  # hidden relaxation state over time: "<state or 0..1>:<seconds>,...", loops
    listener: Path | None = None  # listener profile TOML (None: the shipped drivers/listeners/default.toml)
    seed: int = 0  # simulated listener random seed (same seed, same EEG)
    stale_after_s: float = 2.0  # no samples for this long -> state "stale"

    def validate(self) -> None:
        if self.stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be > 0, got {self.stale_after_s}")
        if not 0.0 <= self.replay_speed <= 1000.0:
            raise ValueError(f"replay_speed must be within 0..1000 (0: as fast as possible), got {self.replay_speed}")
        if self.resolve_timeout_s < 1.0:
            # liblsl 1.18 ignores resolve timeouts of 0.5 s and less and waits about 5 s instead.
            raise ValueError(f"resolve_timeout_s must be >= 1 second, got {self.resolve_timeout_s}")
        if self.ip_port < 0 or self.ip_port > 65535:
            raise ValueError(f"ip_port must be within 0..65535, got {self.ip_port}")
