"""MIDI out over a real JACK server (`jackd --no-realtime -d dummy`): a receiving port gets the notes in order, on
time, and `--midi-out virtual` makes a port others can find. The server runs under its own name, so parallel test
runs do not meet; it is stopped at the end."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from neuromusic.daemon.services.scheduler import Scheduler
from neuromusic.drivers.sinks.midiport_sink import MidiPortSink, list_output_ports
from neuromusic.models.core.clock import MonotonicClock
from neuromusic.models.core.errors import SinkError
from neuromusic.models.core.messages import NoteEvent

pytestmark = [
    pytest.mark.jack,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd is not installed"),
]
PERIOD_S = 128 / 48000  # JACK hands MIDI over once per period


@pytest.fixture
def jack_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"nm-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")  # never let a client start a server of its own
    server = subprocess.Popen(
        ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "128"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:
        import rtmidi

        deadline = time.monotonic() + 10.0
        while True:  # ready when a client can connect
            try:
                rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="probe").delete()
                break
            except rtmidi.RtMidiError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("jackd did not start") from None
                time.sleep(0.1)
        yield name
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class Receiver:
    """A JACK MIDI input port that timestamps what arrives on the monotonic clock."""

    def __init__(self, name: str) -> None:
        import rtmidi

        self.got: list[tuple[float, list[int]]] = []
        self.port = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name=name)
        self.port.open_virtual_port("in")
        self.port.set_callback(self._arrived)

    def _arrived(self, message: tuple[list[int], float], data: Any) -> None:
        self.got.append((time.monotonic(), message[0]))

    def close(self) -> None:
        self.port.close_port()
        self.port.delete()


async def test_a_receiving_port_gets_the_notes_in_order_with_the_right_timing(jack_server: str) -> None:
    receiver = Receiver("receiver")
    sink = MidiPortSink.open("receiver")  # found by a part of its name, "receiver:in"
    assert sink.port_name == "receiver:in"
    clock = MonotonicClock()
    scheduler = Scheduler(clock, [sink])
    start = clock.now() + 0.2
    times = [start + 0.11 * i + (0.05 if i % 3 == 0 else 0.0) for i in range(12)]
    scheduler.notes([NoteEvent(t, 0.05, 60 + i, 70 + i, 2) for i, t in enumerate(times)])
    task = asyncio.create_task(scheduler.run())
    while scheduler.pending:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    scheduler.close()  # the sink's port is closed now: what it did not flush is lost, whatever we wait
    for _ in range(300):  # a busy machine can stall a server without real-time scheduling for a while
        if any(m == [0xB2, 123, 0] for _, m in receiver.got):
            break
        await asyncio.sleep(0.01)
    receiver.close()
    ons = [(t, m) for t, m in receiver.got if m[0] == 0x92 and m[2] > 0]
    assert [m[1] for _, m in ons] == [60 + i for i in range(12)]
    assert [m[2] for _, m in ons] == [70 + i for i in range(12)]
    # intervals between arrivals match the schedule within JACK's period quantisation (two periods), plus 15 ms of
    # slack for a shared, loaded test machine (idle, the error stays under two periods; a scheduler that slept
    # gap after gap would be off by the accumulated gaps)
    error = np.diff([t for t, _ in ons]) - np.diff(times)
    assert np.abs(error).max() < 2 * PERIOD_S + 0.015
    assert any(m == [0xB2, 123, 0] for _, m in receiver.got)  # all notes off at close


def test_virtual_port_is_visible_and_unknown_ports_are_listed(jack_server: str) -> None:
    sink = MidiPortSink.open("virtual")
    try:
        assert "JACK" in sink.port_name
        import rtmidi

        listener = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="looker")
        assert any(port.startswith("neuromusic") for port in listener.get_ports())
        listener.delete()
    finally:
        sink.close(0.0)
    receiver = Receiver("synth")
    try:
        assert "JACK: synth:in" in list_output_ports()
        with pytest.raises(SinkError, match=r"'nope' not found\. Ports:\n  JACK: synth:in"):
            MidiPortSink.open("nope")
    finally:
        receiver.close()
