"""The player service: the policy runner and the bar loop of a live session, playing to the sinks through the scheduler.

    Score -> PolicyRunner (policy_runner.py) -> controls -> BarLoop (bar_loop.py: composer -> arranger) -> Scheduler

The service wires them to the session: the scores on the hub go to the policy, each bar's events to the scheduler,
its Controls and Bar to the hub. The GPT-2 composer loads on another thread while the sketch composer plays, and takes
over at the first bar after it is ready. Pause, shutdown and a failed sink each silence every sink (all notes off).

The player is an async context manager: the session enters it before any service runs and exits it after they all
ended, whatever happened between (a later service's factory failed; cancelled before starting). Leaving puts what
the policy learned into the profile (the session saves the profile after every service has ended) and closes the
sinks (all notes off, files finished). The sinks open in `create()`, before the session starts, so a missing
soundfont stops `neuromusic run` with its message instead of a session without music.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from neuromusic.daemon.services.bar_loop import BarComposer, BarLoop, lower_thread_priority
from neuromusic.daemon.services.bar_loop import load_model as load_composer
from neuromusic.daemon.services.policy_runner import PolicyRunner
from neuromusic.daemon.services.scheduler import Scheduler
from neuromusic.daemon.session.context import SessionContext
from neuromusic.drivers.sinks.base import Sink
from neuromusic.drivers.sinks.factory import close_quietly, open_sinks
from neuromusic.models.core.errors import ModelError
from neuromusic.models.core.messages import Bar, Event, Score
from neuromusic.models.music.arranger import ArrangedBar
from neuromusic.policies.base import Policy

log = logging.getLogger(__name__)

__all__ = ["BarComposer", "Player", "create", "load_model"]


def load_model(ctx: SessionContext) -> BarComposer:
    """The session's GPT-2 composer ([composer]); raises ModelError when it cannot load."""
    return load_composer(ctx.config.composer)


