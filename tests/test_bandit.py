"""The bandit: tours the whole box first, learns the listener's delay and time constant and where its preferred music
lies, returns to the best music when the score falls for long, and carries what it learned into the next session."""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import replace

import numpy as np
import pytest
from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.bandit import BanditPolicy
from neuromusic.policies.base import ControlBounds
from neuromusic.policies.config import BanditConfig, PolicyConfig
from neuromusic.policies.peak_model import PeakModel, PeakPrior
from neuromusic.policies.response_model import Features, ResponseModel

PREFERRED = (84.0, 0.15, 0.8)  # fast, minor, energetic: the opposite corner from the mapping's calm music


def goal(c: Controls, preferred: tuple[float, float, float] = PREFERRED) -> float:
    z = ((c.tempo - preferred[0]) / 12) ** 2 + ((c.valence - preferred[1]) / 0.3) ** 2
    z += ((c.energy - preferred[2]) / 0.3) ** 2
    return 0.3 + 0.5 * math.exp(-0.5 * z)


def listen(
    policy: BanditPolicy,
    minutes: float,
    seed: int = 0,
    tau: float = 30.0,
    delay: float = 5.0,
    goal_of=goal,  # type: ignore[no-untyped-def]
    t0: float = 0.0,
) -> tuple[list[Controls], list[float]]:
    """A synthetic listener: the score follows goal(controls heard `delay` s ago) with time constant tau, plus noise,
    4 scores/s. Returns the controls of every bar and the score every second."""
    rng = np.random.default_rng(seed)
    s, t, bar = 0.4, t0, 0
    played: list[Controls] = []
    heard: deque[tuple[float, Controls]] = deque()
    scores: list[float] = []
    current: Controls | None = None
    while t < t0 + minutes * 60:
        c = policy.next_controls(bar, t)
        played.append(c)
        heard.append((t + delay, c))
        end = t + 240.0 / c.tempo
        while t < end:
            while heard and heard[0][0] <= t:
                current = heard.popleft()[1]
            target = goal_of(current) if current is not None else 0.3
            s += (target - s) * (1 - math.exp(-0.25 / tau))
            value = float(np.clip(s + 0.02 * rng.standard_normal(), 0, 1))
            policy.observe(Score(t, value, 1.0, "scoring"))
            if abs(t - round(t)) < 0.125:
                scores.append(value)
            t += 0.25
        bar += 1
    return played, scores


def bandit(**changes: object) -> BanditPolicy:
    return BanditPolicy(PolicyConfig(name="bandit", bandit=replace(BanditConfig(), **changes)))  # type: ignore[arg-type]


def test_the_opening_tours_the_whole_box_starting_with_the_calm_music() -> None:
    policy = bandit()
    calm = PolicyConfig().mapping
    policy.observe(Score(0.0, 0.5, 1.0, "scoring"))
    policy.next_controls(0, 0.0)
    assert policy._arm == Controls(calm.calm_tempo, calm.calm_valence, calm.calm_energy)
    listen(policy, minutes=5, goal_of=lambda c: 0.5)
    opening = np.array([[a.tempo, a.valence, a.energy] for a in policy._chosen[: policy.cfg.opening_points]])
    assert len({tuple(row) for row in opening}) == policy.cfg.opening_points
    unit = (opening - [50.0, 0.0, 0.0]) / [40.0, 1.0, 1.0]
    gaps = [np.linalg.norm(a - b) for i, a in enumerate(unit) for b in unit[i + 1 :]]
    assert min(gaps) >= 0.5  # far apart: the tour covers the box, not the neighbourhood of the calm music
    spans = unit.max(axis=0) - unit.min(axis=0)
    assert (spans >= 0.5).all()  # every axis from a quarter to three quarters of its range, or further


