"""Telemetry against a real mosquitto: topics, payload schema, QoS, retained state, rates, Last Will, broker restart."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import subprocess
import time
from pathlib import Path

import aiomqtt
import pytest
from mqtt_fixtures import Broker, Collector, broker_fixture, daemon, feed, make_context  # noqa: F401
from neuromusic.daemon.cli.flags import add_table, table_overrides
from neuromusic.daemon.cli.mqtt_options import MQTT, parse_host_port
from neuromusic.daemon.mqtt import topics as mqtt_topics
from neuromusic.daemon.services.telemetry import Telemetry, create
from neuromusic.daemon.session.context import SessionContext
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Event, SourceStatus

pytestmark = pytest.mark.mqtt


def body(message: aiomqtt.Message) -> dict:
    assert isinstance(message.payload, bytes)
    return json.loads(message.payload)


async def start(ctx) -> tuple[Telemetry, asyncio.Task[None]]:
    service = Telemetry(ctx, ctx.config.mqtt)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.connected.wait(), 5)
    return service, task


async def stop(task: asyncio.Task[None]) -> None:
    """One cancel must end the service (the session's second cancel past its deadline is a last resort)."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10.0)
    assert done, "the telemetry service did not end after a cancel"


class BreaksOnTheWayOut:
    """A client whose connection breaks just as a cancel makes it disconnect: aiomqtt then raises MqttError from
    __aexit__ in place of the CancelledError. (A stand-in: the real race cannot be produced on demand.)"""

    async def __aenter__(self) -> BreaksOnTheWayOut:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if isinstance(error, asyncio.CancelledError):
            raise aiomqtt.MqttError("Disconnected during message iteration")


async def test_a_cancel_that_meets_a_breaking_connection_still_ends_the_service() -> None:
    ctx = make_context(host="127.0.0.1", port=1, device_id="race")
    service = Telemetry(ctx, ctx.config.mqtt)
    connects = 0

    def client() -> BreaksOnTheWayOut:
        nonlocal connects
        connects += 1
        return BreaksOnTheWayOut()

    async def serve(_client: object) -> None:
        await asyncio.Event().wait()

    service._client = client  # type: ignore[method-assign,assignment]
    service._serve = serve  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(service._connection_loop())
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    assert done and task.cancelled()
    assert connects == 1  # it did not reconnect


def test_without_mqtt_host_there_is_no_service() -> None:
    assert create(make_context()) is None


def test_flags_override_the_toml() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_table(parser, MQTT)
    args = parser.parse_args(["--mqtt", "broker.lab:1884", "--device-id", "eeg-2", "--no-remote-control"])
    overrides = table_overrides(args, [MQTT])
    assert overrides["mqtt.host"] == "broker.lab" and overrides["mqtt.port"] == 1884
    assert overrides["mqtt.device_id"] == "eeg-2" and overrides["mqtt.remote_control"] is False
    assert "mqtt.ha_discovery" not in overrides  # not given: the TOML value stays
    assert parse_host_port("[::1]:1885") == ("::1", 1885)
    with pytest.raises(ConfigError, match="port"):
        parse_host_port("broker:99999")
    with pytest.raises(ConfigError, match="device_id"):
        make_context(host="x", device_id="lab/1")  # a '/' would split the topic tree


async def test_topics_and_payload_schema(broker: Broker) -> None:
    ctx = make_context(host=broker.host, port=broker.port, device_id="lab-1", password="s3cret-word", user="u")
    async with Collector(broker) as seen:
        service, task = await start(ctx)
        ctx.hub.publish(SourceStatus(ctx.clock.now(), "streaming", "synthetic board"))
        await feed(ctx, 1.05)
        ctx.control.marker("eyes closed")
        for name in ("status", "config", "score", "bands", "quality", "controls", "bar", "events"):
            await seen.wait_for(name)
        await stop(task)
        await seen.wait_for("status", 3)  # online, playing, offline
    for message in seen.messages:
        device, name = mqtt_topics.parse_topic(str(message.topic)) or ("", "")
        payload = body(message)
        assert device == "lab-1" and payload["device"] == "lab-1"
        assert payload["v"] == mqtt_topics.SCHEMA_VERSION
        assert isinstance(payload["t"], float) and abs(payload["unix"] - time.time()) < 30
        assert message.qos == mqtt_topics.QOS[name], name
    assert [body(m)["state"] for m in seen.on("status")] == ["online", "playing", "offline"]
    score = body(seen.on("score")[-1])
    assert 0 <= score["value"] <= 1 and score["state"] == "scoring"
    bands = body(seen.on("bands")[0])
    assert bands["bands"] == ["delta", "theta", "alpha", "beta", "gamma"] and len(bands["de"][0]) == 4
    assert bands["de"][0][3] is None  # NaN of a bad channel arrives as null, not as invalid JSON
    quality = body(seen.on("quality")[0])
    assert quality["good"] == [True, True, True, False] and quality["bad_reasons"][3] == "flat"
    assert quality["repaired"] == [0, 0, 0, 0]  # Features without repair counts: none repaired
    assert set(body(seen.on("controls")[0])) >= {"tempo", "valence", "energy"}
    assert body(seen.on("bar")[0])["notes"][0] == [60, 0.0, 1.0, 80]
    kinds = [body(m)["kind"] for m in seen.on("events")]
    assert "source" in kinds and "marker" in kinds
    config = body(seen.on("config")[0])["config"]
    assert config["mqtt"]["device_id"] == "lab-1" and set(config) >= {"policy", "features", "score"}
    # An allow-list: no secret, no broker address or user, no hardware identity or path.
    assert not {"password", "user", "host"} & set(config["mqtt"]) and set(config["source"]) == {
        "board",
        "playback_loop",
        "replay_speed",
        "stale_after_s",
    }
    assert all(b"s3cret-word" not in m.payload for m in seen.messages)  # type: ignore[operator]
    assert service.published > 10

    # Retained: a subscriber arriving after the session sees its config and that it is offline.
    async with Collector(broker) as late:
        await late.wait_for("config")
        await late.wait_for("status")
    assert body(late.on("status")[0])["state"] == "offline" and late.on("status")[0].retain


async def test_rates_limit_high_rate_topics(broker: Broker) -> None:
    ctx = make_context(host=broker.host, port=broker.port, device_id="rates")
    ctx_zero = make_context(
        host=broker.host, port=broker.port, device_id="zero", **{"rates.bands_hz": 0.0, "rates.score_hz": 50.0}
    )
    async with Collector(broker) as seen:
        _, task = await start(ctx)
        _, task_zero = await start(ctx_zero)
        await asyncio.gather(feed(ctx, 1.0, hz=40), feed(ctx_zero, 1.0, hz=40))
        await asyncio.sleep(0.3)
        await stop(task)
        await stop(task_zero)
    by_device = {
        dev: {n: len([m for m in seen.messages if str(m.topic) == f"neuromusic/{dev}/{n}"]) for n in ("score", "bands")}
        for dev in ("rates", "zero")
    }
    assert 6 <= by_device["rates"]["score"] <= 12, by_device  # 40 scores a second, at most 10 sent
    assert 1 <= by_device["rates"]["bands"] <= 3, by_device  # at most 2 a second
    assert by_device["zero"]["bands"] == 0 and by_device["zero"]["score"] >= 15, by_device


async def test_ha_discovery_publishes_sensor_configs(broker: Broker) -> None:
    ctx = make_context(host=broker.host, port=broker.port, device_id="ha", ha_discovery=True)
    plain = make_context(host=broker.host, port=broker.port, device_id="plain")
    async with Collector(broker, "homeassistant/#") as seen:
        _, task = await start(ctx)
        _, task_plain = await start(plain)
        await seen.wait_for("config", 10)
        await asyncio.sleep(0.2)
        await stop(task)
        await stop(task_plain)
    topics = {str(m.topic) for m in seen.messages}
    assert "homeassistant/sensor/neuromusic_ha/score/config" in topics
    assert "homeassistant/button/neuromusic_ha/pause/config" in topics
    assert not any("plain" in t for t in topics)  # off unless asked for
    score = json.loads(next(m.payload for m in seen.messages if str(m.topic).endswith("/score/config")))
    assert score["state_topic"] == "neuromusic/ha/score" and score["value_template"] == "{{ value_json.value }}"
    assert score["default_entity_id"] == "sensor.neuromusic_ha_score" and "object_id" not in score


async def test_ha_discovery_removes_the_buttons_when_remote_control_is_off(broker: Broker) -> None:
    """A previous session's retained buttons go when this one takes no commands (an empty retained config)."""
    on = make_context(host=broker.host, port=broker.port, device_id="ha-2", ha_discovery=True)
    _, task = await start(on)
    await stop(task)
    off = make_context(host=broker.host, port=broker.port, device_id="ha-2", ha_discovery=True, remote_control=False)
    _, task = await start(off)
    await stop(task)
    async with Collector(broker, "homeassistant/#") as late:  # what Home Assistant would read on its next start
        await late.wait_for("config", 7)
        await asyncio.sleep(0.3)
    topics = {str(m.topic) for m in late.messages}
    assert not any("/button/" in t for t in topics) and "homeassistant/sensor/neuromusic_ha-2/score/config" in topics
    sensor = json.loads(next(m.payload for m in late.messages if str(m.topic).endswith("/score/config")))
    assert sensor["default_entity_id"] == "sensor.neuromusic_ha_2_score"


@pytest.mark.slow
async def test_last_will_says_offline_when_the_daemon_is_killed(broker: Broker) -> None:
    process = daemon(broker, "doomed")
    try:
        async with Collector(broker, "neuromusic/doomed/#") as seen:
            await seen.wait_for("score", timeout=20)
            assert body(seen.on("status")[-1])["state"] != "offline"
            process.kill()  # SIGKILL: no goodbye, only the broker's Last Will can tell
            killed = time.monotonic()
            while body(seen.on("status")[-1])["state"] != "offline":
                assert time.monotonic() - killed < 5, "no Last Will within 5 s"
                await asyncio.sleep(0.02)
        assert body(seen.on("status")[-1])["detail"] == "connection lost"
    finally:
        process.kill()
        process.wait(5)


@pytest.mark.slow
async def test_real_daemon_keeps_playing_through_a_broker_restart(broker: Broker) -> None:
    """`neuromusic run` with the broker killed for 3 s: no bar is missing or late, telemetry resumes within 5 s."""
    process = daemon(broker, "steady")
    try:
        async with Collector(broker, "neuromusic/steady/#") as before:
            await before.wait_for("bar", timeout=20)
        broker.kill()
        await asyncio.sleep(3.0)
        broker.start()
        back = time.monotonic()
        async with Collector(broker, "neuromusic/steady/#") as after:
            await after.wait_for("score", timeout=5.5)
            resumed = time.monotonic() - back
            first_new = len(after.on("bar"))
            await after.wait_for("bar", first_new + 1, timeout=10)  # one bar composed after the broker came back
        assert resumed < 5.0
        bars = {b["index"]: b for b in map(body, before.on("bar") + after.on("bar"))}
        indices = sorted(bars)
        assert indices == list(range(indices[0], indices[-1] + 1)), f"bars lost: {indices}"
        for index in indices[1:]:
            # Each bar is composed when the previous one ends: a pause in the music shows as a late bar.
            previous, bar = bars[index - 1], bars[index]
            length = previous["beats"] * 60.0 / previous["controls"]["tempo"]
            assert bar["t"] - previous["t"] < 1.5 * length, f"bar {index} late: the music paused"
        assert process.poll() is None
    finally:
        process.kill()
        process.wait(5)


async def test_broker_restart_mid_session(broker: Broker) -> None:
    """Kill the broker, restart it: telemetry is back within 5 s, drops are counted and reported, the loop ran on."""
    ctx = make_context(host=broker.host, port=broker.port, device_id="resilient", queue_size=20)
    service, task = await start(ctx)
    events = ctx.hub.subscribe(Event)
    gaps: list[float] = []

    async def music() -> None:
        # Stands in for the player: it must never wait on the network. Largest gap between its ticks is the proof.
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    player = asyncio.create_task(music())
    feeder = asyncio.create_task(feed(ctx, 30.0, hz=20))
    await asyncio.sleep(0.5)
    broker.kill()
    await asyncio.sleep(
        2.0
    )  # about 20 scores, 4 bands, 2 quality, 4 bar+controls, events: more than the 20-message queue
    broker.start()
    back = time.monotonic()
    async with Collector(broker, "neuromusic/resilient/#") as seen:
        await seen.wait_for("score", timeout=5.5)
        resumed = time.monotonic() - back
        status = [body(m) for m in seen.on("status")]
    feeder.cancel()
    player.cancel()
    await asyncio.gather(feeder, player, return_exceptions=True)
    await stop(task)
    assert resumed < 5.0
    # The report goes through the hub (terminal, recorder) and from there to .../events like every event.
    reports = [e for e in drain(events) if e.kind == "reconnect"]
    assert len(reports) == 1 and reports[0].data["dropped"] > 0 and reports[0].data["away_s"] >= 1.5
    assert service.dropped_total >= reports[0].data["dropped"] and service.reconnects == 1
    assert status and status[0]["telemetry"]["dropped"] > 0  # the retained status carries the counters
    assert max(gaps) < 1.0, f"the event loop stalled for {max(gaps):.2f} s"


def drain(subscription) -> list:
    items = []
    while not subscription.queue.empty():
        items.append(subscription.get_nowait())
    return items


async def test_broker_down_at_start_then_appears(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    late = Broker(tmp_path)  # not started yet
    ctx = make_context(host=late.host, port=late.port, device_id="early", queue_size=10)
    service = Telemetry(ctx, ctx.config.mqtt)
    events = ctx.hub.subscribe(Event)
    task = asyncio.create_task(service.run())
    await asyncio.sleep(0.5)
    assert not service.connected.is_set()
    warning = events.get_nowait()
    assert warning.kind == "warning" and "unreachable" in warning.text
    # ...and once on stderr, where --json / --quiet runs (no live view) still see it.
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "unreachable" in r.getMessage()]
    assert len(warned) == 1 and f"{late.host}:{late.port}" in warned[0].getMessage()
    for i in range(300):  # markers with nowhere to go: memory stays bounded
        ctx.hub.publish(Event(ctx.clock.now(), "marker", f"m{i}"))
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    assert len(service._outbox) == 10 and service.dropped_total >= 290
    late.start()
    try:
        await asyncio.wait_for(service.connected.wait(), 5.5)
    finally:
        await stop(task)
        late.kill()


def test_backoff_is_jittered_and_capped() -> None:
    ctx = make_context(host="x", reconnect_max_s=1.5)
    service = Telemetry(ctx, ctx.config.mqtt, rng=random.Random(1))
    first = [service.backoff(0) for _ in range(200)]
    late = [service.backoff(40) for _ in range(200)]
    assert max(first) <= 0.5 and len(set(first)) == 200  # starts small, never twice the same
    assert max(late) <= 1.5 and max(late) > 1.3  # capped by reconnect_max_s


async def connects(ctx: SessionContext, within: float) -> bool:
    service = Telemetry(ctx, ctx.config.mqtt)
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.connected.wait(), within)
        return True
    except TimeoutError:
        return False
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_user_password_tls_and_keepalive_reach_the_broker(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "lab-1", "s3cret"], check=True)
    secured = Broker(tmp_path, extra=f"allow_anonymous false\npassword_file {passwords}\n")
    secured.start()
    try:
        address = {"host": secured.host, "port": secured.port}
        assert await connects(make_context(**address, user="lab-1", password="s3cret", keepalive_s=7), 3)
        assert "(p2, c1, k7, u'lab-1')" in (tmp_path / "broker.log").read_text()  # keepalive_s reached the broker
        assert not await connects(make_context(**address, user="lab-1", password="wrong"), 1.0)
        assert not await connects(make_context(**address), 1.0)
    finally:
        secured.kill()