class Player:
    name = "player"

    def __init__(
        self,
        ctx: SessionContext,
        *,
        model_loader: Callable[[], BarComposer] | None = None,
        policy_factory: Callable[[str], Policy] | None = None,
        sinks: list[Sink] | None = None,
        notices: list[str] | None = None,
    ) -> None:
        """`model_loader`: makes the main composer on a worker thread (None: the sketch composer only).
        `sinks`: already opened sinks (default: opened from `[sinks]` when the service starts)."""
        self.ctx = ctx
        self._clock = ctx.clock
        self._model_loader = model_loader
        self._sinks: list[Sink] | None = sinks  # None: opened when run() starts
        self._closed = False
        self._notices = list(notices or [])  # said once when playback starts (e.g. "no working audio device")
        self.runner = PolicyRunner(
            ctx.control, policy_factory or _registry_policy(ctx), profile=ctx.profile, report=self._event
        )
        self.loop = BarLoop(ctx.config, ctx.clock, ctx.control, self.runner, self._event)
        self.scheduler: Scheduler | None = None
        self.model_ready_at: float | None = None  # clock time the main composer took over
        self._started: float | None = None  # clock time run() started

    # what tests, benchmarks and the operator look at
    @property
    def stats(self) -> dict[str, Any]:
        return self.loop.stats

    @property
    def bars(self) -> list[ArrangedBar]:
        return self.loop.bars

    @property
    def composer(self) -> BarComposer:
        return self.loop.composer

    @property
    def sketch(self) -> BarComposer:
        return self.loop.sketch

    @property
    def policy(self) -> Policy:
        return self.runner.policy

    @property
    def first_note_at(self) -> float | None:
        """Seconds from the start of run() (sinks opening included) to the first note."""
        first = self.loop.first_note_t
        return None if first is None or self._started is None else first - self._started

    # -- the service -------------------------------------------------------------------------------------------
    async def __aenter__(self) -> Player:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    async def run(self) -> None:
        self._started = self._clock.now()
        worker = concurrent.futures.ThreadPoolExecutor(1, "composer", initializer=lower_thread_priority)
        loader = concurrent.futures.ThreadPoolExecutor(1, "model-loader", initializer=lower_thread_priority)
        self.loop.worker = worker
        scores = self.ctx.hub.subscribe(Score, maxsize=256)
        self.runner.listen(scores)
        try:
            sinks = self._sinks
            if sinks is None:
                opened, notices = await asyncio.to_thread(
                    open_sinks, self.ctx.config.sinks, self.ctx.session_dir, self._clock.now()
                )
                self._sinks = sinks = opened
                self._notices += notices
            for notice in self._notices:
                self._event("warning", notice)
            self.scheduler = Scheduler(self._clock, sinks, on_failure=self._sink_failed)
            names = ", ".join(s.name for s in self.scheduler.sinks) or "no sinks"
            self._event("info", f"playing to {names}", sinks=[s.name for s in self.scheduler.sinks])
            async with asyncio.TaskGroup() as group:
                group.create_task(self.scheduler.run(), name="player:scheduler")
                group.create_task(self.runner.follow(), name="player:scores")
                group.create_task(self._watch_pause(), name="player:pause")
                if self._model_loader is not None:
                    group.create_task(self._load_model(loader), name="player:model")
                group.create_task(self.loop.run(_SchedulerOutput(self)), name="player:bars")
        finally:
            scores.close()
            worker.shutdown(wait=False, cancel_futures=True)
            loader.shutdown(wait=False, cancel_futures=True)
            self.close()
            if self.scheduler is not None:
                self.stats["timing"] = self.scheduler.stats.summary()
            self._event("info", "playback stopped", **self.stats)

    def close(self) -> None:
        """Put what the policy learned into the profile and close every sink (all notes off, files finished).
        Idempotent: run() ends with it, and leaving the context calls it for a player whose run() never started."""
        if self._closed:
            return
        self._closed = True
        self.runner.save()
        if self.scheduler is not None:
            problems = self.scheduler.close()
        else:
            problems = [p for p in (close_quietly(s, self._clock.now()) for s in self._sinks or []) if p]
        for problem in problems:
            log.warning("closing a sink: %s", problem)

    # -- helpers running beside the bar loop -------------------------------------------------------------------
    async def _watch_pause(self) -> None:
        """All notes off the moment the session pauses (the bar loop notices at its next bar)."""
        subscription = self.ctx.hub.subscribe(Event, maxsize=64)
        try:
            async for event in subscription:
                if event.kind == "control" and event.data.get("what") == "pause" and self.scheduler is not None:
                    self.scheduler.all_notes_off()
                    self.loop.restart = True  # what was scheduled is gone: after the pause, start afresh
                elif event.kind == "control" and event.data.get("what") == "resume":
                    self.loop.resumed.set()
        finally:
            subscription.close()

    async def _load_model(self, loader: concurrent.futures.Executor) -> None:
        assert self._model_loader is not None
        started = time.monotonic()
        try:
            composer = await asyncio.get_running_loop().run_in_executor(loader, self._model_loader)
        except ModelError as error:
            self._event("warning", f"music model unavailable, the sketch composer keeps playing: {error}")
            return
        self.loop.use(composer)
        self.model_ready_at = self._clock.now()
        self._event("info", f"music model ready after {time.monotonic() - started:.1f} s; it composes from now on")

    def _sink_failed(self, sink: Sink, error: BaseException) -> None:
        self._event("error", f"sink {sink.name} failed and was dropped: {error}", sink=sink.name)

    def _event(self, kind: str, text: str, **data: Any) -> None:
        log.log(logging.WARNING if kind in ("warning", "error") else logging.INFO, "%s", text)
        if "fallbacks" in data:  # the session's count, shown in the status
            self.ctx.counts["fallback_bars"] = data["fallbacks"]
        self.ctx.hub.publish(Event(t=self._clock.now(), kind=kind, text=text, data=dict(data)))


class _SchedulerOutput:
    """The bar loop's output in a live session: programs, tempo and notes to the scheduler; Controls and Bar to the
    hub."""

    def __init__(self, player: Player) -> None:
        self.player = player

    def programs(self, programs: dict[int, int], t: float) -> None:
        assert self.player.scheduler is not None
        for channel, program in programs.items():
            self.player.scheduler.program(channel, program, t)

    def play(self, bar: Bar, arranged: ArrangedBar) -> None:
        scheduler, hub = self.player.scheduler, self.player.ctx.hub
        assert scheduler is not None
        for t, bpm in arranged.tempi:
            scheduler.tempo(bpm, t)
        scheduler.notes(arranged.events)
        hub.publish(bar.controls)
        hub.publish(dataclasses.replace(bar, chords=arranged.chords, start_t=arranged.t0))


def _registry_policy(ctx: SessionContext) -> Callable[[str], Policy]:
    def make(name: str) -> Policy:
        from neuromusic.policies.registry import make_policy

        return make_policy(name, ctx.config.policy)

    return make


def create(ctx: SessionContext) -> Player:
    """The session's player: the GPT-2 composer loads in the background while the sketch composer plays.

    The sinks open here, before the session starts, so a missing soundfont or an unknown MIDI port stops
    `neuromusic run` with its message (SinkError, exit code 5) instead of a session without music."""
    sinks, notices = open_sinks(ctx.config.sinks, ctx.session_dir, ctx.clock.now())
    return Player(ctx, model_loader=lambda: load_model(ctx), sinks=sinks, notices=notices)
