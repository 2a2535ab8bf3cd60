"""Signals, the shutdown deadline and the exit codes of `neuromusic run`.

The first SIGINT or SIGTERM asks the session to stop: acquisition stops, the signal path drains, services clean up
(all notes off, retained "offline" status, files flushed), the profile is saved. That must finish within
`session.stop_timeout_s`; the session then cancels what is left (exit code 9). A watchdog thread outlives a blocked
event loop and ends the process a little later still, so no hung SDK call keeps a daemon alive. A second signal
forces exit at once with 128 + the signal number, the shell's convention.

Exit codes (documented in the README):
    0    stopped cleanly: --duration reached, a stop command, or the first SIGINT/SIGTERM
    1    an unexpected internal error (a bug; the traceback is printed)
    2    configuration or command-line error (the message names the key or flag)
    3    the EEG source failed and could not be opened
    4    the headset, port or stream was not found
    5    a music sink failed;  6 the music model is missing or broken;  7 input data is unusable
    9    the shutdown did not finish within the deadline; unfinished stages were cancelled
    130  forced exit by a second SIGINT (143 for SIGTERM)
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SERVICE_FAILED = 8  # a service (player, recorder, telemetry, ...) crashed and session.on_service_failure = "stop"
EXIT_SHUTDOWN_TIMEOUT = 9
WATCHDOG_GRACE_S = 2.0  # the watchdog fires this long after the session's own deadline
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ShutdownHandler:
    """Turns the first signal into `request_stop(reason)` and a second into an immediate exit."""

    def __init__(
        self,
        request_stop: Callable[[str], None],
        deadline_s: float,
        *,
        exit_now: Callable[[int], None] = os._exit,
        grace_s: float = WATCHDOG_GRACE_S,
    ) -> None:
        self._request_stop = request_stop
        self._deadline_s = deadline_s
        self._grace_s = grace_s
        self._exit_now = exit_now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: threading.Timer | None = None
        self.received: int | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for signum in HANDLED_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)

    def uninstall(self) -> None:
        if self._loop is not None:
            for signum in HANDLED_SIGNALS:
                self._loop.remove_signal_handler(signum)
            self._loop = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def arm_watchdog(self, exit_code: int = EXIT_SHUTDOWN_TIMEOUT, error: str = "") -> None:
        """Start the last-resort timer (when the session starts stopping, whatever the reason). `exit_code` is what
        the process ends with if it fires: a fatal error's own code (and its message, `error`), else 9."""
        if self._watchdog is None:
            self._watchdog = threading.Timer(self._deadline_s + self._grace_s, self._expired, args=(exit_code, error))
            self._watchdog.daemon = True
            self._watchdog.start()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            _say(f"second {name}: exiting now without cleaning up")
            self._exit_now(128 + signum)
            return
        self.received = signum
        _say(f"{name} received: stopping (within {self._deadline_s:g} s; send it again to force)")
        self.arm_watchdog()
        self._request_stop(f"{name} received")

    def _expired(self, exit_code: int, error: str) -> None:
        if error:
            _say(f"error: {error}")
        _say(f"shutdown did not finish within {self._deadline_s + self._grace_s:g} s; exiting")
        self._exit_now(exit_code)


def _say(text: str) -> None:
    # stderr, never stdout: with --json, stdout carries JSON lines only.
    print(f"neuromusic: {text}", file=sys.stderr, flush=True)


async def stop_in_order(tasks: dict[str, asyncio.Task[Any]], order: list[list[str]], timeout_s: float) -> bool:
    """Cancel the named tasks group by group, each group awaited before the next, all within `timeout_s`. Past the
    deadline, whatever is left is cancelled again (a task still cleaning up is interrupted there too); returns
    whether the deadline passed."""
    try:
        async with asyncio.timeout(timeout_s):
            for names in order:
                for name in names:
                    tasks[name].cancel()
                pending = [tasks[name] for name in names]
                if pending:
                    await asyncio.wait(pending)
    except TimeoutError:
        left = [name for name, task in tasks.items() if not task.done()]
        log.error("shutdown deadline %g s passed; cancelling again: %s", timeout_s, left)
        for name in left:
            tasks[name].cancel()
        return True
    return False