# paho-mqtt 2.2 does not close the socket of a failed TLS handshake (the garbage collector does, with a warning).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_tls_flag_switches_tls_on(broker: Broker) -> None:
    address = {"host": broker.host, "port": broker.port}
    assert await connects(make_context(**address), 3)
    # A TLS handshake against a plain listener fails: the flag really switches TLS on.
    assert not await connects(make_context(**address, tls=True), 1.0)
    gc.collect()  # collect paho's leaked socket now, inside this test, not in whichever test runs next


def test_source_events_announce_each_transition_once_with_its_reason() -> None:
    ctx = make_context(host="127.0.0.1", device_id="lab-9")
    service = Telemetry(ctx, ctx.config.mqtt)
    for state, detail in [
        ("connecting", "opening the source"),
        ("streaming", "opened simulated listener"),
        ("stopped", "remote stop: end of block"),
        ("stopped", "acquisition stopped"),  # the clean-up says it again
    ]:
        service.accept(SourceStatus(ctx.clock.now(), state, detail))
    texts = [json.loads(m.payload)["text"] for m in service._outbox if m.topic == "neuromusic/lab-9/events"]
    assert texts == [
        "source connecting: opening the source",
        "source streaming: opened simulated listener",
        "source stopped: remote stop: end of block",
    ]
