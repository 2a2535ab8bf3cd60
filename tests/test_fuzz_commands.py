"""Property-based fuzzing of every remote command, in-process: huge numbers, deep nesting, unicode, control
characters, wrong types and non-hashable names. Each target takes at least 10,000 payloads: hypothesis draws a command
(any values in its own fields, extra fields, odd ids and names) and BATCH mutations of it, each putting one value
of a pool of known-hostile values into one field; drawing is the slow part, so this keeps the run to seconds. The
properties: handle() and the telemetry receiver never raise, always answer, never echo what was sent, and the
session stays inside its configured limits."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import aiomqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_fixtures import make_context
from neuromusic.daemon.mqtt import remote
from neuromusic.daemon.mqtt.ratelimit import TokenBucket
from neuromusic.daemon.services.telemetry import Telemetry
from neuromusic.daemon.session.control import SessionControl
from neuromusic.models.core.messages import Controls
from neuromusic.policies.base import ControlBounds

BATCH = 99
EXAMPLES = 100  # x (BATCH + 1) = 10,000 payloads per target
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases every run: a failure here reproduces
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
FIELDS = {
    "pause": [],
    "resume": [],
    "stop": ["reason"],
    "set_policy": ["name"],
    "set_target": ["value"],
    "set_bounds": ["bounds"],
    "set_controls": ["tempo", "valence", "energy"],
    "clear_override": [],
    "marker": ["label"],
}
# A marker a sender might hope to see echoed back: it must appear in no reply.
CANARY = "\x1b[31mCANARY"


def raw(fragment: str) -> dict[str, str]:
    """A JSON fragment inserted verbatim (json.dumps cannot write 3,000-deep nesting itself)."""
    return {"__raw__": fragment}


texts = st.text(
    alphabet=st.characters(codec=None, categories=None, exclude_categories=()), max_size=40
) | st.sampled_from(["", " ", "\x1b]0;pwned\x07", "a\nb", "\x00", "\u202eevil", "\ud800", CANARY, "x" * 300])
huge_ints = st.integers(min_value=-(10**400), max_value=10**400) | st.sampled_from([2**53, -(2**63), 10**400])
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-1000, 1000) | huge_ints
deep = st.integers(min_value=1, max_value=3000).map(lambda d: raw("[" * d + "]" * d))
scalars = st.none() | st.booleans() | numbers | texts | deep
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8
)
HOSTILE: list[Any] = [
    10**400,
    -(10**400),
    2**63,
    1e308,
    -0.0,
    5e-324,
    raw("1e400"),
    raw("NaN"),
    raw("-Infinity"),
    raw("[" * 3000 + "]" * 3000),
    raw("{" + '"a":{' * 40 + "}" * 41),
    None,
    True,
    "",
    CANARY,
    "\x1b[2J\x1b[H",
    "\ud800",
    "\u202e" * 50,
    "x" * 5000,
    [],
    ["pause"],
    {"tempo_min": 20, "tempo_max": 300},
    {"max_tempo_step": 1e300},
    {"tempo_min": 60.0},
    0.5,
    60,
    "mapping",
]
KEYS = ["id", "cmd", "extra", "name", "value", "bounds", "tempo", "valence", "energy", "label", "reason"]
# The mutations come from a drawn seed: drawing 99 pairs one by one would cost hypothesis more than the test itself.
mutations = st.integers(0, 2**32 - 1).map(
    lambda seed: [
        (rng.randrange(len(KEYS)), rng.randrange(len(HOSTILE))) for rng in [random.Random(seed)] for _ in range(BATCH)
    ]
)


def mutants(body: dict[str, Any], changes: list[tuple[int, int]]) -> list[dict[str, Any]]:
    return [body] + [{**body, KEYS[key]: HOSTILE[value]} for key, value in changes]


bound_names = st.sampled_from([*ControlBounds.__dataclass_fields__, "tempo", "__class__", ""])
bounds_values = st.dictionaries(bound_names, numbers | values, max_size=4) | values


def command(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """A command near `name`: its own fields with any values, sometimes extra fields, odd ids, odd names."""
    field_values = {key: bounds_values if key == "bounds" else values | numbers for key in FIELDS[name]}
    if "name" in field_values:
        field_values["name"] = st.sampled_from(["mapping", "constant"]) | field_values["name"]
    names: st.SearchStrategy[Any] = st.just(name) | st.sampled_from([[name], {"n": name}, name.upper(), 7, None])
    return st.fixed_dictionaries(
        {"cmd": names},
        optional={
            "id": st.none() | texts | huge_ints | st.lists(st.integers(), max_size=2),
            **field_values,
            "extra": values,
        },
    )


def encode(body: Any) -> bytes:
    """JSON with raw fragments spliced in; sometimes cut, to exercise the parser's error paths too."""
    fragments: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"__raw__"}:
            fragments.append(value["__raw__"])
            return f"@@RAW{len(fragments) - 1}@@"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(body))
    for i, fragment in enumerate(fragments):
        text = text.replace(f'"@@RAW{i}@@"', fragment)
    return text.encode("utf-8", "surrogatepass")


