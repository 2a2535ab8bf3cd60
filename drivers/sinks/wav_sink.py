"""Offline rendering: FluidSynth without an audio driver, pulled with get_samples() in step with the session clock.

Before each event at time t the synth renders exactly the samples up to t, so a note lands on the sample it was
scheduled for, whatever the scheduler's jitter; pauses stay in the file as silence, as the listener heard them.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

from neuromusic.drivers.sinks.base import CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF, CHANNELS
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.drivers.sinks.fluidsynth_sink import new_synth
from neuromusic.models.core.errors import SinkError

BLOCK = 4096  # frames rendered per get_samples call
TAIL_S = 2.0  # release and reverb rendered after the last event


class WavSink:
    def __init__(self, path: Path, config: SinkConfig, t0: float) -> None:
        self.name = f"wav:{path}"
        self.live = False
        self.path = path
        self._rate = config.sample_rate
        self._t0 = t0  # session time of the file's first sample
        self._frames = 0  # frames written so far
        self._synth: Any = new_synth(config)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: wave.Wave_write | None = wave.open(str(path), "wb")  # noqa: SIM115 (open all session)
        except OSError as error:
            self._synth.delete()
            raise SinkError(f"cannot write the WAV file {path}: {error}") from error
        self._file.setnchannels(2)
        self._file.setsampwidth(2)
        self._file.setframerate(self._rate)

    def _render_to(self, t: float) -> None:
        if self._file is None:
            raise SinkError(f"{self.name} is closed")
        target = round((t - self._t0) * self._rate)
        try:
            while self._frames < target:
                n = min(BLOCK, target - self._frames)
                self._file.writeframes(self._synth.get_samples(n).tobytes())
                self._frames += n
        except OSError as error:
            raise SinkError(f"writing {self.path} failed: {error}") from error

    def program(self, channel: int, program: int, t: float) -> None:
        self._render_to(t)
        self._synth.program_change(channel, program)

    def note_on(self, channel: int, pitch: int, velocity: int, t: float) -> None:
        self._render_to(t)
        self._synth.noteon(channel, pitch, velocity)

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        self._render_to(t)
        self._synth.noteoff(channel, pitch)

    def tempo(self, bpm: float, t: float) -> None:
        pass  # rendered sound has no tempo map

    def all_notes_off(self, t: float) -> None:
        self._render_to(t)
        for channel in CHANNELS:
            self._synth.cc(channel, CC_ALL_SOUND_OFF, 0)

    def close(self, t: float) -> None:
        if self._file is None:
            return
        try:
            end = max(t, self._t0 + self._frames / self._rate)
            self._render_to(end)
            for channel in CHANNELS:
                self._synth.cc(channel, CC_ALL_NOTES_OFF, 0)  # notes release naturally into the tail
            self._render_to(end + TAIL_S)
        finally:
            self._file.close()
            self._file = None
            self._synth.delete()
