"""MIDI out to a port: an existing one (a hardware synth, a DAW) or a virtual one others connect to.

python-rtmidi is used directly, with its ALSA and JACK back ends tried in turn: where there is no ALSA sequencer
(no /dev/snd/seq, as in containers) rtmidi fails at construction, and JACK works only while a JACK server runs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from neuromusic.drivers.sinks.base import CC_ALL_NOTES_OFF, CHANNELS
from neuromusic.models.core.errors import SinkError

log = logging.getLogger(__name__)

VIRTUAL = "virtual"
CLIENT_NAME = "neuromusic"


def _apis() -> list[tuple[str, int]]:
    import rtmidi

    compiled = set(rtmidi.get_compiled_api())
    order = [
        ("ALSA", rtmidi.API_LINUX_ALSA),
        ("JACK", rtmidi.API_UNIX_JACK),
        ("CoreMIDI", rtmidi.API_MACOSX_CORE),
        ("Windows MM", rtmidi.API_WINDOWS_MM),
    ]
    return [(name, api) for name, api in order if api in compiled]


def _open_backends() -> tuple[list[tuple[str, Any]], list[str]]:
    """A MidiOut per back end that works here, and why the others did not."""
    import rtmidi

    outs, failures = [], []
    for name, api in _apis():
        try:
            outs.append((name, rtmidi.MidiOut(rtapi=api, name=CLIENT_NAME)))
        except rtmidi.RtMidiError as error:
            failures.append(f"{name}: {error}")
    return outs, failures


def list_output_ports() -> list[str]:
    """Every MIDI output port, as "BACKEND: name" (empty when no back end works)."""
    outs, _ = _open_backends()
    ports = [f"{name}: {port}" for name, out in outs for port in out.get_ports()]
    for _, out in outs:
        out.delete()
    return ports


# JACK hands MIDI to other clients in its process cycle, from a buffer the port owns: a port closed right after
# the last send loses what is still buffered — at shutdown, the all-notes-off, and a synth would hang notes.
# Two periods of 1024 frames at 48 kHz take 43 ms, but a server without real-time scheduling can miss cycles for up
# to its client timeout (500 ms by default) when the machine is busy; shutdown waits that long once.
JACK_FLUSH_S = 0.5


class MidiPortSink:
    def __init__(self, out: Any, port_name: str, backend: str = "") -> None:
        self.name = f"midi-out:{port_name}"
        self.live = True
        self.port_name = port_name
        self.backend = backend
        self._out = out

    @classmethod
    def open(cls, wanted: str) -> MidiPortSink:
        """Open `wanted` (an existing port's name or a unique part of it) or create the port for VIRTUAL."""
        outs, failures = _open_backends()
        if not outs:
            raise SinkError(
                "no MIDI back end works here (" + "; ".join(failures) + "). MIDI ports need an ALSA sequencer "
                "(/dev/snd/seq) or a running JACK server (e.g. `jackd -d dummy`); or play through --synth fluidsynth"
            )
        chosen: tuple[str, Any, int | None] | None = None
        if wanted == VIRTUAL:
            backend, out = outs[0]
            chosen = (backend, out, None)
        else:
            matches = [(b, out, i) for b, out in outs for i, p in enumerate(out.get_ports()) if p == wanted]
            if not matches:
                matches = [(b, out, i) for b, out in outs for i, p in enumerate(out.get_ports()) if wanted in p]
            if len(matches) != 1:
                ports = [f"{b}: {p}" for b, out in outs for p in out.get_ports()]
                for _, out in outs:
                    out.delete()
                why = "is ambiguous" if matches else "not found"
                listing = "\n  ".join(ports) if ports else "(none)"
                raise SinkError(
                    f"MIDI output port {wanted!r} {why}. Ports:\n  {listing}\nor --midi-out {VIRTUAL} to create one"
                )
            chosen = matches[0]
        backend, out, index = chosen
        for _, other in outs:
            if other is not out:
                other.delete()
        try:
            if index is None:
                out.open_virtual_port(CLIENT_NAME)
                port_name = f"{CLIENT_NAME} (virtual, {backend})"
            else:
                port_name = out.get_ports()[index]
                out.open_port(index)
        except Exception as error:  # rtmidi raises its own error types, and SystemError from C
            out.delete()
            raise SinkError(f"could not open MIDI output {wanted!r} on {backend}: {error}") from error
        log.info("MIDI out: %s", port_name)
        return cls(out, port_name, backend)

    def _send(self, message: list[int]) -> None:
        if self._out is None:
            raise SinkError(f"{self.name} is closed")
        try:
            self._out.send_message(message)
        except Exception as error:  # a vanished port or server: the scheduler drops this sink
            raise SinkError(f"{self.name} failed: {error}") from error

    def program(self, channel: int, program: int, t: float) -> None:
        self._send([0xC0 | channel, program])

    def note_on(self, channel: int, pitch: int, velocity: int, t: float) -> None:
        self._send([0x90 | channel, pitch, velocity])

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        self._send([0x80 | channel, pitch, 0])

    def tempo(self, bpm: float, t: float) -> None:
        pass  # a port gets notes in real time; tempo is implicit

    def all_notes_off(self, t: float) -> None:
        for channel in CHANNELS:
            self._send([0xB0 | channel, CC_ALL_NOTES_OFF, 0])

    def close(self, t: float) -> None:
        if self._out is None:
            return
        try:
            self.all_notes_off(t)
            if "JACK" in self.backend.upper():
                time.sleep(JACK_FLUSH_S)  # once, at close (shutdown or a dropped sink)
        finally:
            out, self._out = self._out, None
            out.close_port()
            out.delete()
