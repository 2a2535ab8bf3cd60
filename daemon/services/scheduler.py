"""Plays timed events into the sinks on the session's one monotonic clock.

Every event has an absolute time; the loop sleeps until shortly before the earliest one and spins the last
`spin_s` to send it on time, so timing errors never accumulate as they do with sleeps chained one after another.
The time an event is sent is compared with the time it was scheduled for (note-ons only): `stats` holds that error.
Live sinks get each group of simultaneous events first; offline sinks (WAV, MIDI file) place events at their
scheduled time anyway, so rendering a WAV never delays what the listener hears.
"""

from __future__ import annotations

import array
import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
from neuromusic.drivers.sinks.base import RenderingSink, Sink
from neuromusic.drivers.sinks.factory import close_all, close_quietly
from neuromusic.models.core.clock import Clock, VirtualClock
from neuromusic.models.core.messages import NoteEvent

log = logging.getLogger(__name__)

ON, OFF, PROGRAM, TEMPO = 0, 1, 2, 3
# At one instant: note-offs before programs before note-ons, so a repeated note is released before it is struck.
_ORDER = {OFF: 0, TEMPO: 1, PROGRAM: 2, ON: 3}


CATCH_UP_S = 0.05  # while waiting for the next event, wake this often to let rendering sinks catch up
CATCH_UP_MARGIN_S = 0.02  # ... but only when the next event is further away than the spin plus this


@dataclass(order=True)
class _Action:
    t: float
    order: int
    seq: int
    kind: int = field(compare=False)
    args: tuple[int, ...] = field(compare=False, default=())
    bpm: float = field(compare=False, default=0.0)


