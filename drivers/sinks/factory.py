"""Open the sinks a configuration asks for. Several at once: speakers, a MIDI port, a WAV file, a MIDI file."""

from __future__ import annotations

from pathlib import Path

from neuromusic.drivers.sinks.base import Sink
from neuromusic.drivers.sinks.config import SinkConfig

FALLBACK_WAV = "session.wav"


def _place(path: Path, session_dir: Path | None) -> Path:
    """Relative output paths go into the session folder (or the current folder when there is none)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() or session_dir is None else session_dir / path


def open_sinks(config: SinkConfig, session_dir: Path | None, t0: float) -> tuple[list[Sink], list[str]]:
    """Open every configured sink; returns them and notices for the operator (said once, e.g. "no audio device").

    Raises SinkError when a sink that was asked for cannot work at all (missing soundfont, unknown MIDI port);
    sinks already opened are closed first, so nothing leaks.
    """
    sinks: list[Sink] = []
    notices: list[str] = []
    wav = config.wav
    try:
        if config.synth == "fluidsynth":
            from neuromusic.drivers.sinks.fluidsynth_sink import AudioUnavailable, FluidSynthSink

            try:
                sinks.append(FluidSynthSink.open(config))
            except AudioUnavailable as error:
                if wav is None and session_dir is None:
                    # nowhere agreed to write: say so rather than drop a file into the current folder
                    notices.append(
                        f"no working audio device ({error}) and no session folder: the music is not "
                        "heard or kept; give --wav PATH or --session-dir DIR to render it"
                    )
                elif wav is not None:  # the WAV was asked for anyway: it is not a stand-in
                    notices.append(
                        f"not heard on speakers ({error}): the music goes to the WAV file you asked for, "
                        f"{_place(wav, session_dir)}"
                    )
                else:
                    wav = Path(FALLBACK_WAV)
                    notices.append(
                        f"no working audio device ({error}): rendering to {_place(wav, session_dir)} instead"
                    )
        if wav is not None:
            from neuromusic.drivers.sinks.wav_sink import WavSink

            sinks.append(WavSink(_place(wav, session_dir), config, t0))
        if config.midi_file is not None:
            from neuromusic.drivers.sinks.midifile_sink import MidiFileSink

            sinks.append(MidiFileSink(_place(config.midi_file, session_dir), t0))
        if config.midi_out:
            from neuromusic.drivers.sinks.midiport_sink import MidiPortSink

            sinks.append(MidiPortSink.open(config.midi_out))
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
