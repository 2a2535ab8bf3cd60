"""Policies: registry, the shared guard (bounds, step limits, hysteresis, holding while stale) and each policy's
behaviour. The property tests feed adversarial score streams and check that no policy ever leaves its bounds."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from neuromusic.daemon.config import load_config
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.bounds import ControlGuard, usable
from neuromusic.policies.config import GuardConfig, MappingConfig, PolicyConfig, TargetConfig
from neuromusic.policies.registry import make_policy, policy_names

NAMES = ("mapping", "target", "bandit")
BAR_S = 3.0


def scoring(t: float, value: float | None, confidence: float = 1.0, state: str = "scoring") -> Score:
    return Score(t=t, value=value, confidence=confidence, state=state)  # type: ignore[arg-type]


def drive(policy, values, bar_s: float = BAR_S, per_bar: int = 4):  # type: ignore[no-untyped-def]
    """Feed `per_bar` scores per bar (value from `values(t)`, None = no score at all), return controls per bar."""
    out = []
    t = 0.0
    for bar in range(len(values) if isinstance(values, list) else 60):
        for k in range(per_bar):
            ts = t + k * bar_s / per_bar
            v = values[bar] if isinstance(values, list) else values(ts)
            if v is not None:
                policy.observe(v if isinstance(v, Score) else scoring(ts, v))
        out.append(policy.next_controls(bar, t + bar_s))
        t += bar_s
    return out


def assert_safe(controls: list[Controls], bounds: ControlBounds, start: Controls) -> None:
    previous = start
    for c in controls:
        assert bounds.tempo_min <= c.tempo <= bounds.tempo_max
        assert bounds.valence_min <= c.valence <= bounds.valence_max
        assert bounds.energy_min <= c.energy <= bounds.energy_max
        assert abs(c.tempo - previous.tempo) <= bounds.max_tempo_step + 1e-9
        assert abs(c.valence - previous.valence) <= bounds.max_valence_step + 1e-9
        assert abs(c.energy - previous.energy) <= bounds.max_energy_step + 1e-9
        previous = c


# -- registry ----------------------------------------------------------------------------------------------------


def test_registry_names_and_unknown_name() -> None:
    assert policy_names() == list(NAMES)
    for name in NAMES:
        assert make_policy(name, PolicyConfig()).name == name
    with pytest.raises(ConfigError, match="mapping, target, bandit"):
        make_policy("nope", PolicyConfig())


# -- adversarial score streams -----------------------------------------------------------------------------------

score_values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from([0.0, 1.0, math.nan, -math.inf, 2.0]),
)
score_msgs = st.builds(
    scoring,
    t=st.floats(min_value=-1e3, max_value=1e4, allow_nan=False),
    value=score_values,
    confidence=st.one_of(st.floats(min_value=0.0, max_value=1.0), st.just(math.nan)),
    state=st.sampled_from(["scoring", "calibrating", "stale", "poor-signal"]),
)
narrow = ControlBounds(
    tempo_min=55,
    tempo_max=70,
    valence_min=0.2,
    valence_max=0.6,
    energy_min=0.1,
    energy_max=0.5,
    max_tempo_step=2,
    max_valence_step=0.1,
    max_energy_step=0.05,
)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None)
@given(stream=st.lists(st.lists(score_msgs, max_size=6), min_size=1, max_size=40))
def test_never_leaves_bounds_under_arbitrary_scores(name: str, stream: list[list[Score]]) -> None:
    config = PolicyConfig(bounds=narrow)
    policy = make_policy(name, config)
    start = policy.next_controls(0, 0.0)
    out = []
    for bar, scores in enumerate(stream, start=1):
        for s in scores:
            policy.observe(s)
        out.append(policy.next_controls(bar, bar * BAR_S))
    assert_safe(out, narrow, start)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "stream",
    [
        lambda t: math.nan,  # NaN only
        lambda t: 0.5,  # constant
        lambda t: 0.0 if int(t / 3.0) % 2 else 1.0,  # oscillating bar by bar at full swing
        lambda t: 0.5 + 0.5 * math.sin(t),  # fast oscillation within a bar
        lambda t: 0.9 if t < 30 else None,  # goes stale
        lambda t: 0.1 if t < 40 or t > 120 else None,  # stale gap, then back
    ],
    ids=["nan", "constant", "oscillating", "fast", "stale", "gap"],
)
def test_adversarial_streams_stay_in_bounds(name: str, stream) -> None:  # type: ignore[no-untyped-def]
    config = PolicyConfig()
    policy = make_policy(name, config)
    start = policy.next_controls(0, 0.0)
    assert_safe(drive(policy, stream), config.bounds, start)


@pytest.mark.parametrize("name", NAMES)
def test_holds_last_good_controls_while_stale(name: str) -> None:
    policy = make_policy(name, PolicyConfig())
    t = 0.0
    for bar in range(12):
        for k in range(4):
            policy.observe(scoring(t + k, 0.1))
        policy.next_controls(bar, t + 3)
        t += 3
    held = policy.next_controls(12, t + 3)
    # no score for longer than stale_after_s (10 s): the controls no longer move
    outs = [policy.next_controls(13 + i, t + 20 + 3 * i) for i in range(10)]
    assert all(c == outs[0] for c in outs)
    # poor-confidence scores count as no score
    for i in range(10):
        policy.observe(scoring(t + 60 + i, 0.9, confidence=0.1))
    assert policy.next_controls(30, t + 70) == outs[0]
    assert held is not None


@pytest.mark.parametrize("name", NAMES)
def test_a_policy_taking_over_moves_one_step_from_what_is_playing(name: str) -> None:
    """After a switch or a cleared override the step limits hold from the played controls, not the policy's start."""
    bounds = ControlBounds()
    played = Controls(tempo=90.0, valence=1.0, energy=1.0)  # e.g. where the previous policy or an operator left it
    policy = make_policy(name, PolicyConfig())
    policy.continue_from(played)
    assert_safe(drive(policy, lambda t: 0.3 + 0.01 * t), bounds, played)
    held = make_policy(name, PolicyConfig())
    held.continue_from(played)
    assert held.next_controls(0, 1.0) == played  # no score yet: it holds what is playing
    held.continue_from(Controls(tempo=200.0, valence=0.5, energy=0.5))  # beyond the bounds: clamped into them
    assert held.next_controls(1, 2.0) == Controls(tempo=90.0, valence=0.5, energy=0.5)


