"""The music-responsive listener, the virtual-clock closed loop, the best-fixed-controls search and the
`neuromusic simulate` command (short runs: the full numbers are in benchmarks/policies.py)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from neuromusic.daemon.cli import main
from neuromusic.daemon.config import Config
from neuromusic.daemon.session.simulation import (
    best_fixed,
    load_listener,
    make_composer,
    run_session,
    shipped_listeners,
    time_to_reach,
)
from neuromusic.drivers.listener_response import (
    MusicResponsiveState,
    ResponseConfig,
    appeal,
    fixed_trajectories,
    load_response,
    response_from_table,
)
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Controls
from neuromusic.policies.base import ControlBounds

LIKED = Controls(62.0, 0.7, 0.25)
DISLIKED = Controls(90.0, 0.0, 1.0)


def hidden(config: ResponseConfig, controls: Controls, seconds: float, seed: int = 0) -> np.ndarray:
    state = MusicResponsiveState(config, seed=seed)
    state.hear(controls, 0.0)
    return np.array([state.relaxation(t) for t in np.arange(0.0, seconds, 1.0)])


# -- the listener's response -------------------------------------------------------------------------------------


def test_preferred_music_relaxes_and_disliked_music_does_not() -> None:
    config = ResponseConfig(noise=0.0)
    liked, disliked = hidden(config, LIKED, 300), hidden(config, DISLIKED, 300)
    assert liked[-1] > 0.7 and disliked[-1] < 0.35
    assert appeal(config, LIKED) == pytest.approx(1.0, abs=0.02)


def test_delay_and_time_constant() -> None:
    config = ResponseConfig(noise=0.0, delay_s=10.0, time_constant_s=30.0, habituation_depth=0.0)
    r = hidden(config, LIKED, 200)
    assert r[9] == pytest.approx(config.start)  # nothing before the delay
    # one time constant after the delay: 63 % of the way to the goal
    goal = config.rest + (config.peak - config.rest) * appeal(config, LIKED)
    assert (r[40] - config.start) / (goal - config.start) == pytest.approx(1 - math.exp(-1), abs=0.03)


def test_habituation_wears_the_same_music_out_and_new_music_restores_it() -> None:
    config = ResponseConfig(noise=0.0, habituation_s=60.0, habituation_depth=0.4)
    same = hidden(config, LIKED, 600)
    fresh = hidden(replace(config, habituation_depth=0.0), LIKED, 600)
    assert same[-1] < fresh[-1] - 0.15
    state = MusicResponsiveState(config)
    state.hear(LIKED, 0.0)
    state.relaxation(300.0)
    before = state.habituation
    state.hear(Controls(70.0, 0.4, 0.5), 300.0)
    state.relaxation(320.0)
    assert state.habituation < before


def test_same_seed_same_noise_whatever_the_query_pattern() -> None:
    config = ResponseConfig(noise=0.05)
    a = MusicResponsiveState(config, seed=3)
    b = MusicResponsiveState(config, seed=3)
    a.hear(LIKED, 0.0)
    b.hear(LIKED, 0.0)
    dense = [a.relaxation(t) for t in np.arange(0, 100, 0.05)]
    assert b.relaxation(99.0) == pytest.approx(dense[int(99.0 / 0.05)])
    assert all(0.0 <= x <= 1.0 for x in dense)
    with pytest.raises(ValueError):
        a.hear(LIKED, -10.0)


def test_fixed_trajectories_match_the_state_exactly() -> None:
    config = ResponseConfig()
    grid = np.array([[LIKED.tempo, LIKED.valence, LIKED.energy], [DISLIKED.tempo, DISLIKED.valence, DISLIKED.energy]])
    fast = fixed_trajectories(config, grid, 120.0, seed=5)
    slow = hidden(config, LIKED, 120.5, seed=5)
    assert np.allclose(fast[::2, 0], slow)


def test_response_section_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"response\.preferred_tempo"):
        response_from_table({"preferred_tempo": 500})
    with pytest.raises(ConfigError, match=r"unknown key response\.tempo"):
        response_from_table({"tempo": 60})
    with pytest.raises(ConfigError, match="must be a finite number"):
        response_from_table({"noise": "loud"})
    path = tmp_path / "l.toml"
    path.write_text("[response]\npreferred_valence = 0.2\n")
    assert load_response(path).preferred_valence == 0.2
    with pytest.raises(ConfigError, match="not found"):
        load_response(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "change",
    [
        {"preferred_tempo": 85.0},
        {"preferred_valence": 0.1},
        {"preferred_energy": 0.9},
        {"tempo_width": 4.0},
        {"valence_width": 0.05},
        {"energy_width": 0.05},
        {"rest": 0.1},
        {"peak": 0.5},
        {"start": 0.9},
        {"time_constant_s": 5.0},
        {"delay_s": 30.0},
        {"noise": 0.2},
        {"noise_time_s": 2.0},
        {"habituation_s": 10.0},
        {"habituation_depth": 0.8},
        {"habituation_reset": 2.0},
        {"step_s": 0.25},
    ],
)
def test_every_response_option_changes_the_listener(change: dict[str, float]) -> None:
    def run(config: ResponseConfig) -> list[float]:
        state = MusicResponsiveState(config, seed=1)
        state.hear(Controls(70.0, 0.6, 0.4), 0.0)
        state.hear(Controls(66.0, 0.65, 0.3), 100.0)
        return [round(state.relaxation(t), 6) for t in np.arange(0.0, 200.0, 1.3)]

    assert run(replace(ResponseConfig(noise=0.01), **change)) != run(ResponseConfig(noise=0.01))


def test_shipped_profiles_load_and_some_differ_from_the_mapping() -> None:
    listeners = {p.stem: load_listener(p) for p in shipped_listeners()}
    assert {"default", "upbeat", "melancholic", "slow-responder"} <= set(listeners)
    calm = Config().policy.mapping
    far = [
        name
        for name, lst in listeners.items()
        if abs(lst.response.preferred_tempo - calm.calm_tempo) > 15
        or abs(lst.response.preferred_valence - calm.calm_valence) > 0.4
    ]
    assert set(far) >= {"upbeat", "melancholic"}


# -- the closed loop -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upbeat_mapping():  # type: ignore[no-untyped-def]
    listener = load_listener(next(p for p in shipped_listeners() if p.stem == "upbeat"))
    composer, name = make_composer("sketch", Config(), 0)
    return run_session(Config(), listener, "mapping", 2.0, 0, composer, name)


def test_a_short_session_runs_the_whole_loop(upbeat_mapping) -> None:  # type: ignore[no-untyped-def]
    trace = upbeat_mapping
    assert trace.composer == "sketch"
    assert len(trace.hidden) == 120 and np.all((trace.hidden >= 0) & (trace.hidden <= 1))
    assert np.isnan(trace.score[trace.score_t < 29]).all()  # calibrating during the baseline
    scored = trace.score[trace.score_t > 35]
    assert np.isfinite(scored).all() and ((scored >= 0) & (scored <= 1)).all()
    b = ControlBounds()
    assert (trace.controls[:, 0] >= b.tempo_min).all() and (trace.controls[:, 0] <= b.tempo_max).all()
    assert len(trace.bar_t) > 25 and trace.wall_s < 30  # 2 simulated minutes in well under real time


def test_sessions_are_deterministic_per_seed(upbeat_mapping) -> None:  # type: ignore[no-untyped-def]
    listener = load_listener(next(p for p in shipped_listeners() if p.stem == "upbeat"))
    composer, name = make_composer("sketch", Config(), 0)
    again = run_session(Config(), listener, "mapping", 2.0, 0, composer, name)
    assert np.array_equal(again.hidden, upbeat_mapping.hidden)
    assert np.allclose(again.score, upbeat_mapping.score, equal_nan=True)


def test_the_score_follows_the_hidden_state_in_the_loop() -> None:
    listener = load_listener(shipped_listeners()[0])
    composer, name = make_composer("sketch", Config(), 1)
    trace = run_session(Config(), listener, "bandit", 4.0, 1, composer, name)
    ok = np.isfinite(trace.score)
    truth = np.interp(trace.score_t[ok], trace.hidden_t, trace.hidden)
    assert np.corrcoef(trace.score[ok], truth)[0, 1] > 0.6


def test_best_fixed_finds_the_listeners_preference() -> None:
    response = ResponseConfig(preferred_tempo=80.0, preferred_valence=0.2, preferred_energy=0.7)
    best = best_fixed(response, ControlBounds(), 5.0, [0, 1])
    assert (best.controls.tempo, best.controls.valence, best.controls.energy) == pytest.approx((80, 0.2, 0.7), abs=0.11)
    assert len(best.per_seed) == 2 and best.mean_relaxation == pytest.approx(np.mean(best.per_seed))


def test_time_to_reach_uses_the_one_minute_mean() -> None:
    ramp = np.concatenate([np.zeros(120), np.ones(240)])
    assert time_to_reach(ramp, 1.0, 0.5) == pytest.approx(2.5)
    assert math.isinf(time_to_reach(ramp, 1.0, 1.5))


# -- the command ---------------------------------------------------------------------------------------------------


def test_simulate_command_prints_a_table_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "sim.png"
    code = main(
        [
            "simulate",
            "--listener",
            "melancholic",
            "--compare",
            "mapping,bandit",
            "--minutes",
            "1.5",
            "--composer",
            "sketch",
            "--plot",
            str(png),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "melancholic" in out and "mapping" in out and "bandit" in out and "regret" in out
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--policy", "nope"], "unknown policy"),
        (["--listener", "nobody"], "neither a shipped profile"),
        (["--seeds", "0"], "--seeds"),
        (["--sessions", "0"], "--sessions"),
        (["--minutes", "-1"], "--minutes"),
        (["--target", "3"], "target"),
        (["--plot", "/nonexistent-neuromusic-dir/p.png"], "--plot /nonexistent-neuromusic-dir/p.png: the folder"),
    ],
)
def test_simulate_command_refuses_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--composer", "sketch", *argv]) == 2
    assert message in capsys.readouterr().err


def test_simulate_sessions_carry_what_the_bandit_learned(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            "--listener",
            "upbeat",
            "--policy",
            "bandit",
            "--minutes",
            "1",
            "--sessions",
            "2",
            "--composer",
            "sketch",
        ]
    )
    assert code == 0 and "bandit" in capsys.readouterr().out


# -- the population, the direct loop, scripted tension ----------------------------------------------------------------


def test_the_population_is_reproducible_and_spans_the_documented_ranges() -> None:
    from neuromusic.drivers.listener_population import draw_listener, draw_population

    fifty = draw_population(50, seed=3)
    assert draw_population(5, seed=3) == fifty[:5] and draw_listener(3, 7) == fifty[7]  # independent of n
    assert draw_population(5, seed=4) != fifty[:5]
    tempos = [r.preferred_tempo for r in fifty]
    assert min(tempos) >= 50 and max(tempos) <= 90 and max(tempos) - min(tempos) > 30  # anywhere in the bounds
    for r in fifty:
        assert 20 <= r.time_constant_s <= 120 and 2 <= r.delay_s <= 20 and 8 <= r.tempo_width <= 20
        assert 0.2 <= r.rest <= 0.4 and 0.7 <= r.peak <= 0.9 and 0 <= r.habituation_depth <= 0.3
    with pytest.raises(ValueError):
        draw_population(0)


def test_the_direct_loop_scores_the_hidden_state_without_eeg() -> None:
    from neuromusic.daemon.session.simulation import population_listeners

    listener = population_listeners(1, seed=0)[0]
    trace = run_session(Config(), listener, "mapping", 4.0, 0, None, loop="direct")
    scoring = ~np.isnan(trace.score)
    assert not scoring[trace.score_t < 30].any() and scoring[trace.score_t > 33].all()  # the baseline first
    follow = np.interp(trace.score_t[scoring] - 2.0, trace.hidden_t, trace.hidden)
    assert np.corrcoef(follow, trace.score[scoring])[0, 1] > 0.6  # as the full loop's scores do
    assert trace.composer == "direct" and trace.wall_s < 5.0


def test_stress_responses_measure_meeting_and_leading_back() -> None:
    from neuromusic.daemon.session.stress_check import stress_onsets, stress_responses

    assert stress_onsets("calm:180,stress:120", 600.0) == [(180.0, 300.0), (480.0, 600.0)]
    bar_t = np.arange(0.0, 300.0, 3.0)
    controls = np.tile([60.0, 0.7, 0.2], (len(bar_t), 1))
    k = 180 // 3
    controls[k + 1 : k + 10, 0] = 72.0  # moved at the second bar of the tension, back by its end
    (met,) = stress_responses("calm:180,stress:120", bar_t, controls, 300.0)
    assert met.bars_to_meet == 2 and met.tempo_move == 12.0 and met.led_back
    controls[:, 0] = 60.0
    (never,) = stress_responses("calm:180,stress:120", bar_t, controls, 300.0)
    assert never.bars_to_meet is None and not never.led_back


def test_simulate_a_population_prints_medians_and_the_fraction_served(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--population", "2", "--seed", "1", "--compare", "mapping,bandit", "--minutes", "3"]
    assert main([*argv, "--loop", "direct"]) == 0
    out = capsys.readouterr().out
    assert "2 listeners of population 1" in out and "served" in out and "bandit" in out


def test_simulate_a_script_shows_the_mapping_meeting_each_tension(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--listener", "default", "--script", "calm:120,stress:90", "--policy", "mapping"]
    assert main([*argv, "--minutes", "4", "--loop", "direct"]) == 0
    out = capsys.readouterr().out
    assert "120 s" in out and "bars" in out and "yes" in out


@pytest.mark.parametrize(
    "argv, message", [(["--population", "0"], "--population"), (["--script", "calm:x"], "bad segment")]
)
def test_simulate_refuses_a_bad_population_or_script(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--loop", "direct", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("policy", ["mapping", "target"])
def test_in_the_full_loop_a_tension_is_met_within_four_bars_then_led_back(policy: str) -> None:
    from neuromusic.daemon.session.stress_check import stress_responses

    script = "calm:180,stress:120"
    composer, name = make_composer("sketch", Config(), 0)
    listener = load_listener(shipped_listeners()[0])
    trace = run_session(Config(), listener, policy, 5.0, 0, composer, name, script=script)
    (response,) = stress_responses(script, trace.bar_t, trace.controls, 300.0)
    assert response.bars_to_meet is not None and response.bars_to_meet <= 4, response
    assert response.led_back, response
