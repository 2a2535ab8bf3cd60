"""Cost of the feature path per hop, next to BrainFlow's `DataFilter.get_avg_band_powers` on the same windows.

    .venv/bin/python benchmarks/features.py [--seconds 20] [--quick] [--reference recorded|average|median] [--repeat 3]

For 8/32/64 channels at 250/500/1000 Hz: our FeaturePipeline is fed one hop of samples at a time (its real use) and
timed per hop; BrainFlow computes band powers of the same 2 s window once per hop (it has no streaming mode, so each
hop re-reads the whole window; `apply_filter=True`, its default use). The ratio column is BrainFlow's time / ours
(>1: we are faster). Target: ratio >= 1 everywhere, and < 2.5 ms per hop (1 % of a core) at 32 ch x 1000 Hz.

Each side is timed twice: wall-clock and the process's CPU time (`time.process_time`). On a machine busy with other
work the wall-clock time includes the waits for a core; the CPU time is what the hop itself costs, so the share of a
core is computed from it. Each size is timed `--repeat` times and the fastest run kept (the others lost time to other
work). The load average at the start and the end is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from neuromusic.models.core.messages import Chunk
from neuromusic.models.signal.features import REFERENCES, FeatureConfig
from neuromusic.models.signal.pipeline import FeaturePipeline


def eeg(n_ch: int, n: int, sfreq: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sfreq
    return np.asarray(10 * np.sin(2 * np.pi * 10 * t) + 5 * rng.standard_normal((n_ch, n)))


class Clock:
    """Wall-clock and CPU seconds elapsed since it was started."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def ours(x: np.ndarray, sfreq: float, config: FeatureConfig) -> tuple[tuple[float, float], int]:
    names = tuple(f"C{i + 1}" for i in range(x.shape[0]))  # 10-20-like names: a reference takes them all
    pipe = FeaturePipeline(config, sfreq, names)
    hop = round(config.hop_s * sfreq)
    ts = np.arange(x.shape[1]) / sfreq
    chunks = [Chunk(x[:, i : i + hop], ts[i : i + hop], names, sfreq) for i in range(0, x.shape[1], hop)]
    warm = config.hops_per_window + 2
    for c in chunks[:warm]:  # fill the first window: the steady state is what a session runs in
        pipe.push(c)
    clock = Clock()
    hops = 0
    for c in chunks[warm:]:
        hops += len(pipe.push(c))
    wall, cpu = clock.elapsed()
    return (wall / max(1, hops), cpu / max(1, hops)), hops


def brainflow(x: np.ndarray, sfreq: float, config: FeatureConfig, hops: int) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brainflow's pkg_resources deprecation, not ours
        return _brainflow(x, sfreq, config, hops)


def _brainflow(x: np.ndarray, sfreq: float, config: FeatureConfig, hops: int) -> tuple[float, float]:
    from brainflow.data_filter import DataFilter

    DataFilter.disable_data_logger()
    win = round(config.window_s * sfreq)
    hop = round(config.hop_s * sfreq)
    channels = list(range(x.shape[0]))
    starts = list(range(0, x.shape[1] - win, hop))[:hops]
    data = np.ascontiguousarray(x)
    clock = Clock()
    for s in starts:
        DataFilter.get_avg_band_powers(np.ascontiguousarray(data[:, s : s + win]), channels, int(sfreq), True)
    wall, cpu = clock.elapsed()
    return wall / len(starts), cpu / len(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="signal length per size (default 20)")
    parser.add_argument("--quick", action="store_true", help="8 s of signal per size")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the fastest is kept (default 3)")
    parser.add_argument("--reference", choices=REFERENCES, default="recorded", help="features.reference")
    args = parser.parse_args()
    seconds = 8.0 if args.quick else args.seconds
    config = FeatureConfig(reference=args.reference)  # 2 s window, 0.25 s hop, 5 bands
    print(
        f"window {config.window_s} s, hop {config.hop_s} s, {len(config.bands)} bands, {seconds:g} s of signal, "
        f"reference {config.reference}"
    )
    print(f"load average at the start: {load_average()}")
    print("ms per hop, wall-clock / CPU; ratio = BrainFlow / ours (CPU); core % = our CPU time / hop length")
    print(f"{'channels':>8} {'Hz':>6} {'ours wall/CPU':>15} {'BrainFlow wall/CPU':>19} {'ratio':>7} {'core %':>7}")
    for n_ch in (8, 32, 64):
        for sfreq in (250.0, 500.0, 1000.0):
            x = eeg(n_ch, int(seconds * sfreq), sfreq)
            runs = [ours(x, sfreq, config) for _ in range(max(1, args.repeat))]
            wall, cpu = min(t[0] for t, _ in runs), min(t[1] for t, _ in runs)
            hops = runs[0][1]
            theirs_runs = [brainflow(x, sfreq, config, hops) for _ in range(max(1, args.repeat))]
            bf_wall, bf_cpu = min(t[0] for t in theirs_runs), min(t[1] for t in theirs_runs)
            core = 100.0 * cpu / config.hop_s
            mine = f"{wall * 1e3:.2f}/{cpu * 1e3:.2f}"
            theirs = f"{bf_wall * 1e3:.1f}/{bf_cpu * 1e3:.1f}"
            print(f"{n_ch:>8} {sfreq:>6.0f} {mine:>15} {theirs:>19} {bf_cpu / cpu:>7.1f} {core:>7.2f}")
    print(f"load average at the end: {load_average()}")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, and the number of cores they compare with."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
