"""A command flood through a real mosquitto, beside a whole session: the music keeps time, the recording keeps every
EEG sample, telemetry stays up. Runs benchmarks/flood.py for a bounded few seconds (the full 10 s run is the
benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FLOOD = Path(__file__).resolve().parents[1] / "benchmarks" / "flood.py"


@pytest.mark.slow
@pytest.mark.mqtt
def test_a_flood_of_commands_costs_no_eeg_and_no_timing() -> None:
    out = subprocess.run(
        [sys.executable, str(FLOOD), "--rate", "10000", "--seconds", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    results = json.loads(out.stdout.strip().splitlines()[-1])
    base, flood = results["baseline"], results["flood"]
    assert flood["sent_rate"] >= 9_000  # the sender really flooded
    assert flood["eeg_gaps"] == 0 and flood["recorder_dropped"] == 0
    assert flood["eeg_samples"] >= 0.9 * base["eeg_samples"]
    assert flood["telemetry_alive"]
    # The rate limit let a handful through, and the flood guard's fresh connection left the rest at the broker.
    assert 0 < flood["answered"] <= 10 * 3 + 20 + 5
    assert flood["received"] + flood["discarded"] < 0.1 * flood["sent"]
    # Timing. With a few dozen notes in the window p99 is the single worst note, and on a loaded machine one late
    # wake-up happens with or without a flood; the benchmark's 10 s run reports p99 against 2 ms. Here: the typical
    # note is as punctual as without the flood, and the daemon spent at most a quarter of a core on it.
    assert flood["p50_ms"] <= max(1.0, 2.0 * base["p50_ms"]), (flood, base)
    assert flood["daemon_cpu_s"] - base["daemon_cpu_s"] <= 0.25 * 3, (flood, base)
