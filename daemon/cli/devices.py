"""`neuromusic devices`: what can be used here — EEG sources (BrainFlow boards, LSL streams visible now), MIDI output
ports and FluidSynth audio drivers. A back end that does not work on this machine is listed with the reason; the
command still exits 0, because "no MIDI here" is an answer, not a failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lsl-wait", type=float, default=1.0, metavar="S", help="seconds to look for LSL streams (default 1)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")


def collect(lsl_wait: float) -> dict[str, Any]:
    from neuromusic.drivers import discovery
    from neuromusic.drivers.brainflow_source import brainflow_board_names
    from neuromusic.drivers.registry import source_names

    report: dict[str, Any] = {
        "sources": source_names(),
        "brainflow_boards": brainflow_board_names(),
        "lsl_streams": [vars(stream) for stream in discovery.lsl_streams(lsl_wait)],
    }
    ports, problems = discovery.midi_output_ports()
    report["midi_ports"] = ports
    report["midi_problems"] = problems
    report["audio_drivers"] = discovery.fluidsynth_audio_drivers()
    return report


def run(args: argparse.Namespace) -> int:
    if args.lsl_wait <= 0:
        from neuromusic.models.core.errors import ConfigError

        raise ConfigError(f"--lsl-wait must be positive, got {args.lsl_wait}")
    report = collect(args.lsl_wait)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    out = sys.stdout
    print("EEG sources (--board):", ", ".join(report["sources"]), file=out)
    print("BrainFlow boards (--board NAME):", file=out)
    print("  " + ", ".join(report["brainflow_boards"]), file=out)
    print(f"LSL streams visible now (looked {args.lsl_wait:g} s; --board lsl --lsl-source-id ID):", file=out)
    for s in report["lsl_streams"]:
        print(
            f"  {s['name']!r} type {s['type']} source_id {s['source_id'] or '(none)'}: {s['channels']} channels at "
            f"{s['sfreq']:g} Hz on {s['hostname']}",
            file=out,
        )
    if not report["lsl_streams"]:
        print("  none", file=out)
    print("MIDI output ports (--midi-out NAME):", file=out)
    for port in report["midi_ports"]:
        print(f"  {port}", file=out)
    if not report["midi_ports"]:
        print("  none", file=out)
    for problem in report["midi_problems"]:
        print(f"  unavailable: {problem}", file=out)
    print("FluidSynth audio drivers built in (--audio-driver NAME):", file=out)
    print("  " + ", ".join(report["audio_drivers"]), file=out)
    return 0
