"""`neuromusic report SESSION [-o DIR]`: an HTML page with a summary, time in calm / neutral / tense, phases, the
time line (score, DE, controls, quality on one time axis), spectra by state and per-channel quality; a calibration
session gets its own page."""

from __future__ import annotations

import argparse
from pathlib import Path

from neuromusic.daemon.cli.session_args import add_session_argument, find_session_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_session_argument(parser)
    parser.add_argument(
        "-o", "--output", type=Path, metavar="DIR", help="folder for index.html and the PNGs (default SESSION/report)"
    )
    parser.add_argument(
        "--relaxed-threshold",
        type=float,
        default=0.6,
        metavar="SCORE",
        help="a score at or above this counts as relaxed (calm) in the summary (default 0.6)",
    )
    parser.add_argument(
        "--tense-threshold",
        type=float,
        default=0.4,
        metavar="SCORE",
        help="a score below this counts as tense; between the two thresholds, neutral (default 0.4)",
    )


def run(args: argparse.Namespace) -> int:
    from neuromusic.daemon.lab.report import write_report
    from neuromusic.models.core.errors import ConfigError

    if not 0.0 <= args.relaxed_threshold <= 1.0:
        raise ConfigError(f"--relaxed-threshold must be within 0..1, got {args.relaxed_threshold}")
    if not 0.0 <= args.tense_threshold <= args.relaxed_threshold:
        raise ConfigError(f"--tense-threshold must be within 0..--relaxed-threshold, got {args.tense_threshold}")
    folder = find_session_folder(args)
    print(write_report(folder, args.output, args.relaxed_threshold, args.tense_threshold))
    return 0
