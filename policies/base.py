"""What every policy is: score stream in, controls for the next bar out, always inside safe bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from neuromusic.models.core.controls import control_spec
from neuromusic.models.core.messages import Controls, Score

_TEMPO, _VALENCE, _ENERGY = (control_spec(name) for name in ("tempo", "valence", "energy"))


@dataclass(frozen=True)
class ControlBounds:
    """Safe limits every policy respects. max_* are the largest change allowed from one bar to the next.

    Three fields per row of the control table (`<name>_min`, `<name>_max`, `max_<name>_step`), defaults from it."""

    # slowest tempo any policy may play (BPM); remote control can only narrow the range
    tempo_min: float = _TEMPO.bounds[0]
    tempo_max: float = _TEMPO.bounds[1]  # fastest tempo (BPM)
    valence_min: float = _VALENCE.bounds[0]  # darkest valence (0 = minor, dark)
    valence_max: float = _VALENCE.bounds[1]  # brightest valence (1 = major, bright)
    energy_min: float = _ENERGY.bounds[0]  # least energy (0 = sparse, soft)
    energy_max: float = _ENERGY.bounds[1]  # most energy (1 = dense, loud)
    max_tempo_step: float = _TEMPO.step  # BPM per bar
    max_valence_step: float = _VALENCE.step  # largest valence change from one bar to the next
    max_energy_step: float = _ENERGY.step  # largest energy change from one bar to the next

    def range(self, name: str) -> tuple[float, float]:
        """The allowed range of one control."""
        return getattr(self, f"{name}_min"), getattr(self, f"{name}_max")

    def step(self, name: str) -> float:
        """The largest change of one control from one bar to the next."""
        return float(getattr(self, f"max_{name}_step"))


def bound_fields(name: str) -> tuple[str, str, str]:
    """The ControlBounds fields of one control: its minimum, maximum and per-bar step."""
    return f"{name}_min", f"{name}_max", f"max_{name}_step"


class Policy(Protocol):
    """A policy is pure: no I/O, no clock of its own. The player calls `observe` for every score and `next_controls`
    once per bar, just before that bar is composed. While the score is stale or of poor quality it holds the last
    good controls. Optional methods the player calls when present: `set_bounds(bounds)`, `set_target(value)`, and
    `continue_from(controls)` when it takes over from other controls (a policy switch, an override cleared), so the
    per-bar step limits hold across the hand-over."""

    name: str

    def observe(self, score: Score) -> None: ...

    def next_controls(self, bar_index: int, t: float) -> Controls: ...

    def state_dict(self) -> dict[str, Any]:
        """What the policy learned, JSON-serialisable, saved in the listener's profile."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