class TimingStats:
    """Note-on timing error (sent - scheduled), in seconds."""

    def __init__(self) -> None:
        self.times = array.array("d")  # scheduled times
        self.errors = array.array("d")

    def add(self, t: float, error: float) -> None:
        self.times.append(t)
        self.errors.append(error)

    def summary(self, since: float = -math.inf) -> dict[str, float]:
        """Error statistics of the note-ons scheduled at or after `since`."""
        times = np.frombuffer(self.times, dtype=np.float64)
        values = np.abs(np.frombuffer(self.errors, dtype=np.float64))[times >= since] * 1000.0
        if not values.size:
            return {"n": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        return {
            "n": len(values),
            "p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99)),
            "max_ms": float(values.max()),
        }


SinkCall = Callable[[Sink], None]  # one call of the sink protocol, with its arguments bound


class Scheduler:
    """Plays events into the sinks; as an async context manager it closes every sink on leaving, also on error."""

    def __init__(
        self,
        clock: Clock,
        sinks: Iterable[Sink],
        on_failure: Callable[[Sink, BaseException], None] | None = None,
        spin_s: float = 0.002,
    ) -> None:
        self._clock = clock
        self.sinks: list[Sink] = sorted(sinks, key=lambda s: not s.live)
        self._renderers: list[RenderingSink] = [s for s in self.sinks if isinstance(s, RenderingSink)]
        self._on_failure = on_failure
        # A virtual clock only moves when slept on: sleep to the event itself, a spin would never end.
        self._spin_s = 0.0 if isinstance(clock, VirtualClock) else spin_s
        self._heap: list[_Action] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._sounding: dict[tuple[int, int], int] = {}  # (channel, pitch) -> how many notes hold it
        self.stats = TimingStats()
        self.sent_notes = 0
        self.last_time = 0.0  # the latest time anything is scheduled for

    # -- scheduling (event loop thread) ------------------------------------------------------------------------
    def _push(self, t: float, kind: int, args: tuple[int, ...] = (), bpm: float = 0.0) -> None:
        heapq.heappush(self._heap, _Action(t, _ORDER[kind], next(self._seq), kind, args, bpm))
        self.last_time = max(self.last_time, t)
        if self._heap[0].t == t:
            self._wake.set()  # earlier than what the loop sleeps for

    def notes(self, events: Iterable[NoteEvent]) -> None:
        for event in events:
            self._push(event.t, ON, (event.channel, event.pitch, event.velocity))
            self._push(event.t + event.duration, OFF, (event.channel, event.pitch))

    def program(self, channel: int, program: int, t: float) -> None:
        self._push(t, PROGRAM, (channel, program))

    def tempo(self, bpm: float, t: float) -> None:
        self._push(t, TEMPO, bpm=bpm)

    @property
    def pending(self) -> int:
        return len(self._heap)

    def all_notes_off(self) -> None:
        """Drop everything pending and silence every sink now (pause, shutdown, a failed sink)."""
        self._heap.clear()
        self._sounding.clear()
        self.last_time = self._clock.now()
        self._each_sink(lambda sink: sink.all_notes_off(self._clock.now()))

    def close(self) -> list[str]:
        """All notes off, then close every sink; returns the problems met while closing."""
        self.all_notes_off()
        problems = close_all(self.sinks, self._clock.now())
        self.sinks = []
        self._renderers = []
        return problems

    async def __aenter__(self) -> Scheduler:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for problem in self.close():
            log.warning("closing a sink: %s", problem)

    # -- playing -----------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Send events at their times until cancelled."""
        while True:
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            due = self._heap[0].t
            now = self._clock.now()
            if due - now > self._spin_s:
                if due - now > self._spin_s + CATCH_UP_MARGIN_S:
                    self._catch_up(now)
                self._wake.clear()
                await self._sleep_or_wake(min(due - self._spin_s, now + CATCH_UP_S))
                continue
            while self._clock.now() < due:
                pass  # the last ~2 ms: asyncio's timers wake up to 1 ms late, a spin does not
            now = self._clock.now()
            group = []
            while self._heap and self._heap[0].t <= now:
                group.append(heapq.heappop(self._heap))
            self._dispatch(group)
            await asyncio.sleep(0)

    async def _sleep_or_wake(self, t: float) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep_until(t))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()

    def _dispatch(self, group: list[_Action]) -> None:
        calls: list[SinkCall] = []
        for action in group:
            calls.extend(self._calls(action))
        now = self._clock.now()
        for action in group:  # every note-on's own error: a late wake-up that sends several at once counts each
            if action.kind == ON:
                self.stats.add(action.t, now - action.t)
        for sink in list(self.sinks):
            try:
                for call in calls:
                    call(sink)
            except Exception as error:  # any sink error: report, drop that sink, the others go on
                self._fail(sink, error)

    def _catch_up(self, now: float) -> None:
        """Let a rendering sink (a WAV file) render up to now while nothing is due, in small slices, so the work is
        not left for the moment the next note must go out: nothing before `now` is pending, so those samples are
        final."""
        for sink in list(self._renderers):
            try:
                sink.catch_up(now)
            except Exception as error:  # any sink error: report, drop that sink, the others go on
                self._fail(sink, error)

    def _calls(self, action: _Action) -> list[SinkCall]:
        t = action.t
        if action.kind == TEMPO:
            bpm = action.bpm
            return [lambda sink: sink.tempo(bpm, t)]
        if action.kind == PROGRAM:
            channel, program = action.args
            return [lambda sink: sink.program(channel, program, t)]
        if action.kind == ON:
            channel, pitch, velocity = action.args
            held = self._sounding.get((channel, pitch), 0)
            self._sounding[(channel, pitch)] = held + 1
            self.sent_notes += 1
            retrigger = [_note_off(channel, pitch, t)] if held else []
            return [*retrigger, lambda sink: sink.note_on(channel, pitch, velocity, t)]
        channel, pitch = action.args
        held = self._sounding.get((channel, pitch), 0)
        if held > 1:
            self._sounding[(channel, pitch)] = held - 1
            return []  # a later note on the same key still sounds: keep it
        self._sounding.pop((channel, pitch), None)
        return [_note_off(channel, pitch, t)] if held else []

    def _each_sink(self, call: Callable[[Sink], None]) -> None:
        for sink in list(self.sinks):
            try:
                call(sink)
            except Exception as error:
                self._fail(sink, error)

    def _fail(self, sink: Sink, error: BaseException) -> None:
        if sink not in self.sinks:
            return
        self.sinks.remove(sink)
        self._renderers = [other for other in self._renderers if other is not sink]
        log.error("sink %s failed and was dropped: %s", sink.name, error)
        close_quietly(sink, self._clock.now())
        if self._on_failure is not None:
            self._on_failure(sink, error)
        # the remaining sinks may hold notes whose note-offs the failure interrupted
        self._each_sink(lambda other: other.all_notes_off(self._clock.now()))


def _note_off(channel: int, pitch: int, t: float) -> SinkCall:
    return lambda sink: sink.note_off(channel, pitch, t)
