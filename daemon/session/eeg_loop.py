"""The full closed loop on a simulated listener: the live session's signal stage, policy runner and bar loop, on a
virtual clock that runs the listener's world.

    EegWorld (a VirtualClock): as time moves on, the listener's EEG for that time -> SignalStage -> Scores (hub)
    PolicyRunner -> controls -> BarLoop (composer -> arranger) -> ListenerOutput: the listener hears each bar

Nothing sleeps: when the bar loop sleeps until its next bar is due, the world generates the EEG up to that time and
scores it, and the clock jumps there. The bar loop and the policy runner are those of `neuromusic run`: bars are
composed `[sinks] lead_bars` ahead, from `[sinks] start_delay_s` on, with every score published by then observed,
arranged by `[arranger]`, composed in `[composer]` key and meter. So the same scores give the same bars here and in a
live session.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from neuromusic.daemon.config import Config
from neuromusic.daemon.services.bar_loop import BarComposer, BarLoop
from neuromusic.daemon.services.policy_runner import PolicyRunner
from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.hub import Hub
from neuromusic.daemon.session.signal_stage import SignalStage
from neuromusic.drivers.base import SourceInfo
from neuromusic.drivers.simulated import SimulatedListener
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.messages import Bar, Chunk, Controls, Features, Score
from neuromusic.models.music.arranger import ArrangedBar
from neuromusic.models.music.sketch_composer import SketchComposer
from neuromusic.policies.base import Policy

log = logging.getLogger(__name__)

SCORE_QUEUE = 4096  # scores waiting for the next bar: far more than a bar holds


class HearingState(Protocol):
    def hear(self, controls: Controls, t: float) -> None: ...

    def relaxation(self, t: float) -> float: ...


@dataclass
class Record:
    """What a simulated session did: each bar as composed, each score with the time it was published."""

    score_t: list[float] = field(default_factory=list)
    score_v: list[float] = field(default_factory=list)
    bar_t: list[float] = field(default_factory=list)
    played: list[tuple[float, ...]] = field(default_factory=list)  # each bar's controls, in the table's order
    bars: list[Bar] = field(default_factory=list)
    published: list[tuple[float, Score]] = field(default_factory=list)  # (clock time, score)

    def bar(self, t: float, controls: Controls, bar: Bar | None = None) -> None:
        self.bar_t.append(t)
        self.played.append(controls.values())
        if bar is not None:
            self.bars.append(bar)

    def score(self, score: Score, published_t: float | None = None) -> None:
        self.score_t.append(score.t)
        self.score_v.append(math.nan if score.value is None else score.value)
        if published_t is not None:
            self.published.append((published_t, score))


class EegWorld(VirtualClock):
    """A virtual clock that, before it moves to t, has the listener's EEG up to t generated and scored."""

    def __init__(self, source: SimulatedListener, stage: SignalStage) -> None:
        super().__init__(0.0)
        self.source, self.stage = source, stage
        self.info: SourceInfo = source.open()
        self._emitted = 0
        self.running_to = 0.0  # the time the EEG is being generated up to

    def run_to(self, t: float) -> None:
        self.running_to = t
        n = round(t * self.info.sfreq) - self._emitted
        if n > 0:
            chunk = self.source.generate(n)
            self._emitted += n
            self.stage.push(chunk, self.info, t, t)

    async def sleep_until(self, t: float) -> None:
        self.run_to(t)
        await super().sleep_until(t)


class ListenerOutput:
    """The bar loop's output in a simulation: the listener hears each bar at its mean tempo (the arranger's ramp)."""

    def __init__(self, state: HearingState, record: Record) -> None:
        self.state, self.record = state, record

    def programs(self, programs: dict[int, int], t: float) -> None:
        """Instruments change nothing the listener's model hears."""

    def play(self, bar: Bar, arranged: ArrangedBar) -> None:
        c = bar.controls
        heard_tempo = (arranged.ramp.start + arranged.ramp.end) / 2.0
        self.state.hear(replace(c, tempo=heard_tempo), arranged.t0)
        self.record.bar(arranged.t0, c, bar)


def eeg_session(
    config: Config,
    source: SimulatedListener,
    state: HearingState,
    policy_name: str,
    policy: Policy,
    composer: BarComposer,
    duration: float,
    record: Record,
) -> None:
    """Play the bars that start before `duration` to the listener; `config`'s [composer] seed seeds the sketch
    composer a failing composer falls back to."""
    asyncio.run(_play(config, source, state, policy_name, policy, composer, duration, record))


async def _play(
    config: Config,
    source: SimulatedListener,
    state: HearingState,
    policy_name: str,
    policy: Policy,
    composer: BarComposer,
    duration: float,
    record: Record,
) -> None:
    hub = Hub()
    scores = hub.subscribe(Score, maxsize=SCORE_QUEUE)
    world: list[EegWorld] = []

    def publish(message: Chunk | Features | Score) -> None:
        if isinstance(message, Score):
            record.score(message, world[0].running_to)
            hub.publish(message)

    world.append(EegWorld(source, SignalStage(config.features, config.score, publish)))
    clock = world[0]
    p = config.policy
    control = SessionControl(clock, hub.publish, policy_name, p.bounds, p.target)
    runner = PolicyRunner(control, _only(policy), policy=policy)
    runner.listen(scores)
    sketch = composer if isinstance(composer, SketchComposer) else None  # else [composer]'s, for fallbacks
    loop = BarLoop(config, clock, control, runner, _logged, sketch=sketch)
    if sketch is None:
        loop.use(composer)
    await loop.run(ListenerOutput(state, record), until=duration)
    clock.run_to(duration)
    source.close()


def _only(policy: Policy) -> Any:
    def make(name: str) -> Policy:
        return policy  # a simulated session never switches policy

    return make


def _logged(kind: str, text: str, **data: Any) -> None:
    """A simulation has no operator watching events: what went wrong (a fallback bar, a model dropped) is logged."""
    if kind in ("warning", "error"):
        log.warning("%s", text)
