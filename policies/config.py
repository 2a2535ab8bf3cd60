"""[policy] configuration: which policy, its target, the safe bounds, and each policy's own table.

Every option here is documented in docs/policies.md. A TOML file sets them as `[policy]`, `[policy.bounds]`,
`[policy.mapping]`, `[policy.target_controller]` and `[policy.bandit]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neuromusic.models.core.controls import CONTROL_NAMES, CONTROLS, control_spec
from neuromusic.policies.base import ControlBounds


def _check_unit(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{owner}.{name} must be within 0..1, got {value}")


def _check_range(owner: str, pattern: str, config: object) -> None:
    """Each control's field named by `pattern` (e.g. "start_{}") within the control's legal range."""
    for spec in CONTROLS:
        name = pattern.format(spec.name)
        value = getattr(config, name)
        if not spec.low <= value <= spec.high:
            raise ValueError(f"{owner}.{name} must be within {spec.range_text()}, got {value}")


_TEMPO, _VALENCE, _ENERGY = (control_spec(name) for name in ("tempo", "valence", "energy"))


@dataclass(frozen=True)
class GuardConfig:
    """What every policy shares: when a score counts, how long it stays fresh, and the hysteresis deadbands."""

    min_confidence: float = 0.3  # a score below this confidence counts as poor signal: controls are held
    stale_after_s: float = 10.0  # no usable score for this long: controls are held (last good controls)
    smoothing_s: float = 8.0  # time constant of the score smoothing the mapping and target policies steer by
    # a wanted change smaller than this (BPM) is ignored, so controls do not flicker
    tempo_deadband: float = _TEMPO.deadband
    valence_deadband: float = _VALENCE.deadband  # the same for valence (0..1)
    energy_deadband: float = _ENERGY.deadband  # the same for energy (0..1)
    start_tempo: float = _TEMPO.start  # controls before the first usable score (clamped into the bounds)
    start_valence: float = _VALENCE.start  # valence before the first usable score
    start_energy: float = _ENERGY.start  # energy before the first usable score

    def deadband(self, name: str) -> float:
        """The hysteresis of one control."""
        return float(getattr(self, f"{name}_deadband"))

    def start(self) -> tuple[float, ...]:
        """The controls before the first usable score, in the table's order (not yet clamped into the bounds)."""
        return tuple(float(getattr(self, f"start_{name}")) for name in CONTROL_NAMES)

    def validate(self) -> None:
        _check_unit("guard", min_confidence=self.min_confidence)
        _check_range("guard", "start_{}", self)
        if self.stale_after_s <= 0:
            raise ValueError("guard.stale_after_s must be positive")
        if self.smoothing_s < 0:
            raise ValueError("guard.smoothing_s must be >= 0")
        for name in CONTROL_NAMES:
            if self.deadband(name) < 0:
                raise ValueError(f"guard.{name}_deadband must be >= 0")