def test_poor_signal_and_bad_values_are_not_usable() -> None:
    assert usable(scoring(0, 0.5), 0.3)
    assert not usable(scoring(0, 0.5, confidence=0.2), 0.3)
    assert not usable(scoring(0, math.nan), 0.3)
    assert not usable(scoring(0, 1.5), 0.3)
    assert not usable(scoring(0, None), 0.3)
    assert not usable(scoring(0, 0.5, state="calibrating"), 0.3)


# -- the guard -----------------------------------------------------------------------------------------------------


def test_guard_steps_clamps_and_ignores_non_finite_wishes() -> None:
    guard = ControlGuard(ControlBounds(), GuardConfig(start_tempo=70, start_valence=0.5, start_energy=0.5))
    c = guard.apply(500.0, -3.0, math.nan)
    assert (c.tempo, c.valence, c.energy) == (74.0, 0.25, 0.5)
    for _ in range(20):
        c = guard.apply(500.0, -3.0, math.inf)
    assert (c.tempo, c.valence, c.energy) == (90.0, 0.0, 0.5)


def test_guard_hysteresis_ignores_small_wishes_but_finishes_started_moves() -> None:
    guard = ControlGuard(ControlBounds(), GuardConfig(start_tempo=70, tempo_deadband=1.5))
    assert guard.apply(71.0, 0.5, 0.4).tempo == 70.0  # within the deadband: no flicker
    assert guard.apply(69.0, 0.5, 0.4).tempo == 70.0
    assert guard.apply(76.0, 0.5, 0.4).tempo == 74.0  # a real wish moves at most one step per bar
    assert guard.apply(75.0, 0.5, 0.4).tempo == 75.0  # ... and a started move goes all the way
    without = ControlGuard(ControlBounds(), GuardConfig(start_tempo=70, tempo_deadband=0.0))
    assert without.apply(71.0, 0.5, 0.4).tempo == 71.0


