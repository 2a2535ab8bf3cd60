"""[sinks] configuration: where the music goes. (Owned by playback; extend freely.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SinkConfig:
    synth: str = "fluidsynth"  # fluidsynth | none
    audio_driver: str = ""  # "" = detect
    soundfont: Path | None = None  # None = search the usual system folders
    midi_out: str = ""  # "" = none, "virtual" = create a port, else an existing port's name
    wav: Path | None = None
    midi_file: Path | None = None
