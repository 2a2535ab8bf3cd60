"""Raw samples made safe to filter: spikes repaired, glitches and invalid samples held, each counted.

An amplifier glitch is a sample or two far from the signal around it (consumer headsets throw single samples of
0.7 V); no scalp rhythm moves that fast. A jump of more than the limit (features.quality.max_uv) from the channel's
level starts a run of held samples (the channel's last good value stands in for them). If the signal comes back to
within the limit of that level within `spike_s`, the run was a spike: its samples are counted as repaired and the
channel stays good. If it does not, the run was a real glitch, a jump or a rail: the sample where that became clear
is counted as a glitch (or railed, beyond rail_uv) and the channel is excluded while it sits in the window; the
signal's new level is accepted unless it is railed.

When at least half of the channels (two or more) jump at the same sample, the glitch is the amplifier's: that sample
is held on every channel, so the channels where it stayed under the limit lose it too.

Non-finite samples are held and counted (the "nan" rule). Only channels with something to repair are walked sample
by sample; the others pass through untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from neuromusic.models.core.messages import BoolArray, FloatArray

_BROKEN = -1  # run state: a held run that did not come back in time (railed), waiting for the signal to return


@dataclass
class Repaired:
    """A chunk after repair: the signal to filter and, per sample (n_channels, n), what was found there."""

    x: FloatArray
    nonfinite: BoolArray
    railed: BoolArray
    glitch: BoolArray
    repaired: FloatArray  # samples of a spike that ended at this sample (counted where the signal came back)


class SpikeRepair:
    """Streaming spike repair of raw chunks; the result does not depend on how the stream is cut."""

    def __init__(self, n_channels: int, sfreq: float, limit_uv: float, rail_uv: float, spike_s: float) -> None:
        self.limit = limit_uv
        self.rail = rail_uv
        self.max_run = max(1, math.floor(spike_s * sfreq + 1e-9)) if spike_s > 0 else 0  # samples a spike may last
        self._level = np.full(n_channels, np.nan)  # each channel's reference level (NaN: no good sample yet)
        self._held = np.zeros(n_channels)  # the value given to the filters for a held sample
        self._run = np.zeros(n_channels, dtype=np.int64)  # samples held in the current run; 0 none; _BROKEN
        self._last_raw = np.full(n_channels, np.nan)
        self.total = np.zeros(n_channels, dtype=np.int64)  # samples repaired so far, per channel

    def __call__(self, raw: FloatArray) -> Repaired:
        n_ch, n = raw.shape
        nonfinite = ~np.isfinite(raw)
        with np.errstate(invalid="ignore"):
            railed_any = np.abs(raw) >= self.rail
            before = np.concatenate([self._last_raw[:, np.newaxis], raw[:, :-1]], axis=1)
            jump = (np.abs(raw - before) > self.limit) | railed_any
        self._last_raw[:] = raw[:, -1]
        common = jump.sum(axis=0) >= max(2, math.ceil(n_ch / 2)) if n_ch >= 2 else np.zeros(n, dtype=bool)
        out = Repaired(raw.copy(), nonfinite, np.zeros_like(nonfinite), np.zeros_like(nonfinite), np.zeros((n_ch, n)))
        walk = nonfinite.any(axis=1) | jump.any(axis=1) | (self._run != 0) | np.isnan(self._level)
        if common.any():
            walk[:] = True
        for ch in np.flatnonzero(walk):
            self._walk(int(ch), raw[ch], railed_any[ch], common, out)
        calm = ~walk
        self._level[calm] = raw[calm, -1]
        self._held[calm] = raw[calm, -1]
        self.total += out.repaired.sum(axis=1).astype(np.int64)
        return out

    def _walk(self, ch: int, raw: FloatArray, railed: BoolArray, common: BoolArray, out: Repaired) -> None:
        """One channel's chunk, sample by sample (see the module docstring)."""
        level, held, run = float(self._level[ch]), float(self._held[ch]), int(self._run[ch])
        x = out.x[ch]
        for i, v in enumerate(raw):
            if not math.isfinite(v):
                x[i] = held
                continue
            if math.isnan(level):  # the channel's first finite sample: nothing to compare it with
                if railed[i]:
                    out.railed[ch, i] = True
                    x[i] = held
                else:
                    level = held = v
                continue
            far = bool(railed[i]) or abs(v - level) > self.limit
            if not far and not (common[i] and run == 0 and self.max_run > 0):
                if run > 0:
                    out.repaired[ch, i] = run  # back within spike_s: the run was a spike
                run, level, held = 0, v, v
                continue
            if run != _BROKEN and run < self.max_run:
                run += 1  # hold, and see whether the signal comes back in time
                x[i] = held
                continue
            x[i] = held
            if railed[i]:
                out.railed[ch, i] = True
                run = _BROKEN
            else:
                out.glitch[ch, i] = True  # a jump that stayed: the signal's new level from here on
                run, level = 0, v
        self._level[ch], self._held[ch], self._run[ch] = level, held, run
