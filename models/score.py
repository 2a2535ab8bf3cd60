"""The relaxation score, calibrated to the person. (Owned by the signal path; to be written.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ScoreConfig:
    baseline_s: float = 30.0
    profile: Path | None = None