def test_finds_a_preference_in_the_far_corner_and_stays_near_it() -> None:
    policy = bandit()
    played, _ = listen(policy, minutes=15, tau=40.0, delay=10.0)
    best = policy.best_arm()
    assert abs(best.tempo - PREFERRED[0]) <= 8 and abs(best.valence - PREFERRED[1]) <= 0.2
    assert abs(best.energy - PREFERRED[2]) <= 0.2
    late = played[-60:]  # the last few minutes: mostly near the preference
    assert np.mean([goal(c) for c in late]) > 0.3 + 0.5 * 0.75


@pytest.mark.parametrize("tau, delay", [(25.0, 4.0), (90.0, 16.0)])
def test_it_learns_the_listeners_delay_and_time_constant(tau: float, delay: float) -> None:
    policy = bandit()
    listen(policy, minutes=12, tau=tau, delay=delay)
    assert policy._dynamics is not None
    fitted_tau, fitted_delay = policy._dynamics
    assert tau / 1.6 <= fitted_tau <= tau * 1.6, policy._dynamics
    assert abs(fitted_delay - delay) <= 5.0, policy._dynamics


def test_the_steady_state_is_predicted_before_the_score_reaches_it() -> None:
    # one setting heard for 60 s by a slow listener (tau 90 s): the score has covered half of its way, the model
    # at the right dynamics says where it is heading
    features = Features()
    model = ResponseModel(features, 0.0004, (90.0,), (6.0,), 3.0)
    rng = np.random.default_rng(1)
    bin_t = np.arange(0.0, 60.0, 3.0) + 1.5
    level = 0.8 - 0.4 * np.exp(-np.clip(bin_t - 6.0, 0, None) / 90.0)  # 0.4 heading to 0.8
    bin_y = level + 0.005 * rng.standard_normal(len(bin_t))
    x = np.array([[0.5, 0.5, 0.5]])
    fit = model.fit(np.array([0.0]), features(x), bin_t, bin_y, np.ones(len(bin_t), dtype=bool), 90.0, 6.0)
    c, s0 = fit.mean[0] + 0.5, fit.mean[1]
    steady = c + float(features(x)[0] @ fit.weights_mean())
    assert bin_y[-1] < 0.65 and abs(steady - 0.8) < 0.06 and abs(c + s0 - 0.4) < 0.06


def test_the_comfort_guard_returns_to_the_best_music_when_the_score_falls_for_long() -> None:
    # energetic music tenses this listener; the opening holds each setting for long, so without the guard the
    # music would stay on the tensing probe
    def tensing(c: Controls) -> float:
        return 0.15 if c.energy > 0.6 else 0.75

    def time_low(policy: BanditPolicy) -> tuple[int, int]:
        _, scores = listen(policy, minutes=8, tau=15.0, delay=3.0, goal_of=tensing)
        return policy.comfort_returns, sum(1 for s in scores if s < 0.4)

    returns, low_s = time_low(bandit(opening_dwell_s=300.0))
    _, low_without = time_low(bandit(opening_dwell_s=300.0, comfort_drop=1.0))
    assert returns >= 1 and low_s < 0.6 * low_without


def test_hold_while_stale_keeps_the_played_music() -> None:
    policy = bandit()
    listen(policy, minutes=2)
    held = policy.guard.current
    assert all(policy.next_controls(1000 + k, 1000.0 + 4 * k) == held for k in range(5))


def test_state_round_trips_through_json_and_the_next_session_starts_from_it() -> None:
    first = bandit()
    listen(first, minutes=12, tau=30.0, delay=6.0)
    state = json.loads(json.dumps(first.state_dict()))
    assert state["version"] == 2 and state["observations"] and state["tau_s"] > 0
    second = bandit(seed=1)
    second.load_state_dict(state)
    assert second._opening == []  # no tour: it knows this listener
    assert [o[3] for o in second.observations] == [row[3] for row in state["observations"]]
    assert second.observations[0][4] == pytest.approx(state["observations"][0][4] * second.cfg.carry_noise_factor)
    second.observe(Score(0.0, 0.5, 1.0, "scoring"))
    second.next_controls(0, 0.0)
    assert second._arm is not None and goal(second._arm) > 0.3 + 0.5 * 0.6  # starts near the preference


