"""Lab Streaming Layer inlets as Sources.

Known LSL failure modes shape this: an inlet that recovers silently hides a dead sender and may never
deliver again after the outlet restarts (pylsl#88, liblsl#180), and recovery fails for an inlet built from an outlet's
info instead of a fresh resolve (liblsl#35). So the inlet is made with `recover=False`: a vanished outlet raises
SourceError at once, the daemon closes this source and opens it again, and `open()` resolves afresh by name / type /
source_id, which finds the restarted outlet. Time stamps are mapped to the local LSL clock and de-jittered.
"""

from __future__ import annotations

import numpy as np
from neuromusic.drivers.base import Connection, SourceInfo
from neuromusic.drivers.config import SourceConfig
from neuromusic.models.core.clock import Clock
from neuromusic.models.core.errors import ConfigError, SourceError, SourceNotFoundError
from neuromusic.models.core.messages import Chunk

UNIT_SCALE = {  # channel unit in the stream's description -> factor to microvolts
    "": 1.0, "uv": 1.0, "µv": 1.0, "microvolt": 1.0, "microvolts": 1.0,
    "mv": 1e3, "millivolt": 1e3, "millivolts": 1e3,
    "v": 1e6, "volt": 1e6, "volts": 1e6,
}  # fmt: skip
_MAX_SAMPLES = 4096  # at most this many samples per read


def predicate(name: str, type_: str, source_id: str) -> str:
    """An XPath predicate for liblsl's resolver from the non-empty criteria."""
    parts = [f"{key}='{value}'" for key, value in (("name", name), ("type", type_), ("source_id", source_id)) if value]
    for value in (name, type_, source_id):
        if "'" in value:
            raise ConfigError(f"LSL stream names, types and source ids cannot contain a quote: {value!r}")
    return " and ".join(parts)


class LSLSource(Connection):
    def __init__(self, name: str = "", type_: str = "EEG", source_id: str = "", resolve_timeout_s: float = 5.0) -> None:
        if not (name or type_ or source_id):
            raise ConfigError("--board lsl needs at least one of --lsl-name, --lsl-type, --lsl-source-id")
        self.predicate = predicate(name, type_, source_id)
        self.resolve_timeout_s = resolve_timeout_s
        self._inlet: object | None = None
        self._info: SourceInfo | None = None
        self._scale = 1.0

    def open(self) -> SourceInfo:
        import pylsl

        found = pylsl.resolve_bypred(self.predicate, minimum=1, timeout=self.resolve_timeout_s)
        if not found:
            raise SourceNotFoundError(
                f"no LSL stream matching {self.predicate} appeared within {self.resolve_timeout_s:g} s; check the "
                f"sender is running on this machine or network (`neuromusic devices` lists the visible streams)"
            )
        info = found[0]
        if info.channel_format() == pylsl.cf_string:
            raise SourceError(f"LSL stream {info.name()!r} carries text markers, not EEG samples")
        sfreq = float(info.nominal_srate())
        if sfreq <= 0:
            raise SourceError(f"LSL stream {info.name()!r} has an irregular rate; EEG needs a nominal sampling rate")
        inlet = pylsl.StreamInlet(
            info,
            max_buflen=60,
            recover=False,
            processing_flags=pylsl.proc_clocksync | pylsl.proc_dejitter,
        )
        try:
            full = inlet.info(timeout=self.resolve_timeout_s)
            inlet.open_stream(timeout=self.resolve_timeout_s)
        except (pylsl.util.LostError, pylsl.util.TimeoutError) as error:
            inlet.close_stream()
            raise SourceNotFoundError(f"LSL stream {info.name()!r} vanished while connecting: {error}") from error
        names, units = _channels(full)
        scales = {UNIT_SCALE.get(u.strip().lower()) for u in units}
        if None in scales or len(scales) > 1:
            inlet.close_stream()  # open() holds nothing after raising
            raise SourceError(
                f"LSL stream {info.name()!r} has channel units {sorted(set(units))}; all its channels must be in one "
                f"of microvolts (uV), millivolts (mV) or volts (V), or give no unit (read as microvolts)"
            )
        self._scale = scales.pop() or 1.0
        self._inlet = inlet
        label = f"LSL {info.name()!r}" + (f" (source_id {info.source_id()})" if info.source_id() else "")
        self._info = SourceInfo(label, sfreq, names, "lsl")
        return self._info

    def read(self, max_wait: float) -> Chunk | None:
        import pylsl

        inlet = self._inlet
        if inlet is None or self._info is None:
            raise RuntimeError("read() before open()")
        try:
            data, stamps = inlet.pull_chunk(timeout=max(0.0, max_wait), max_samples=_MAX_SAMPLES)  # type: ignore[attr-defined]
        except pylsl.util.LostError as error:
            raise SourceError(f"{self._info.name} was lost: the sender stopped or became unreachable") from error
        if not stamps:
            return None
        x = np.asarray(data, dtype=np.float64).T * self._scale  # (channels, n)
        return Chunk(x, np.asarray(stamps, dtype=np.float64), self._info.channel_names, self._info.sfreq)

    def close(self) -> None:
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            inlet.close_stream()  # type: ignore[attr-defined]


def _channels(info: object) -> tuple[tuple[str, ...], list[str]]:
    """Channel labels and units from the stream description; generated names where it has none."""
    n = int(info.channel_count())  # type: ignore[attr-defined]
    names: list[str] = []
    units: list[str] = []
    channel = info.desc().child("channels").child("channel")  # type: ignore[attr-defined]
    while not channel.empty() and len(names) < n:
        names.append(channel.child_value("label"))
        units.append(channel.child_value("unit"))
        channel = channel.next_sibling()
    if len(names) != n or any(not label for label in names) or len(set(names)) != n:
        names = [f"EEG{i + 1}" for i in range(n)]
    if len(units) != n:
        units = [""] * n
    return tuple(names), units


def create(config: SourceConfig, clock: Clock) -> LSLSource:
    """Registry entry for `--board lsl`."""
    return LSLSource(config.lsl_name, config.lsl_type, config.lsl_source_id, config.resolve_timeout_s)