def check_session(control: SessionControl) -> None:
    limits, b = control.limits, control.bounds
    assert limits.tempo_min <= b.tempo_min <= b.tempo_max <= limits.tempo_max
    assert 0 < b.max_tempo_step <= limits.max_tempo_step
    assert 0 < b.max_valence_step <= limits.max_valence_step and 0 < b.max_energy_step <= limits.max_energy_step
    assert 0.0 <= control.target <= 1.0
    if control.override is not None:
        assert b.tempo_min <= control.override.tempo <= b.tempo_max


def check_reply(reply: dict[str, Any]) -> None:
    assert set(reply) <= {"id", "cmd", "ok", "error"} and isinstance(reply["ok"], bool)
    text = json.dumps(reply)  # always serialisable
    assert "CANARY" not in text or reply["id"] == CANARY  # the id is the one thing echoed (bounded, validated)
    assert "\x1b" not in reply.get("error", "") and len(text) < 1200
    assert reply["cmd"] is None or reply["cmd"] in remote.COMMANDS


@pytest.mark.parametrize("name", list(FIELDS))
def test_handle_never_raises_for_any_variant_of(name: str) -> None:
    ctx = make_context()
    control = ctx.control
    seen = {"n": 0, "ok": 0}

    @FAST
    @given(command(name), mutations)
    def run(template: dict[str, Any], changes: list[tuple[int, int]]) -> None:
        for body in mutants(template, changes):
            reply = remote.handle(control, encode(body))
            check_reply(reply)
            check_session(control)
            seen["n"] += 1
            seen["ok"] += reply["ok"]
        control.resume()
        control.stop_requested.clear()

    run()
    assert seen["n"] >= 10_000
    if name not in ("set_bounds", "set_controls"):  # those rarely draw a fully valid command by chance
        assert seen["ok"] > 0  # the fuzz reached the command itself, not only the parser


def test_handle_never_raises_for_any_bytes() -> None:
    control = make_context().control
    count = {"n": 0}

    @FAST
    @given(st.binary(max_size=300) | values.map(encode), st.randoms(use_true_random=False))
    def run(payload: bytes, rng: random.Random) -> None:
        # the payload, then cut and spliced at BATCH places: every way a parser can meet a truncated message
        cuts = [rng.randrange(len(payload) + 1) for _ in range(BATCH)]
        for variant in [payload] + [payload[:cut] + payload[cut + 1 :] + payload[:cut] for cut in cuts]:
            check_reply(remote.handle(control, variant))
            count["n"] += 1

    run()
    assert count["n"] >= 10_000