@dataclass(frozen=True)
class MappingConfig:
    """The fixed mapping's two anchors and the iso principle's lead time."""

    # One pair of anchors per row of the control table (`calm_<name>`, `tense_<name>`).
    calm_tempo: float = 60.0  # where the mapping leads: slow, warm, soft
    calm_valence: float = 0.7  # the calm anchor's valence (bright, major)
    calm_energy: float = 0.2  # the calm anchor's energy (sparse, soft)
    tense_tempo: float = 84.0  # what matches a tense listener (the iso principle starts here)
    tense_valence: float = 0.4  # the tense anchor's valence
    tense_energy: float = 0.65  # the tense anchor's energy
    iso_bars: int = 24  # bars to lead from the listener's state to the calm anchor
    reiso_drop: float = 0.2  # a fall of the smoothed score this far below its slow reference starts the lead again
    reiso_reference_s: float = 60.0  # time constant of that slow reference (s)

    def anchor(self, which: str) -> tuple[float, ...]:
        """The "calm" or "tense" anchor, one value per control in the table's order."""
        return tuple(float(getattr(self, f"{which}_{name}")) for name in CONTROL_NAMES)

    def validate(self) -> None:
        _check_range("mapping", "calm_{}", self)
        _check_range("mapping", "tense_{}", self)
        if self.iso_bars < 1:
            raise ValueError("mapping.iso_bars must be at least 1")
        if not 0.0 <= self.reiso_drop <= 1.0 or self.reiso_reference_s <= 0:
            raise ValueError("mapping.reiso_drop must be within 0..1 and mapping.reiso_reference_s positive")


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
    """Thompson sampling over a model of the listener's delayed, first-order response (docs/policies.md)."""

    model: str = "peak"  # the preference model choices are drawn from: "peak" (one preferred setting) or "bumps"
    opening_points: int = 5  # settings of the opening tour of the bounds box (the mapping's calm music first)
    opening_dwell_s: float = 10.0  # how long each setting of the opening is held once the music has arrived
    dwell_s: float = 15.0  # how long each choice is held once the music has arrived at it (ends on a bar line)
    fresh_choice: str = "auto"  # without a profile, after the tour: "draw", "best" (estimate) or "auto" (best if slow)
    slow_tau_s: float = 40.0  # with fresh_choice = "auto": a listener whose fitted time constant exceeds this is slow
    switch_margin: float = 0.01  # stay with the current choice unless a Thompson draw favours another by this much
    lag_s: float = 2.0  # the shortest delay considered between the music and its effect on the score
    max_delay_s: float = 23.0  # the longest delay considered
    min_tau_s: float = 15.0  # the range of the listener's time constant considered
    max_tau_s: float = 150.0  # ... up to this (seconds)
    bin_s: float = 3.0  # scores are averaged in bins of this length for the model
    bump_width: float = 0.22  # width of the model's Gaussian bumps, in units of each control's range
    prior_var: float = 0.012  # prior variance of f (the level music leads to), full 3-D part
    additive_var: float = 0.008  # ... additive part (one row of bumps per control)
    noise_var: float = 0.0016  # variance of a bin's mean score around the model
    candidate_points: int = 9  # settings per axis the bandit chooses among (the bounds' edges included)
    explore: float = 0.5  # scale of the posterior spread in each Thompson draw: < 1 explores less, exploits sooner
    explore_halving: float = 3.0  # the spread shrinks as 1/sqrt(1 + choices / this)
    refine: bool = True  # also consider settings half a grid step around the best one
    comfort_drop: float = 0.1  # the comfort guard acts when the score is this far below the running median ...
    comfort_s: float = 45.0  # ... for this long: back to the best setting played
    max_observations: int = 200  # newest measured settings kept (and saved in the profile)
    carry_noise_factor: float = 2.0  # measurements from an earlier session count as this much noisier
    carry_sessions: int = 4  # newest sessions kept as played and heard (saved in the profile) for the preference model
    seed: int = 0  # random seed of the Thompson draws (same seed, same choices)

    def validate(self) -> None:
        if self.model not in ("peak", "bumps"):
            raise ValueError(f"bandit.model must be 'peak' or 'bumps', got {self.model!r}")
        if self.fresh_choice not in ("draw", "best", "auto"):
            raise ValueError(f"bandit.fresh_choice must be 'draw', 'best' or 'auto', got {self.fresh_choice!r}")
        if self.dwell_s <= 0 or self.opening_dwell_s <= 0:
            raise ValueError("bandit.dwell_s and bandit.opening_dwell_s must be positive")
        if self.opening_points < 1 or self.candidate_points < 2:
            raise ValueError("bandit.opening_points must be >= 1 and candidate_points >= 2")
        for name in ("lag_s", "switch_margin", "explore_halving", "comfort_drop"):
            if getattr(self, name) < 0:
                raise ValueError(f"bandit.{name} must be >= 0")
        for name in (
            "min_tau_s",
            "bin_s",
            "bump_width",
            "prior_var",
            "additive_var",
            "noise_var",
            "carry_noise_factor",
            "explore",
            "comfort_s",
            "slow_tau_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"bandit.{name} must be positive")
        if self.max_tau_s <= self.min_tau_s or self.max_delay_s <= self.lag_s:
            raise ValueError("bandit.max_tau_s must exceed min_tau_s and max_delay_s must exceed lag_s")
        if self.max_observations < 1:
            raise ValueError("bandit.max_observations must be at least 1")
        if self.carry_sessions < 0:
            raise ValueError("bandit.carry_sessions must be >= 0")


@dataclass(frozen=True)
class PolicyConfig:
    name: str = "mapping"  # the policy: mapping | target | bandit
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
