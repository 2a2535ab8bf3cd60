"""Earlier sessions carried as played and heard: saved compactly in the profile, read back exactly, refused with a
clear error when damaged, the newest `carry_sessions` kept, each session counted once, and slow listeners' third
sessions play nearer their preference than from the sessions' summaries alone."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from neuromusic.daemon.config import Config
from neuromusic.daemon.session.simulation import Listener, population_listeners, run_session, seeded_policy
from neuromusic.drivers.listener_response import appeal
from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.bandit_past import PastSession, read_past, read_records
from neuromusic.policies.response_model import Carried, bin_inputs
from test_bandit import bandit, listen


def played_session(**changes: object) -> dict[str, Any]:
    policy = bandit(**changes)
    listen(policy, minutes=6, tau=30.0, delay=5.0)
    return json.loads(json.dumps(policy.state_dict()))


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return played_session()


def test_a_session_is_saved_as_its_changes_and_read_back_to_the_same_inputs(state: dict[str, Any]) -> None:
    (saved,) = state["records"]
    assert saved["tau_s"] == state["tau_s"] and saved["delay_s"] == state["delay_s"] and saved["summarised"]
    bars = np.array(saved["bars"])
    assert np.all(np.any(np.diff(bars[:, 1:], axis=0) != 0, axis=1))  # only the bars where the music changed
    past = read_past(saved)
    policy = bandit()
    listen(policy, minutes=6, tau=30.0, delay=5.0)  # the same session again (same seeds): its full record
    full_t = np.array(policy.record.bar_t)
    full_x = np.array(policy.record.bar_x)
    _, bin_y, observed = policy.record.binned()
    assert np.array_equal(past.observed, observed)
    assert np.allclose(past.bin_y[observed], bin_y[observed], atol=1e-4)
    # the music acting at every bin, at any delay, is the same from the saved changes as from every bar
    for delay in (0.0, 5.0, 17.0):
        ours = bin_inputs(past.bar_t, past.bar_x, past.bin_t, delay, past.bar_x)
        theirs = bin_inputs(full_t, full_x, past.bin_t, delay, full_x)
        assert np.allclose(ours, theirs, atol=1e-3)


def test_the_newest_carry_sessions_are_kept_and_zero_keeps_none() -> None:
    policy = bandit(carry_sessions=2)
    state: dict[str, Any] | None = None
    lengths = []
    for k in range(3):
        policy = bandit(carry_sessions=2, seed=k)
        if state is not None:
            policy.load_state_dict(state)
        listen(policy, minutes=3 + k, tau=30.0, delay=5.0, seed=k)
        state = json.loads(json.dumps(policy.state_dict()))
        lengths.append(len(state["records"]))
    assert lengths == [1, 2, 2]
    assert state is not None
    durations = [len(saved["scores"]) * saved["bin_s"] for saved in state["records"]]
    assert durations[0] > 3.5 * 60 and durations[1] > 4.5 * 60  # the 4- and 5-minute sessions, the 3-minute one gone
    assert played_session(carry_sessions=0)["records"] == []
    none = bandit(carry_sessions=0)
    none.load_state_dict(state)
    assert none.past == []


def test_each_session_counts_once_summaries_of_recorded_sessions_leave_the_preference_model() -> None:
    policy = bandit()
    x = np.full((6, 3), 0.5)
    carried = Carried(x, np.zeros(6), np.ones(6), np.array([0.0, 0, 1, 1, 2, 2]))
    saved = played_session()["records"][0]
    past = read_past(saved)
    unsummarised = read_past({**saved, "summarised": False})
    policy.listener._past = [past]
    assert list(policy.listener._not_in_past(carried).session) == [0, 0, 1, 1]  # type: ignore[union-attr]
    policy.listener._past = [unsummarised, past]
    assert list(policy.listener._not_in_past(carried).session) == [0, 0, 1, 1]  # type: ignore[union-attr]
    policy.listener._past = [past, past]
    assert list(policy.listener._not_in_past(carried).session) == [0, 0]  # type: ignore[union-attr]


def third_session_appeal(listener: Listener, carry_sessions: int) -> float:
    """Three 10-minute sessions in a row (the direct loop); how much the listener liked the third one's music. Every
    session draws (a first one at its best estimate would leave the next ones less to compare)."""
    config = Config()
    bandit_config = replace(config.policy.bandit, carry_sessions=carry_sessions, fresh_choice="draw")
    config = replace(config, policy=replace(config.policy, bandit=bandit_config))
    state: dict[str, Any] | None = None
    for k in range(3):
        policy = seeded_policy(config, "bandit", 1000 * k)
        if state is not None:
            policy.load_state_dict(state)
        trace = run_session(config, listener, "bandit", 10, 1000 * k, None, policy=policy, loop="direct")
        state = json.loads(json.dumps(trace.policy_state))
    r = listener.response
    return float(np.mean([appeal(r, Controls(*row)) for row in trace.controls]))


@pytest.mark.slow
def test_slow_listeners_third_sessions_play_nearer_their_preference_from_the_sessions_themselves() -> None:
    # the first four listeners of population 0 with a time constant of 100 s or more (of 30): the listeners whose
    # sessions a summary describes worst
    slow = [one for one in population_listeners(30, 0) if one.response.time_constant_s >= 100][:4]
    assert len(slow) == 4
    with_records = np.mean([third_session_appeal(one, 4) for one in slow])
    summaries_only = np.mean([third_session_appeal(one, 0) for one in slow])
    assert with_records > summaries_only + 0.1, (with_records, summaries_only)


BAD_RECORDS: list[Any] = [
    "not a list",
    ["not a table"],
    [{"bin_s": 3.0, "tau_s": 40.0, "bars": [[0.0, 60, 0.5, 0.5]], "scores": [0.5]}],  # no delay_s
    [{"bin_s": 0.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [[0.0, 60, 0.5, 0.5]], "scores": [0.5]}],
    [{"bin_s": 3.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [[0.0, 60, 0.5]], "scores": [0.5]}],
    [
        {
            "bin_s": 3.0,
            "tau_s": 40.0,
            "delay_s": 5.0,
            "bars": [[5.0, 60, 0.5, 0.5], [1.0, 62, 0.5, 0.5]],
            "scores": [0.5],
        }
    ],
    [{"bin_s": 3.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [[0.0, 60, 0.5, 0.5]], "scores": [None, None]}],
    [{"bin_s": 3.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [[0.0, 60, 0.5, 0.5]], "scores": [[0, 0.5]]}],
    [{"bin_s": 3.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [[0.0, 60, math.nan, 0.5]], "scores": [0.5]}],
    [{"bin_s": 3.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [[0.0, 60, True, 0.5]], "scores": [0.5]}],
    [{"bin_s": 3.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [], "scores": [0.5]}],
    [{"bin_s": 3.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [[0.0, 60, 0.5, 0.5]], "scores": [0.5] * 20_001}],
    [{"bin_s": 3.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [[0.0, 60, 0.5, 0.5]], "scores": [math.inf]}],
    [{"bin_s": 3.0, "tau_s": 40.0, "delay_s": 5.0, "bars": [[0.0, 60, 0.5, 0.5]], "scores": [1.5]}],
    [
        {
            "bin_s": 3.0,
            "tau_s": 40.0,
            "delay_s": 5.0,
            "bars": [[0.0, 60, 0.5, 0.5]],
            "scores": [0.5],
            "summarised": 1,
        }
    ],
]


@pytest.mark.parametrize("records", BAD_RECORDS)
def test_a_damaged_record_is_refused_with_what_is_wrong(state: dict[str, Any], records: Any) -> None:
    with pytest.raises(ValueError, match="record"):
        bandit().load_state_dict({**state, "records": records})


def test_a_state_without_records_still_loads(state: dict[str, Any]) -> None:
    policy = bandit()
    policy.load_state_dict({k: v for k, v in state.items() if k != "records"})
    assert policy.past == [] and policy.observations and policy._opening == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=40,
)
record_like = st.fixed_dictionaries(
    {},
    optional={
        "bin_s": json_values,
        "tau_s": json_values,
        "delay_s": json_values,
        "summarised": json_values,
        "bars": st.lists(st.lists(st.floats(-1e300, 1e300) | json_values, min_size=4, max_size=5), max_size=5)
        | json_values,
        "scores": st.lists(st.none() | st.floats(-1e300, 1e300) | json_values, max_size=8) | json_values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(record_like, max_size=3) | json_values)
def test_any_records_load_or_are_refused_with_a_value_error_and_what_loads_plays(records: Any) -> None:
    try:
        past = read_records({"records": records}, keep=4)
    except ValueError:
        return
    for session in past:
        assert isinstance(session, PastSession) and session.bin_s > 0 and session.tau > 0 and session.observed.any()
    policy = bandit()
    policy.load_state_dict({"version": 2, "observations": [], "records": records})
    controls = policy.next_controls(0, 0.0)
    assert all(math.isfinite(v) for v in controls.values())


finite = st.floats(-1e300, 1e300)
valid_record = st.fixed_dictionaries(
    {
        "bin_s": st.floats(1e-3, 1e6),
        "tau_s": st.floats(1e-6, 1e9),
        "delay_s": st.floats(0.0, 1e9),
        "bars": st.lists(st.tuples(st.floats(0.0, 1e6), finite, finite, finite), min_size=1, max_size=6).map(
            lambda rows: [list(r) for r in sorted(rows)]
        ),
        "scores": st.lists(st.none() | st.floats(0.0, 1.0), min_size=1, max_size=40).filter(
            lambda v: any(x is not None for x in v)
        ),
    },
    optional={"summarised": st.booleans()},
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(valid_record, min_size=1, max_size=3))
def test_extreme_but_well_formed_records_still_give_music_within_the_bounds(records: Any) -> None:
    policy = bandit()
    policy.load_state_dict({"version": 2, "observations": [], "records": records})
    assert len(policy.past) == len(records)
    for k in range(3):
        policy.observe(Score(4.0 * k, 0.5, 1.0, "scoring"))
        controls = policy.next_controls(k, 4.0 * k)
        assert all(math.isfinite(v) for v in controls.values())
        assert policy.guard.bounds.tempo_min <= controls.tempo <= policy.guard.bounds.tempo_max
