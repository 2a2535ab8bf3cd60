"""The `neuromusic run` playback flags ([sinks] keys): where the music goes. Listed in run_options.OPTION_MODULES."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neuromusic.drivers.sinks.config import SYNTHS

# (flag, [sinks] key, type, metavar, help)
FLAGS: tuple[tuple[str, str, type, str, str], ...] = (
    (
        "--synth",
        "synth",
        str,
        "NAME",
        f"{' or '.join(SYNTHS)}: in-process FluidSynth to the speakers (a WAV file "
        "where no audio device works), or no synthesizer",
    ),
    (
        "--audio-driver",
        "audio_driver",
        str,
        "NAME",
        "FluidSynth audio driver, e.g. pulseaudio, pipewire, alsa, jack, coreaudio, wasapi (default: detect)",
    ),
    ("--soundfont", "soundfont", Path, "SF2", "General MIDI soundfont (default: search /usr/share/sounds/sf2 etc.)"),
    (
        "--midi-out",
        "midi_out",
        str,
        "PORT",
        "also send MIDI to this existing port (a unique part of its name), or "
        "'virtual' to create a port named neuromusic",
    ),
    ("--wav", "wav", Path, "PATH", "also render the session to this WAV file (relative: to the current directory)"),
    (
        "--midi-file",
        "midi_file",
        Path,
        "PATH",
        "also write the session as a standard MIDI file, tempo changes included (relative: to the current directory)",
    ),
)


def _dest(flag: str) -> str:
    return "sinks_" + flag.lstrip("-").replace("-", "_")


def add_playback_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("playback (where the music goes)")
    for flag, key, kind, metavar, help_text in FLAGS:
        group.add_argument(flag, dest=_dest(flag), type=kind, metavar=metavar, help=f"{help_text} [sinks.{key}]")
    group.add_argument(
        "--policy",
        dest="player_policy",
        metavar="NAME",
        help="what steers the music from the score: mapping, target or bandit (what bandit learns is kept in "
        "--profile) [policy.name]",
    )


def playback_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """{"sinks.key": value} for the playback flags given, and {"policy.name": ...} for --policy."""
    overrides: dict[str, Any] = {}
    if getattr(args, "player_policy", None) is not None:
        overrides["policy.name"] = args.player_policy
    for flag, key, _, _, _ in FLAGS:
        value = getattr(args, _dest(flag), None)
        if value is not None:
            overrides[f"sinks.{key}"] = value
    return overrides
