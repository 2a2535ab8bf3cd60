"""The sink registry: which sinks a [sinks] configuration asks for, and how each is opened.

Several sinks play at once: speakers, a MIDI port, a WAV file, a MIDI file. Each kind is one row in SINKS: a test of
the configuration that says whether it is wanted, and a builder that imports its module only then (FluidSynth and
the MIDI back ends load nothing until a session asks for them). A new sink kind is one builder plus one row; the
rows are opened in order, so the speakers come first and the WAV file can stand in for them.

`open_sinks` opens them for a caller that closes them itself (the scheduler does); `SinkSet` is the same as an
async context manager that closes every sink on leaving, also on an error path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from neuromusic.drivers.sinks.base import Sink
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.drivers.sinks.fluidsynth_sink import AudioUnavailable
from neuromusic.models.core.clock import Clock

log = logging.getLogger(__name__)

FALLBACK_WAV = "session.wav"


def place(path: Path, session_dir: Path | None) -> Path:
    """Relative output paths go into the session folder (or the current folder when there is none)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() or session_dir is None else session_dir / path


def _fluidsynth(config: SinkConfig, session_dir: Path | None, t0: float) -> Sink:
    from neuromusic.drivers.sinks.fluidsynth_sink import FluidSynthSink

    return FluidSynthSink.open(config)


def _wav(config: SinkConfig, session_dir: Path | None, t0: float) -> Sink:
    from neuromusic.drivers.sinks.wav_sink import WavSink

    assert config.wav is not None
    return WavSink(place(config.wav, session_dir), config, t0)


def _midi_file(config: SinkConfig, session_dir: Path | None, t0: float) -> Sink:
    from neuromusic.drivers.sinks.midifile_sink import MidiFileSink

    assert config.midi_file is not None
    return MidiFileSink(place(config.midi_file, session_dir), t0)


def _midi_out(config: SinkConfig, session_dir: Path | None, t0: float) -> Sink:
    from neuromusic.drivers.sinks.midiport_sink import MidiPortSink

    return MidiPortSink.open(config.midi_out)


@dataclass(frozen=True)
class SinkKind:
    wanted: Callable[[SinkConfig], bool]  # does this configuration ask for the sink?
    build: Callable[[SinkConfig, Path | None, float], Sink]  # (config, session folder, session time of the start)


SINKS: dict[str, SinkKind] = {
    "fluidsynth": SinkKind(lambda c: c.synth == "fluidsynth", _fluidsynth),
    "wav": SinkKind(lambda c: c.wav is not None, _wav),
    "midi_file": SinkKind(lambda c: c.midi_file is not None, _midi_file),
    "midi_out": SinkKind(lambda c: bool(c.midi_out), _midi_out),
}


def sink_names() -> list[str]:
    return list(SINKS)


def wanted_sinks(config: SinkConfig) -> list[str]:
    """The registry names this configuration asks for, in the order they open."""
    return [name for name, kind in SINKS.items() if kind.wanted(config)]


def _without_audio(config: SinkConfig, session_dir: Path | None, error: AudioUnavailable) -> tuple[SinkConfig, str]:
    """No audio device: the configuration the remaining sinks open with, and what to tell the operator."""
    if config.wav is None and session_dir is None:
        # nowhere agreed to write: say so rather than drop a file into the current folder
        return config, (
            f"no working audio device ({error}) and no session folder: the music is not "
            "heard or kept; give --wav PATH or --session-dir DIR to render it"
        )
    if config.wav is not None:  # the WAV was asked for anyway: it is not a stand-in
        return config, (
            f"not heard on speakers ({error}): the music goes to the WAV file you asked for, "
            f"{place(config.wav, session_dir)}"
        )
    config = dataclasses.replace(config, wav=Path(FALLBACK_WAV))
    assert config.wav is not None
    return config, f"no working audio device ({error}): rendering to {place(config.wav, session_dir)} instead"


def open_sinks(config: SinkConfig, session_dir: Path | None, t0: float) -> tuple[list[Sink], list[str]]:
    """Open every configured sink; returns them and notices for the operator (said once, e.g. "no audio device").

    Raises SinkError when a sink that was asked for cannot work at all (missing soundfont, unknown MIDI port);
    sinks already opened are closed first, so nothing leaks.
    """
    sinks: list[Sink] = []
    notices: list[str] = []
    try:
        for kind in SINKS.values():
            if not kind.wanted(config):
                continue
            try:
                sinks.append(kind.build(config, session_dir, t0))
            except AudioUnavailable as error:  # speakers only: the rows after it may stand in
                config, notice = _without_audio(config, session_dir, error)
                notices.append(notice)
    except BaseException:
        for sink in sinks:
            close_quietly(sink, t0)
        raise
    return sinks, notices


def close_quietly(sink: Sink, t: float) -> str | None:
    """Close a sink; return what went wrong instead of raising (closing must reach every sink)."""
    try:
        sink.close(t)
    except Exception as error:  # reported by the caller; one broken sink must not keep the others open
        return f"{sink.name}: {error}"
    return None


class SinkSet:
    """The configured sinks as an async context manager:

        async with SinkSet(config, session_dir, clock) as sinks:
            ...  # sinks.sinks, sinks.notices

    Entering opens them in a worker thread (a synth loads its soundfont); leaving closes every one at the clock's
    time, also when the block raised, and keeps what went wrong in `problems` (a sink closed already, e.g. by the
    scheduler, is closed again harmlessly: close is idempotent)."""

    def __init__(self, config: SinkConfig, session_dir: Path | None, clock: Clock) -> None:
        self._config = config
        self._session_dir = session_dir
        self._clock = clock
        self.sinks: list[Sink] = []
        self.notices: list[str] = []
        self.problems: list[str] = []

    async def __aenter__(self) -> SinkSet:
        self.sinks, self.notices = await asyncio.to_thread(
            open_sinks, self._config, self._session_dir, self._clock.now()
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.problems = close_all(self.sinks, self._clock.now())
        for problem in self.problems:
            log.warning("closing a sink: %s", problem)


def close_all(sinks: list[Sink], t: float) -> list[str]:
    """Close every sink (each one, whatever the others do); returns the problems met."""
    return [problem for problem in (close_quietly(sink, t) for sink in sinks) if problem]
