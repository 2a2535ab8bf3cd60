"""The sessions index: sessions recorded outside the sessions root (`neuromusic run --session-dir DIR`) are listed in
`<root>/index.jsonl`, one JSON line each ({"folder": absolute path, "added": unix time}), so `neuromusic sessions`,
`report` and `export` find them by name like the sessions under the root. Append-only: a line is added before the
session starts; folders that no longer hold a session are skipped when read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

from neuromusic.models.core.errors import DataError
from neuromusic.models.sessions.store import MANIFEST, find_session, iter_sessions, read_jsonl

INDEX_FILE = "index.jsonl"


def register(root: Path, folder: Path) -> bool:
    """Note `folder` in the index under `root` unless it lies directly in root (listed anyway) or is noted already.
    Returns whether a line was added."""
    folder = folder.expanduser().resolve()
    root = root.expanduser()
    if folder.parent == root.resolve() or folder in set(indexed(root, existing_only=False)):
        return False
    root.mkdir(parents=True, exist_ok=True)
    with open(root / INDEX_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"folder": str(folder), "added": time.time()}) + "\n")
    return True


def indexed(root: Path, existing_only: bool = True) -> Iterator[Path]:
    """The folders noted in the index, in the order they were added (with existing_only, those holding a session)."""
    seen: set[Path] = set()
    for record in read_jsonl(root.expanduser() / INDEX_FILE):
        folder = Path(str(record.get("folder", "")))
        if not str(folder) or folder in seen:
            continue
        seen.add(folder)
        if not existing_only or (folder / MANIFEST).is_file():
            yield folder


def all_sessions(root: Path) -> list[Path]:
    """The sessions under `root` and those in its index, oldest first by folder name (names start with the time)."""
    folders = {p.resolve(): p for p in iter_sessions(root)}
    for folder in indexed(root):
        folders.setdefault(folder.resolve(), folder)
    return sorted(folders.values(), key=lambda p: (p.name, str(p)))


def locate(spec: str | Path, root: Path) -> Path:
    """Like store.find_session, and also by name (or unique start or end of it) among the indexed sessions."""
    try:
        return find_session(spec, root)
    except DataError as error:
        if Path(spec).expanduser().exists():
            raise
        text = str(spec)
        matches = [p for p in indexed(root) if p.name.startswith(text) or p.name.endswith(text)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(str(p) for p in matches)
            raise DataError(f"{text!r} matches {len(matches)} sessions: {names}") from None
        raise error from None
