"""`neuromusic export SESSION --format fif|edf|bids|xdf [-o PATH]`: write a session in a format MNE/BIDS tools read."""

from __future__ import annotations

import argparse
from pathlib import Path

from neuromusic.daemon.cli.session_args import add_session_argument, find_session_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_session_argument(parser)
    parser.add_argument(
        "--format",
        choices=("fif", "edf", "bids", "xdf"),
        default="fif",
        help="fif: MNE's format, exact samples; edf: 16-bit European Data Format; bids: an EEG-BIDS tree (EDF inside); "
        "xdf: EEG, score, controls and markers as LabRecorder would have recorded them; all carry channel quality",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="file to write (a BIDS root folder for --format bids); default: inside the session folder",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export")


def run(args: argparse.Namespace) -> int:
    from neuromusic.daemon.lab.export import export_session

    folder = find_session_folder(args)
    written = export_session(folder, args.format, args.output, overwrite=args.overwrite)
    print(written)
    return 0
