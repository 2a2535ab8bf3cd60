"""Offline rendering: FluidSynth without an audio driver, pulled in step with the session clock.

Before each event at time t the synth renders exactly the samples up to t, so a note lands on the sample it was
scheduled for, whatever the scheduler's jitter; pauses stay in the file as silence, as the listener heard them.
Samples come as floats and pass a gentle limiter (drivers/sinks/limiter.py) before they become 16-bit PCM, so
a loud moment is shaped rather than clipped. The file is an ordinary WAV; a session that outgrows the WAV format's
4 GiB (about 6.7 hours at 44.1 kHz) continues as RF64, the standard 64-bit WAV that audio editors read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from neuromusic.drivers.sinks.base import CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF, CHANNELS
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.drivers.sinks.fluidsynth_sink import PulledSynth, new_synth, render_float
from neuromusic.drivers.sinks.limiter import Limiter
from neuromusic.drivers.sinks.loudness import PEAK_CEILING_DB
from neuromusic.models.core.errors import SinkError

BLOCK = 4096  # frames rendered per call
TAIL_S = 2.0  # release and reverb rendered after the last event
SFC_RF64_AUTO_DOWNGRADE = 0x1210  # libsndfile: write RF64 as a plain WAV while it fits one
LIMIT_MARGIN_DB = 0.5  # sample peaks under the true-peak ceiling by this much (peaks between samples)


def open_wav(path: Path, rate: int) -> soundfile.SoundFile:
    """A 16-bit stereo RF64 file that stays a plain WAV unless it grows past 4 GiB."""
    file = soundfile.SoundFile(str(path), "w", samplerate=rate, channels=2, subtype="PCM_16", format="RF64")
    # soundfile has no wrapper for this libsndfile command; without it the file is RF64 from the start
    soundfile._snd.sf_command(file._file, SFC_RF64_AUTO_DOWNGRADE, soundfile._ffi.NULL, 1)
    return file


class WavSink(PulledSynth):
    def __init__(self, path: Path, config: SinkConfig, t0: float) -> None:
        self.name = f"wav:{path}"
        self.live = False
        self.path = path
        self._rate = config.sample_rate
        self._t0 = t0  # session time of the file's first sample
        self._frames = 0  # frames written so far
        self._synth: Any = new_synth(config)
        self.limiter = Limiter(self._rate, PEAK_CEILING_DB - LIMIT_MARGIN_DB)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: soundfile.SoundFile | None = open_wav(path, self._rate)
            # an empty write resolves libsndfile's write function now, not at the first note (see new_synth)
            self._file.write(np.zeros((0, 2), dtype=np.float32))
        except (OSError, RuntimeError) as error:  # soundfile raises LibsndfileError, a RuntimeError
            self._synth.delete()
            raise SinkError(f"cannot write the WAV file {path}: {error}") from error

    def _render_to(self, t: float) -> None:
        if self._file is None:
            raise SinkError(f"{self.name} is closed")
        target = round((t - self._t0) * self._rate)
        try:
            while self._frames < target:
                n = min(BLOCK, target - self._frames)
                self._file.write(self.limiter.process(render_float(self._synth, n)))
                self._frames += n
        except (OSError, RuntimeError) as error:
            raise SinkError(f"writing {self.path} failed: {error}") from error

    def catch_up(self, t: float) -> None:
        """Render up to t ahead of the next event (the scheduler calls this while nothing is due)."""
        self._render_to(t)

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
            self._file.write(self.limiter.flush())
        finally:
            self._file.close()
            self._file = None
            self._synth.delete()
