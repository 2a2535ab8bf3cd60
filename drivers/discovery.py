"""What this machine offers, for `neuromusic devices`: LSL streams visible now, MIDI output ports, FluidSynth audio
drivers. Each function reports a back end that does not work here as text (why), never as an exception: a machine
without an ALSA sequencer or a sound card is normal, and the listing must still show everything else.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class LslStream:
    name: str
    type: str
    source_id: str
    channels: int
    sfreq: float
    hostname: str


def lsl_streams(wait_s: float) -> list[LslStream]:
    """Streams that answer a resolve within `wait_s` seconds (LSLAPICFG decides how far the resolve reaches)."""
    import pylsl

    found = pylsl.resolve_streams(wait_time=wait_s)
    streams = [
        LslStream(s.name(), s.type(), s.source_id(), s.channel_count(), s.nominal_srate(), s.hostname()) for s in found
    ]
    return sorted(streams, key=lambda s: (s.name, s.source_id))


def midi_output_ports() -> tuple[list[str], list[str]]:
    """(ports as "BACKEND: name", problems as "BACKEND: why") for every MIDI back end compiled into python-rtmidi."""
    import rtmidi

    apis = {rtmidi.API_LINUX_ALSA: "ALSA", rtmidi.API_UNIX_JACK: "JACK", rtmidi.API_MACOSX_CORE: "CoreMIDI"}
    apis[rtmidi.API_WINDOWS_MM] = "Windows MM"
    ports: list[str] = []
    problems: list[str] = []
    for api in rtmidi.get_compiled_api():
        name = apis.get(api, f"API {api}")
        try:
            out = rtmidi.MidiOut(rtapi=api, name="neuromusic-devices")
        except rtmidi.RtMidiError as error:  # e.g. no ALSA sequencer (/dev/snd/seq missing), no JACK server
            problems.append(f"{name}: {error}")
            continue
        try:
            ports.extend(f"{name}: {port}" for port in out.get_ports())
        finally:
            out.delete()
    return ports, problems


def fluidsynth_audio_drivers() -> list[str]:
    """The audio drivers this libfluidsynth was built with (whether a device answers is another matter)."""
    # pyfluidsynth prints where it found its library when CI is set: keep stdout for `devices --json`
    with contextlib.redirect_stdout(sys.stderr):
        import fluidsynth

    lib = fluidsynth._fl  # pyfluidsynth does not wrap fluid_settings_foreach_option; the C API lists them
    callback_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)
    lib.new_fluid_settings.restype = ctypes.c_void_p
    lib.delete_fluid_settings.argtypes = [ctypes.c_void_p]
    lib.fluid_settings_foreach_option.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, callback_type]
    names: list[str] = []
    callback = callback_type(lambda _data, _name, option: names.append(option.decode()))
    settings = lib.new_fluid_settings()
    try:
        lib.fluid_settings_foreach_option(settings, b"audio.driver", None, callback)
    finally:
        lib.delete_fluid_settings(settings)
    return names
