"""Reading XDF files (LabRecorder's format) with pyxdf: the EEG stream to replay and the text markers beside it.

pyxdf corrects every stream's time stamps to the recording computer's clock with the clock offsets LabRecorder
stored, so the EEG and the markers of one file share one time line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from neuromusic.drivers.lsl_source import UNIT_SCALE
from neuromusic.models.core.errors import SourceError

FloatArray = npt.NDArray[np.float64]


def _first(info: dict[str, Any], key: str, default: str = "") -> str:
    value = info.get(key)
    if isinstance(value, list) and value and value[0] is not None:
        return str(value[0])
    return default


def _load(path: Path, **kwargs: Any) -> list[dict[str, Any]]:
    try:
        import pyxdf
    except ImportError as error:  # a dependency of neuromusic: only a broken install lacks it
        raise SourceError("replay of XDF files needs pyxdf: pip install pyxdf") from error
    if not path.name.lower().endswith(".xdfz"):  # pyxdf leaves the file open when the magic is wrong: look first
        with open(path, "rb") as handle:
            if handle.read(4) != b"XDF:":
                raise SourceError(f"replay: pyxdf cannot read {path}: it does not start like an XDF file")
    try:
        streams, _ = pyxdf.load_xdf(str(path), **kwargs)
    except Exception as error:  # pyxdf raises whatever its parser met (struct.error, XML errors, ValueError)
        raise SourceError(f"replay: pyxdf cannot read {path}: {error}") from error
    return list(streams)


def _describe(stream: dict[str, Any]) -> str:
    info = stream["info"]
    return f"{_first(info, 'name')!r} (type {_first(info, 'type')}, {len(stream['time_stamps'])} samples)"


def _channels(info: dict[str, Any], n: int) -> tuple[tuple[str, ...], list[str]]:
    labels: list[str] = []
    units: list[str] = []
    desc = info.get("desc") or [None]
    try:
        channels = desc[0]["channels"][0]["channel"]
    except (TypeError, KeyError, IndexError):
        channels = []
    for channel in channels:
        labels.append(_first(channel, "label"))
        units.append(_first(channel, "unit"))
    if len(labels) != n or any(not label for label in labels) or len(set(labels)) != n:
        labels = [f"EEG{i + 1}" for i in range(n)]
    if len(units) != n:
        units = [""] * n
    return tuple(labels), units


def choose_eeg(streams: list[dict[str, Any]], name: str, path: Path) -> dict[str, Any]:
    """The stream named `name`, else the only numeric stream of type EEG; an error lists what the file holds."""
    listing = "; ".join(_describe(s) for s in streams) or "none"
    if name:
        named = [s for s in streams if _first(s["info"], "name") == name]
        if not named:
            raise SourceError(f"replay: {path.name} has no stream named {name!r}; its streams: {listing}")
        return named[0]
    eeg = [s for s in streams if _first(s["info"], "type").upper() == "EEG" and len(s["time_stamps"])]
    if len(eeg) == 1:
        return eeg[0]
    if not eeg:
        raise SourceError(f"replay: {path.name} has no EEG stream with samples; pass --stream NAME ({listing})")
    raise SourceError(f"replay: {path.name} has {len(eeg)} EEG streams; choose one with --stream NAME ({listing})")


def load_xdf_eeg(path: Path, stream: str = "") -> tuple[FloatArray, FloatArray, tuple[str, ...], float, str]:
    """(data in microvolts (n_channels, n_samples), time stamps, channel names, sfreq, description)."""
    chosen = choose_eeg(_load(path), stream, path)
    info = chosen["info"]
    label = _first(info, "name")
    if _first(info, "channel_format") == "string":
        raise SourceError(f"replay: XDF stream {label!r} carries text markers, not EEG samples")
    sfreq = float(_first(info, "nominal_srate", "0") or 0)
    if sfreq <= 0:
        raise SourceError(f"replay: XDF stream {label!r} has an irregular rate; EEG needs a nominal sampling rate")
    series = np.asarray(chosen["time_series"], dtype=np.float64)  # (n_samples, n_channels)
    if series.ndim != 2 or series.shape[0] == 0:
        raise SourceError(f"replay: XDF stream {label!r} holds no samples")
    names, units = _channels(info, series.shape[1])
    scales = {UNIT_SCALE.get(u.strip().lower()) for u in units}
    if None in scales or len(scales) > 1:
        raise SourceError(
            f"replay: XDF stream {label!r} has channel units {sorted(set(units))}; all must be microvolts, "
            f"millivolts or volts (or none, read as microvolts)"
        )
    scale = scales.pop() or 1.0
    stamps = np.asarray(chosen["time_stamps"], dtype=np.float64)
    return series.T * scale, stamps, names, sfreq, f"XDF {path.name} stream {label!r}"


def load_xdf_markers(path: Path) -> list[tuple[float, str]]:
    """(time stamp, label) of every sample of the file's text streams, oldest first."""
    markers: list[tuple[float, str]] = []
    for stream in _load(path):
        if _first(stream["info"], "channel_format") != "string":
            continue
        for stamp, sample in zip(stream["time_stamps"], stream["time_series"], strict=True):
            markers.append((float(stamp), str(sample[0]) if len(sample) else ""))
    return sorted(markers)
