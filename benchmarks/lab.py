"""Lab tooling costs, as ratios against a baseline measured in the same run.

cli      wall time until `neuromusic run --board cytn` is refused ("did you mean cyton?") against the start-up of
         `neuromusic --version` (the interpreter and the command table); median of --repeat runs
lsl-out  CPU time per hop for the LSL outlets (score, band DE with --lsl-out-bands, 16 channels x 5 bands) against
         the signal path's own work per hop (FeaturePipeline.push + RelaxationScorer.update on the same EEG)

.venv/bin/python benchmarks/lab.py [--repeat 3] [--hops 400]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np
import pylsl
from neuromusic.daemon.config import load_config
from neuromusic.daemon.services.lsl_out import ClockMap, LslOut
from neuromusic.daemon.session.runner import Session
from neuromusic.models.core.messages import Chunk
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.pipeline import FeaturePipeline
from neuromusic.models.signal.score import RelaxationScorer, ScoreConfig

CHANNELS = 16
SFREQ = 250.0


def wall(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "neuromusic.daemon.cli", *args], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_hop(hops: int) -> tuple[float, float]:
    """(signal path CPU seconds per hop, LSL out CPU seconds per hop)."""
    rng = np.random.default_rng(0)
    names = tuple(f"C{i}" for i in range(CHANNELS))
    config = FeatureConfig()
    pipeline = FeaturePipeline(config, SFREQ, names)
    scorer = RelaxationScorer(ScoreConfig(baseline_s=5.0), tuple(config.bands), names)
    hop_n = round(config.hop_s * SFREQ)
    messages = []
    signal = 0.0
    for k in range(hops + round(config.window_s / config.hop_s)):
        chunk = Chunk(
            rng.normal(size=(CHANNELS, hop_n)) * 20, np.arange(k * hop_n, (k + 1) * hop_n) / SFREQ, names, SFREQ
        )
        start = time.process_time()
        for features in pipeline.push(chunk, received_t=float(k)):
            messages.extend((features, scorer.update(features)))
        signal += time.process_time() - start
    session = Session(load_config(None, {"lsl_out.enabled": True, "lsl_out.bands": True, "mqtt.device_id": "bench"}))
    service = LslOut(session.ctx, session.config.lsl_out)
    service._clock_map = ClockMap(pylsl.local_clock(), source_is_lsl=False)
    service._open(pylsl)
    start = time.process_time()
    for message in messages:
        service.take(message)
    out = time.process_time() - start
    service.release()
    n = len(messages) // 2
    return signal / n, out / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hops", type=int, default=400)
    args = parser.parse_args()
    version = wall(["--version"], args.repeat)
    refused = wall(["run", "--board", "cytn", "--duration", "1"], args.repeat)
    signal, out = per_hop(args.hops)
    print(f"{'row':<36}{'value':>12}{'ratio':>10}")
    print(f"{'cli: neuromusic --version':<36}{version:>11.2f}s{1.0:>10.2f}")
    print(f"{'cli: unknown board refused':<36}{refused:>11.2f}s{refused / version:>10.2f}")
    print(f"{'hop: signal path (16 ch)':<36}{signal * 1e3:>10.3f}ms{1.0:>10.2f}")
    print(f"{'hop: LSL out (score + 80 DE)':<36}{out * 1e3:>10.3f}ms{out / signal:>10.2f}")


if __name__ == "__main__":
    main()
