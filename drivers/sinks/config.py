"""[sinks] configuration: where the music goes and how far ahead it is prepared."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SYNTHS = ("fluidsynth", "none")


@dataclass(frozen=True)
class SinkConfig:
    synth: str = "fluidsynth"  # fluidsynth = in-process FluidSynth to the speakers (WAV if no audio device) | none
    audio_driver: str = ""  # "" = detect (pulseaudio, pipewire, alsa, coreaudio, wasapi, ...); or a FluidSynth name
    soundfont: Path | None = None  # None = search the usual system folders (see drivers/sinks/soundfont.py)
    midi_out: str = ""  # "" = none, "virtual" = create a port named "neuromusic", else an existing port's name
    wav: Path | None = None  # also render the session to this WAV file (relative paths: the session folder)
    midi_file: Path | None = None  # also write the session as a standard MIDI file (relative: the session folder)
    sample_rate: int = 44100  # Hz, for FluidSynth and the WAV file
    gain: float = 0.4  # FluidSynth master gain; four parts at once stay clear of clipping at 0.4
    reverb: bool = True  # FluidSynth's reverb; gentle music wants a room
    lead_bars: float = 1.1  # compose a bar this many bars before it starts (>= 1: one bar is always ready)
    start_delay_s: float = 0.3  # the first bar starts this long after playback starts

    def validate(self) -> None:
        if self.synth not in SYNTHS:
            raise ValueError(f"synth = {self.synth!r} is not allowed; choose one of: {', '.join(SYNTHS)}")
        if not 8000 <= self.sample_rate <= 192000:
            raise ValueError(f"sample_rate must be within 8000..192000 Hz, got {self.sample_rate}")
        if not 0.0 < self.gain <= 5.0:
            raise ValueError(f"gain must be within 0 (exclusive)..5, got {self.gain}")
        if not 0.5 <= self.lead_bars <= 4.0:
            raise ValueError(f"lead_bars must be within 0.5..4, got {self.lead_bars}")
        if not 0.0 <= self.start_delay_s <= 10.0:
            raise ValueError(f"start_delay_s must be within 0..10 s, got {self.start_delay_s}")
