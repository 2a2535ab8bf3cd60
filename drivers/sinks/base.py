"""What every music sink is: timed MIDI-like calls in, sound or a file out.

Every call carries `t`, the time the event was scheduled for on the session clock. Live sinks (FluidSynth audio,
MIDI ports) play the event now, since the scheduler calls them at `t`; offline sinks (WAV, MIDI file) place it at
exactly `t`, so their output is sample-accurate whatever the scheduler's jitter. A sink raises `SinkError` when it
fails; the scheduler then reports and drops it, and the other sinks go on.

A sink that renders (a WAV file) is also a `RenderingSink`: the scheduler lets it render ahead while nothing is due.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

# General MIDI controller numbers used to silence a channel.
CC_ALL_SOUND_OFF = 120
CC_ALL_NOTES_OFF = 123
CHANNELS = range(16)


class Sink(Protocol):
    name: str
    live: bool  # True: plays events the moment they are called (sound, ports); False: places them at t (files)

    def program(self, channel: int, program: int, t: float) -> None: ...

    def note_on(self, channel: int, pitch: int, velocity: int, t: float) -> None: ...

    def note_off(self, channel: int, pitch: int, t: float) -> None: ...

    def tempo(self, bpm: float, t: float) -> None:
        """The tempo from `t` on (only files use it; sound does not depend on it)."""
        ...

    def all_notes_off(self, t: float) -> None: ...

    def close(self, t: float) -> None:
        """Silence everything, flush and release. Called once, also after a failure."""
        ...


@runtime_checkable
class RenderingSink(Sink, Protocol):
    def catch_up(self, t: float) -> None:
        """Render up to `t` now, while nothing is due (every event before `t` has been sent)."""
        ...
