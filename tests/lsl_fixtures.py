"""A real pylsl outlet in a subprocess, for LSL source tests.

`python tests/lsl_fixtures.py NAME SOURCE_ID SECONDS [SFREQ] [CHANNELS]` streams a 10 Hz sine of 20 µV amplitude
(plus the channel index) on every channel until SECONDS have passed or it is killed. It prints "ready" once the
outlet exists.

`python tests/lsl_fixtures.py markers NAME SOURCE_ID LABEL...` is a PsychoPy-like marker outlet (type Markers, text):
once an inlet has connected it sends each LABEL 0.3 s apart, printing "sent LABEL TIMESTAMP" for each, then waits to
be killed.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

OUTLET_SCRIPT = Path(__file__)


def start_outlet(
    name: str, source_id: str, seconds: float = 30.0, sfreq: float = 250.0, channels: int = 4, unit: str = "microvolts"
) -> subprocess.Popen[str]:
    """Start the outlet subprocess and wait until it says it is ready."""
    proc = subprocess.Popen(
        [sys.executable, str(OUTLET_SCRIPT), name, source_id, str(seconds), str(sfreq), str(channels), unit],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"LSL outlet subprocess did not start (said {line!r})")
    return proc


def stop_outlet(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def start_marker_outlet(name: str, source_id: str, labels: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(OUTLET_SCRIPT), "markers", name, source_id, *labels], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"LSL marker outlet subprocess did not start (said {line!r})")
    return proc


def _serve_markers(name: str, source_id: str, labels: list[str]) -> None:
    import pylsl

    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, source_id)
    outlet = pylsl.StreamOutlet(info)
    print("ready", flush=True)
    if not outlet.wait_for_consumers(30.0):
        return
    time.sleep(0.5)  # the inlet has connected; give it a moment to start pulling
    for label in labels:
        stamp = pylsl.local_clock()
        outlet.push_sample([label], stamp)
        print(f"sent {label} {stamp!r}", flush=True)
        time.sleep(0.3)
    time.sleep(60)


def _serve(name: str, source_id: str, seconds: float, sfreq: float, channels: int, unit: str) -> None:
    import pylsl

    info = pylsl.StreamInfo(name, "EEG", channels, sfreq, pylsl.cf_float32, source_id)
    chans = info.desc().append_child("channels")
    for i in range(channels):
        ch = chans.append_child("channel")
        ch.append_child_value("label", f"C{i + 1}")
        ch.append_child_value("unit", unit)
    outlet = pylsl.StreamOutlet(info, chunk_size=10)
    print("ready", flush=True)
    scale = {"microvolts": 1.0, "volts": 1e-6}.get(unit, 1.0)  # other units: sent unscaled (bad-input tests)
    start = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * sfreq) - sent
        if due > 0:
            rows = [
                [scale * (20.0 * math.sin(2 * math.pi * 10.0 * (sent + k) / sfreq) + c) for c in range(channels)]
                for k in range(due)
            ]
            outlet.push_chunk(rows)
            sent += due
        time.sleep(0.01)


if __name__ == "__main__" and sys.argv[1] == "markers":
    _serve_markers(sys.argv[2], sys.argv[3], sys.argv[4:])
elif __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