def test_a_second_session_from_the_profile_does_better_than_the_first() -> None:
    first = bandit()
    played_first, _ = listen(first, minutes=8, tau=40.0, delay=8.0)
    second = bandit(seed=1)
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    played_second, _ = listen(second, minutes=8, tau=40.0, delay=8.0, seed=1)
    assert np.mean([goal(c) for c in played_second]) > np.mean([goal(c) for c in played_first]) + 0.05


def test_version_1_state_is_read() -> None:
    policy = bandit()
    policy.load_state_dict({"version": 1, "observations": [[80.0, 0.2, 0.7, 0.9, 0.01]] * 3})
    assert len(policy.observations) == 3 and policy.observations[0][4] == pytest.approx(0.02)


@pytest.mark.parametrize(
    "state",
    [
        {"version": 99},
        {"version": 2, "observations": [[1, 2, 3]]},
        {"version": 2, "observations": [[60, 0.5, 0.5, float("nan"), 0.1]]},
        {"version": 2, "observations": [[60, 0.5, 0.5, 0.5, 0.0]]},
        "not a dict",
    ],
)
def test_bad_state_is_refused(state: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        bandit().load_state_dict(state)


def test_new_bounds_make_it_choose_again_inside_them() -> None:
    policy = bandit()
    listen(policy, minutes=3)
    narrow = ControlBounds(tempo_min=60.0, tempo_max=70.0, valence_min=0.3, valence_max=0.6)
    policy.set_bounds(narrow)
    played, _ = listen(policy, minutes=3, t0=180.0)
    for c in played:
        assert 60.0 <= c.tempo <= 70.0 and 0.3 <= c.valence <= 0.6


@pytest.mark.parametrize(
    "change",
    [
        {"opening_points": 2},
        {"opening_dwell_s": 40.0},
        {"dwell_s": 60.0},
        {"fresh_choice": "draw"},
        {"slow_tau_s": 150.0},
        {"noise_var": 0.05},
        {"max_delay_s": 5.0},
        {"seed": 5},
        {"model": "bumps"},
        {"model": "bumps", "explore": 3.0},
        {"model": "bumps", "candidate_points": 3},
        {"model": "bumps", "refine": False},
        {"model": "bumps", "switch_margin": 0.2},
        {"model": "bumps", "bump_width": 0.5},
    ],
)
def test_every_bandit_option_changes_behaviour(change: dict[str, object]) -> None:
    base_changes = {"model": "bumps"} if len(change) > 1 else {}
    key = str(base_changes)
    if key not in _BASE:
        _BASE[key] = listen(bandit(**base_changes), minutes=8, goal_of=flat)[0]
    changed, _ = listen(bandit(**change), minutes=8, goal_of=flat)
    assert changed != _BASE[key]


_BASE: dict[str, list[Controls]] = {}  # the default bandit's sessions (peak and bump model), shared by the tests


def test_max_observations_keeps_the_newest() -> None:
    policy = bandit(max_observations=2)
    rows = [[60.0 + k, 0.5, 0.5, 0.1 * k, 0.01] for k in range(4)]
    policy.load_state_dict({"version": 2, "observations": rows})
    assert [o[0] for o in policy.observations] == [62.0, 63.0]


def flat(c: Controls) -> float:
    """A listener indifferent to the music: every choice after the opening is the posterior's draw."""
    return 0.5


def test_a_returning_listener_hears_the_best_carried_music_from_the_first_bar() -> None:
    first = bandit()
    listen(first, minutes=10, tau=30.0, delay=6.0)
    state = json.loads(json.dumps(first.state_dict()))
    returning, fresh = bandit(seed=1), bandit(seed=1)
    returning.load_state_dict(state)
    start = fresh.next_controls(0, 0.0)
    # no score yet (the scorer is still calibrating): the fresh bandit holds, the returning one moves toward its best
    assert all(fresh.next_controls(k, 4.0 * k) == start for k in range(1, 6))
    heard = [returning.next_controls(k, 4.0 * k) for k in range(12)]
    assert heard[-1] != start and goal(heard[-1]) > goal(start) + 0.1
    assert returning._arm is not None and goal(returning._arm) > 0.3 + 0.5 * 0.6


class _DistancesNoted(BanditPolicy):
    """Notes how far each choice after the tour lies from the preference model's best estimate when it is made."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__(config)
        self.distances: list[float] = []

    def _choose(self) -> None:
        super()._choose()
        if self.listener.peak.log_post.any() and len(self._chosen) > 1 and not self._opening:
            assert self._arm is not None
            # the largest difference on any axis from the preference model's best estimate, in units of the bounds
            unit = self.listener.unit(np.array([self._arm.values()]))[0]
            self.distances.append(float(np.abs(unit - self.listener.peak.best()).max()))


def test_fresh_choice_best_plays_near_the_best_estimate_until_a_profile_is_carried() -> None:
    def noted(seed: int, **changes: object) -> _DistancesNoted:
        config = replace(BanditConfig(), seed=seed, **changes)  # type: ignore[arg-type]
        return _DistancesNoted(PolicyConfig(name="bandit", bandit=config))

    half_cell = 0.5 / (PeakPrior().points - 1)
    drawing, best = noted(0, fresh_choice="draw"), noted(0, fresh_choice="best")
    listen(drawing, minutes=12, goal_of=flat)
    listen(best, minutes=12, goal_of=flat)
    tour = best.cfg.opening_points - 1
    assert len(best.distances) > tour + 3
    assert max(drawing.distances[tour:]) > 3 * half_cell  # Thompson draws wander over a broad posterior
    assert max(best.distances[tour:]) <= half_cell + 1e-9  # the best estimate, moved within a cell
    returning = noted(1, fresh_choice="best")
    returning.load_state_dict(json.loads(json.dumps(best.state_dict())))
    listen(returning, minutes=12, goal_of=flat, seed=1)
    assert max(returning.distances[1:]) > 3 * half_cell  # with a profile carried, draws again


def test_fresh_choice_auto_plays_the_best_estimate_only_for_a_slow_listener() -> None:
    def session(tau: float, **changes: object) -> _DistancesNoted:
        config = replace(BanditConfig(), **changes)  # type: ignore[arg-type]
        policy = _DistancesNoted(PolicyConfig(name="bandit", bandit=config))
        listen(policy, minutes=12, tau=tau)
        return policy

    half_cell = 0.5 / (PeakPrior().points - 1)
    slow, slow_drawing = session(110.0), session(110.0, fresh_choice="draw")
    assert slow.cfg.fresh_choice == "auto"  # the default
    assert slow.listener.dynamics is not None and slow.listener.dynamics[0] > slow.cfg.slow_tau_s
    tour = slow.cfg.opening_points - 1
    assert len(slow.distances) > tour + 3
    assert max(slow.distances[tour:]) <= half_cell + 1e-9  # the best estimate, moved within a cell
    assert max(slow_drawing.distances[tour:]) > 3 * half_cell
    # a slow listener by a higher threshold is not slow: draws, the very same as "draw"
    assert session(110.0, slow_tau_s=150.0)._chosen == slow_drawing._chosen
    # a fast listener gets the same draws as with "draw"
    assert session(25.0)._chosen == session(25.0, fresh_choice="draw")._chosen


def _on_grid(unit: np.ndarray, points: int = PeakPrior().points) -> np.ndarray:
    steps = unit * (points - 1)
    return np.all(np.abs(steps - np.round(steps)) < 1e-9, axis=-1)


def test_peak_draws_are_grid_centres_or_points_within_the_drawn_cell() -> None:
    model = PeakModel(PeakPrior(), noise_var=0.0016, bin_s=3.0)
    model.log_post = np.full(len(model.centres), -math.log(len(model.centres)))  # the prior: every centre alike
    rng = np.random.default_rng(3)
    plain = np.array([model.draw(rng) for _ in range(200)])
    refined = np.array([model.draw(rng, within_cell=True) for _ in range(200)])
    assert _on_grid(plain).all()
    assert not _on_grid(refined).any()
    assert refined.min() >= 0.0 and refined.max() <= 1.0
    half = 0.5 / (PeakPrior().points - 1)
    nearest = np.round(refined / (2 * half)) * (2 * half)
    assert np.abs(refined - nearest).max() <= half + 1e-12


def test_a_returning_listeners_draws_are_refined_within_their_cells() -> None:
    first = bandit(fresh_choice="draw")  # a first session that draws (a fitted time constant may pass slow_tau_s)
    listen(first, minutes=10, tau=30.0, delay=6.0)
    fresh_draws = first.listener.unit(np.array([c.values() for c in first._chosen[first.cfg.opening_points :]]))
    second = bandit(seed=1)
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    listen(second, minutes=6, tau=30.0, delay=6.0, seed=1)
    returning_draws = second.listener.unit(np.array([c.values() for c in second._chosen[1:]]))
    assert len(returning_draws) >= 3
    assert _on_grid(fresh_draws).mean() > 0.5  # a first session draws grid centres (bar comfort returns)
    assert not _on_grid(returning_draws).any()


def test_the_preference_model_integrates_the_dynamics_out_over_the_given_ones() -> None:
    policy = bandit()
    listen(policy, minutes=6, tau=30.0, delay=6.0)
    model, record = policy.listener.peak, policy.record
    bar_t, bar_unit = np.array(record.bar_t), policy.listener.unit(np.array(record.bar_x))
    data = (bar_t, bar_unit, *record.binned())
    pairs = policy.listener.neighbours(30.0, 6.0)
    assert len(pairs) == 9 and len(set(pairs)) == 9
    singles = [model._log_evidence(*model._stats(*data, tau, delay)) for tau, delay in pairs]
    expected = np.logaddexp.reduce(singles, axis=0)
    expected -= expected.max()
    expected -= math.log(np.exp(expected).sum())
    assert np.allclose(model.fit(*data, pairs), expected)
    # one (tau, delay) alone gives another posterior than the nine together
    alone = model.fit(*data, pairs[4:5])
    assert np.allclose(alone, singles[4] - singles[4].max() - math.log(np.exp(singles[4] - singles[4].max()).sum()))
    assert not np.allclose(alone, expected)


def test_the_evidence_in_closed_form_equals_the_full_three_by_three_system() -> None:
    policy = bandit()
    listen(policy, minutes=4, tau=30.0, delay=6.0)
    model, record = policy.listener.peak, policy.record
    xtx, xty = model._stats(
        np.array(record.bar_t), policy.listener.unit(np.array(record.bar_x)), *record.binned(), 30.0, 6.0
    )
    full = xtx.copy()
    full[:, 1, 0], full[:, 2, 0], full[:, 2, 1] = full[:, 0, 1], full[:, 0, 2], full[:, 1, 2]
    p = model.prior
    prec0 = np.array([1 / p.nuisance_sd**2, 1 / p.nuisance_sd**2, 1 / p.amplitude_sd**2])
    precision = full + np.diag(prec0)
    b = xty + prec0 * np.array([0.0, 0.0, p.amplitude])
    mean = np.linalg.solve(precision, b[:, :, None])[:, :, 0]
    reference = 0.5 * ((b * mean).sum(axis=1) - np.linalg.slogdet(precision)[1])
    assert np.allclose(model._log_evidence(xtx, xty), reference, rtol=1e-9, atol=1e-6)
