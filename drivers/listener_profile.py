"""Listener profiles: the TOML file that describes a simulated listener's EEG (drivers/listeners/*.toml).

The loader reads the sections it owns ([listener], [background], [rhythms.*], [blinks], [muscle]) strictly (an
unknown key is a ConfigError naming it) and keeps every other top-level section untouched in `sections`, so other
parts of neuromusic can add their own (the policies' [response] section) without this file knowing them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from neuromusic.models.core.errors import ConfigError

DEFAULT_PROFILE = Path(__file__).parent / "listeners" / "default.toml"


@dataclass(frozen=True)
class Rhythm:
    """A band-limited oscillation whose amplitude moves with the hidden relaxation state r in [0, 1]:
    rms = stress_uv + (calm_uv - stress_uv) · r, times the channel's weight."""

    freq_hz: float
    bandwidth_hz: float = 2.0
    calm_uv: float = 10.0  # rms at r = 1
    stress_uv: float = 10.0  # rms at r = 0
    weights: dict[str, float] = field(default_factory=dict)  # channel-name prefix -> gain (longest prefix wins)

    def weight(self, channel: str) -> float:
        return _prefix_weight(self.weights, channel)


@dataclass(frozen=True)
class Background:
    amplitude_uv: float = 10.0  # rms of the aperiodic (1/f^exponent) background
    exponent: float = 1.0  # power-law exponent of the background, within [0, 2)
    noise_uv: float = 1.0  # rms of white sensor noise


@dataclass(frozen=True)
class Blinks:
    rate_per_min: float = 0.0  # 0 disables blinks
    amplitude_uv: float = 200.0  # peak, on channels with weight 1
    duration_s: float = 0.3
    weights: dict[str, float] = field(default_factory=lambda: {"Fp": 1.0, "AF": 0.6, "F": 0.3})


@dataclass(frozen=True)
class Muscle:
    rate_per_min: float = 0.0  # 0 disables muscle bursts (their rate doubles at full stress)
    amplitude_uv: float = 40.0  # rms of the broadband (20 Hz and up) burst
    duration_s: float = 0.6
    weights: dict[str, float] = field(default_factory=lambda: {"T": 1.0, "F": 0.7, "Fp": 0.7})


@dataclass(frozen=True)
class ListenerProfile:
    name: str = "default"
    sfreq: float = 250.0
    channels: tuple[str, ...] = ("Fp1", "Fp2", "F3", "F4", "C3", "C4", "O1", "O2")
    background: Background = field(default_factory=Background)
    rhythms: dict[str, Rhythm] = field(default_factory=dict)
    blinks: Blinks = field(default_factory=Blinks)
    muscle: Muscle = field(default_factory=Muscle)
    sections: dict[str, Any] = field(default_factory=dict)  # other owners' sections, e.g. "response"

    def validate(self) -> None:
        if self.sfreq <= 0:
            raise ValueError(f"listener.sfreq must be > 0, got {self.sfreq}")
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise ValueError("listener.channels must be a non-empty list of distinct names")
        if not 0.0 <= self.background.exponent < 2.0:
            raise ValueError(f"background.exponent must be within [0, 2), got {self.background.exponent}")
        for name, rhythm in self.rhythms.items():
            low = rhythm.freq_hz - rhythm.bandwidth_hz / 2
            high = rhythm.freq_hz + rhythm.bandwidth_hz / 2
            if low <= 0 or high >= self.sfreq / 2:
                raise ValueError(f"rhythms.{name}: {low:g}..{high:g} Hz must lie within (0, {self.sfreq / 2:g}) Hz")
            if rhythm.calm_uv < 0 or rhythm.stress_uv < 0:
                raise ValueError(f"rhythms.{name}: amplitudes must be >= 0")


def _prefix_weight(weights: dict[str, float], channel: str) -> float:
    """Weight of the longest key that `channel` starts with (letters only, case-insensitive); 1.0 without weights."""
    if not weights:
        return 1.0
    letters = "".join(ch for ch in channel if ch.isalpha()).lower()
    best, best_len = 0.0, -1
    for prefix, w in weights.items():
        p = prefix.lower()
        if letters.startswith(p) and len(p) > best_len:
            best, best_len = w, len(p)
    return best if best_len >= 0 else 0.0


_OWNED = ("listener", "background", "rhythms", "blinks", "muscle")


def load_profile(path: Path | None = None) -> ListenerProfile:
    """Read a listener profile; None reads the shipped default. Errors are ConfigErrors naming file and key."""
    path = DEFAULT_PROFILE if path is None else Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"listener profile not found: {path}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"listener profile {path} is not valid TOML: {error}") from error
    return profile_from_dict(doc, str(path))


def profile_from_dict(doc: dict[str, Any], where: str = "listener profile") -> ListenerProfile:
    head = _table(doc.get("listener", {}), "listener", where)
    _check_keys(head, {"name", "sfreq", "channels"}, "listener", where)
    try:
        rhythms = {
            name: _build(Rhythm, table, f"rhythms.{name}", where)
            for name, table in _table(doc.get("rhythms", {}), "rhythms", where).items()
        }
        profile = ListenerProfile(
            name=str(head.get("name", "default")),
            sfreq=float(head.get("sfreq", 250.0)),
            channels=tuple(str(c) for c in head.get("channels", ListenerProfile.channels)),
            background=_build(Background, doc.get("background", {}), "background", where),
            rhythms=rhythms,
            blinks=_build(Blinks, doc.get("blinks", {}), "blinks", where),
            muscle=_build(Muscle, doc.get("muscle", {}), "muscle", where),
            sections={k: v for k, v in doc.items() if k not in _OWNED},
        )
        profile.validate()
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error
    return profile


def _table(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _check_keys(table: dict[str, Any], allowed: set[str], key: str, where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {key}.{unknown[0]}; known keys: {', '.join(sorted(allowed))}")


def _build(cls: type[Any], value: Any, key: str, where: str) -> Any:
    table = _table(value, key, where)
    _check_keys(table, {f.name for f in fields(cls)}, key, where)
    converted: dict[str, Any] = {}
    for name, item in table.items():
        if name == "weights":
            if not isinstance(item, dict):
                raise ConfigError(f"{where}: {key}.weights must be a table of channel prefix = gain")
            converted[name] = {str(k): float(v) for k, v in item.items()}
        elif isinstance(item, bool) or not isinstance(item, int | float):
            raise ConfigError(f"{where}: {key}.{name} must be a number, got {item!r}")
        else:
            converted[name] = float(item)
    if cls is Rhythm and "freq_hz" not in converted:
        raise ConfigError(f"{where}: {key}.freq_hz is required")
    return cls(**converted)
