"""The player service: score -> policy -> controls -> composer -> arranger -> scheduler -> sinks, bar by bar.

Per bar, shortly before it is due (`[sinks] lead_bars` bars ahead), the player takes controls (the operator's
override wins, else the active policy's), has the composer write the bar on its own worker thread (the event loop
never waits on the model), arranges it and hands the events to the scheduler. New controls therefore take effect at
the next bar not yet composed. The GPT-2 composer loads on another thread while the sketch composer plays, and
takes over at the first bar after it is ready. A bar the composer fails on becomes a fallback bar (the last bar
repeated, else a sketch bar), logged and published; the music goes on. Pause, shutdown and a failed sink each
silence every sink (all notes off). On a virtual clock the composer runs inline: work takes no virtual time.

The sketch composer plays in the model's key ([composer] tonic: major bars in it, minor bars in its parallel minor)
and meter, so the handover to the model changes neither. A policy that takes over from other controls (a policy
switch, an operator override cleared) continues from the last bar's controls, so the per-bar step limits hold
across the hand-over. What the policy learned is read from the listener's profile (`--profile`, section "policy":
{"name": ..., "state": ...}) when a policy of that name starts, and written back before the player ends; the
session saves the profile after every service has ended. The sinks are closed in every path: when run() ends, or
by `release()` when run() never started (the session calls it after a later service's factory failed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from neuromusic.daemon.services.scheduler import Scheduler
from neuromusic.daemon.session.context import SessionContext
from neuromusic.drivers.sinks.base import Sink
from neuromusic.drivers.sinks.factory import close_quietly, open_sinks
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.errors import ModelError
from neuromusic.models.core.messages import Bar, Controls, Event, Score
from neuromusic.models.music.arranger import ArrangedBar, Arranger
from neuromusic.models.music.bars import key_name
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.music.sketch_composer import SketchComposer
from neuromusic.policies.base import Policy
from neuromusic.policies.bounds import step_toward

log = logging.getLogger(__name__)

# The GIL switch interval while playing: a composer thread running Python code holds the GIL for up to this long
# before the scheduler's thread of control gets it back (CPython's default 5 ms would blow the 2 ms p99 budget).
SWITCH_INTERVAL_S = 0.0005
# Niceness added to the composer and model-loader threads: none. A niced thread that holds the GIL when the kernel
# preempts it keeps the event loop waiting until it runs again, which on a busy machine is far longer at +10 (notes
# seconds late while the model loaded, starved bars) than at equal priority (milliseconds).
COMPOSER_NICE = 0
SKETCH_METERS = ("4/4", "3/4", "2/4")  # the meters the sketch composer plays


class BarComposer(Protocol):
    def next_bar(self, controls: Controls) -> Bar: ...


def load_model(ctx: SessionContext) -> BarComposer:
    """The GPT-2 composer (slow: transformers takes ~8 s to import). Raises ModelError when it cannot load.

    Importing torch and transformers makes millions of objects; the garbage collector's full passes over them hold
    the GIL for 50-100 ms at a time, which the scheduler would hear as late notes. So the collector is off during the
    import, and what the import made is frozen (never scanned again) afterwards. torch's native library is mapped
    first with the GIL released (models/music/preload.py), so the import does not stop the event loop for ~0.5 s."""
    from neuromusic.models.music.preload import preload_torch

    gc.disable()
    try:
        preload_torch()
        try:
            from neuromusic.models.music.composer import Composer
        except ModuleNotFoundError as error:
            raise ModelError(f"the music model is not installed ({error})") from error
        composer: BarComposer = Composer.load(ctx.config.composer)
    finally:
        gc.freeze()
        gc.enable()
    return composer


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
        self._inline = isinstance(ctx.clock, VirtualClock)
        self._model_loader = model_loader
        self._policy_factory = policy_factory or _registry_policy(ctx)
        self._sinks: list[Sink] | None = sinks  # None: opened when run() starts
        self._released = False
        self._notices = list(notices or [])  # said once when playback starts (e.g. "no working audio device")
        self.sketch = sketch_for(ctx.config.composer)
        self.composer: BarComposer = self.sketch
        self.arranger = Arranger(ctx.config.arranger)
        # what each policy learned, by policy name: the profile's, then that of a policy switched away from
        self._states: dict[str, dict[str, Any]] = self._stored_states()
        self._policy_name = ctx.control.policy_name
        stored = next(iter(self._states), None)
        if stored is not None and stored != self._policy_name:
            log.info("the profile holds what policy %r learned; policy %r starts afresh", stored, self._policy_name)
        self.policy = self._make_policy(self._policy_name)
        self._generation = -1
        self._last_controls: Controls | None = None  # the controls of the last bar played
        self._overridden = False  # the last bar played the operator's override
        self._restart = False  # set by a pause; the bar loop starts a new bar timeline after it
        self._resumed = asyncio.Event()  # wakes the bar loop when the session resumes
        self._last_bar: Bar | None = None
        self.scheduler: Scheduler | None = None
        self.bars: list[ArrangedBar] = []  # what was played, newest last (kept short: see _remember)
        self.stats: dict[str, Any] = {"bars": 0, "starved": 0, "fallbacks": 0, "min_lead_bars": None, "lead_bars": None}
        self.first_note_at: float | None = None
        self.model_ready_at: float | None = None  # clock time the main composer took over

    # -- the service -------------------------------------------------------------------------------------------
    async def run(self) -> None:
        started = self._clock.now()
        switch_interval = sys.getswitchinterval()
        worker = concurrent.futures.ThreadPoolExecutor(1, "composer", initializer=_lower_thread_priority)
        loader = concurrent.futures.ThreadPoolExecutor(1, "model-loader", initializer=_lower_thread_priority)
        try:
            if self._sinks is None:
                self._sinks, notices = await asyncio.to_thread(
                    open_sinks, self.ctx.config.sinks, self.ctx.session_dir, self._clock.now()
                )
                self._notices += notices
            for notice in self._notices:
                self._event("warning", notice)
            self.scheduler = Scheduler(self._clock, self._sinks, on_failure=self._sink_failed)
            sys.setswitchinterval(SWITCH_INTERVAL_S)
            names = ", ".join(s.name for s in self.scheduler.sinks) or "no sinks"
            self._event("info", f"playing to {names}", sinks=[s.name for s in self.scheduler.sinks])
            async with asyncio.TaskGroup() as group:
                group.create_task(self.scheduler.run(), name="player:scheduler")
                group.create_task(self._observe_scores(), name="player:scores")
                group.create_task(self._watch_pause(), name="player:pause")
                if self._model_loader is not None:
                    group.create_task(self._load_model(loader), name="player:model")
                group.create_task(self._play(worker, started), name="player:bars")
        finally:
            sys.setswitchinterval(switch_interval)
            worker.shutdown(wait=False, cancel_futures=True)
            loader.shutdown(wait=False, cancel_futures=True)
            self.release()
            if self.scheduler is not None:
                self.stats["timing"] = self.scheduler.stats.summary()
            self._event("info", "playback stopped", **self.stats)

    def release(self) -> None:
        """Save what the policy learned into the profile and close every sink (all notes off, files finished).
        Idempotent; run() ends with it, and the session calls it for a player whose run() never started."""
        if self._released:
            return
        self._released = True
        self._save_policy_state()
        if self.scheduler is not None:
            problems = self.scheduler.close()
        else:
            problems = [p for p in (close_quietly(s, self._clock.now()) for s in self._sinks or []) if p]
        for problem in problems:
            log.warning("closing a sink: %s", problem)

    async def _play(self, worker: concurrent.futures.Executor, started: float) -> None:
        assert self.scheduler is not None
        cfg = self.ctx.config.sinks
        control = self.ctx.control
        t_next = self._clock.now() + cfg.start_delay_s
        self._programs(self._clock.now())
        index, first = 0, True
        while True:
            if control.paused or self._restart:
                await control.wait_running()
                self._restart = False
                self._resumed.clear()
                t_next = self._clock.now() + cfg.start_delay_s
                self._programs(self._clock.now())
                first = True
                continue
            controls = self._controls(index, self._clock.now())
            bar = await self._compose(worker, controls, index)
            if control.paused or self._restart:
                continue  # paused while composing: this bar is not played
            self._last_controls = controls
            now = self._clock.now()
            if t_next < now:  # the bar is late (composer or event loop stalled): start it now, and count it
                self.stats["starved"] += 1
                t_next = now + 0.05
            arranged = self.arranger.arrange_bar(bar, t_next)
            for t, bpm in arranged.tempi:
                self.scheduler.tempo(bpm, t)
            self.scheduler.notes(arranged.events)
            if self.first_note_at is None and arranged.events:
                self.first_note_at = arranged.events[0].t - started
            if not first:  # the first bar after a start or resume has only the start delay as lead
                lead = (t_next - now) / arranged.duration
                low = self.stats["min_lead_bars"]
                self.stats["min_lead_bars"] = lead if low is None else min(low, lead)
                self.stats["lead_bars"] = lead
            first = False
            self.stats["bars"] += 1
            self._remember(arranged)
            self.ctx.hub.publish(bar.controls)
            self.ctx.hub.publish(dataclasses.replace(bar, chords=arranged.chords, start_t=arranged.t0))
            index += 1
            t_next += arranged.duration
            await self._sleep_unless_resumed(t_next - cfg.lead_bars * arranged.duration)

    async def _sleep_unless_resumed(self, t: float) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep_until(t))
        waker = asyncio.ensure_future(self._resumed.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()

    async def _compose(self, worker: concurrent.futures.Executor, controls: Controls, index: int) -> Bar:
        composer = self.composer
        try:
            if self._inline or composer is self.sketch:  # a sketch bar is ~1 ms of work: no wait on a thread
                bar = composer.next_bar(controls)
            else:
                loop = asyncio.get_running_loop()
                bar = await loop.run_in_executor(worker, composer.next_bar, controls)
        except Exception as error:  # one bad bar must not stop the music: a fallback bar, logged and published
            log.exception("composer failed on bar %d", index)
            self.stats["fallbacks"] += 1
            bar = self._fallback(controls)
            self._event("warning", f"composer failed on bar {index} ({error}); played a fallback bar", bar=index)
        bar = dataclasses.replace(bar, index=index, controls=controls)
        self._last_bar = bar
        return bar

    def _fallback(self, controls: Controls) -> Bar:
        """The last bar again (a repeat keeps the music's thread); before any bar, a sketch bar."""
        if self._last_bar is not None:
            return dataclasses.replace(self._last_bar, controls=controls, repaired=True, compose_ms=0.0)
        return dataclasses.replace(self.sketch.next_bar(controls), repaired=True)

    def _controls(self, index: int, t: float) -> Controls:
        control = self.ctx.control
        if control.generation != self._generation:
            self._sync_policy()
        if control.override is not None:
            self._overridden = True
            # the override passes the same guard as a policy: the current ranges, one step per bar from what plays
            return step_toward(control.bounds, self._last_controls, control.override)
        if self._overridden:  # the override was cleared: the policy goes on from what the listener hears
            self._overridden = False
            self._continue_policy()
        c = self.policy.next_controls(index, t)
        b = control.bounds  # a policy holding old bounds is still kept inside the current ones
        return Controls(
            tempo=min(max(c.tempo, b.tempo_min), b.tempo_max),
            valence=min(max(c.valence, b.valence_min), b.valence_max),
            energy=min(max(c.energy, b.energy_min), b.energy_max),
        )

    def _sync_policy(self) -> None:
        control = self.ctx.control
        self._generation = control.generation
        switched = control.policy_name != self._policy_name
        if switched:
            self._keep_state()
            self.policy = self._make_policy(control.policy_name)
            self._policy_name = control.policy_name
        for setter, value in (("set_bounds", control.bounds), ("set_target", control.target)):
            method = getattr(self.policy, setter, None)  # optional in the Policy protocol
            if callable(method):
                method(value)
        if switched and control.override is None:
            self._continue_policy()  # (under an override, the policy continues when the override is cleared)

    def _continue_policy(self) -> None:
        method = getattr(self.policy, "continue_from", None)  # optional in the Policy protocol
        if self._last_controls is not None and callable(method):
            method(self._last_controls)

    # -- what the policy learned, kept per listener ------------------------------------------------------------
    def _stored_states(self) -> dict[str, dict[str, Any]]:
        profile = self.ctx.profile
        section = profile.get("policy") if profile is not None else None
        if section is None:
            return {}
        if not isinstance(section, dict) or not isinstance(section.get("name"), str) or "state" not in section:
            log.warning('profile: the \'policy\' section is not {"name": ..., "state": ...}; the policy starts afresh')
            return {}
        return {section["name"]: section["state"]}

    def _make_policy(self, name: str) -> Policy:
        policy = self._policy_factory(name)
        state = self._states.get(name)
        if state is None:
            return policy
        try:
            policy.load_state_dict(state)
        except (ValueError, TypeError, KeyError) as error:  # a malformed section must not stop the music
            self._event("warning", f"policy {name}: the profile's state cannot be used ({error}); starting afresh")
            return self._policy_factory(name)
        log.info("policy %s continues from the profile's state", name)
        return policy

    def _keep_state(self) -> None:
        try:
            self._states[self._policy_name] = self.policy.state_dict()
        except Exception:  # a policy whose state cannot be taken loses only that
            log.exception("policy %s: state_dict failed", self._policy_name)

    def _save_policy_state(self) -> None:
        profile = self.ctx.profile
        if profile is None:
            return
        try:
            profile.put("policy", {"name": self._policy_name, "state": self.policy.state_dict()})
        except Exception:  # what this session learned is lost, the profile's other sections are still saved
            log.exception("policy %s: its state could not be put into the profile", self._policy_name)

    def _programs(self, t: float) -> None:
        assert self.scheduler is not None
        for channel, program in self.arranger.programs().items():
            self.scheduler.program(channel, program, t)

    def _remember(self, arranged: ArrangedBar) -> None:
        self.bars.append(arranged)
        del self.bars[:-64]

    # -- helpers running beside the bar loop -------------------------------------------------------------------
    async def _observe_scores(self) -> None:
        subscription = self.ctx.hub.subscribe(Score, maxsize=256)
        try:
            async for score in subscription:
                self.policy.observe(score)
        finally:
            subscription.close()

    async def _watch_pause(self) -> None:
        """All notes off the moment the session pauses (the bar loop notices at its next bar)."""
        subscription = self.ctx.hub.subscribe(Event, maxsize=64)
        try:
            async for event in subscription:
                if event.kind == "control" and event.data.get("what") == "pause" and self.scheduler is not None:
                    self.scheduler.all_notes_off()
                    self._restart = True  # what was scheduled is gone: after the pause, start afresh
                elif event.kind == "control" and event.data.get("what") == "resume":
                    self._resumed.set()
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
        self.composer = composer
        self.model_ready_at = self._clock.now()
        self._event("info", f"music model ready after {time.monotonic() - started:.1f} s; it composes from now on")

    def _sink_failed(self, sink: Sink, error: BaseException) -> None:
        self._event("error", f"sink {sink.name} failed and was dropped: {error}", sink=sink.name)

    def _event(self, kind: str, text: str, **data: Any) -> None:
        log.log(logging.WARNING if kind in ("warning", "error") else logging.INFO, "%s", text)
        self.ctx.hub.publish(Event(t=self._clock.now(), kind=kind, text=text, data=dict(data)))


def _lower_thread_priority() -> None:
    """Nice the calling worker thread by COMPOSER_NICE (Linux schedules threads one by one; 0 leaves it alone)."""
    if COMPOSER_NICE and hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COMPOSER_NICE)
        except OSError as error:  # not allowed here: the composer then competes on equal terms, which still works
            log.info("could not lower the composer thread's priority: %s", error)


def sketch_for(config: ComposerConfig) -> SketchComposer:
    """The sketch composer in the model's key and meter (the model transposes its C-tonic bars to [composer]
    tonic, major or its parallel minor), so the handover to the model keeps the key."""
    seed = 0 if config.seed is None else config.seed
    meter = config.meter if config.meter in SKETCH_METERS else "4/4"
    if meter != config.meter:
        log.info("the sketch composer plays 4/4 until the model (meter %s) takes over", config.meter)
    return SketchComposer(seed, key_name(config.tonic, False), key_name(config.tonic, True), meter)


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
