"""`neuromusic config`: check a configuration file, or print the reference of every option."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--check", type=Path, metavar="FILE", help="load FILE as `run --config` would; say what is wrong")
    what.add_argument("--reference", action="store_true", help="print every option as Markdown (docs/configuration.md)")


def run(args: argparse.Namespace) -> int:
    if args.reference:
        from neuromusic.daemon.config_reference import render_markdown

        print(render_markdown(), end="")
        return 0
    from neuromusic.daemon.config import load_config

    load_config(args.check)  # a ConfigError reaches the CLI, which prints it and exits 2
    print(f"{args.check}: ok")
    return 0
