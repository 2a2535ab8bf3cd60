"""Arguments shared by the commands that read recorded sessions (sessions, export, report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from neuromusic.daemon.cli.recording_options import default_sessions_root


def add_session_argument(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        parser.add_argument(
            "session",
            metavar="SESSION",
            help="a session folder, or the name (or a unique start or end of it) of one under --sessions-root or "
            "recorded elsewhere with --session-dir",
        )
    parser.add_argument(
        "--sessions-root",
        type=Path,
        metavar="DIR",
        default=None,
        help="where session folders are looked for (default $XDG_DATA_HOME/neuromusic/sessions)",
    )


def sessions_root(args: argparse.Namespace) -> Path:
    root: Path | None = getattr(args, "sessions_root", None)
    return root.expanduser() if root is not None else default_sessions_root()


def find_session_folder(args: argparse.Namespace) -> Path:
    """The SESSION argument as a folder: a path, or a name under the sessions root or in its index (--session-dir
    sessions)."""
    from neuromusic.models.sessions.index import locate

    return locate(args.session, sessions_root(args))
