"""The whole closed loop on a virtual clock, faster than real time, with no audio device.

    simulated EEG (the listener's hidden relaxation follows the music it hears)
      -> signal stage (features, score) -> policy -> composer -> arranger -> what the listener hears

The full loop ("eeg", eeg_loop.py) is the live session's: its signal stage, policy runner and bar loop, on a virtual
clock that generates the listener's EEG as time moves on; the listener hears each bar at its mean tempo (the
arranger's ramp). Nothing sleeps: the clock jumps from bar to bar. The "direct" loop (direct_loop.py) draws the scores
straight from the hidden state, for many listeners. The hidden state, the scores and the controls are recorded for
the report and the plot. `best_fixed` finds the best fixed controls for a listener by a grid search on the same
seeds.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from neuromusic.daemon.config import Config
from neuromusic.daemon.services.bar_loop import BarComposer, sketch_for
from neuromusic.daemon.session.direct_loop import DirectScoreModel, DirectScorer, bar_seconds
from neuromusic.daemon.session.eeg_loop import Record, eeg_session
from neuromusic.drivers.listener_population import draw_population
from neuromusic.drivers.listener_profile import DEFAULT_PROFILE, ListenerProfile, load_profile
from neuromusic.drivers.listener_response import (
    MusicResponsiveState,
    ResponseConfig,
    fixed_trajectories,
    response_from_table,
)
from neuromusic.drivers.simulated import ScriptedState, SimulatedListener
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.controls import CONTROLS
from neuromusic.models.core.errors import ConfigError, ModelError
from neuromusic.models.core.messages import Bar, Controls, FloatArray, Score
from neuromusic.policies.base import ControlBounds, Policy
from neuromusic.policies.registry import make_policy

log = logging.getLogger(__name__)

ComposerChoice = Literal["auto", "sketch", "model"]
LoopChoice = Literal["eeg", "direct"]
ROLLING_S = 60.0  # "reached" means the hidden relaxation's 60-second mean got there
REACH_FRACTION = 0.9  # ... to this fraction of the best fixed controls' mean relaxation
HIDDEN_STEP_S = 1.0  # the hidden state is recorded once a second


@dataclass(frozen=True)
class Listener:
    """A shipped or given listener: its EEG profile and its response to music."""

    name: str
    path: Path
    profile: ListenerProfile
    response: ResponseConfig


@dataclass
class SessionTrace:
    """What one simulated session did. Times in seconds from the session start."""

    listener: str
    policy: str
    seed: int
    minutes: float
    hidden_t: FloatArray  # (n,) once a second
    hidden: FloatArray  # (n,) the listener's true relaxation
    score_t: FloatArray  # (m,) one per feature hop while scoring
    score: FloatArray  # (m,) NaN while calibrating / stale
    bar_t: FloatArray  # (b,) bar starts
    controls: FloatArray  # (b, one column per control) the controls played, in the table's order
    wall_s: float = 0.0
    composer: str = ""
    policy_state: dict[str, Any] = field(default_factory=dict)
    bars: list[Bar] = field(default_factory=list)  # the full loop's bars as composed (controls and notes)
    published: list[tuple[float, Score]] = field(default_factory=list)  # the full loop's scores, with when published

    @property
    def mean_relaxation(self) -> float:
        return float(self.hidden.mean())

    def changes_per_minute(self) -> float:
        if len(self.controls) < 2:
            return 0.0
        changed = np.any(np.abs(np.diff(self.controls, axis=0)) > 1e-9, axis=1)
        return float(changed.sum()) / self.minutes

    def time_to_reach(self, level: float) -> float:
        """Minutes until the 60-second mean of the hidden relaxation first reached `level` (inf: never)."""
        return time_to_reach(self.hidden, HIDDEN_STEP_S, level)


def time_to_reach(hidden: FloatArray, step_s: float, level: float) -> float:
    k = max(1, round(ROLLING_S / step_s))
    if len(hidden) < k:
        return math.inf
    rolling = np.convolve(hidden, np.ones(k) / k, mode="valid")
    hits = np.nonzero(rolling >= level)[0]
    return math.inf if len(hits) == 0 else float((hits[0] + k) * step_s / 60.0)


def shipped_listeners() -> list[Path]:
    """Every listener profile shipped in drivers/listeners, sorted by name."""
    return sorted(DEFAULT_PROFILE.parent.glob("*.toml"))


def load_listener(path: Path) -> Listener:
    profile = load_profile(path)
    response = response_from_table(profile.sections.get("response", {}), f"{path}: response")
    return Listener(profile.name, Path(path), profile, response)


def population_listeners(n: int, seed: int, bounds: ControlBounds | None = None) -> list[Listener]:
    """n listeners drawn from the population (drivers/listener_population.py) within the control bounds, with the
    default EEG profile; named "pop<seed>-<index>"."""
    b = bounds or ControlBounds()
    box = tuple(b.range(spec.name) for spec in CONTROLS)
    profile = load_profile(DEFAULT_PROFILE)
    return [
        Listener(f"pop{seed}-{i}", DEFAULT_PROFILE, replace(profile, name=f"pop{seed}-{i}"), response)
        for i, response in enumerate(draw_population(n, seed, box))
    ]


def make_composer(choice: ComposerChoice, config: Config, seed: int) -> tuple[BarComposer, str]:
    """The GPT-2 composer when asked for (or, with "auto", when its checkpoint loads), else the sketch composer;
    either in [composer] key and meter, seeded by `seed`."""
    if choice in ("auto", "model"):
        try:
            from neuromusic.models.music.composer import Composer
        except ImportError as error:
            if choice == "model":
                raise ModelError(f"the GPT-2 composer is not available in this installation ({error})") from error
        else:
            try:
                composer = Composer.load(config.composer)
                composer.reset(seed)
                return composer, "model"
            except ModelError:
                if choice == "model":
                    raise
                log.info("no GPT-2 checkpoint loads; simulating with the sketch composer")
    return sketch_for(replace(config.composer, seed=seed)), "sketch"


def seeded_policy(config: Config, name: str, seed: int) -> Policy:
    """A fresh policy whose own randomness (the bandit's draws) is seeded by the session seed, so seeds differ."""
    return make_policy(name, replace(config.policy, bandit=replace(config.policy.bandit, seed=seed)))


class ScriptedListenerState:
    """A listener whose hidden relaxation follows a script ("calm:180,stress:120", looping) whatever it hears: to
    check how a policy answers a change of state it did not cause."""

    def __init__(self, script: str) -> None:
        self._state = ScriptedState(script, start=0.0)

    def hear(self, controls: Controls, t: float) -> None:
        """The music changes nothing here."""

    def relaxation(self, t: float) -> float:
        return self._state.relaxation(t)


def run_session(
    config: Config,
    listener: Listener,
    policy_name: str,
    minutes: float,
    seed: int,
    composer: BarComposer | None,
    composer_name: str = "",
    policy: Policy | None = None,
    loop: LoopChoice = "eeg",
    script: str | None = None,
) -> SessionTrace:
    """One closed-loop session of `minutes` simulated minutes. Pass `policy` to continue one (e.g. with state).
    loop "eeg": the full loop (composer required); "direct": scores straight from the hidden state (direct_loop.py).
    `script`: the hidden state follows it instead of the music."""
    if minutes <= 0:
        raise ConfigError(f"--minutes must be positive, got {minutes}")
    started = time.perf_counter()
    duration = minutes * 60.0
    state: MusicResponsiveState | ScriptedListenerState = (
        MusicResponsiveState(listener.response, seed=seed) if script is None else ScriptedListenerState(script)
    )
    if policy is None:
        policy = seeded_policy(config, policy_name, seed)
    record = Record()
    if loop == "direct":
        _direct_bars(policy, state, duration, seed, record)
        composer_name = "direct"
    else:
        if composer is None:
            raise ConfigError("the full loop needs a composer")
        source = SimulatedListener(listener.profile, state, VirtualClock(), seed=seed)
        seeded = replace(config, composer=replace(config.composer, seed=seed))
        eeg_session(seeded, source, state, policy_name, policy, composer, duration, record)
    hidden_t = np.arange(0.0, duration, HIDDEN_STEP_S)
    hidden = np.array([state.relaxation(float(x)) for x in hidden_t])
    return SessionTrace(
        listener=listener.name,
        policy=policy_name,
        seed=seed,
        minutes=minutes,
        hidden_t=hidden_t,
        hidden=hidden,
        score_t=np.array(record.score_t),
        score=np.array(record.score_v),
        bar_t=np.array(record.bar_t),
        controls=np.array(record.played).reshape(-1, len(CONTROLS)),
        wall_s=time.perf_counter() - started,
        composer=composer_name,
        policy_state=policy.state_dict(),
        bars=record.bars,
        published=record.published,
    )


def _direct_bars(
    policy: Policy,
    state: MusicResponsiveState | ScriptedListenerState,
    duration: float,
    seed: int,
    record: Record,
) -> None:
    model = DirectScoreModel()
    scorer = DirectScorer(model, seed)
    t, bar_index = 0.0, 0
    previous: float | None = None
    while t < duration:
        controls = policy.next_controls(bar_index, t)
        seconds, heard_tempo = bar_seconds(model, previous, controls.tempo)
        previous = controls.tempo
        state.hear(replace(controls, tempo=heard_tempo), t)
        record.bar(t, controls)
        end = t + seconds
        for score in scorer.scores(end, state):
            policy.observe(score)
            record.score(score)
        t, bar_index = end, bar_index + 1


@dataclass(frozen=True)
class FixedBest:
    controls: Controls
    mean_relaxation: float  # mean over the seeds of the session-mean hidden relaxation
    per_seed: tuple[float, ...]


def fixed_grid(bounds: ControlBounds) -> FloatArray:
    """(K, one column per control) fixed settings covering the bounds, each control every `grid_step` of its row."""

    def axis(low: float, high: float, step: float) -> FloatArray:
        n = max(1, round((high - low) / step) + 1)
        return np.linspace(low, high, n)

    grid = np.meshgrid(*(axis(*bounds.range(spec.name), spec.grid_step) for spec in CONTROLS), indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1)


def best_fixed(response: ResponseConfig, bounds: ControlBounds, minutes: float, seeds: list[int]) -> FixedBest:
    """The fixed controls with the highest mean relaxation over the seeds (the hidden state depends only on what is
    heard, so fixed controls need no EEG; the same seeds give the same listener noise as the closed-loop runs)."""
    grid = fixed_grid(bounds)
    duration = minutes * 60.0
    means = []
    for seed in seeds:
        trajectory = fixed_trajectories(response, grid, duration, seed)  # (steps + 1, K)
        # sample once a second like SessionTrace.hidden
        step = response.step_s
        index = np.minimum(np.round(np.arange(0.0, duration, HIDDEN_STEP_S) / step).astype(int), len(trajectory) - 1)
        means.append(trajectory[index].mean(axis=0))
    per_setting = np.mean(means, axis=0)
    best = int(np.argmax(per_setting))
    return FixedBest(Controls.from_values(grid[best]), float(per_setting[best]), tuple(float(m[best]) for m in means))
