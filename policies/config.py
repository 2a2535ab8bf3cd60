"""[policy] configuration. (Owned by policies; extend freely.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from neuromusic.policies.base import ControlBounds


@dataclass(frozen=True)
class PolicyConfig:
    name: str = "mapping"
    target: float = 0.8
    bounds: ControlBounds = field(default_factory=ControlBounds)
