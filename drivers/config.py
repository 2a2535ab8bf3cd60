"""[source] configuration: which EEG source to read and how. (Owned by the signal path; extend freely.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceConfig:
    board: str = "synthetic"  # synthetic | simulated | playback | lsl | replay | any BrainFlow board name or id
    serial_port: str = ""
    mac_address: str = ""
    ip_address: str = ""
    ip_port: int = 0
    file: Path | None = None  # playback/replay file
    lsl_name: str = ""
    lsl_type: str = "EEG"
    lsl_source_id: str = ""
    stale_after_s: float = 2.0  # no samples for this long -> state "stale"