def test_guard_set_bounds_moves_into_narrowed_range_and_rejects_bad_bounds() -> None:
    guard = ControlGuard(ControlBounds(), GuardConfig(start_tempo=80))
    guard.set_bounds(ControlBounds(tempo_min=50, tempo_max=60))
    assert guard.hold().tempo == 60
    with pytest.raises(ValueError, match="tempo bounds"):
        guard.set_bounds(ControlBounds(tempo_min=80, tempo_max=60))


# -- mapping and target ----------------------------------------------------------------------------------------------


def test_mapping_iso_principle_starts_near_a_tense_listener_then_leads_to_calm() -> None:
    config = PolicyConfig(guard=GuardConfig(start_tempo=84, start_valence=0.4, start_energy=0.65))
    policy = make_policy("mapping", config)
    out = drive(policy, lambda t: 0.1)
    m = config.mapping
    assert out[0].tempo > 80  # the first bars match the tense listener
    assert (out[-1].tempo, out[-1].energy) == (m.calm_tempo, m.calm_energy)
    assert out[-1].valence == pytest.approx(m.calm_valence, abs=0.05)


def test_mapping_iso_bars_sets_how_fast_it_leads() -> None:
    fast = drive(make_policy("mapping", PolicyConfig(mapping=MappingConfig(iso_bars=4))), lambda t: 0.1)
    slow = drive(make_policy("mapping", PolicyConfig(mapping=MappingConfig(iso_bars=40))), lambda t: 0.1)
    assert fast[12].tempo < slow[12].tempo


def test_mapping_anchor_options_move_the_music() -> None:
    policy = make_policy("mapping", PolicyConfig(mapping=MappingConfig(calm_tempo=80, calm_valence=0.2)))
    out = drive(policy, lambda t: 0.9)
    assert out[-1].tempo == pytest.approx(80, abs=1.5)  # within the hysteresis deadband
    assert out[-1].valence == pytest.approx(0.2, abs=0.05)


def test_target_pushes_while_below_and_eases_off_once_reached() -> None:
    config = PolicyConfig(target=0.8)
    below = make_policy("target", config)
    out = drive(below, lambda t: 0.3)
    assert out[-1].tempo == config.mapping.calm_tempo  # full calming push
    reached = make_policy("target", config)
    out = drive(reached, lambda t: 0.8)
    assert reached.intensity < 0.8  # type: ignore[attr-defined]  # eased off from the start point 0.8
    assert out[-1].tempo > config.mapping.calm_tempo


def test_target_set_target_and_options_change_behaviour() -> None:
    policy = make_policy("target", PolicyConfig(target=0.5))
    drive(policy, lambda t: 0.5)
    eased = policy.intensity  # type: ignore[attr-defined]
    policy.set_target(0.95)  # type: ignore[attr-defined]
    drive(policy, lambda t: 0.5)
    assert policy.intensity > eased  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        policy.set_target(1.5)  # type: ignore[attr-defined]
    gentle = make_policy("target", PolicyConfig(target_controller=TargetConfig(gain=0.01)))
    strong = make_policy("target", PolicyConfig(target_controller=TargetConfig(gain=0.5)))
    assert drive(gentle, lambda t: 0.3)[10].tempo > drive(strong, lambda t: 0.3)[10].tempo


def calm_then_stress(t: float) -> float:
    """Calm for 3 minutes (the lead-in is over), then tense for 2."""
    return 0.8 if t < 180.0 else 0.05


