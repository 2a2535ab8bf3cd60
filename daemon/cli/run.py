"""`neuromusic run`: the closed loop as a service. Flags are in daemon/cli/run_options.py; the session in session.py.

Imports nothing heavy at module level, and the path to the first score never imports torch: the player service
loads the music model lazily, on its own thread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from neuromusic.daemon.cli.run_options import add_run_arguments, run_overrides

OUTPUT_FLAGS = ("sinks.wav", "sinks.midi_file")  # output files named on the command line: relative to the cwd

EPILOG = """\
examples:
  neuromusic run --board synthetic                        BrainFlow's test board, live view on a terminal
  neuromusic run --board simulated --script calm:60,stress:60 --duration 120 --json > scores.jsonl
  neuromusic run --board lsl --lsl-source-id cyton-1 --profile ~/.config/neuromusic/alice.json
  neuromusic run --board cyton --serial-port /dev/ttyUSB0 --notch 50

exit codes: 0 stopped cleanly (--duration, stop command, first SIGINT/SIGTERM); 1 internal error; 2 configuration or
flag error; 3 source failed; 4 headset/port/stream not found; 5 sink; 6 music model; 7 data; 9 shutdown deadline
passed; 130/143 forced by a second SIGINT/SIGTERM. Keys in [brackets] are the TOML names (see
deploy/neuromusic.example.toml).

--wav and --midi-file given on the command line are relative to the current directory; the same keys in a TOML file
are relative to the session folder. The session folder is printed when the session starts and when it ends.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    overrides = resolve_output_paths(run_overrides(args), Path.cwd())
    check_board(_board(args.config, overrides))  # before the configuration loader imports the signal maths (seconds)
    from neuromusic.daemon.config import load_config

    config = load_config(args.config, overrides)
    if config.session.output == "json":
        from neuromusic.daemon.services.json_output import reserve_stdout

        reserve_stdout()
    before = set(threading.enumerate())
    code = _run_loop(config)
    _exit_now_if_threads_linger(code, before)
    return code


def resolve_output_paths(overrides: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Output files named by flags, relative to `cwd` as every command-line tool does (TOML paths are left alone:
    relative ones go into the session folder)."""
    out = dict(overrides)
    for key in OUTPUT_FLAGS:
        if out.get(key) is not None:
            out[key] = cwd / Path(out[key]).expanduser()
    return out


def _board(path: Path | None, overrides: dict[str, Any]) -> str:
    """The board this run will use: the flag, else the TOML's [source] board, else the default. A TOML file that
    cannot be read is left to the configuration loader, which says why."""
    import tomllib

    if overrides.get("source.board") is not None:
        return str(overrides["source.board"])
    if path is not None:
        try:
            board = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("source", {}).get("board")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
            board = None
        if isinstance(board, str):
            return board
    from neuromusic.drivers.config import SourceConfig

    return SourceConfig().board


def check_board(board: str) -> None:
    """Raise a ConfigError naming the closest board names when `board` names none."""
    from neuromusic.drivers.brainflow_source import brainflow_board_id, brainflow_board_names
    from neuromusic.drivers.registry import source_names
    from neuromusic.models.core.errors import ConfigError

    name = board.strip().lower()
    if name in source_names() or brainflow_board_id(board) is not None:
        return
    ours = source_names()
    close = difflib.get_close_matches(name.replace("-", "_"), ours + brainflow_board_names(), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ConfigError(
        f"unknown board {board!r}; {hint}choose one of {', '.join(ours)}, or a BrainFlow board name or id "
        f"(`neuromusic devices` lists them)"
    )


def _run_loop(config: object) -> int:
    """asyncio.run() without its last step, which joins the default executor's threads: a service's model still
    importing on one of them would hold the process for many seconds after a clean stop."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_run(config))
    finally:
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _run(config: object) -> int:
    from neuromusic.daemon.config import Config
    from neuromusic.daemon.session.runner import Session
    from neuromusic.daemon.session.shutdown import ShutdownHandler

    assert isinstance(config, Config)
    session = Session(config)
    folder = _prepare_session_folder(session)
    if folder is not None:
        print(f"neuromusic: recording to {folder}", file=sys.stderr)
    shutdown = ShutdownHandler(session.request_stop, config.session.stop_timeout_s)
    shutdown.install(asyncio.get_running_loop())
    session.on_stopping.append(
        lambda _reason: shutdown.arm_watchdog(session.pending_exit_code, str(session.fatal_error or ""))
    )
    try:
        result = await session.run()
    finally:
        shutdown.uninstall()
    print(f"neuromusic: session stopped ({result.reason}) after {result.duration_s:.1f} s", file=sys.stderr)
    if folder is not None and (folder / "manifest.json").is_file():
        print(f"neuromusic: recorded to {folder}", file=sys.stderr)
    return result.exit_code


def _prepare_session_folder(session: Any) -> Path | None:
    """The folder this run records into, chosen now so it can be printed; a --session-dir outside the sessions root
    is noted in the root's index, so `neuromusic sessions` lists it."""
    from neuromusic.daemon.services.recorder import check_folder, new_session_folder
    from neuromusic.models.sessions.index import register

    recording = session.config.recording
    if not recording.enabled or "recorder" in session.config.session.without:
        return None
    root = recording.sessions_root()
    folder: Path = session.ctx.session_dir or new_session_folder(root, session.ctx.device_id)
    check_folder(folder)  # a folder holding another session is refused before anything starts
    folder = folder.expanduser().absolute()
    session.ctx.session_dir = folder
    register(root, folder)
    return folder


def _exit_now_if_threads_linger(code: int, before: set[threading.Thread]) -> None:
    """The session has stopped and every service has cleaned up. A worker thread still busy (a music model halfway
    through importing torch, an SDK call that never returns) holds nothing worth waiting for, but the interpreter
    would join it at exit, past the shutdown deadline. So leave now, with the session's exit code."""
    # Only threads this run started: run() may be called from a program (or a test) with threads of its own.
    lingering = [t.name for t in threading.enumerate() if t not in before and not t.daemon]
    if lingering:
        logging.getLogger(__name__).info("exiting without waiting for threads: %s", ", ".join(lingering))
        from neuromusic.daemon.services.json_output import reserved_stdout

        for stream in (reserved_stdout(), sys.stdout, sys.stderr):
            if stream is None:
                continue
            with contextlib.suppress(ValueError, OSError):  # stdout may be closed already (the JSON reader left)
                stream.flush()
        os._exit(code)
