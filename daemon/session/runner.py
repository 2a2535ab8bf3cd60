"""One running session: source -> features -> score on the Hub, plus the registered services, in one TaskGroup.

    session = Session(config)                # or Session(config, VirtualClock(), services=[...]) from code
    result = await session.run()             # until --duration, session.request_stop(), or a fatal source error

Tasks (named, so a traceback or `asyncio.all_tasks()` says which stage is which):
    acquisition     the source on its worker thread (daemon/session/acquisition.py), Chunks into the signal path
    signal          the signal stage (daemon/session/signal_stage.py): Chunk, Features and Score, a Score every hop
    service:<name>  each service from daemon/session/services.py; one that fails is reported, then the session stops
                    or goes on without it ([session] on_service_failure)
    supervisor      waits for the stop, then stops the stages in order within session.stop_timeout_s

Services that are async context managers are entered on an AsyncExitStack before the tasks start and left, in
reverse order, after they all ended (also when a later service's factory failed), before the profile is saved. The
process is tuned for playback while the session runs (daemon/session/process.py).

The wiring only wires: the signal maths lives in models/, the sources in drivers/, the services in their modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from neuromusic.daemon.config import Config
from neuromusic.daemon.session.acquisition import Acquisition
from neuromusic.daemon.session.context import SessionContext, SessionService
from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.hub import Hub
from neuromusic.daemon.session.process import tuned_for_playback
from neuromusic.daemon.session.profile_store import ProfileStore, score_profile_section, stored_models
from neuromusic.daemon.session.services import ServiceSpec, enter_services
from neuromusic.daemon.session.shutdown import EXIT_OK, EXIT_SERVICE_FAILED, EXIT_SHUTDOWN_TIMEOUT, stop_in_order
from neuromusic.daemon.session.signal_stage import SignalStage
from neuromusic.drivers.base import Source, SourceInfo
from neuromusic.models.core.clock import MonotonicClock, VirtualClock
from neuromusic.models.core.errors import NeuromusicError
from neuromusic.models.core.messages import Chunk, Event, Score
from neuromusic.models.signal.score import RelaxationScorer
from neuromusic.policies.registry import policy_names

log = logging.getLogger(__name__)

WAKE_S = 0.05  # how often the signal path looks at the source state when no samples come


@dataclass(frozen=True)
class SessionResult:
    exit_code: int
    reason: str  # why the session stopped
    duration_s: float
    reconnects: int


class Session:
    def __init__(
        self,
        config: Config,
        clock: MonotonicClock | VirtualClock | None = None,
        *,
        hub: Hub | None = None,
        services: list[ServiceSpec] | None = None,
        open_source: Callable[[], Source] | None = None,
    ) -> None:
        """`services`: names from daemon/session/services.py or factories `create(ctx)`; None runs every registered one.
        `open_source`: make the Source (default: drivers/registry.py from config.source)."""
        self.config = config
        self.clock = clock if clock is not None else MonotonicClock()
        self.hub = hub if hub is not None else Hub()
        self.control = SessionControl(
            self.clock,
            self.hub.publish,
            config.policy.name,
            config.policy.bounds,
            config.policy.target,
            policy_names=policy_names,
        )
        # Read the profile now: a broken profile is refused before anything starts, and nothing overwrites it.
        profile_path = config.session.profile
        self.profile = ProfileStore.load(profile_path) if profile_path is not None else None
        self.ctx = SessionContext(
            config=config,
            hub=self.hub,
            clock=self.clock,
            control=self.control,
            # One name everywhere (MQTT topics, recordings): [mqtt] device_id (--device-id), else the host name.
            device_id=config.mqtt.device_id or socket.gethostname(),
            session_dir=config.session.session_dir,
            profile=self.profile,
        )
        self._service_specs = services
        self._open_source = open_source or self._default_source
        # Each chunk with the session clock when it arrived: the time base of Features.t and Score.t.
        self._chunks: asyncio.Queue[tuple[Chunk, SourceInfo, float]] = asyncio.Queue()
        self.signal = SignalStage(config.features, config.score, self.hub.publish, stored_models(self.profile))
        self.acquisition = Acquisition(
            self._open_source,
            lambda chunk, info: self._chunks.put_nowait((chunk, info, self.clock.now())),
            self.clock,
            self.hub,
            stale_after_s=config.source.stale_after_s,
            reconnect_after_s=config.session.reconnect_after_s,
            reconnect_base_s=config.session.reconnect_base_s,
            reconnect_max_s=config.session.reconnect_max_s,
            drain=self._chunks.join,  # a finite source's last chunks are scored before the session stops
        )
        self.on_stopping: list[Callable[[str], None]] = []  # e.g. the signal handler's watchdog
        self.fatal_error: NeuromusicError | None = None
        self._timed_out = False
        self.failed_service: str | None = None  # the first service that crashed, when that ends the run

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the session to stop cleanly (thread-unsafe: call on the event loop; signals go through the loop)."""
        if not self.control.stop_requested.is_set():
            self.control.stop(reason)

    async def run(self) -> SessionResult:
        self.hub.bind_loop(asyncio.get_running_loop())
        started = self.clock.now()
        try:
            with tuned_for_playback():
                async with contextlib.AsyncExitStack() as stack:  # services left in reverse order, also on failure
                    services = await enter_services(stack, self.ctx, self._service_specs)
                    await self._run_tasks(services, started)
        except* NeuromusicError as errors:
            # A service's factory or a stage outside the guards: report it as itself, not as an exception group.
            raise errors.exceptions[0] from None
        finally:
            self._save_profile()  # after every service put its section (the player's policy state)
        if self.fatal_error is not None:
            raise self.fatal_error
        exit_code = EXIT_OK
        if self.failed_service is not None:
            exit_code = EXIT_SERVICE_FAILED
        if self._timed_out:
            exit_code = EXIT_SHUTDOWN_TIMEOUT
        return SessionResult(
            exit_code=exit_code,
            reason=self.control.stop_reason or "stopped",
            duration_s=self.clock.now() - started,
            reconnects=self.acquisition.reconnects,
        )

    async def _run_tasks(self, services: list[SessionService], started: float) -> None:
        tasks: dict[str, asyncio.Task[Any]] = {}
        async with asyncio.TaskGroup() as group:
            tasks["acquisition"] = group.create_task(self._run_acquisition(), name="acquisition")
            tasks["signal"] = group.create_task(self._fatal_on_error(self._signal_path()), name="signal")
            for service in services:
                name = f"service:{service.name}"
                if name in tasks:  # two services of one name: each still needs its own task to stop
                    name = f"{name}#{sum(key.startswith(name) for key in tasks) + 1}"
                tasks[name] = group.create_task(self._guard(service), name=name)
            group.create_task(self._supervise(tasks, started), name="supervisor")

    # -- stages ------------------------------------------------------------------------------------------------
    async def _run_acquisition(self) -> None:
        streaming = asyncio.ensure_future(self.acquisition.streaming.wait())
        streaming.add_done_callback(lambda _: self.ctx.started.set())
        try:
            await self._fatal_on_error(self.acquisition.run())
        finally:
            streaming.cancel()
        if self.acquisition.finished_reason is not None:  # a replay or playback file ran out: a clean end
            self.request_stop(self.acquisition.finished_reason)

    async def _fatal_on_error(self, stage: Coroutine[Any, Any, None]) -> None:
        """A NeuromusicError in the signal path (the headset is not there at start; bands beyond the source's
        Nyquist) ends the session. Not raised into the TaskGroup, which would cancel the services in no order and
        with no deadline: the session stops like any other stop, then run() raises it."""
        try:
            await stage
        except NeuromusicError as error:
            if self.fatal_error is None:
                self.fatal_error = error
            self.request_stop(f"failed: {error}")

    async def _signal_path(self) -> None:
        """Chunks -> Features -> Score through the signal stage, which publishes a Score at least every hop."""
        hop_s = self.config.features.hop_s
        while True:
            try:
                # Wake often: a source going stale must show in the score at once, not up to a hop later.
                chunk, info, received_t = await asyncio.wait_for(self._chunks.get(), timeout=min(hop_s, WAKE_S))
            except TimeoutError:
                chunk = None
            if chunk is not None:
                self.signal.push(chunk, info, received_t, self.clock.now())
                self._chunks.task_done()
            self.signal.tick(self.clock.now(), source_down=self.acquisition.state != "streaming")

    @property
    def scorer(self) -> RelaxationScorer | None:
        return self.signal.scorer

    @property
    def last_score(self) -> Score | None:
        return self.signal.last_score

    async def _guard(self, service: SessionService) -> None:
        try:
            await service.run()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # reported, then the configured policy: end the run, or go on without it
            log.exception("service %s failed", service.name)
            text = f"service {service.name} stopped: {error}"
            self.hub.publish(Event(t=self.clock.now(), kind="error", text=text, data={"service": service.name}))
            if self.config.session.on_service_failure == "stop" and self.failed_service is None:
                self.failed_service = service.name
                self.request_stop(f"service {service.name} failed: {error}")

    async def _supervise(self, tasks: dict[str, asyncio.Task[Any]], started: float) -> None:
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self.control.stop_requested.wait())]
        duration = self.config.session.duration_s
        if duration is not None:
            waits.append(asyncio.ensure_future(self.clock.sleep_until(started + duration)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        self.request_stop("duration reached")  # no-op when a stop was already requested, keeps its reason
        for callback in self.on_stopping:
            callback(self.control.stop_reason)
        log.info("stopping: %s", self.control.stop_reason)
        # Order matters: no new data first, then the signal path, then the services (all notes off, offline status).
        order = [["acquisition"], ["signal"], [name for name in tasks if name.startswith("service:")][::-1]]
        self._timed_out = await stop_in_order(tasks, order, self.config.session.stop_timeout_s)

    @property
    def pending_exit_code(self) -> int:
        """The exit code if the process must be ended before run() returns (the shutdown watchdog uses it)."""
        return self.fatal_error.exit_code if self.fatal_error is not None else EXIT_SHUTDOWN_TIMEOUT

    # -- helpers -----------------------------------------------------------------------------------------------
    def _default_source(self) -> Source:
        from neuromusic.drivers.registry import open_source

        return open_source(self.config.source, self.clock)

    def _save_profile(self) -> None:
        if self.profile is None or not self.acquisition.streaming.is_set():
            return  # nothing was learned: leave the file (or its absence) as it was
        if self.scorer is not None and self.scorer.profile is not None:
            self.profile.put("score", score_profile_section(self.scorer.profile))
        self.profile.save()
        log.info("profile saved to %s", self.profile.path)
