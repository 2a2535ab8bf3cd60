"""Where the music model's checkpoint lives, and what to tell a user who has none. Imports nothing heavy."""

from __future__ import annotations

from pathlib import Path

from neuromusic.models.core.errors import ModelError

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoint"
HOW_TO_GET = (
    "use the checkpoint shipped in neuromusic/models/checkpoint (reinstall the package if it is missing), "
    "or train one: `neuromusic data build --out data/` then `neuromusic train --data data/ --out ckpt/`"
)


def checkpoint_files(folder: Path) -> tuple[Path, Path, Path]:
    """(weights, config.json, tokenizer.json) of a checkpoint folder; ModelError naming the first one missing."""
    files = (folder / "model.safetensors", folder / "config.json", folder / "tokenizer.json")
    for path in files:
        if not path.is_file():
            raise ModelError(f"checkpoint incomplete: {path} is missing; {HOW_TO_GET}")
    return files
