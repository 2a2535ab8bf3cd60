"""Find a General MIDI soundfont: the one given, else the first found in the usual system folders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from neuromusic.models.core.errors import SinkError

# Preferred names first: the system's chosen default, then the Debian/Ubuntu/Fedora/Homebrew packages. FluidR3_GM
# before the others: it loads in milliseconds (an .sf3 is decompressed at load, seconds for a full set) and its
# strings and pads sustain, which calm music wants.
PREFERRED = (
    "default-GM.sf2",
    "FluidR3_GM.sf2",
    "FluidR3_GM.sf3",
    "GeneralUser.sf2",
    "TimGM6mb.sf2",
    "default.sf2",
    "default-GM.sf3",
)
FOLDERS = (
    "/usr/share/sounds/sf2",
    "/usr/share/soundfonts",
    "/usr/share/sounds/sf3",
    "/usr/local/share/soundfonts",
    "/opt/homebrew/share/soundfonts",
    "/usr/local/share/fluidsynth",
    "~/.local/share/soundfonts",
)

MISSING_HELP = (
    "no soundfont found in {where}. Install one (Debian/Ubuntu: `sudo apt install fluid-soundfont-gm`; "
    "Fedora: `sudo dnf install fluid-soundfont-gm`; macOS: `brew install fluid-synth` and a .sf2 of your choice) "
    "or give one with --soundfont PATH ([sinks] soundfont in the config)."
)


def find_soundfont(given: Path | None = None, folders: Sequence[str | Path] = FOLDERS) -> Path:
    """Return a readable soundfont file or raise SinkError saying how to get one."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise SinkError(f"soundfont not found: {path} (--soundfont / [sinks] soundfont)")
        if not os.access(path, os.R_OK):
            raise SinkError(f"soundfont not readable: {path}")
        return path
    dirs = [Path(folder).expanduser() for folder in folders]
    for directory in dirs:
        for name in PREFERRED:
            candidate = directory / name
            if candidate.is_file():
                return candidate.resolve()
    for directory in dirs:
        if directory.is_dir():
            found = sorted(p for p in directory.iterdir() if p.suffix.lower() in (".sf2", ".sf3") and p.is_file())
            if found:
                return found[0].resolve()
    raise SinkError(MISSING_HELP.format(where=", ".join(str(d) for d in dirs)))
