"""The player service on a discrete-event virtual clock: the closed loop on a simulated listener, pause, override,
composer failures, sink failures, its options. Composition runs inline on a virtual clock (no threads)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import subprocess
import sys
from pathlib import Path

import mido
import pytest
import soundfile
from neuromusic.daemon.config import Config, load_config
from neuromusic.daemon.services.player import Player, create
from neuromusic.daemon.session.profile_store import ProfileStore
from neuromusic.daemon.session.runner import Session
from neuromusic.daemon.session.services import SERVICES, resolve
from neuromusic.drivers.listener_profile import load_profile
from neuromusic.drivers.simulated import ScriptedState, SimulatedListener
from neuromusic.drivers.sinks.midifile_sink import MidiFileSink
from neuromusic.drivers.sinks.wav_sink import WavSink
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.errors import ConfigError, ModelError, SinkError, SourceError
from neuromusic.models.core.messages import Bar, Controls, Event, Score
from neuromusic.models.music.sketch_composer import SketchComposer
from neuromusic.models.signal.pipeline import FeaturePipeline
from neuromusic.models.signal.score import RelaxationScorer

from tests.playback_fixtures import BreakingSink, WorldClock, make_ctx


def drain(subscription: object) -> list[object]:
    out = []
    while not subscription.queue.empty():  # type: ignore[attr-defined]
        out.append(subscription.get_nowait())  # type: ignore[attr-defined]
    return out


async def play(player: Player, clock: WorldClock, until: float) -> None:
    task = asyncio.create_task(player.run())
    await clock.drive(until)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def midi_messages(path: Path) -> list[tuple[float, str, int, int]]:
    now, out = 0.0, []
    for message in mido.MidiFile(path):
        now += message.time
        if message.type == "note_on":
            out.append((now, "on", message.channel, message.note))
        elif message.type == "control_change":
            out.append((now, "cc", message.channel, message.control))
    return out


def closed_loop_config() -> Config:
    # A quick calibration and a responsive target policy, so the test is about the player's latency, not tuning.
    return load_config(
        overrides={
            "score.baseline_s": 20.0,
            "policy.name": "target",
            "policy.target": 0.45,
            "policy.guard.smoothing_s": 1.0,
            "policy.guard.tempo_deadband": 0.2,
            "policy.guard.energy_deadband": 0.01,
            "policy.target_controller.gain": 1.0,
            "policy.mapping.reiso_drop": 0.0,  # a plain feedback controller: no meeting the tension first
            "sinks.synth": "none",
        }
    )


async def test_closed_loop_stress_makes_the_music_slower_and_softer_within_two_bars() -> None:
    config = closed_loop_config()
    scores: list[Score] = []
    clock = WorldClock()
    ctx = make_ctx(config, clock)
    listener = SimulatedListener(load_profile(None), ScriptedState("calm:45,stress:45", start=0.0), clock, seed=2)
    info = listener.open()
    pipeline = FeaturePipeline(config.features, info.sfreq, info.channel_names)
    scorer = RelaxationScorer(config.score, tuple(config.features.bands), info.channel_names)
    emitted = 0

    def world(t: float) -> None:  # the listener's EEG up to t, scored and published before time reaches t
        nonlocal emitted
        n = int(t * info.sfreq) - emitted
        if n > 0:
            emitted += n
            for features in pipeline.push(listener.generate(n)):
                score = scorer.update(features)
                scores.append(score)
                ctx.hub.publish(score)

    clock.on_advance = world
    bars = ctx.hub.subscribe(Bar)
    player = Player(ctx, sinks=[])
    await play(player, clock, 90.0)
    played = {a.index: a for a in player.bars}
    controls = {b.index: b.controls for b in drain(bars) if isinstance(b, Bar)}
    valid = [s for s in scores if s.value is not None]
    crossing = next(s.t for s in valid if s.t > 45.0 and s.value is not None and s.value < config.policy.target)
    assert any(s.value is not None and s.value > config.policy.target for s in valid if 20.0 < s.t < 45.0)

    def playing(t: float) -> int:
        return max(i for i, a in played.items() if a.t0 <= t)

    before = controls[playing(crossing)]
    bar_s = played[playing(crossing)].duration
    after = controls[playing(crossing + (1.0 + config.sinks.lead_bars) * bar_s)]
    assert after.tempo < before.tempo and after.energy < before.energy
    end = controls[max(controls)]
    assert end.tempo < before.tempo - 5.0 and end.energy < before.energy - 0.1  # and it keeps calming
    assert player.stats["starved"] == 0


async def test_pause_silences_at_once_and_resume_goes_on(tmp_path: Path) -> None:
    clock = WorldClock()
    ctx = make_ctx(Config(), clock)
    sink = MidiFileSink(tmp_path / "p.mid", 0.0)
    player = Player(ctx, sinks=[sink])
    task = asyncio.create_task(player.run())
    await clock.drive(6.0)
    ctx.control.pause()
    await clock.drive(12.0)
    ctx.control.resume()
    await clock.drive(20.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    got = midi_messages(tmp_path / "p.mid")
    offs = [m for m in got if m[1] == "cc" and m[0] == pytest.approx(6.0, abs=0.01)]
    assert {m[2] for m in offs} == set(range(16))
    assert any(m[1] == "on" and m[0] < 6.0 for m in got)
    assert not any(m[1] == "on" and 6.0 <= m[0] < 12.0 for m in got)
    resumed = [m[0] for m in got if m[1] == "on" and m[0] >= 12.0]
    assert resumed and resumed[0] == pytest.approx(12.0 + ctx.config.sinks.start_delay_s, abs=0.01)
    assert got[-1][1] == "cc"  # shutdown: all notes off last


async def test_a_short_pause_between_two_bars_restarts_the_music_right_after(tmp_path: Path) -> None:
    clock = WorldClock()
    ctx = make_ctx(Config(), clock)
    sink = MidiFileSink(tmp_path / "q.mid", 0.0)
    player = Player(ctx, sinks=[sink])
    task = asyncio.create_task(player.run())
    await clock.drive(6.0)
    ctx.control.pause()
    await clock.drive(6.4)  # the bar loop sleeps through the whole pause
    ctx.control.resume()
    await clock.drive(15.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    ons = [m[0] for m in midi_messages(tmp_path / "q.mid") if m[1] == "on"]
    assert not any(6.0 <= t < 6.4 for t in ons)
    assert min(t for t in ons if t >= 6.4) == pytest.approx(6.4 + ctx.config.sinks.start_delay_s, abs=0.01)
    assert player.stats["starved"] == 0


async def test_the_operator_override_wins_over_the_policy() -> None:
    clock = WorldClock()
    ctx = make_ctx(Config(), clock)
    bars = ctx.hub.subscribe(Bar)
    player = Player(ctx, sinks=[])
    task = asyncio.create_task(player.run())
    await clock.drive(8.0)
    override = Controls(55.0, 0.2, 0.1)
    ctx.control.set_controls(override)
    await clock.drive(45.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    composed = [b for b in drain(bars) if isinstance(b, Bar)]
    before = [b for b in composed if b.controls != override]
    after = composed[composed.index(before[-1]) + 1 :]
    assert before and len(after) >= 4 and all(b.controls == override for b in after)
    assert all(b.key == "Dm" for b in after)  # the sketch composer honours valence 0.2, in the model's key
    # The override passes the guard: it is reached one step per bar, never by a jump.
    bounds = ctx.config.policy.bounds
    for a, b in itertools.pairwise(composed):
        assert abs(b.controls.tempo - a.controls.tempo) <= bounds.max_tempo_step + 1e-9
        assert abs(b.controls.valence - a.controls.valence) <= bounds.max_valence_step + 1e-9
        assert abs(b.controls.energy - a.controls.energy) <= bounds.max_energy_step + 1e-9


class FlakyComposer:
    """Raises on chosen calls (a test double: the real composer never raises on purpose)."""

    def __init__(self, fail_on: set[int]) -> None:
        self.calls = 0
        self.fail_on = fail_on
        self.inner = SketchComposer(seed=9)

    def next_bar(self, controls: Controls) -> Bar:
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError("sampling blew up")
        return self.inner.next_bar(controls)


async def test_a_composer_exception_gives_a_fallback_bar_and_the_music_goes_on() -> None:
    clock = WorldClock()
    ctx = make_ctx(Config(), clock)
    bars = ctx.hub.subscribe(Bar)
    events = ctx.hub.subscribe(Event)
    flaky = FlakyComposer({2, 3})
    player = Player(ctx, sinks=[], model_loader=lambda: flaky)
    task = asyncio.create_task(player.run())
    await asyncio.sleep(0)
    await asyncio.to_thread(lambda: None)  # let the loader thread hand the composer over
    await clock.drive(25.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    composed = [b for b in drain(bars) if isinstance(b, Bar)]
    assert [b.index for b in composed] == list(range(len(composed))) and len(composed) >= 6
    repaired = [b for b in composed if b.repaired]
    assert len(repaired) == 2 and repaired[1].notes == repaired[0].notes  # the last good bar, held
    warnings = [e.text for e in drain(events) if isinstance(e, Event) and e.kind == "warning"]
    assert sum("composer failed" in w for w in warnings) == 2
    assert player.stats["fallbacks"] == 2 and flaky.calls >= 4  # it took over once loaded, and kept going


async def test_a_model_that_keeps_failing_is_dropped_for_the_sketch_composer_and_said() -> None:
    clock = WorldClock()
    ctx = make_ctx(Config(), clock)
    events = ctx.hub.subscribe(Event, maxsize=1024)
    broken = FlakyComposer(set(range(1, 1000)))
    player = Player(ctx, sinks=[], model_loader=lambda: broken)
    task = asyncio.create_task(player.run())
    await asyncio.sleep(0)
    await asyncio.to_thread(lambda: None)  # let the loader thread hand the composer over
    await clock.drive(60.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    said = [e for e in drain(events) if isinstance(e, Event)]
    dropped = [e.text for e in said if e.kind == "error" and "failed 8 bars in a row" in e.text]
    assert len(dropped) == 1 and "sampling blew up" in dropped[0]
    assert broken.calls == 8 and player.composer is player.sketch  # not asked again: the sketch composer plays on
    assert player.stats["fallbacks"] == 8 and player.stats["composer_dropped"] == 1
    assert player.stats["bars"] > 12 and ctx.counts["fallback_bars"] == 8  # the status reports the count


async def test_the_status_carries_the_count_of_fallback_bars() -> None:
    from neuromusic.daemon.services.telemetry import Telemetry

    clock = WorldClock()
    ctx = make_ctx(load_config(overrides={"mqtt.host": "127.0.0.1", "mqtt.device_id": "lab-9"}), clock)
    telemetry = Telemetry(ctx, ctx.config.mqtt)
    events = ctx.hub.subscribe(Event, maxsize=1024)
    flaky = FlakyComposer({2, 4})
    player = Player(ctx, sinks=[], model_loader=lambda: flaky)
    task = asyncio.create_task(player.run())
    await asyncio.sleep(0)
    await asyncio.to_thread(lambda: None)
    await clock.drive(25.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    for event in drain(events):
        telemetry.accept(event)
    statuses = [json.loads(m.payload) for m in telemetry._outbox if m.topic == "neuromusic/lab-9/status"]
    assert len(statuses) >= 2 and statuses[-1]["telemetry"]["fallback_bars"] == 2  # re-sent as bars fell back


class BuggyComposer:
    def next_bar(self, controls: Controls) -> Bar:
        raise TypeError("unsupported operand type(s) for +: 'NoneType' and 'int'")


async def test_a_bug_in_the_composer_stops_the_player_instead_of_playing_fallbacks_forever() -> None:
    clock = WorldClock()
    ctx = make_ctx(Config(), clock)
    player = Player(ctx, sinks=[], model_loader=BuggyComposer)
    task = asyncio.create_task(player.run())
    await asyncio.sleep(0)
    await asyncio.to_thread(lambda: None)
    await clock.drive(10.0)
    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(task, timeout=5)
    assert raised.group_contains(TypeError)
    assert player.stats["fallbacks"] == 0


async def test_a_model_that_cannot_load_leaves_the_sketch_composer_playing() -> None:
    clock = WorldClock()
    ctx = make_ctx(Config(), clock)
    events = ctx.hub.subscribe(Event)

    def missing() -> SketchComposer:
        raise ModelError("no checkpoint; run neuromusic train")

    player = Player(ctx, sinks=[], model_loader=missing)
    task = asyncio.create_task(player.run())
    await asyncio.to_thread(lambda: None)
    await clock.drive(10.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    texts = [e.text for e in drain(events) if isinstance(e, Event)]
    assert any("music model unavailable" in t and "no checkpoint" in t for t in texts)
    assert player.composer is player.sketch and player.stats["bars"] >= 2


async def test_a_failing_sink_is_reported_and_the_music_goes_on(tmp_path: Path) -> None:
    clock = WorldClock()
    ctx = make_ctx(Config(), clock)
    events = ctx.hub.subscribe(Event)
    good = MidiFileSink(tmp_path / "g.mid", 0.0)
    player = Player(ctx, sinks=[BreakingSink(after=10), good])
    await play(player, clock, 15.0)
    errors = [e for e in drain(events) if isinstance(e, Event) and e.kind == "error"]
    assert len(errors) == 1 and "sink breaking failed and was dropped: device vanished" in errors[0].text
    ons = [m[0] for m in midi_messages(tmp_path / "g.mid") if m[1] == "on"]
    assert max(ons) > 10.0


async def test_lead_and_start_delay_options() -> None:
    for lead, delay in ((1.1, 0.3), (2.0, 1.5)):
        config = dataclasses.replace(
            Config(), sinks=dataclasses.replace(Config().sinks, lead_bars=lead, start_delay_s=delay)
        )
        clock = WorldClock()
        player = Player(make_ctx(config, clock), sinks=[])
        await play(player, clock, 30.0)
        assert player.bars[0].t0 == pytest.approx(delay)
        assert player.stats["lead_bars"] == pytest.approx(lead, abs=0.05)  # steady state: composed `lead` bars ahead


def test_the_player_is_a_registered_service_and_bad_sinks_stop_it_at_creation(tmp_path: Path) -> None:
    config = load_config(overrides={"sinks.synth": "none", "sinks.midi_file": "m.mid"})
    ctx = make_ctx(config, WorldClock(), session_dir=tmp_path)
    assert resolve(SERVICES["player"]) is create
    player = create(ctx)
    assert isinstance(player, Player) and [s.name for s in player._sinks or []] == [f"midi-file:{tmp_path}/m.mid"]
    bad = make_ctx(load_config(overrides={"sinks.soundfont": str(tmp_path / "none.sf2")}), WorldClock())
    with pytest.raises(SinkError, match="soundfont not found"):
        create(bad)


def steady_scores(clock: WorldClock, ctx: object, value: float) -> None:
    """A confident score of `value` every 0.25 s, published before time reaches it."""
    due = [0.0]

    def world(t: float) -> None:
        while due[0] <= t:
            ctx.hub.publish(Score(due[0], value, 1.0, "scoring"))  # type: ignore[attr-defined]
            due[0] += 0.25

    clock.on_advance = world


async def test_a_policy_switch_and_a_cleared_override_keep_within_the_step_limits() -> None:
    clock = WorldClock()
    ctx = make_ctx(load_config(overrides={"policy.name": "mapping", "sinks.synth": "none"}), clock)
    steady_scores(clock, ctx, 0.95)  # a relaxed listener: the mapping slows the music well below the start tempo
    bars = ctx.hub.subscribe(Bar)
    override = Controls(50.0, 0.0, 0.0)
    task = asyncio.create_task(Player(ctx, sinks=[]).run())
    await clock.drive(40.0)
    ctx.control.set_policy("target")  # the new policy starts from its own start controls unless it continues
    await clock.drive(60.0)
    ctx.control.set_controls(override)
    await clock.drive(75.0)
    ctx.control.set_controls(None)
    await clock.drive(90.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    played = [b.controls for b in drain(bars) if isinstance(b, Bar)]
    start = load_config().policy.guard.start_tempo
    switch_at = next(i for i, c in enumerate(played) if i > 0 and played[i - 1].tempo < start - 8.0) + 1
    assert played[switch_at].tempo < start - 8.0  # far from where a fresh policy starts: a jump would show
    onset = played.index(override)
    cleared = next(i for i in range(onset, len(played)) if played[i] != override)
    assert cleared < len(played) - 2  # bars after the override was cleared were played
    b = ctx.control.bounds
    for i in range(1, len(played)):
        if i == onset:
            continue  # the operator's override itself may jump: that is the operator's choice
        before, now = played[i - 1], played[i]
        assert abs(now.tempo - before.tempo) <= b.max_tempo_step + 1e-6, (i, before, now)
        assert abs(now.valence - before.valence) <= b.max_valence_step + 1e-6, (i, before, now)
        assert abs(now.energy - before.energy) <= b.max_energy_step + 1e-6, (i, before, now)


async def test_the_sketch_composer_plays_in_the_key_and_meter_the_model_will_use() -> None:
    for tonic, meter in (("D", "4/4"), ("Bb", "3/4")):
        config = load_config(overrides={"composer.tonic": tonic, "composer.meter": meter, "sinks.synth": "none"})
        player = Player(make_ctx(config, WorldClock()), sinks=[])
        assert player.sketch.next_bar(Controls(70.0, 0.8, 0.4)).key == tonic
        minor = player.sketch.next_bar(Controls(70.0, 0.1, 0.4))
        assert minor.key == f"{tonic}m" and minor.meter == meter  # what models/music/bars.to_bar names the key


async def test_what_the_policy_learned_is_loaded_for_its_own_name_and_put_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a listener who relaxed to brisk minor music and not to the calm major music a fresh bandit tries first
    learned = {"version": 1, "observations": [[76.0, 0.3, 0.6, 0.95, 0.01]] * 3 + [[60.0, 0.7, 0.2, 0.1, 0.01]] * 3}
    config = load_config(overrides={"policy.name": "bandit", "sinks.synth": "none"})
    clock = WorldClock()
    ctx = make_ctx(config, clock)
    ctx.profile = ProfileStore(tmp_path / "p.json", {"policy": {"name": "target", "state": {"integral": 1.0}}})
    with caplog.at_level(logging.INFO, logger="neuromusic.daemon.services"):
        other = Player(ctx, sinks=[])
    assert other.policy.observations == []
    assert "holds what policy 'target' learned; policy 'bandit' starts afresh" in caplog.text
    ctx.profile = ProfileStore(tmp_path / "p.json", {"policy": {"name": "bandit", "state": learned}})
    player = Player(ctx, sinks=[])
    assert [list(o[:4]) for o in player.policy.observations] == [o[:4] for o in learned["observations"]]  # type: ignore
    bars = ctx.hub.subscribe(Bar)
    steady_scores(clock, ctx, 0.5)
    await play(player, clock, 30.0)  # cancelled: the state is put back on the way out
    assert ctx.profile.get("policy") == {"name": "bandit", "state": player.policy.state_dict()}
    # its first choice is what the profile rewarded (minor, energetic), not the fresh prior's calm major music
    start = Controls(*config.policy.guard.start())
    first_choice = first_held([b.controls for b in drain(bars) if isinstance(b, Bar)], start)
    assert first_choice.valence < 0.5 and first_choice.energy > 0.5, first_choice
    fresh_clock = WorldClock()
    fresh = make_ctx(config, fresh_clock)
    fresh_bars = fresh.hub.subscribe(Bar)
    steady_scores(fresh_clock, fresh, 0.5)
    await play(Player(fresh, sinks=[]), fresh_clock, 30.0)
    fresh_choice = first_held([b.controls for b in drain(fresh_bars) if isinstance(b, Bar)], start)
    assert fresh_choice.valence > 0.5 and fresh_choice.energy < 0.5, fresh_choice


def first_held(played: list[Controls], start: Controls) -> Controls:
    """The first setting other than the start controls that is played on two bars in a row: where the music went
    first (the ramp's bars each differ), whatever the policy holds it for."""
    held = next((a for a, b in itertools.pairwise(played) if a == b and a != start), None)
    assert held is not None, played
    return held


class _FailingSource:
    def open(self) -> None:
        raise SourceError("no headset")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("failure", ["later service", "source"])
async def test_the_sinks_are_closed_when_the_session_fails_at_start(tmp_path: Path, failure: str) -> None:
    config = load_config(overrides={"sinks.synth": "none"})
    made: list[WavSink] = []

    def player(ctx: object) -> Player:
        sink = WavSink(tmp_path / "x.wav", config.sinks, 0.0)
        made.append(sink)
        return Player(ctx, sinks=[sink])

    def broken(ctx: object) -> None:
        raise ConfigError("the next service cannot start")

    services = [player, broken] if failure == "later service" else [player]
    session = Session(config, VirtualClock(), services=services, open_source=_FailingSource)
    with pytest.raises((ConfigError, SourceError)):
        await session.run()
    assert made and made[0]._file is None  # closed, its synth deleted
    info = soundfile.info(str(tmp_path / "x.wav"))  # a finished file: the header states the frames it holds
    data_end = info.frames * 4  # 16-bit stereo
    assert info.channels == 2 and data_end < (tmp_path / "x.wav").stat().st_size <= data_end + 128


@pytest.mark.slow
def test_run_twice_with_a_profile_the_bandit_goes_on_from_what_it_learned(tmp_path: Path) -> None:
    # Short dwell and lag, short bars, and steps wide enough to reach a choice in one bar: a 12 s run measures one.
    (tmp_path / "fast.toml").write_text(
        "[policy.bounds]\ntempo_min = 86.0\ntempo_max = 90.0\nmax_tempo_step = 20.0\n"
        "max_valence_step = 1.0\nmax_energy_step = 1.0\n[policy.bandit]\ndwell_s = 1.0\nlag_s = 0.5\n"
        "opening_dwell_s = 2.0\nmax_delay_s = 3.0\n"
    )
    args = ["--config", "fast.toml", "--board", "simulated", "--policy", "bandit", "--profile", "p.json"]
    args += ["--baseline", "1", "--window", "1", "--synth", "none", "--quiet", "--without", "recorder,telemetry"]

    def run(seconds: int) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "neuromusic.daemon.cli", "run", *args, "--duration", str(seconds)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        section = json.loads((tmp_path / "p.json").read_text())["policy"]
        assert isinstance(section, dict) and section["name"] == "bandit"
        return section["state"]

    first = run(12)["observations"]
    assert isinstance(first, list) and len(first) >= 1  # it measured at least one choice
    second = run(4)["observations"]  # long enough to start and end: what it loaded is saved again
    assert isinstance(second, list) and len(second) >= len(first)
    carry = load_config().policy.bandit.carry_noise_factor
    for old, new in zip(first, second, strict=False):  # the second session started from the first one's
        assert new[:4] == old[:4] and new[4] == pytest.approx(old[4] * carry)
