"""`neuromusic simulate` runs the live session's loop: the same bars from a simulated session and from its scores
replayed through the player of `neuromusic run`; every section of the configuration that shapes the music counts."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from neuromusic.daemon.config import Config, load_config
from neuromusic.daemon.services.player import Player
from neuromusic.daemon.session.simulation import (
    SessionTrace,
    load_listener,
    make_composer,
    run_session,
    seeded_policy,
    shipped_listeners,
)
from neuromusic.models.core.messages import Bar
from neuromusic.models.music.bars import key_name

from tests.playback_fixtures import WorldClock, make_ctx

MINUTES = 2.0


def listener(name: str = "default") -> object:
    return load_listener(next(p for p in shipped_listeners() if p.stem == name))


def simulate(config: Config, policy: str, seed: int, minutes: float = MINUTES) -> SessionTrace:
    composer, name = make_composer("sketch", config, seed)
    return run_session(config, listener(), policy, minutes, seed, composer, name)  # type: ignore[arg-type]


async def replay(config: Config, trace: SessionTrace, seed: int) -> list[Bar]:
    """The trace's scores, published when the simulation published them, to the player of a live session."""
    pending = list(trace.published)

    def publish_due(t: float) -> None:
        while pending and pending[0][0] <= t:
            ctx.hub.publish(pending.pop(0)[1])

    clock = WorldClock(on_advance=publish_due)
    ctx = make_ctx(config, clock)
    bars = ctx.hub.subscribe(Bar, maxsize=4096)
    player = Player(ctx, sinks=[], policy_factory=lambda name: seeded_policy(config, name, seed))
    task = asyncio.create_task(player.run())
    await clock.drive(trace.minutes * 60.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    out = []
    while not bars.queue.empty():
        out.append(bars.get_nowait())
    return out


@pytest.mark.parametrize("policy", ["mapping", "bandit"])
async def test_simulate_and_a_replay_through_the_live_loop_play_the_same_bars(policy: str) -> None:
    seed = 3
    config = load_config(overrides={"policy.name": policy, "composer.seed": seed, "score.baseline_s": 20.0})
    trace = await asyncio.to_thread(simulate, config, policy, seed)
    live = await replay(config, trace, seed)
    assert len(trace.bars) > 30 and len(live) >= len(trace.bars)
    simulated = [(b.index, b.controls, b.notes) for b in trace.bars]
    assert [(b.index, b.controls, b.notes) for b in live[: len(simulated)]] == simulated
    moved = {b.controls for b in trace.bars}
    assert len(moved) > 3  # the policy acted on the scores: the comparison is about more than a fixed setting


def test_simulate_plays_in_the_configured_key_and_meter() -> None:
    config = load_config(overrides={"composer.tonic": "D", "composer.meter": "3/4"})
    trace = simulate(config, "mapping", 0, minutes=1.0)
    assert {b.key for b in trace.bars} <= {key_name("D", False), key_name("D", True)}
    assert {b.meter for b in trace.bars} == {"3/4"}


def test_simulate_honours_the_arranger_and_the_bar_timing() -> None:
    base = load_config(overrides={"policy.name": "bandit"})
    slow_ramp = dataclasses.replace(base, arranger=dataclasses.replace(base.arranger, tempo_ramp_bpm=0.5))
    late = dataclasses.replace(base, sinks=dataclasses.replace(base.sinks, start_delay_s=2.0))
    reference = simulate(base, "bandit", 1, minutes=1.0)
    ramped = simulate(slow_ramp, "bandit", 1, minutes=1.0)
    delayed = simulate(late, "bandit", 1, minutes=1.0)
    assert reference.bar_t[0] == pytest.approx(base.sinks.start_delay_s) and delayed.bar_t[0] == pytest.approx(2.0)
    # a slow ramp holds the heard tempo near the first bar's, so the bars last differently
    durations = [float(b - a) for a, b in zip(reference.bar_t, reference.bar_t[1:], strict=False)]
    ramped_durations = [float(b - a) for a, b in zip(ramped.bar_t, ramped.bar_t[1:], strict=False)]
    assert durations != pytest.approx(ramped_durations)
    assert max(ramped_durations) - min(ramped_durations) < max(durations) - min(durations) + 1e-9
