"""What every policy is: score stream in, controls for the next bar out, always inside safe bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from neuromusic.models.core.messages import Controls, Score


@dataclass(frozen=True)
class ControlBounds:
    """Safe limits every policy respects. max_* are the largest change allowed from one bar to the next."""

    tempo_min: float = 50.0  # slowest tempo any policy may play (BPM); remote control can only narrow the range
    tempo_max: float = 90.0  # fastest tempo (BPM)
    valence_min: float = 0.0  # darkest valence (0 = minor, dark)
    valence_max: float = 1.0  # brightest valence (1 = major, bright)
    energy_min: float = 0.0  # least energy (0 = sparse, soft)
    energy_max: float = 1.0  # most energy (1 = dense, loud)
    max_tempo_step: float = 4.0  # BPM per bar
    max_valence_step: float = 0.25  # largest valence change from one bar to the next
    max_energy_step: float = 0.2  # largest energy change from one bar to the next


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
