"""`neuromusic run`: the closed loop as a service. Flags are in daemon/cli/run_options.py; the session in session.py.

Imports nothing heavy at module level, and the path to the first score never imports torch: the player service
loads the music model lazily, on its own thread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import threading

from neuromusic.daemon.cli.run_options import add_run_arguments, run_overrides

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
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from neuromusic.daemon.config import load_config

    config = load_config(args.config, run_overrides(args))
    if config.session.output == "json":
        _reserve_stdout_for_json()
    before = set(threading.enumerate())
    code = _run_loop(config)
    _exit_now_if_threads_linger(code, before)
    return code


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
    return result.exit_code


def _reserve_stdout_for_json() -> None:
    """Keep the real stdout for JSON lines only: fd 1 now points at stderr, so anything a C library or a stray
    print writes lands there instead of corrupting the stream a consumer parses."""
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = open(json_fd, "w", buffering=1, encoding="utf-8", closefd=True)  # noqa: SIM115 (lives until exit)


def _exit_now_if_threads_linger(code: int, before: set[threading.Thread]) -> None:
    """The session has stopped and every service has cleaned up. A worker thread still busy (a music model halfway
    through importing torch, an SDK call that never returns) holds nothing worth waiting for, but the interpreter
    would join it at exit, past the shutdown deadline. So leave now, with the session's exit code."""
    # Only threads this run started: run() may be called from a program (or a test) with threads of its own.
    lingering = [t.name for t in threading.enumerate() if t not in before and not t.daemon]
    if lingering:
        logging.getLogger(__name__).info("exiting without waiting for threads: %s", ", ".join(lingering))
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(ValueError, OSError):  # stdout may be closed already (the JSON reader left)
                stream.flush()
        os._exit(code)
