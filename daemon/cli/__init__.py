"""`neuromusic` command line: a registry of subcommands, each in its own module, resolved lazily.

A command module exposes `add_arguments(parser)` and `run(args) -> int`, and imports nothing heavy at module level
(torch and transformers take seconds to import; `neuromusic --help` must not wait for them). Adding a command is one
module plus one line in COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from neuromusic.models.core.errors import NeuromusicError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("neuromusic.daemon.cli.run", "run the closed loop: EEG in, relaxation score, music out"),
    "devices": ("neuromusic.daemon.cli.devices", "list BrainFlow boards, LSL streams, MIDI ports, audio drivers"),
    "generate": ("neuromusic.daemon.cli.generate", "compose music offline with given controls"),
    "data": ("neuromusic.daemon.cli.data", "build the training corpus (neuromusic data build)"),
    "train": ("neuromusic.daemon.cli.train", "train the music model"),
    "eval-model": ("neuromusic.daemon.cli.eval_model", "evaluate the music model: perplexity, adherence, statistics"),
    "simulate": ("neuromusic.daemon.cli.simulate", "run the closed loop on simulated listeners, faster than real time"),
    "dashboard": ("neuromusic.daemon.cli.dashboard", "serve a live web dashboard of every session on an MQTT broker"),
    "calibrate": ("neuromusic.daemon.cli.calibrate", "guided calibration: fit and save a per-person profile"),
    "sessions": ("neuromusic.daemon.cli.sessions", "list recorded sessions"),
    "export": ("neuromusic.daemon.cli.export", "export a session to FIF, EDF, BIDS or XDF"),
    "report": ("neuromusic.daemon.cli.report", "write an HTML report with plots for a session"),
    "config": ("neuromusic.daemon.cli.config", "check a configuration file or print the reference of every option"),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neuromusic")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuromusic",
        description="Closed-loop neurofeedback: composes relaxing music from EEG.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"neuromusic {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(command_parser)
        command_parser.set_defaults(_module=module)
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args._module.run(args))
    except NeuromusicError as error:
        print(f"neuromusic: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
