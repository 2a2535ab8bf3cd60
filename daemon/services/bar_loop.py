"""The bar loop: controls -> composer -> arranger -> output, one bar at a time, on whatever clock it is given.

Per bar, shortly before it is due (`[sinks] lead_bars` bars ahead), the loop takes the bar's controls (from the
policy runner), has the composer write the bar (on a worker thread on a real clock, so the event loop never waits on
the model; inline on a virtual clock, where work takes no time), arranges it and hands it to the output (the
scheduler in a live session, the simulated listener in `neuromusic simulate`). New controls therefore take effect at
the next bar not yet composed. The same loop runs `run` and `simulate`: a simulated session is the live loop on a
virtual clock.

The main composer (the GPT-2 model) may take over at any bar (`use`); until then the sketch composer plays, in the
model's key ([composer] tonic: major bars in it, minor bars in its parallel minor) and meter, so the hand-over
changes neither. A bar the composer fails on with an expected error (ModelError, RuntimeError, ValueError: a
sampling failure, a malformed output) becomes a fallback bar (the last bar repeated, else a sketch bar), counted,
logged and published. After `MAX_FAILURES_IN_A_ROW` failed bars in a row the main composer is dropped, said as an
error, and the sketch composer plays on. Any other exception is a bug and ends the loop (the session reports it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from neuromusic.daemon.config import Config
from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.process import frozen_import
from neuromusic.models.core.clock import MonotonicClock, VirtualClock
from neuromusic.models.core.errors import ModelError
from neuromusic.models.core.messages import Bar, Controls
from neuromusic.models.music.arranger import ArrangedBar, Arranger
from neuromusic.models.music.bars import key_name
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.music.sketch_composer import SketchComposer

log = logging.getLogger(__name__)

# Niceness added to the composer and model-loader threads: none. A niced thread that holds the GIL when the kernel
# preempts it keeps the event loop waiting until it runs again, which on a busy machine is far longer at +10 (notes
# seconds late while the model loaded, starved bars) than at equal priority (milliseconds).
COMPOSER_NICE = 0
SKETCH_METERS = ("4/4", "3/4", "2/4")  # the meters the sketch composer plays
MAX_FAILURES_IN_A_ROW = 8  # failed bars in a row after which the main composer is dropped for the sketch composer
COMPOSE_ERRORS = (ModelError, RuntimeError, ValueError)  # what a composer may fail with on one bar
Report = Callable[..., None]  # (kind, text, **data): an Event for the operator


class BarComposer(Protocol):
    def next_bar(self, controls: Controls) -> Bar: ...


class ControlSource(Protocol):
    def controls(self, index: int, t: float) -> Controls: ...

    def played(self, controls: Controls) -> None: ...


class BarOutput(Protocol):
    """Where arranged bars go: `programs` at every (re)start of the bar timeline, then `play` for each bar."""

    def programs(self, programs: dict[int, int], t: float) -> None: ...

    def play(self, bar: Bar, arranged: ArrangedBar) -> None: ...


def load_model(config: ComposerConfig) -> BarComposer:
    """The GPT-2 composer (slow: transformers takes ~8 s to import). Raises ModelError when it cannot load.
    No garbage collection pauses the scheduler over what the import makes (daemon/session/process.py), and torch's
    native library is mapped first with the GIL released (models/music/preload.py), so the import does not stop the
    event loop for ~0.5 s."""
    from neuromusic.models.music.preload import preload_torch

    with frozen_import():
        preload_torch()
        try:
            from neuromusic.models.music.composer import Composer
        except ModuleNotFoundError as error:
            raise ModelError(f"the music model is not installed ({error})") from error
        composer: BarComposer = Composer.load(config)
    return composer


def sketch_for(config: ComposerConfig) -> SketchComposer:
    """The sketch composer in the model's key and meter (the model transposes its C-tonic bars to [composer]
    tonic, major or its parallel minor), so the handover to the model keeps the key. Seeded by [composer] seed."""
    seed = 0 if config.seed is None else config.seed
    meter = config.meter if config.meter in SKETCH_METERS else "4/4"
    if meter != config.meter:
        log.info("the sketch composer plays 4/4 until the model (meter %s) takes over", config.meter)
    return SketchComposer(seed, key_name(config.tonic, False), key_name(config.tonic, True), meter)


def lower_thread_priority() -> None:
    """Nice the calling worker thread by COMPOSER_NICE (Linux schedules threads one by one; 0 leaves it alone)."""
    if COMPOSER_NICE and hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COMPOSER_NICE)
        except OSError as error:  # not allowed here: the composer then competes on equal terms, which still works
            log.info("could not lower the composer thread's priority: %s", error)


class BarLoop:
    def __init__(
        self,
        config: Config,
        clock: MonotonicClock | VirtualClock,
        control: SessionControl,
        chooser: ControlSource,
        report: Report,
        sketch: BarComposer | None = None,
    ) -> None:
        """`config`: its [composer], [arranger] and [sinks] (lead_bars, start_delay_s) apply. `sketch`: the composer
        before (and instead of) the main one (default: the sketch composer of [composer])."""
        self.sinks_config = config.sinks
        self.clock = clock
        self.control = control
        self.chooser = chooser
        self.report = report
        self.sketch: BarComposer = sketch if sketch is not None else sketch_for(config.composer)
        self.composer: BarComposer = self.sketch
        self.arranger = Arranger(config.arranger)
        self.inline = isinstance(clock, VirtualClock)
        self.worker: concurrent.futures.Executor | None = None  # where the composer runs on a real clock
        self.restart = False  # set by a pause; the loop starts a new bar timeline after it
        self.resumed = asyncio.Event()  # wakes the loop when the session resumes
        self._last_bar: Bar | None = None
        self._failures_in_a_row = 0
        self.bars: list[ArrangedBar] = []  # what was played, newest last (the last 64)
        self.stats: dict[str, Any] = {
            "bars": 0,
            "starved": 0,
            "fallbacks": 0,
            "composer_dropped": 0,
            "min_lead_bars": None,
            "lead_bars": None,
        }
        self.first_note_t: float | None = None  # clock time of the first note played

    def use(self, composer: BarComposer) -> None:
        """The main composer takes over at the next bar composed."""
        self.composer = composer
        self._failures_in_a_row = 0

    async def run(self, output: BarOutput, until: float | None = None) -> None:
        """Play bars until cancelled, or until the next bar would start at or after `until`."""
        cfg = self.sinks_config
        control = self.control
        t_next = self.clock.now() + cfg.start_delay_s
        output.programs(self.arranger.programs(), self.clock.now())
        index, first = 0, True
        while until is None or t_next < until:
            if control.paused or self.restart:
                await control.wait_running()
                self.restart = False
                self.resumed.clear()
                t_next = self.clock.now() + cfg.start_delay_s
                output.programs(self.arranger.programs(), self.clock.now())
                first = True
                continue
            controls = self.chooser.controls(index, self.clock.now())
            bar = await self.compose(controls, index)
            if control.paused or self.restart:
                continue  # paused while composing: this bar is not played
            self.chooser.played(controls)
            now = self.clock.now()
            if t_next < now:  # the bar is late (composer or event loop stalled): start it now, and count it
                self.stats["starved"] += 1
                t_next = now + 0.05
            arranged = self.arranger.arrange_bar(bar, t_next)
            output.play(bar, arranged)
            if self.first_note_t is None and arranged.events:
                self.first_note_t = arranged.events[0].t
            if not first:  # the first bar after a start or resume has only the start delay as lead
                self._lead((t_next - now) / arranged.duration)
            first = False
            self.stats["bars"] += 1
            self.bars.append(arranged)
            del self.bars[:-64]
            index += 1
            t_next += arranged.duration
            await self._sleep_unless_resumed(t_next - cfg.lead_bars * arranged.duration)

    def _lead(self, lead: float) -> None:
        low = self.stats["min_lead_bars"]
        self.stats["min_lead_bars"] = lead if low is None else min(low, lead)
        self.stats["lead_bars"] = lead

    async def _sleep_unless_resumed(self, t: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep_until(t))
        waker = asyncio.ensure_future(self.resumed.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()

    async def compose(self, controls: Controls, index: int) -> Bar:
        composer = self.composer
        try:
            # a sketch bar is ~1 ms of work: no wait on a thread (which a model load holding the GIL would delay)
            if self.inline or self.worker is None or composer is self.sketch:
                bar = composer.next_bar(controls)
            else:
                bar = await asyncio.get_running_loop().run_in_executor(self.worker, composer.next_bar, controls)
        except COMPOSE_ERRORS as error:  # one bad bar must not stop the music: a fallback bar, counted and said
            log.warning("composer failed on bar %d", index, exc_info=True)
            bar = self._failed(controls, index, error, composer)
        else:
            self._failures_in_a_row = 0
        bar = dataclasses.replace(bar, index=index, controls=controls)
        self._last_bar = bar
        return bar

    def _failed(self, controls: Controls, index: int, error: Exception, composer: BarComposer) -> Bar:
        self.stats["fallbacks"] += 1
        self._failures_in_a_row += 1
        self.report(
            "warning",
            f"composer failed on bar {index} ({error}); played a fallback bar",
            bar=index,
            fallbacks=self.stats["fallbacks"],
        )
        if self._failures_in_a_row >= MAX_FAILURES_IN_A_ROW and composer is not self.sketch:
            self.stats["composer_dropped"] += 1
            self.composer = self.sketch
            self._failures_in_a_row = 0
            self.report(
                "error",
                f"the music model failed {MAX_FAILURES_IN_A_ROW} bars in a row (last: {error}); "
                "the sketch composer plays on",
                fallbacks=self.stats["fallbacks"],
            )
        if self._last_bar is not None:  # the last bar again: a repeat keeps the music's thread
            return dataclasses.replace(self._last_bar, controls=controls, repaired=True, compose_ms=0.0)
        return dataclasses.replace(self.sketch.next_bar(controls), repaired=True)
