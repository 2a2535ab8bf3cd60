"""The session's parts without a subprocess: services registry, a failing service, the shutdown deadline, signals,
the watchdog, the JSON lines, the terminal view, the profile store, the backoff."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from neuromusic.daemon.config import Config, load_config
from neuromusic.daemon.services.json_output import JsonOutput
from neuromusic.daemon.services.terminal_view import TerminalView
from neuromusic.daemon.session.acquisition import backoff_delay
from neuromusic.daemon.session.context import SessionContext
from neuromusic.daemon.session.profile_store import PROFILE_VERSION, ProfileStore
from neuromusic.daemon.session.runner import Session
from neuromusic.daemon.session.services import create_services, resolve
from neuromusic.daemon.session.shutdown import EXIT_SERVICE_FAILED, EXIT_SHUTDOWN_TIMEOUT, ShutdownHandler
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Controls, Event, Features, Score, SourceStatus
from rich.console import Console

SIMULATED = {"source.board": "simulated", "source.script": "calm:60", "score.baseline_s": 0.5, "features.window_s": 1.0}


def simulated_config(**more: Any) -> Config:
    return load_config(None, {**SIMULATED, **more})


class Recorder:
    """A service that counts what it saw and, like a player, does its clean-up in `finally`."""

    name = "probe"

    def __init__(self, ctx: SessionContext, cleanup_s: float = 0.0, fail_after_s: float | None = None) -> None:
        self.ctx = ctx
        self.scores = 0
        self.cleaned = False
        self.cleanup_s = cleanup_s
        self.fail_after_s = fail_after_s

    async def run(self) -> None:
        subscription = self.ctx.hub.subscribe(Score)
        started = time.monotonic()
        try:
            async for _ in subscription:
                self.scores += 1
                if self.fail_after_s is not None and time.monotonic() - started > self.fail_after_s:
                    raise RuntimeError("probe broke")
        finally:
            if self.cleanup_s:
                await asyncio.sleep(self.cleanup_s)
            self.cleaned = True


def recorder_factory(made: list[Recorder], **kwargs: Any) -> Any:
    def create(ctx: SessionContext) -> Recorder:
        made.append(Recorder(ctx, **kwargs))
        return made[-1]

    return create


async def test_a_crashed_service_ends_the_run_with_exit_code_8_and_everything_cleaned_up(tmp_path: Path) -> None:
    made: list[Recorder] = []
    config = simulated_config(**{"session.duration_s": 20.0, "session.session_dir": str(tmp_path)})
    session = Session(config, services=[recorder_factory(made), recorder_factory(made, fail_after_s=0.3)])
    result = await asyncio.wait_for(session.run(), timeout=15)
    assert result.exit_code == EXIT_SERVICE_FAILED
    assert "probe broke" in result.reason and result.duration_s < 5.0
    assert all(recorder.cleaned for recorder in made)


async def test_services_run_and_clean_up_in_order_and_a_failing_one_is_contained(tmp_path: Path) -> None:
    made: list[Recorder] = []

    def factory(**kwargs: Any) -> Any:
        def create(ctx: SessionContext) -> Recorder:
            made.append(Recorder(ctx, **kwargs))
            return made[-1]

        return create

    config = simulated_config(
        **{"session.duration_s": 2.0, "session.session_dir": str(tmp_path), "session.on_service_failure": "continue"}
    )
    session = Session(config, services=[factory(), factory(fail_after_s=0.3), lambda ctx: None])
    events = session.hub.subscribe(Event)
    result = await asyncio.wait_for(session.run(), timeout=15)
    assert result.exit_code == 0 and result.reason == "duration reached"
    assert 1.9 <= result.duration_s < 4.0
    healthy, broken = made
    assert healthy.cleaned and broken.cleaned
    assert healthy.scores > broken.scores  # the healthy one went on after the other failed
    texts = []
    while not events.queue.empty():
        event = events.get_nowait()
        if event.kind == "error":
            texts.append(event.text)
    assert any("probe broke" in text for text in texts)
    assert session.ctx.session_dir == tmp_path and session.ctx.started.is_set()


def test_reconnect_options_reach_the_acquisition() -> None:
    config = simulated_config(
        **{"session.reconnect_after_s": 7.0, "session.reconnect_base_s": 0.25, "session.reconnect_max_s": 3.0}
    )
    acquisition = Session(config).acquisition
    assert (acquisition.reconnect_after_s, acquisition.reconnect_base_s, acquisition.reconnect_max_s) == (7, 0.25, 3)
    assert acquisition.stale_after_s == config.source.stale_after_s


async def test_shutdown_deadline_cancels_what_is_left_and_exits_9() -> None:
    config = simulated_config(**{"session.duration_s": 1.0, "session.stop_timeout_s": 0.5})
    probe: list[Recorder] = []
    session = Session(config, services=[lambda ctx: probe.append(Recorder(ctx, cleanup_s=30)) or probe[-1]])
    started = time.monotonic()
    result = await asyncio.wait_for(session.run(), timeout=15)
    assert result.exit_code == EXIT_SHUTDOWN_TIMEOUT
    assert time.monotonic() - started < 1.0 + 0.5 + 2.0
    assert not probe[0].cleaned  # its 30 s clean-up was cut short


def test_services_registry_resolves_lazily_and_names_mistakes() -> None:
    ctx = Session(simulated_config()).ctx
    assert create_services(ctx, ["json"]) == []  # output is not "json": the factory says no
    with pytest.raises(ConfigError, match="unknown service 'nope'; registered services: a"):
        create_services(ctx, ["nope"], registry={"a": "neuromusic.daemon.services.json_output:create"})
    with pytest.raises(ConfigError, match="must look like"):
        resolve("neuromusic.daemon.services.json_output")
    with pytest.raises(ConfigError, match="has no attribute 'missing'"):
        resolve("neuromusic.daemon.services.json_output:missing")


def test_profile_store_round_trip_keeps_unknown_sections(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "me.json"
    store = ProfileStore.load(path)
    assert store.get("policy") is None
    store.put("policy", {"arms": [1, 2]})
    store.put("future", {"x": 1})
    store.save()
    again = ProfileStore.load(path)
    assert again.get("policy") == {"arms": [1, 2]} and again.get("future") == {"x": 1}
    assert json.loads(path.read_text())["version"] == PROFILE_VERSION
    with pytest.raises(ValueError):
        store.put("policy", {"bad": float("nan")})  # refused now, not at save time
    path.write_text(json.dumps({"version": PROFILE_VERSION + 1}))
    with pytest.raises(ConfigError, match="version"):
        ProfileStore.load(path)
    path.write_text("[]")
    with pytest.raises(ConfigError, match="not a neuromusic profile"):
        ProfileStore.load(path)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [[backoff_delay(attempt, 0.5, 8.0, rng) for attempt in range(8)] for _ in range(50)]
    for row in delays:
        for attempt, delay in enumerate(row):
            step = min(8.0, 0.5 * 2**attempt)
            assert step / 2 <= delay <= step
    assert len({round(row[3], 6) for row in delays}) > 40  # jittered: daemons do not retry in lockstep


async def test_signals_first_stops_second_forces_exit() -> None:
    stops: list[str] = []
    exits: list[int] = []
    handler = ShutdownHandler(stops.append, deadline_s=30, exit_now=exits.append)
    handler.install(asyncio.get_running_loop())
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.1)
        assert stops == ["SIGTERM received"] and exits == []
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.1)
        assert exits == [128 + signal.SIGINT]
    finally:
        handler.uninstall()


def test_watchdog_ends_a_stuck_shutdown_with_the_given_code() -> None:
    fired = threading.Event()
    codes: list[int] = []

    def exit_now(code: int) -> None:
        codes.append(code)
        fired.set()

    handler = ShutdownHandler(lambda _: None, deadline_s=0.05, exit_now=exit_now, grace_s=0.05)
    handler.arm_watchdog(4, "headset gone")
    assert fired.wait(5) and codes == [4]
    quiet = ShutdownHandler(lambda _: None, deadline_s=0.05, exit_now=exit_now, grace_s=0.05)
    quiet.arm_watchdog()
    quiet.uninstall()  # a shutdown that finished in time disarms it
    time.sleep(0.3)
    assert codes == [4]


def features(good: bool = True) -> Features:
    de = np.array([[1.0, 2.0], [0.5, np.nan]])
    return Features(
        t=10.0,
        de=de,
        band_names=("alpha", "beta"),
        channel_names=("C3", "C4"),
        good=np.array([good, False]),
        bad_reasons=("" if good else "flat", "railed"),
    )


async def test_json_lines_carry_the_contract_fields() -> None:
    session = Session(simulated_config(**{"session.output": "json"}))
    session.hub.bind_loop(asyncio.get_running_loop())
    stream = io.StringIO()
    output = JsonOutput(session.ctx, stream)
    task = asyncio.create_task(output.run())
    await asyncio.sleep(0)
    session.hub.publish(SourceStatus(t=1.0, state="streaming"))
    session.hub.publish(features())
    session.hub.publish(Controls(tempo=60.0, valence=0.5, energy=0.25))
    session.hub.publish(Score(t=10.0, value=0.73, confidence=0.5, state="scoring"))
    session.hub.publish(Score(t=10.25, value=None, confidence=0.0, state="stale"))
    await asyncio.sleep(0.05)
    task.cancel()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert abs(first["t"] - time.time()) < 5
    assert first["score"] == 0.73 and first["state"] == "scoring" and first["source"] == "streaming"
    assert first["quality"] == 0.5 and first["de"] == {"alpha": {"C3": 1.0, "C4": 2.0}, "beta": {"C3": 0.5, "C4": None}}
    assert first["bad_channels"] == {"C4": "railed"} and first["controls"]["tempo"] == 60.0
    assert lines[1]["score"] is None and lines[1]["state"] == "stale"


async def test_json_output_stops_the_session_when_the_reader_goes_away() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    session = Session(simulated_config(**{"session.output": "json"}))
    output = JsonOutput(session.ctx, Closed())
    task = asyncio.create_task(output.run())
    await asyncio.sleep(0)
    session.hub.publish(Score(t=1.0, value=None, confidence=0.0, state="stale"))
    await asyncio.wait_for(task, timeout=2)
    assert session.control.stop_requested.is_set() and session.control.stop_reason == "stdout closed"


def test_terminal_view_renders_score_bands_quality_state_and_extra_panels() -> None:
    session = Session(simulated_config(**{"session.view_history_s": 30.0}))
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    view = TerminalView(session.ctx, console)
    view.add_panel(lambda: "policy panel: bandit")
    view.take(SourceStatus(t=0.0, state="streaming", detail="opened simulated"))
    view.take(features(good=True))
    for value in (0.2, 0.5, 0.9):
        view.take(Score(t=1.0, value=value, confidence=0.8, state="scoring"))
    view.take(Controls(tempo=64.0, valence=0.6, energy=0.3))
    view.take(Event(t=1.0, kind="reconnect", text="reconnected to LSL"))
    view.take(Event(t=1.0, kind="view", text="arm 3 of 125", data={"panel": "bandit"}))
    view.take(Event(t=2.0, kind="view", text="arm 4 of 125", data={"panel": "bandit"}))
    console.print(view.render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "0.90 scoring" in text and "streaming" in text and "quality 50%" in text
    assert "alpha" in text and "C3" in text and "railed" in text and "█" in text  # 0.9 draws a full block
    assert "tempo 64 BPM" in text and "policy panel: bandit" in text and "reconnected to LSL" in text
    assert "bandit arm 4 of 125" in text and "arm 3" not in text
    assert "score 30 s" in text  # session.view_history_s
    # alpha DE 1.0 nats -> σ² = e² / (2πe) = e / (2π) ≈ 0.433 µV²
    assert "0.433" in text


async def test_json_output_never_blocks_on_a_reader_that_does_not_read() -> None:
    read_fd, write_fd = os.pipe()
    stream = open(write_fd, "w", encoding="utf-8")  # noqa: SIM115 (the transport closes it)
    session = Session(simulated_config(**{"session.output": "json"}))
    output = JsonOutput(session.ctx, stream)
    task = asyncio.create_task(output.run())
    await asyncio.sleep(0.01)
    session.hub.publish(features())
    total = 0
    started = time.monotonic()
    for _ in range(12):  # ~3 MB of lines into a pipe nobody reads
        for _ in range(800):
            session.hub.publish(Score(t=1.0, value=0.5, confidence=1.0, state="scoring"))
            total += 1
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert output.lines + output.dropped == total and output.dropped > 0
    assert time.monotonic() - started < 5
    assert not session.control.stop_requested.is_set()
    os.close(read_fd)  # the reader goes away: the session is asked to stop
    session.hub.publish(Score(t=2.0, value=0.5, confidence=1.0, state="scoring"))
    await asyncio.sleep(0.2)
    session.hub.publish(Score(t=2.0, value=0.5, confidence=1.0, state="scoring"))
    await asyncio.sleep(0.1)
    assert session.control.stop_requested.is_set() and session.control.stop_reason == "stdout closed"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Holder:
    """A service that holds something from its creation on: an async context manager the session enters and leaves."""

    name = "holder"

    def __init__(self, label: str, log: list[str], fail_on_enter: bool = False) -> None:
        self.label, self.log, self.fail_on_enter = label, log, fail_on_enter

    async def __aenter__(self) -> Holder:
        if self.fail_on_enter:
            raise ConfigError(f"{self.label} cannot start")
        self.log.append(f"enter {self.label}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.log.append(f"exit {self.label}")

    async def run(self) -> None:
        self.log.append(f"run {self.label}")
        await asyncio.Event().wait()


async def test_services_are_entered_before_they_run_and_left_in_reverse_order_in_every_path(tmp_path: Path) -> None:
    log: list[str] = []
    config = simulated_config(**{"session.duration_s": 0.5, "session.session_dir": str(tmp_path)})
    session = Session(config, services=[lambda ctx: Holder("a", log), lambda ctx: Holder("b", log)])
    result = await asyncio.wait_for(session.run(), timeout=15)
    assert result.exit_code == 0
    assert log[:2] == ["enter a", "enter b"] and set(log[2:4]) == {"run a", "run b"}
    assert log[4:] == ["exit b", "exit a"]
    # a service that cannot start: those entered before it are left, nothing runs, the error is the session's
    log.clear()
    failing = Session(config, services=[lambda ctx: Holder("a", log), lambda ctx: Holder("b", log, True)])
    with pytest.raises(ConfigError, match="b cannot start"):
        await asyncio.wait_for(failing.run(), timeout=15)
    assert log == ["enter a", "exit a"]


async def test_the_process_is_tuned_for_playback_while_a_session_runs(tmp_path: Path) -> None:
    import sys

    from neuromusic.daemon.session.process import SWITCH_INTERVAL_S

    seen: list[float] = []

    class Probe:
        name = "probe"

        async def run(self) -> None:
            seen.append(sys.getswitchinterval())
            await asyncio.Event().wait()

    before = sys.getswitchinterval()
    config = simulated_config(**{"session.duration_s": 0.3, "session.session_dir": str(tmp_path)})
    await asyncio.wait_for(Session(config, services=[lambda ctx: Probe()]).run(), timeout=15)
    assert seen == [SWITCH_INTERVAL_S] and sys.getswitchinterval() == before != SWITCH_INTERVAL_S
