"""The listener's profile: one JSON document that carries what a session learned into the next one (`--profile`).

    {"version": 1, "updated_unix": 1764130000.0,
     "score": {...},        # the RelaxationScorer's ScoreProfile (baseline statistics)
     "policy": {...},       # {"name": policy, "state": its state_dict}: what the active policy learned (player)
     "calibration": {...}}  # the guided calibration's fitted profile

Loaded when the session starts if the file exists, saved when it ends. Each owner reads and writes only its own
section; sections this version does not know are kept as they are. A file that is not a profile is never
overwritten: loading it is a ConfigError that names it, so nothing the listener built up is lost.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.daemon.session.signal_stage import StoredModels
from neuromusic.models.core.errors import ConfigError, DataError
from neuromusic.models.signal.calibration import RestModel
from neuromusic.models.signal.score import ScoreProfile

PROFILE_VERSION = 1


class ProfileStore:
    def __init__(self, path: Path, sections: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.sections: dict[str, Any] = dict(sections or {})

    @classmethod
    def load(cls, path: Path) -> ProfileStore:
        """Read `path` if it exists; a missing file is an empty profile (it is created at the end of the session)."""
        path = Path(path)
        if not path.exists():
            return cls(path)
        try:
            document = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            message = f"profile {path} cannot be read ({error}); move it away or use another --profile"
            raise ConfigError(message) from error
        if not isinstance(document, dict) or not isinstance(document.get("version"), int):
            raise ConfigError(f"profile {path} is not a neuromusic profile (no version); pass another --profile")
        if document["version"] > PROFILE_VERSION:
            raise ConfigError(
                f"profile {path} has version {document['version']}; this neuromusic reads up to {PROFILE_VERSION}"
            )
        sections = {key: value for key, value in document.items() if key not in ("version", "updated_unix")}
        return cls(path, sections)

    def get(self, section: str) -> Any | None:
        return self.sections.get(section)

    def put(self, section: str, value: Any) -> None:
        # Fail now, in the owner's code, rather than at save time when the session is already ending.
        json.dumps(value, allow_nan=False)
        self.sections[section] = value

    def save(self) -> None:
        """Write atomically (temporary file + rename), so a crash mid-write leaves the previous profile intact."""
        document = {"version": PROFILE_VERSION, "updated_unix": time.time(), **self.sections}
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def score_profile_section(profile: ScoreProfile) -> dict[str, Any]:
    """The "score" section: the scorer's baseline statistics, NaN (channel not calibrated) written as null."""

    def rows(matrix: Any) -> list[list[float | None]]:
        return [[float(v) if math.isfinite(v) else None for v in row] for row in matrix]

    return {
        "band_names": list(profile.band_names),
        "channel_names": list(profile.channel_names),
        "mean": rows(profile.mean),
        "std": rows(profile.std),
        "n_windows": profile.n_windows,
        "created_unix": profile.created_unix,
        "kind": profile.kind,
    }


def score_profile_from_section(section: Any, path: Path) -> ScoreProfile:
    try:
        bands = tuple(str(b) for b in section["band_names"])
        channels = tuple(str(c) for c in section["channel_names"])
        mean, std = (
            np.array([[np.nan if v is None else float(v) for v in row] for row in section[key]], dtype=np.float64)
            for key in ("mean", "std")
        )
        if mean.shape != (len(bands), len(channels)) or std.shape != mean.shape:
            raise ValueError(f"mean/std must be {len(bands)}x{len(channels)}")
        kind = section.get("kind", "absolute")
        if kind not in ("relative", "absolute"):
            raise ValueError(f"kind must be relative or absolute, got {kind!r}")
        created = float(section["created_unix"])
        return ScoreProfile(bands, channels, mean, std, int(section["n_windows"]), created, kind=kind)
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"profile {path}: its 'score' section is malformed ({error}); remove it") from error


def rest_model_from_section(section: Any, path: Path) -> RestModel:
    """The "calibration" section as a scoring model (`neuromusic calibrate` wrote it)."""
    try:
        return RestModel.from_section(section)
    except DataError as error:
        raise ConfigError(f"profile {path}: {error}") from error


def stored_models(profile: ProfileStore | None) -> StoredModels:
    """What the profile brings to the scorer: its "score" baseline and its "calibration" model, each if present."""
    if profile is None:
        return StoredModels()
    score, calibration = profile.get("score"), profile.get("calibration")
    return StoredModels(
        None if score is None else score_profile_from_section(score, profile.path),
        None if calibration is None else rest_model_from_section(calibration, profile.path),
    )
