"""The bandit policy: learns the preferred music of a synthetic listener, keeps exploration bounded, measures
rewards honestly (stale windows dropped), and carries what it learned into the next session."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.bandit import BanditPolicy
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.config import BanditConfig, PolicyConfig

PREFERRED = (82.0, 0.85, 0.6)  # far from the bandit's start (72, 0.5, 0.4) and from the mapping's calm anchor


def goal(c: Controls, preferred: tuple[float, float, float] = PREFERRED) -> float:
    z = ((c.tempo - preferred[0]) / 14) ** 2 + ((c.valence - preferred[1]) / 0.35) ** 2
    z += ((c.energy - preferred[2]) / 0.3) ** 2
    return 0.3 + 0.5 * math.exp(-0.5 * z)


def listen(
    policy: BanditPolicy,
    minutes: float,
    seed: int = 0,
    tau: float = 25.0,
    gap: tuple[float, float] | None = None,
    goal_of=goal,  # type: ignore[no-untyped-def]
) -> list[Controls]:
    """A synthetic listener: the score follows goal(controls) with time constant tau, plus noise, 4 scores/s."""
    rng = np.random.default_rng(seed)
    s, t, bar, played = 0.4, 0.0, 0, []
    while t < minutes * 60:
        c = policy.next_controls(bar, t)
        played.append(c)
        end = t + 240.0 / c.tempo
        while t < end:
            s += (goal_of(c) - s) * (1 - math.exp(-0.25 / tau))
            if gap is None or not gap[0] <= t <= gap[1]:
                policy.observe(Score(t, float(np.clip(s + 0.02 * rng.standard_normal(), 0, 1)), 1.0, "scoring"))
            t += 0.25
        bar += 1
    return played


def bandit(**changes: object) -> BanditPolicy:
    return BanditPolicy(PolicyConfig(name="bandit", bandit=replace(BanditConfig(), **changes)))  # type: ignore[arg-type]


def test_learns_a_preference_far_from_where_it_starts() -> None:
    policy = bandit()
    played = listen(policy, minutes=15)
    best = policy.best_arm()
    assert abs(best.tempo - PREFERRED[0]) <= 10
    assert abs(best.valence - PREFERRED[1]) <= 0.25
    assert abs(best.energy - PREFERRED[2]) <= 0.25
    late = played[-40:]  # what it plays at the end: mostly near the preference
    assert np.mean([goal(c) for c in late]) > 0.3 + 0.5 * 0.7


def test_rewards_are_the_level_the_score_heads_to() -> None:
    # every setting leads to 0.7; starting at 0.4 with a slow listener the raw change in score would say ~+0.2
    policy = bandit(response_tau_s=25.0, lag_s=0.0)
    listen(policy, minutes=4, goal_of=lambda c: 0.7)
    rewards = [o[3] for o in policy.observations]
    assert rewards and abs(float(np.median(rewards)) - 0.7) < 0.05


def test_it_starts_with_the_mappings_calm_music_and_keeps_it_for_a_listener_who_likes_it() -> None:
    policy = bandit()
    calm = PolicyConfig().mapping
    policy.observe(Score(30.0, 0.5, 1.0, "scoring"))
    policy.next_controls(0, 30.0)
    assert policy._arm == Controls(calm.calm_tempo, calm.calm_valence, calm.calm_energy)
    mapping_like = (calm.calm_tempo, calm.calm_valence, calm.calm_energy)
    played = listen(policy, minutes=10, goal_of=lambda c: goal(c, mapping_like))
    # the prior's favourite is good for this listener: most of the session stays close to it
    near = [abs(c.tempo - 60) <= 10 and abs(c.valence - 0.7) <= 0.25 and abs(c.energy - 0.2) <= 0.25 for c in played]
    assert np.mean(near) > 0.6


def test_arms_are_cell_centres_and_refinement_adds_settings_around_the_best() -> None:
    policy = bandit()
    arms = policy.arms()
    assert len(arms) == 125
    assert sorted(set(arms[:, 0])) == pytest.approx([54.0, 62.0, 70.0, 78.0, 86.0])
    assert sorted(set(arms[:, 1])) == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])
    assert len(policy.candidate_arms()) == 126  # no observations yet: the grid and the mapping's calm music
    policy.observations = [(78.0, 0.9, 0.5, 0.8, 0.01), (54.0, 0.1, 0.1, 0.3, 0.01)]
    refined = policy.candidate_arms()
    assert len(refined) > 126
    assert any(abs(a[0] - 82.0) < 1e-6 and abs(a[1] - 1.0) < 1e-6 for a in refined)  # half a step toward the edge
    assert refined[:, 0].max() <= 90.0 and refined[:, 1].max() <= 1.0


def test_a_flat_prior_starts_wherever_thompson_sampling_says() -> None:
    policy = bandit(prior_bump=0.0, max_jump=0.2)
    policy.observe(Score(30.0, 0.5, 1.0, "scoring"))
    policy.next_controls(0, 30.0)
    assert policy._arm is not None
    start = np.array([72.0, 0.5, 0.4])
    arm = np.array([policy._arm.tempo, policy._arm.valence, policy._arm.energy])
    assert np.sqrt((((arm - start) / np.array([40.0, 1.0, 1.0])) ** 2).sum()) <= 0.2 + 1e-9


def test_exploration_is_bounded_by_max_jump() -> None:
    policy = bandit(max_jump=0.3)
    listen(policy, minutes=8)
    arms = np.array([o[:3] for o in policy.observations])
    steps = np.sqrt((((arms[1:] - arms[:-1]) / np.array([40.0, 1.0, 1.0])) ** 2).sum(axis=1))
    assert steps.max() <= 0.3 + 1e-9


def test_a_stale_window_is_dropped_not_learned_from() -> None:
    with_gap = bandit(dwell_s=20.0)
    listen(with_gap, minutes=3, gap=(60.0, 100.0))
    without = bandit(dwell_s=20.0)
    listen(without, minutes=3)
    assert len(with_gap.observations) < len(without.observations)


def test_state_round_trips_through_json_and_the_next_session_starts_from_it() -> None:
    first = bandit()
    listen(first, minutes=10)
    state = json.loads(json.dumps(first.state_dict()))
    second = bandit()
    second.load_state_dict(state)
    assert len(second.observations) == len(first.observations)
    assert second.observations[0][4] == pytest.approx(first.observations[0][4] * BanditConfig().carry_noise_factor)
    # before any score: hold; at the first usable score it heads straight for the best setting it knows
    second.observe(Score(30.0, 0.5, 1.0, "scoring"))
    second.next_controls(0, 30.0)
    assert second._arm == second.best_arm()


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"version": 99},
        {"version": 1, "observations": [[1, 2]]},
        {"version": 1, "observations": [[1, 2, 3, 4, -1]]},
        {"version": 1, "observations": [[math.nan, 0.5, 0.5, 0.5, 0.1]]},
    ],
)
def test_bad_state_is_refused(state: dict) -> None:  # type: ignore[type-arg]
    policy = bandit()
    with pytest.raises(ValueError):
        policy.load_state_dict(state)
    assert policy.observations == []


def test_new_bounds_make_it_choose_again_inside_them() -> None:
    policy = bandit()
    listen(policy, minutes=2)
    arm = policy._arm
    policy.set_bounds(policy.guard.bounds)  # unchanged bounds (the player calls this on any control change)
    assert policy._arm is arm
    narrow = ControlBounds(tempo_min=50, tempo_max=60, valence_max=0.3)
    policy.set_bounds(narrow)
    played = listen(policy, minutes=2)
    assert all(50 <= c.tempo <= 60 and c.valence <= 0.3 for c in played)


@pytest.mark.parametrize(
    "change",
    [
        {"dwell_s": 40.0},
        {"measure_ramp": False},
        {"switch_margin": 0.3},
        {"lag_s": 15.0},
        {"response_tau_s": 10.0},
        {"tempo_points": 3},
        {"valence_points": 2},
        {"energy_points": 9},
        {"length_scale": 0.1},
        {"additive": 0.0},
        {"prior_var": 0.5},
        {"quadratic_var": 0.0},
        {"noise_var": 0.2},
        {"explore": 2.0},
        {"explore_halving": 0.5},
        {"max_jump": 0.2},
        {"prior_bump": 0.0},
        {"refine": False},
        {"seed": 7},
    ],
)
def test_every_bandit_option_changes_behaviour(change: dict[str, object]) -> None:
    baseline = listen(bandit(), minutes=5)
    assert listen(bandit(**change), minutes=5) != baseline


def test_max_observations_and_carry_noise_factor() -> None:
    policy = bandit(max_observations=3)
    listen(policy, minutes=5)
    assert len(policy.observations) == 3
    state = policy.state_dict()
    louder = bandit(carry_noise_factor=5.0)
    louder.load_state_dict(state)
    assert louder.observations[0][4] == pytest.approx(state["observations"][0][4] * 5.0)
