"""[policy] configuration: which policy, its target, the safe bounds, and each policy's own table.

Every option here is documented in the README. A TOML file sets them as `[policy]`, `[policy.bounds]`,
`[policy.mapping]`, `[policy.target_controller]` and `[policy.bandit]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neuromusic.policies.base import ControlBounds


def _check_unit(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{owner}.{name} must be within 0..1, got {value}")


@dataclass(frozen=True)
class GuardConfig:
    """What every policy shares: when a score counts, how long it stays fresh, and the hysteresis deadbands."""

    min_confidence: float = 0.3  # a score below this confidence counts as poor signal: controls are held
    stale_after_s: float = 10.0  # no usable score for this long: controls are held (last good controls)
    smoothing_s: float = 8.0  # time constant of the score smoothing the mapping and target policies steer by
    tempo_deadband: float = 1.5  # a wanted change smaller than this (BPM) is ignored, so controls do not flicker
    valence_deadband: float = 0.04
    energy_deadband: float = 0.04
    start_tempo: float = 72.0  # controls before the first usable score (clamped into the bounds)
    start_valence: float = 0.5
    start_energy: float = 0.4

    def validate(self) -> None:
        _check_unit(
            "guard",
            min_confidence=self.min_confidence,
            start_valence=self.start_valence,
            start_energy=self.start_energy,
        )
        if self.stale_after_s <= 0:
            raise ValueError("guard.stale_after_s must be positive")
        if self.smoothing_s < 0:
            raise ValueError("guard.smoothing_s must be >= 0")
        for name in ("tempo_deadband", "valence_deadband", "energy_deadband"):
            if getattr(self, name) < 0:
                raise ValueError(f"guard.{name} must be >= 0")


@dataclass(frozen=True)
class MappingConfig:
    """The fixed mapping's two anchors and the iso principle's lead time."""

    calm_tempo: float = 60.0  # where the mapping leads: slow, warm, soft
    calm_valence: float = 0.7
    calm_energy: float = 0.2
    tense_tempo: float = 84.0  # what matches a tense listener (the iso principle starts here)
    tense_valence: float = 0.4
    tense_energy: float = 0.65
    iso_bars: int = 24  # bars to lead from the listener's state to the calm anchor

    def validate(self) -> None:
        _check_unit(
            "mapping",
            calm_valence=self.calm_valence,
            calm_energy=self.calm_energy,
            tense_valence=self.tense_valence,
            tense_energy=self.tense_energy,
        )
        if self.iso_bars < 1:
            raise ValueError("mapping.iso_bars must be at least 1")


@dataclass(frozen=True)
class TargetConfig:
    """The feedback controller toward `policy.target`."""

    gain: float = 0.25  # change of calming intensity per bar per unit of score error
    tolerance: float = 0.05  # |score - target| within this counts as reached
    ease_per_bar: float = 0.01  # once reached, calming intensity eases off by this much per bar

    def validate(self) -> None:
        if self.gain <= 0:
            raise ValueError("target_controller.gain must be positive")
        _check_unit("target_controller", tolerance=self.tolerance, ease_per_bar=self.ease_per_bar)


@dataclass(frozen=True)
class BanditConfig:
    """Gaussian-process Thompson sampling over a grid of control settings (the README explains each)."""

    dwell_s: float = 20.0  # how long each choice is held once the music has arrived at it (ends on a bar line)
    measure_ramp: bool = True  # measure a choice from the moment it is made, ramp included (else from arrival)
    switch_margin: float = 0.02  # stay with the current choice unless a Thompson draw favours another by this much
    lag_s: float = 6.0  # how long after the music changes its effect shows in the score
    response_tau_s: float = 40.0  # assumed time constant of the listener, to extrapolate the change in score
    tempo_points: int = 5  # grid of arms per axis
    valence_points: int = 5
    energy_points: int = 5
    length_scale: float = 0.35  # GP kernel length scale, in units of each control's range
    additive: float = 0.7  # weight of the additive (one kernel per control) part of the GP kernel, 0..1
    prior_var: float = 0.04  # GP prior variance of the reward (its smooth, non-quadratic part)
    quadratic_var: float = 0.1  # prior variance of each coefficient of the quadratic part of the GP (0: none)
    noise_var: float = 0.004  # variance of a window's score level; a reward's noise is this / (1 - exp(-T/tau))^2
    explore: float = 0.5  # scale of the posterior spread in each Thompson draw: < 1 explores less, exploits sooner
    explore_halving: float = 6.0  # > 0: the spread shrinks as 1/sqrt(1 + observations / this) (0: constant)
    prior_bump: float = 0.05  # prior mean raised by this at the mapping's calm music (first choice; 0: flat prior)
    refine: bool = True  # also try settings half a grid step around the best one (preferences fall between points)
    max_jump: float = 0.45  # largest distance (in control-range units) from the current controls to a new choice
    max_observations: int = 200  # newest observations kept (and saved in the profile)
    carry_noise_factor: float = 2.0  # observations from an earlier session count as this much noisier
    seed: int = 0

    def validate(self) -> None:
        if self.dwell_s <= 0:
            raise ValueError("bandit.dwell_s must be positive")
        if min(self.tempo_points, self.valence_points, self.energy_points) < 1:
            raise ValueError("bandit grid points must be at least 1 per axis")
        for name in ("lag_s", "switch_margin", "explore_halving"):
            if getattr(self, name) < 0:
                raise ValueError(f"bandit.{name} must be >= 0")
        for name in (
            "response_tau_s",
            "length_scale",
            "prior_var",
            "noise_var",
            "max_jump",
            "carry_noise_factor",
            "explore",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"bandit.{name} must be positive")
        _check_unit("bandit", additive=self.additive)
        for name in ("quadratic_var", "prior_bump"):
            if getattr(self, name) < 0:
                raise ValueError(f"bandit.{name} must be >= 0")
        if self.max_observations < 1:
            raise ValueError("bandit.max_observations must be at least 1")


@dataclass(frozen=True)
class PolicyConfig:
    name: str = "mapping"
    target: float = 0.8  # the score the target policy steers toward
    bounds: ControlBounds = field(default_factory=ControlBounds)
    guard: GuardConfig = field(default_factory=GuardConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    target_controller: TargetConfig = field(default_factory=TargetConfig)
    bandit: BanditConfig = field(default_factory=BanditConfig)

    def validate(self) -> None:
        _check_unit("policy", target=self.target)
        from neuromusic.policies.bounds import validate_bounds  # bounds.py imports this module

        validate_bounds(self.bounds)
