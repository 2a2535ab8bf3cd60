"""The `neuromusic run` flags: one table per configuration section (daemon/cli/flags.py), each flag one TOML key.

A flag given on the command line overrides the TOML file (`--config`), which overrides the defaults. The [mqtt]
table is in daemon/cli/mqtt_options.py, beside the parsing of `--mqtt HOST[:PORT]`; `--device-id` is one of its
flags: [mqtt] device_id names the session everywhere (topics, recordings).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neuromusic.daemon.cli.flags import Flag, FlagTable, add_table, table_overrides
from neuromusic.daemon.cli.mqtt_options import MQTT
from neuromusic.drivers.sinks.config import SYNTHS


def _notch(text: str) -> float:
    value = float(text)
    if value not in (50.0, 60.0):
        raise argparse.ArgumentTypeError(f"--notch must be 50 or 60 (Hz), got {text}")
    return value


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


SOURCE = FlagTable(
    "source",
    "which EEG to read",
    (
        Flag(
            "--board",
            "board",
            "synthetic (BrainFlow's test board), simulated (a simulated listener), playback (--file), lsl, replay, "
            "or any BrainFlow board name or id, e.g. cyton, ganglion, muse_s, 0",
            metavar="NAME",
        ),
        Flag("--serial-port", "serial_port", "BrainFlow serial port, e.g. /dev/ttyUSB0", metavar="PORT"),
        Flag("--mac-address", "mac_address", "BrainFlow Bluetooth MAC address", metavar="MAC"),
        Flag("--ip-address", "ip_address", "BrainFlow IP address (Wi-Fi boards)", metavar="IP"),
        Flag("--ip-port", "ip_port", "BrainFlow IP port", type=int, metavar="PORT"),
        Flag("--ip-protocol", "ip_protocol", "BrainFlow IP protocol: 0 none, 1 UDP, 2 TCP", type=int, metavar="N"),
        Flag("--serial-number", "serial_number", "BrainFlow serial number of the device", metavar="SN"),
        Flag("--other-info", "other_info", "BrainFlow other_info string", metavar="TEXT"),
        Flag("--board-timeout", "timeout", "BrainFlow discovery timeout, seconds", type=int, metavar="S"),
        Flag(
            "--file",
            "file",
            "recording to play: a BrainFlow CSV (playback) or a session (replay)",
            type=Path,
            metavar="PATH",
        ),
        Flag("--master-board", "master_board", "playback: the board that recorded --file", metavar="NAME"),
        Flag("--playback-loop", "playback_loop", "playback: loop the file", type=None, const=True),
        Flag("--lsl-name", "lsl_name", "LSL stream name to resolve", metavar="NAME"),
        Flag("--lsl-type", "lsl_type", "LSL stream type to resolve (default EEG)", metavar="TYPE"),
        Flag(
            "--lsl-source-id",
            "lsl_source_id",
            "LSL source_id (lets a restarted outlet be found again)",
            metavar="ID",
        ),
        Flag(
            "--resolve-timeout",
            "resolve_timeout_s",
            "LSL: seconds to look for the stream",
            type=float,
            metavar="S",
        ),
        Flag("--script", "script", "simulated listener's hidden state, e.g. calm:60,stress:60", metavar="PLAN"),
        Flag("--listener", "listener", "simulated listener profile TOML", type=Path, metavar="TOML"),
        Flag("--seed", "seed", "simulated listener random seed", type=int, metavar="N"),
        Flag("--stale-after", "stale_after_s", "seconds without samples before 'stale'", type=float, metavar="S"),
        Flag(
            "--speed",
            "replay_speed",
            "--board replay: play the recording N times faster than real time, 0 = as fast as possible (default 1)",
            type=float,
            metavar="N",
        ),
        Flag(
            "--stream",
            "stream",
            "--board replay of an XDF file: the EEG stream's name (default: the only stream of type EEG)",
            metavar="NAME",
        ),
    ),
)
FEATURES = FlagTable(
    "features",
    "the signal",
    (
        Flag("--window", "window_s", "feature window, seconds (default 2)", type=float, metavar="S"),
        Flag("--hop", "hop_s", "hop between feature windows, seconds (default 0.25)", type=float, metavar="S"),
        Flag("--notch", "notch_hz", "remove mains hum at 50 or 60 Hz", type=_notch, metavar="HZ"),
    ),
)
SCORE = FlagTable(
    "score",
    "the score",
    (Flag("--baseline", "baseline_s", "calibration phase, seconds (default 30)", type=float, metavar="S"),),
)
SESSION = FlagTable(
    "session",
    "this run",
    (
        Flag("--duration", "duration_s", "stop after this many seconds, exit 0", type=float, metavar="S"),
        Flag("--json", "output", "one JSON object per hop on stdout, nothing else", type=None, const="json"),
        Flag("--quiet", "output", "no live view, even on a terminal", type=None, const="quiet"),
        Flag("--profile", "profile", "listener profile JSON: loaded if it exists, saved at the end", type=Path),
        Flag("--session-dir", "session_dir", "folder for this session's recording and outputs", type=Path),
        Flag("--without", "without", "services not to run, comma-separated, e.g. player", type=_names),
        Flag("--stop-timeout", "stop_timeout_s", "seconds a clean shutdown may take", type=float, metavar="S"),
    ),
)
POLICY = FlagTable(
    "policy",
    "what steers the music",
    (
        Flag(
            "--policy",
            "name",
            "what steers the music from the score: mapping, target or bandit (what bandit learns is kept in --profile)",
            metavar="NAME",
        ),
    ),
)
SINKS = FlagTable(
    "sinks",
    "where the music goes",
    (
        Flag(
            "--synth",
            "synth",
            f"{' or '.join(SYNTHS)}: in-process FluidSynth to the speakers (a WAV file where no audio device works), "
            "or no synthesizer",
            metavar="NAME",
        ),
        Flag(
            "--audio-driver",
            "audio_driver",
            "FluidSynth audio driver, e.g. pulseaudio, pipewire, alsa, jack, coreaudio, wasapi (default: detect)",
            metavar="NAME",
        ),
        Flag(
            "--soundfont",
            "soundfont",
            "General MIDI soundfont (default: search /usr/share/sounds/sf2 etc.)",
            type=Path,
            metavar="SF2",
        ),
        Flag(
            "--midi-out",
            "midi_out",
            "also send MIDI to this existing port (a unique part of its name), or 'virtual' to create a port named "
            "neuromusic",
            metavar="PORT",
        ),
        Flag(
            "--wav",
            "wav",
            "also render the session to this WAV file (relative: to the current directory)",
            type=Path,
            metavar="PATH",
        ),
        Flag(
            "--midi-file",
            "midi_file",
            "also write the session as a standard MIDI file, tempo changes included (relative: to the current "
            "directory)",
            type=Path,
            metavar="PATH",
        ),
    ),
)
RECORDING = FlagTable(
    "recording",
    "the session folder",
    (
        Flag(
            "--sessions-root",
            "root",
            "folder in which each run's session folder is made (default $XDG_DATA_HOME/neuromusic/sessions); "
            "--session-dir names this run's folder exactly",
            type=Path,
            metavar="DIR",
        ),
        Flag("--no-record", "enabled", "do not record this session", type=None, const=False),
        Flag(
            "--flush-interval",
            "flush_interval_s",
            "flush and fsync the recording this often (default 0.25)",
            type=float,
            metavar="SECONDS",
        ),
    ),
)
LSL_OUT = FlagTable(
    "lsl_out",
    "Lab Streaming Layer out",
    (
        Flag(
            "--lsl-out",
            "enabled",
            "publish the score, controls and markers as LSL streams for LabRecorder",
            type=None,
            const=True,
        ),
        Flag(
            "--lsl-out-bands",
            "bands",
            "with --lsl-out: also publish the band differential entropy per hop",
            type=None,
            const=True,
        ),
    ),
)
LSL_MARKERS = FlagTable(
    "lsl_markers",
    "Lab Streaming Layer markers in",
    (
        Flag(
            "--lsl-markers",
            "name",
            "record the markers of this LSL stream (e.g. from PsychoPy) into the session",
            metavar="NAME",
        ),
    ),
)

# In the order `neuromusic run --help` lists them
RUN_TABLES = (SOURCE, FEATURES, SCORE, POLICY, SINKS, SESSION, RECORDING, MQTT, LSL_OUT, LSL_MARKERS)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="TOML", help="configuration file; flags override its values")
    for table in RUN_TABLES:
        add_table(parser, table)


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """{"section.key": value} for every flag given on the command line (flags not given are left to the TOML)."""
    return table_overrides(args, RUN_TABLES)
