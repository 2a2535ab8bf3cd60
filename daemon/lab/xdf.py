"""A small XDF writer (Extensible Data Format, the file LabRecorder writes), for `neuromusic export --format xdf`.

The layout follows the XDF 1.0 specification: the magic "XDF:", then chunks, each [length][tag][content] with the
length as a variable-length integer (one byte giving the width 1, 4 or 8, then the value, little-endian):

    tag 1 FileHeader    XML <info><version>1.0</version></info>
    tag 2 StreamHeader  stream id (uint32) + XML <info>: name, type, channel_count, nominal_srate, channel_format,
                        source_id, desc/channels/channel (label, unit, type)
    tag 3 Samples       stream id + sample count (varlen) + per sample: 8, time stamp (float64), values (numeric
                        little-endian, or each string as varlen length + UTF-8 bytes)
    tag 4 ClockOffset   stream id + collection time + offset (float64 each); here 0: one clock wrote everything
    tag 6 StreamFooter  stream id + XML <info>: first/last time stamp, sample count, clock offsets

Every stream is written in one go (a header, samples in chunks of CHUNK_SAMPLES, a footer), so a file is complete or
absent: it is written to a temporary name and renamed at the end.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt

CHUNK_SAMPLES = 4096
NUMERIC_FORMATS = {"float32": "<f4", "double64": "<f8", "int32": "<i4", "int16": "<i2"}


@dataclass
class XdfStream:
    """One stream to write. `values` is (n_samples, n_channels) for numeric formats, a list of rows of strings for
    "string"; `channels` holds (label, unit, type) per channel."""

    name: str
    type: str
    channel_format: str  # "float32", "double64", "int32", "int16" or "string"
    nominal_srate: float  # 0: irregular
    source_id: str
    timestamps: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64] | Sequence[Sequence[str]]
    channels: list[tuple[str, str, str]] = field(default_factory=list)
    desc_xml: str = ""  # more of the header's <desc>, after <channels> (XML, escaped by the caller)


def _varlen(value: int) -> bytes:
    if value < 256:
        return struct.pack("<BB", 1, value)
    if value < 2**32:
        return struct.pack("<BI", 4, value)
    return struct.pack("<BQ", 8, value)


def _chunk(handle: BinaryIO, tag: int, content: bytes) -> None:
    handle.write(_varlen(len(content) + 2) + struct.pack("<H", tag) + content)


def _header_xml(stream: XdfStream, n_channels: int) -> bytes:
    channels = "".join(
        f"<channel><label>{escape(label)}</label><unit>{escape(unit)}</unit><type>{escape(kind)}</type></channel>"
        for label, unit, kind in stream.channels
    )
    return (
        '<?xml version="1.0"?><info>'
        f"<name>{escape(stream.name)}</name><type>{escape(stream.type)}</type>"
        f"<channel_count>{n_channels}</channel_count><nominal_srate>{stream.nominal_srate:.17g}</nominal_srate>"
        f"<channel_format>{stream.channel_format}</channel_format><source_id>{escape(stream.source_id)}</source_id>"
        f"<version>1.1</version><created_at>0</created_at><desc><channels>{channels}</channels>{stream.desc_xml}</desc></info>"
    ).encode()


def _sample_bytes(stream: XdfStream, start: int, stop: int) -> bytes:
    parts = [_varlen(stop - start)]
    stamps = stream.timestamps
    if stream.channel_format == "string":
        for i in range(start, stop):
            parts.append(struct.pack("<Bd", 8, float(stamps[i])))
            for text in stream.values[i]:
                raw = str(text).encode()
                parts.append(_varlen(len(raw)) + raw)
        return b"".join(parts)
    dtype = np.dtype(NUMERIC_FORMATS[stream.channel_format])
    rows = np.asarray(stream.values[start:stop], dtype=dtype)
    for i, row in zip(range(start, stop), rows, strict=True):
        parts.append(struct.pack("<Bd", 8, float(stamps[i])) + row.tobytes())
    return b"".join(parts)


def write_xdf(path: Path, streams: list[XdfStream]) -> Path:
    """Write `streams` to `path` (atomically: a temporary file renamed at the end); returns the path."""
    for stream in streams:
        if stream.channel_format != "string" and stream.channel_format not in NUMERIC_FORMATS:
            raise ValueError(f"XDF stream {stream.name!r}: unknown channel format {stream.channel_format!r}")
        if len(stream.values) != len(stream.timestamps):
            raise ValueError(
                f"XDF stream {stream.name!r}: {len(stream.values)} samples, {len(stream.timestamps)} times"
            )
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(b"XDF:")
        _chunk(handle, 1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
        for number, stream in enumerate(streams, start=1):
            sid = struct.pack("<I", number)
            n_channels = len(stream.channels) or (
                len(stream.values[0]) if len(stream.values) else 1  # no labels given: the width of a sample
            )
            _chunk(handle, 2, sid + _header_xml(stream, n_channels))
        for number, stream in enumerate(streams, start=1):
            sid = struct.pack("<I", number)
            n = len(stream.timestamps)
            for start in range(0, n, CHUNK_SAMPLES):
                _chunk(handle, 3, sid + _sample_bytes(stream, start, min(n, start + CHUNK_SAMPLES)))
            first = float(stream.timestamps[0]) if n else 0.0
            last = float(stream.timestamps[-1]) if n else 0.0
            for when in (first, last):
                _chunk(handle, 4, sid + struct.pack("<dd", when, 0.0))
            footer = (
                '<?xml version="1.0"?><info>'
                f"<first_timestamp>{first:.17g}</first_timestamp><last_timestamp>{last:.17g}</last_timestamp>"
                f"<sample_count>{n}</sample_count><clock_offsets>"
                f"<offset><time>{first:.17g}</time><value>0</value></offset>"
                f"<offset><time>{last:.17g}</time><value>0</value></offset></clock_offsets></info>"
            ).encode()
            _chunk(handle, 6, sid + footer)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path
