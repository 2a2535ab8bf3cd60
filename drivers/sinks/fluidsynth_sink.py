"""FluidSynth in-process: a synthesizer with a soundfont, played live through an audio driver.

pyfluidsynth's `Synth.start()` returns 0 even when the audio driver failed, and it also starts a
MIDI input driver we do not want, so this module creates the audio driver itself and checks the handle. Drivers are
tried only where their device can exist (a PulseAudio/PipeWire socket, /dev/snd, a JACK server), because a JACK
driver without a server blocks for about 6 s.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.drivers.sinks.base import CC_ALL_SOUND_OFF, CHANNELS
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.drivers.sinks.soundfont import find_soundfont
from neuromusic.models.core.errors import SinkError

log = logging.getLogger(__name__)


class AudioUnavailable(SinkError):
    """No audio driver could be started; the caller renders to a WAV file instead."""


# FluidSynth's master gain that puts the arranged music at about TARGET_LUFS (drivers/sinks/loudness.py) with the
# default soundfont; `[sinks] gain` multiplies it (1.0 = as calibrated). benchmarks/loudness.py measures it.
CALIBRATED_GAIN = 1.2


def synth_gain(config: SinkConfig) -> float:
    return min(10.0, CALIBRATED_GAIN * config.gain)  # 10 is FluidSynth's upper limit


def new_synth(config: SinkConfig) -> Any:
    """A FluidSynth synthesizer with the soundfont loaded on every channel (no audio driver yet)."""
    soundfont = find_soundfont(config.soundfont)
    try:
        import fluidsynth
    except (ImportError, OSError) as error:  # pyfluidsynth raises ImportError when libfluidsynth is missing
        raise SinkError(
            f"FluidSynth is not available ({error}); install it (Debian/Ubuntu: `sudo apt install libfluidsynth3`) "
            "or use --synth none with --midi-out"
        ) from error
    # Load sample data only for the presets used: FluidR3_GM is 148 MB, the four programs need a few MB.
    synth = fluidsynth.Synth(
        gain=synth_gain(config),
        samplerate=float(config.sample_rate),
        **{"synth.dynamic-sample-loading": 1, "synth.reverb.active": 1 if config.reverb else 0},
    )
    sfid = synth.sfload(str(soundfont))
    if sfid < 0:
        synth.delete()
        raise SinkError(f"FluidSynth could not load the soundfont {soundfont} (not a valid .sf2/.sf3 file?)")
    for channel in CHANNELS:
        if channel != 9:  # channel 10 is the GM drum kit; leave its bank alone
            synth.program_select(channel, sfid, 0, 0)
    if config.reverb:
        synth.set_reverb(roomsize=0.6, damping=0.4, width=0.8, level=0.5)
    synth.soundfont = soundfont  # for reports
    # Resolve the render function now: ctypes looks a symbol up on first use, and that lookup waits for any library
    # another thread is loading (the model loader maps torch's, ~0.5 s), which would hold up the first note.
    fluidsynth._fl.fluid_synth_write_float  # noqa: B018
    return synth


def render_float(synth: Any, frames: int) -> np.ndarray:
    """The next `frames` stereo frames as float32 (n, 2): unclipped, so a limiter can shape the peaks instead."""
    import fluidsynth

    out = np.zeros((frames, 2), dtype=np.float32)
    pointer = out.ctypes.data_as(ctypes.c_void_p)
    # left samples at even, right at odd float offsets of one interleaved buffer
    fluidsynth._fl.fluid_synth_write_float(
        ctypes.c_void_p(synth.synth), ctypes.c_int(frames), pointer, 0, 2, pointer, 1, 2
    )
    return out


def candidate_drivers(given: str) -> list[str]:
    """Audio drivers worth trying here, best first."""
    if given:
        return [given]
    if sys.platform == "darwin":
        return ["coreaudio"]
    if sys.platform == "win32":
        return ["wasapi", "dsound"]
    runtime = Path(os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}"))
    drivers = []
    if (runtime / "pipewire-0").exists():
        drivers.append("pipewire")
    if (runtime / "pulse" / "native").exists() or os.environ.get("PULSE_SERVER"):
        drivers.append("pulseaudio")
    if Path("/dev/snd").is_dir():
        drivers.append("alsa")
    # JACK only when asked for (--audio-driver jack): without a server its driver blocks for about 6 s, and
    # leftover files in /dev/shm cannot tell a running server from a dead one.
    return drivers


class PulledSynth:
    """The events of a synth whose audio is pulled in exact sample counts (the WAV file, the live tap): each event
    first renders the audio up to its time, then changes the synth, so it sounds at its sample."""

    _synth: Any

    def _render_to(self, t: float) -> None:
        raise NotImplementedError

    def program(self, channel: int, program: int, t: float) -> None:
        self._render_to(t)
        self._synth.program_change(channel, program)

    def note_on(self, channel: int, pitch: int, velocity: int, t: float) -> None:
        self._render_to(t)
        self._synth.noteon(channel, pitch, velocity)

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        self._render_to(t)
        self._synth.noteoff(channel, pitch)


class FluidSynthSink:
    """Live sound. Calls go straight to the synth; the audio driver's thread renders them within one period."""

    def __init__(self, synth: Any, driver: Any, driver_name: str) -> None:
        self.name = f"fluidsynth:{driver_name}"
        self.live = True
        self._synth = synth
        self._driver = driver
        self.driver_name = driver_name

    @classmethod
    def open(cls, config: SinkConfig) -> FluidSynthSink:
        """Start FluidSynth on the first audio driver that really works; AudioUnavailable when none does."""
        import fluidsynth

        synth = new_synth(config)
        tried = candidate_drivers(config.audio_driver)
        for name in tried:
            synth.setting("audio.driver", name)
            driver = fluidsynth.new_fluid_audio_driver(synth.settings, synth.synth)
            if driver:  # a NULL handle is the only sign of failure
                log.info("FluidSynth plays through the %s audio driver", name)
                return cls(synth, driver, name)
        synth.delete()
        detail = f"audio driver {', '.join(tried)} did not start" if tried else "no audio device found"
        raise AudioUnavailable(detail)

    def program(self, channel: int, program: int, t: float) -> None:
        self._synth.program_change(channel, program)

    def note_on(self, channel: int, pitch: int, velocity: int, t: float) -> None:
        self._synth.noteon(channel, pitch, velocity)

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        self._synth.noteoff(channel, pitch)

    def tempo(self, bpm: float, t: float) -> None:
        pass  # live sound has no tempo map

    def all_notes_off(self, t: float) -> None:
        for channel in CHANNELS:
            self._synth.cc(channel, CC_ALL_SOUND_OFF, 0)

    def close(self, t: float) -> None:
        import fluidsynth

        if self._driver is not None:
            self.all_notes_off(t)
            fluidsynth.delete_fluid_audio_driver(self._driver)
            self._driver = None
            self._synth.delete()
