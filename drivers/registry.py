"""Source registry: a [source] board name -> a Source, resolved lazily.

Names: "synthetic" (BrainFlow SYNTHETIC_BOARD), "playback" (BrainFlow PLAYBACK_FILE_BOARD), "lsl", "simulated",
"replay" (a recorded neuromusic session), and every BrainFlow board by name ("cyton", "CYTON_BOARD", "muse_2") or
numeric id ("0"). A new source kind is one module with `create(config, clock) -> Source` plus one line in SOURCES.
`open_source` only builds the source (cheap, no I/O); the caller's worker thread calls `open()`.
"""

from __future__ import annotations

import importlib
from typing import Any

from neuromusic.drivers.base import Source
from neuromusic.drivers.config import SourceConfig
from neuromusic.models.core.clock import Clock
from neuromusic.models.core.errors import ConfigError

SOURCES: dict[str, str] = {
    "synthetic": "neuromusic.drivers.brainflow_source:create",
    "playback": "neuromusic.drivers.brainflow_source:create",
    "lsl": "neuromusic.drivers.lsl_source:create",
    "simulated": "neuromusic.drivers.simulated:create",
    "replay": "neuromusic.drivers.replay_source:create",
}


def source_names() -> list[str]:
    return list(SOURCES)


def open_source(config: SourceConfig, clock: Clock) -> Source:
    """Build the source `config.board` names. Unknown name -> ConfigError listing the valid ones."""
    from neuromusic.drivers.brainflow_source import brainflow_board_id, brainflow_board_names

    name = config.board.strip().lower()
    target = SOURCES.get(name)
    if target is None:
        if brainflow_board_id(config.board) is None:
            raise ConfigError(
                f"unknown board {config.board!r}; choose one of: {', '.join(source_names())}, or a BrainFlow board "
                f"name or id: {', '.join(brainflow_board_names())} (see `neuromusic devices`)"
            )
        target = "neuromusic.drivers.brainflow_source:create"
    module_name, attr = target.split(":")
    factory: Any = getattr(importlib.import_module(module_name), attr)
    source: Source = factory(config, clock)
    return source
