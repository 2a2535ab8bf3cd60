"""One TOML file -> nested frozen dataclasses, validated once; CLI flags override it.

Each section's dataclass lives beside the code that uses it (so lower layers never import daemon/); this module only
assembles them. Adding a section is one field on `Config`. Loading is generic: field types drive the conversion, an
unknown key or a wrong type is a ConfigError naming the TOML key and what is allowed. A dataclass may define
`validate(self) -> None` raising ValueError for cross-field checks; its message is wrapped with the section name.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from neuromusic.daemon.cli.lab_options import LslMarkersConfig, LslOutConfig
from neuromusic.daemon.cli.recording_options import RecordingConfig
from neuromusic.daemon.mqtt.config import MqttConfig
from neuromusic.daemon.session.config import SessionConfig
from neuromusic.drivers.config import SourceConfig
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.music.arranger import ArrangerConfig
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.signal.calibration import CalibrationConfig
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.score import ScoreConfig
from neuromusic.policies.config import PolicyConfig


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    composer: ComposerConfig = field(default_factory=ComposerConfig)
    sinks: SinkConfig = field(default_factory=SinkConfig)
    arranger: ArrangerConfig = field(default_factory=ArrangerConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    lsl_out: LslOutConfig = field(default_factory=LslOutConfig)
    lsl_markers: LslMarkersConfig = field(default_factory=LslMarkersConfig)


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read `path` (TOML) if given, then apply `overrides` ({"section.key": value}; None values are ignored)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise ConfigError(f"config file not found: {path}") from error
        except IsADirectoryError as error:
            raise ConfigError(f"config file {path} is a folder; give the TOML file inside it") from error
        except UnicodeDecodeError as error:
            raise ConfigError(f"config file {path} is not a text file (not UTF-8); give a TOML file") from error
        except OSError as error:
            raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from error
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return build(Config, data, "")


def build(cls: type[Any], data: Any, where: str) -> Any:
    """Build dataclass `cls` from a TOML table, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"[{where or 'top level'}] must be a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown configuration key {prefix}{unknown[0]}; known keys{' in [' + where + ']' if where else ''}: "
            f"{', '.join(sorted(fields))}"
        )
    kwargs = {name: convert(hints[name], value, f"{where}.{name}" if where else name) for name, value in data.items()}
    try:
        instance = cls(**kwargs)
        validate = getattr(instance, "validate", None)
        if callable(validate):
            validate()
    except (ValueError, TypeError) as error:
        raise ConfigError(f"[{where or 'top level'}] {error}") from error
    return instance


def convert(hint: Any, value: Any, key: str) -> Any:
    """The TOML value of `key` as the type the dataclass field declares; ConfigError saying what is wrong."""
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build(hint, value, key)
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{key} = {value!r} is not allowed; choose one of: {', '.join(map(repr, allowed))}")
        return value
    if origin in (typing.Union, types.UnionType):
        return _convert_union(get_args(hint), value, key)
    if origin in (tuple, list):
        return _convert_sequence(origin, get_args(hint), value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table, got {value!r}")
        _, value_type = get_args(hint) or (str, Any)
        return {str(k): convert(value_type, v, f"{key}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    return _convert_scalar(hint, value, key)


def _convert_union(options: tuple[Any, ...], value: Any, key: str) -> Any:
    """The first option the value converts to; the first option's complaint when none does."""
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return convert(option, value, key)
        except ConfigError as error:
            errors.append(str(error))
    raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")


def _convert_sequence(origin: Any, args: tuple[Any, ...], value: Any, key: str) -> Any:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{key} must be a list, got {value!r}")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise ConfigError(f"{key} must have {len(args)} items, got {len(value)}")
        return tuple(convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    item = args[0] if args else Any
    converted = [convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    return tuple(converted) if origin is tuple else converted


def _convert_scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"{key} must be a path string, got {value!r}")
        return Path(value).expanduser()
    raise ConfigError(f"{key}: unsupported configuration type {hint!r}")
