"""[composer] configuration. (Owned by the composer; extend freely.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ComposerConfig:
    checkpoint: Path | None = None  # None = the checkpoint shipped in neuromusic/models/checkpoint
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.95
    seed: int | None = None