@pytest.mark.parametrize("name", ["mapping", "target"])
def test_a_tension_after_the_lead_in_is_met_within_four_bars_then_led_back(name: str) -> None:
    # target 0.9: the calm listener is still below it, so the target policy plays calm music before the tension
    policy = make_policy(name, PolicyConfig(target=0.9))
    out = _drive_for(policy, 100)
    onset = int(180.0 // BAR_S)
    before = out[onset - 1]
    met = [
        k
        for k in range(onset, onset + 4)
        if out[k].tempo - before.tempo >= 6.0
        or out[k].energy - before.energy >= 0.15
        or before.valence - out[k].valence >= 0.15
    ]
    assert met, out[onset - 1 : onset + 4]
    peak = max(c.tempo for c in out[onset:])
    assert out[-1].tempo - before.tempo <= 0.5 * (peak - before.tempo)  # then it leads back toward calm


def _drive_for(policy, bars: int):  # type: ignore[no-untyped-def]
    out = []
    for bar in range(bars):
        t = bar * BAR_S
        for k in range(8):
            ts = t + k * BAR_S / 8
            policy.observe(scoring(ts, calm_then_stress(ts)))
        out.append(policy.next_controls(bar, t + BAR_S))
    return out


@pytest.mark.parametrize("name", ["mapping", "target"])
def test_reiso_drop_zero_keeps_the_old_open_loop_behaviour(name: str) -> None:
    policy = make_policy(name, PolicyConfig(mapping=MappingConfig(reiso_drop=0.0)))
    out = _drive_for(policy, 100)
    onset = int(180.0 // BAR_S)
    assert all(c.tempo - out[onset - 1].tempo < 6.0 for c in out[onset : onset + 4])


def test_reiso_reference_s_sets_how_slow_a_fall_still_counts() -> None:
    def slow_fall(t: float) -> float:  # a fall of 0.6 over two minutes
        return 0.8 if t < 180.0 else max(0.2, 0.8 - 0.6 * (t - 180.0) / 120.0)

    def fired(reference_s: float) -> int:
        policy = make_policy("mapping", PolicyConfig(mapping=MappingConfig(reiso_reference_s=reference_s)))
        for k in range(int(320 / 0.5)):
            policy.observe(scoring(k * 0.5, slow_fall(k * 0.5)))
        return policy.tension.fired  # type: ignore[attr-defined]

    assert fired(120.0) >= 1 and fired(5.0) == 0


# -- configuration ---------------------------------------------------------------------------------------------------


def test_policy_config_loads_from_toml_and_rejects_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[policy]\nname = 'bandit'\ntarget = 0.7\n[policy.bounds]\ntempo_min = 55.0\n"
        "[policy.guard]\nstale_after_s = 5.0\n[policy.mapping]\niso_bars = 8\n"
        "[policy.bandit]\ndwell_s = 20.0\nexplore = 0.8\n[policy.target_controller]\ngain = 0.1\n"
    )
    config = load_config(path).policy
    assert (config.name, config.target, config.bounds.tempo_min) == ("bandit", 0.7, 55.0)
    assert (config.guard.stale_after_s, config.mapping.iso_bars, config.bandit.dwell_s) == (5.0, 8, 20.0)
    for bad, match in [
        ("[policy]\ntarget = 2.0", "target"),
        ("[policy.bounds]\ntempo_min = 95.0", "tempo bounds"),
        ("[policy.bandit]\ndwell_s = 0.0", "dwell_s"),
        ("[policy.guard]\nmin_confidence = 3.0", "min_confidence"),
        ("[policy.mapping]\niso_bars = 0", "iso_bars"),
        ("[policy.bandit]\nwobble = 1", "wobble"),
        ('[policy.bandit]\nfresh_choice = "greedy"', "fresh_choice"),
        ("[policy.bandit]\nslow_tau_s = -1.0", "slow_tau_s"),
    ]:
        path.write_text(bad)
        with pytest.raises(ConfigError, match=match):
            load_config(path)


@pytest.mark.parametrize(
    "change",
    [
        {"min_confidence": 0.95},
        {"stale_after_s": 1.0},
        {"smoothing_s": 60.0},
        {"valence_deadband": 0.3},
        {"energy_deadband": 0.3},
        {"start_tempo": 60.0},
        {"start_valence": 0.9},
        {"start_energy": 0.9},
    ],
)
def test_every_guard_option_changes_behaviour(change: dict[str, float]) -> None:
    def run(guard: GuardConfig) -> list[Controls]:
        def stream(t: float) -> Score | None:
            if 40 < t < 60:
                return None  # a gap, for stale_after_s
            return scoring(t, 0.2 + 0.75 * (t > 15), confidence=0.9)

        config = PolicyConfig(guard=guard, target_controller=TargetConfig(gain=1.0))
        return drive(make_policy("target", config), stream, per_bar=8)

    assert run(replace(GuardConfig(), **change)) != run(GuardConfig())