def test_the_reported_attacks_are_answered_and_change_nothing() -> None:
    ctx = make_context()
    attacks = [
        b'{"cmd":"set_target","value":1' + b"0" * 400 + b"}",
        b'{"cmd":"set_target","value":' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"cmd":"marker","label":' + b"[" * 900 + b"]" * 900 + b"}",
        b'{"cmd":["pause"]}',
        b'{"cmd":{"a":1}}',
        b'{"cmd":"set_bounds","bounds":{"tempo_min":20,"tempo_max":300}}',
        b'{"cmd":"set_bounds","bounds":{"max_tempo_step":1e300}}',
        b'{"cmd":"set_controls","tempo":1e400,"valence":0.5,"energy":0.5}',
    ]
    for payload in attacks:
        reply = remote.handle(ctx.control, payload)
        assert reply["ok"] is False and reply["error"], payload[:60]
        assert "000000" not in reply["error"] and "[[" not in reply["error"]  # nothing echoed back
    assert ctx.control.bounds == ControlBounds() and ctx.control.target == 0.8


def test_bounds_may_only_narrow_and_narrowing_reclamps_the_override() -> None:
    control = make_context().control
    for change in ({"tempo_min": 40}, {"tempo_max": 91}, {"max_tempo_step": 4.5}, {"max_energy_step": 0.3}):
        with pytest.raises(ValueError, match="only"):
            control.set_bounds(**change)
    control.set_controls(Controls(88.0, 0.9, 0.9))
    control.set_bounds(tempo_max=70, valence_max=0.5, max_tempo_step=2)
    assert control.override == Controls(70.0, 0.5, 0.9)
    control.set_bounds(tempo_max=90, max_tempo_step=4)  # back up to the configured limit: allowed
    assert control.bounds == ControlBounds(valence_max=0.5)


def test_the_telemetry_receiver_never_raises() -> None:
    """The receiver's own path (rate limit, handler, reply, status) with real aiomqtt messages."""
    ctx = make_context(host="127.0.0.1", device_id="fuzz", **{"limits.command_rate_hz": 1000.0})
    service = Telemetry(ctx, ctx.config.mqtt)
    count = {"n": 0, "replies": 0}

    @FAST
    @given(command("marker") | command("set_bounds"), mutations, st.booleans())
    def run(template: dict[str, Any], changes: list[tuple[int, int]], retain: bool) -> None:
        service._outbox.clear()
        service.commands.bucket = TokenBucket(1000.0, 10_000, ctx.clock.now())
        batch = mutants(template, changes)
        for i, body in enumerate(batch):
            message = aiomqtt.Message("neuromusic/fuzz/cmd", encode(body), 1, retain and i == 0, i, None)
            service.commands.handle(message)
            count["n"] += 1
        replies = [json.loads(m.payload) for m in service._outbox if m.topic.endswith("/cmd/result")]
        assert len(replies) == len(batch) - (1 if retain else 0)  # a retained command is ignored, the rest answered
        assert all(isinstance(r["ok"], bool) and math.isfinite(r["t"]) for r in replies)
        count["replies"] += len(replies)

    run()
    assert count["n"] >= 10_000 and count["replies"] > 9_000


def test_the_rate_limit_answers_the_first_burst_and_drops_the_rest() -> None:
    ctx = make_context(host="127.0.0.1", device_id="flood")
    service = Telemetry(ctx, ctx.config.mqtt)
    for i in range(500):  # all at one instant
        service.commands.handle(aiomqtt.Message("neuromusic/flood/cmd", b'{"cmd":"resume"}', 1, False, i, None))
    replies = [m for m in service._outbox if m.topic.endswith("/cmd/result")]
    assert len(replies) == ctx.config.mqtt.limits.command_burst
    assert service.commands.bucket.refused == 500 - len(replies)


async def test_the_limits_options_change_the_bucket_and_the_queue() -> None:
    ctx = make_context(host="127.0.0.1", device_id="lim", **{"limits.command_burst": 3, "limits.incoming_queue": 7})
    service = Telemetry(ctx, ctx.config.mqtt)
    for i in range(10):
        service.commands.handle(aiomqtt.Message("neuromusic/lim/cmd", b'{"cmd":"resume"}', 1, False, i, None))
    assert service.commands.answered == 3
    assert service._client()._queue.maxsize == 7  # aiomqtt discards what arrives beyond it
