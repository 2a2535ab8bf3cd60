"""mkdocs hook: the model card lives beside the checkpoint it describes; the site shows it as a page of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

MODEL_CARD = Path(__file__).resolve().parent.parent / "models" / "checkpoint" / "MODEL_CARD.md"


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "model-card.md", content=MODEL_CARD.read_text(encoding="utf-8")))
    return files
