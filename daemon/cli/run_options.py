"""The `neuromusic run` flags: each one is one configuration key, and a flag given on the command line overrides
the TOML file (`--config`). One table drives both the parser and the overrides, so no flag can silently do nothing.

Other areas add their flags in their own modules (`add_<area>_arguments(parser)` + `<area>_overrides(args)`),
listed in OPTION_MODULES; a module that does not exist yet is left out. `--device-id` is one of them: [mqtt]
device_id names the session everywhere (topics, recordings).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Flag:
    flag: str
    key: str  # "section.option" in the TOML file
    help: str
    type: Callable[[str], Any] | None = str
    metavar: str | None = None
    const: Any = None  # for switches: the value the key takes when the flag is given


def _notch(text: str) -> float:
    value = float(text)
    if value not in (50.0, 60.0):
        raise argparse.ArgumentTypeError(f"--notch must be 50 or 60 (Hz), got {text}")
    return value


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


GROUPS: dict[str, list[Flag]] = {
    "source (which EEG to read)": [
        Flag(
            "--board",
            "source.board",
            "synthetic (BrainFlow's test board), simulated (a simulated listener), playback (--file), lsl, replay, "
            "or any BrainFlow board name or id, e.g. cyton, ganglion, muse_s, 0",
            metavar="NAME",
        ),
        Flag("--serial-port", "source.serial_port", "BrainFlow serial port, e.g. /dev/ttyUSB0", metavar="PORT"),
        Flag("--mac-address", "source.mac_address", "BrainFlow Bluetooth MAC address", metavar="MAC"),
        Flag("--ip-address", "source.ip_address", "BrainFlow IP address (Wi-Fi boards)", metavar="IP"),
        Flag("--ip-port", "source.ip_port", "BrainFlow IP port", type=int, metavar="PORT"),
        Flag(
            "--ip-protocol", "source.ip_protocol", "BrainFlow IP protocol: 0 none, 1 UDP, 2 TCP", type=int, metavar="N"
        ),
        Flag("--serial-number", "source.serial_number", "BrainFlow serial number of the device", metavar="SN"),
        Flag("--other-info", "source.other_info", "BrainFlow other_info string", metavar="TEXT"),
        Flag("--board-timeout", "source.timeout", "BrainFlow discovery timeout, seconds", type=int, metavar="S"),
        Flag(
            "--file",
            "source.file",
            "recording to play: a BrainFlow CSV (playback) or a session (replay)",
            type=Path,
            metavar="PATH",
        ),
        Flag("--master-board", "source.master_board", "playback: the board that recorded --file", metavar="NAME"),
        Flag("--playback-loop", "source.playback_loop", "playback: loop the file", type=None, const=True),
        Flag("--lsl-name", "source.lsl_name", "LSL stream name to resolve", metavar="NAME"),
        Flag("--lsl-type", "source.lsl_type", "LSL stream type to resolve (default EEG)", metavar="TYPE"),
        Flag(
            "--lsl-source-id",
            "source.lsl_source_id",
            "LSL source_id (lets a restarted outlet be found again)",
            metavar="ID",
        ),
        Flag(
            "--resolve-timeout",
            "source.resolve_timeout_s",
            "LSL: seconds to look for the stream",
            type=float,
            metavar="S",
        ),
        Flag("--script", "source.script", "simulated listener's hidden state, e.g. calm:60,stress:60", metavar="PLAN"),
        Flag("--listener", "source.listener", "simulated listener profile TOML", type=Path, metavar="TOML"),
        Flag("--seed", "source.seed", "simulated listener random seed", type=int, metavar="N"),
        Flag(
            "--stale-after", "source.stale_after_s", "seconds without samples before 'stale'", type=float, metavar="S"
        ),
    ],
    "signal and score": [
        Flag("--window", "features.window_s", "feature window, seconds (default 2)", type=float, metavar="S"),
        Flag("--hop", "features.hop_s", "hop between feature windows, seconds (default 0.25)", type=float, metavar="S"),
        Flag("--notch", "features.notch_hz", "remove mains hum at 50 or 60 Hz", type=_notch, metavar="HZ"),
        Flag("--baseline", "score.baseline_s", "calibration phase, seconds (default 30)", type=float, metavar="S"),
    ],
    "session": [
        Flag("--duration", "session.duration_s", "stop after this many seconds, exit 0", type=float, metavar="S"),
        Flag("--json", "session.output", "one JSON object per hop on stdout, nothing else", type=None, const="json"),
        Flag("--quiet", "session.output", "no live view, even on a terminal", type=None, const="quiet"),
        Flag("--profile", "session.profile", "listener profile JSON: loaded if it exists, saved at the end", type=Path),
        Flag("--session-dir", "session.session_dir", "folder for this session's recording and outputs", type=Path),
        Flag("--without", "session.without", "services not to run, comma-separated, e.g. player", type=_names),
        Flag("--stop-timeout", "session.stop_timeout_s", "seconds a clean shutdown may take", type=float, metavar="S"),
    ],
}

# (module, add-arguments function, overrides function) of other areas' run flags
OPTION_MODULES: list[tuple[str, str, str]] = [
    ("neuromusic.daemon.cli.player_options", "add_playback_arguments", "playback_overrides"),
    ("neuromusic.daemon.cli.mqtt_options", "add_mqtt_arguments", "mqtt_overrides"),
    ("neuromusic.daemon.cli.recording_options", "add_recording_arguments", "recording_overrides"),
    ("neuromusic.daemon.cli.lab_options", "add_lab_arguments", "lab_overrides"),
]


def _dest(flag: Flag) -> str:
    return "opt_" + flag.flag.lstrip("-").replace("-", "_")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="TOML", help="configuration file; flags override its values")
    for title, flags in GROUPS.items():
        group = parser.add_argument_group(title)
        for flag in flags:
            help_text = f"{flag.help} [{flag.key}]"
            if flag.type is None:
                group.add_argument(flag.flag, dest=_dest(flag), action="store_const", const=flag.const, help=help_text)
            else:
                metavar = flag.metavar or flag.flag.lstrip("-").split("-")[-1].upper()
                group.add_argument(flag.flag, dest=_dest(flag), type=flag.type, metavar=metavar, help=help_text)
    for module, add_name, _ in OPTION_MODULES:
        loaded = _load(module)
        if loaded is not None:
            getattr(loaded, add_name)(parser)


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """{"section.key": value} for every flag given on the command line (flags not given are left to the TOML)."""
    overrides: dict[str, Any] = {}
    for flags in GROUPS.values():
        for flag in flags:
            value = getattr(args, _dest(flag), None)
            if value is not None:
                overrides[flag.key] = value
    for module, _, overrides_name in OPTION_MODULES:
        loaded = _load(module)
        if loaded is not None:
            overrides.update(getattr(loaded, overrides_name)(args))
    return overrides


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise
