"""Where the music model's checkpoint lives, and what to tell a user who has none. Imports nothing heavy."""

from __future__ import annotations

from pathlib import Path

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoint"
HOW_TO_GET = (
    "use the checkpoint shipped in neuromusic/models/checkpoint (reinstall the package if it is missing), "
    "or train one: `neuromusic data build --out data/` then `neuromusic train --data data/ --out ckpt/`"
)
