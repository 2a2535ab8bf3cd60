"""Loading torch's native library with the GIL released, before torch is imported on the model-loader thread."""

from __future__ import annotations

import json
import subprocess
import sys

from neuromusic.models.music import preload

# Runs in a fresh interpreter (this one has torch imported already): a thread ticks every millisecond while the
# library is preloaded; the longest pause between its ticks is how long it could not get the GIL.
PROBE = """
import json, sys, threading, time
from pathlib import Path
sys.setswitchinterval(0.0005)
from neuromusic.models.music.preload import NATIVE_LIBRARY, preload_torch

ticking, longest = True, 0.0
def tick():
    global longest
    last = time.perf_counter()
    while ticking:
        time.sleep(0.001)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
thread = threading.Thread(target=tick)
thread.start()
time.sleep(0.05)
started = time.perf_counter()
loaded = preload_torch()
took = time.perf_counter() - started
ticking = False
thread.join()
mapped = NATIVE_LIBRARY in Path("/proc/self/maps").read_text()
import torch
print(json.dumps({"loaded": loaded, "took": took, "longest": longest, "mapped": mapped,
                  "works": float(torch.ones(2).sum()), "again": preload_torch()}))
"""


def test_preload_maps_torch_without_stopping_other_threads() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["loaded"] and probe["mapped"], probe
    assert probe["works"] == 2.0  # torch imports and runs on the preloaded library
    assert probe["again"] is False  # once torch is imported there is nothing left to preload
    # the load takes a good fraction of a second; a thread that needs the GIL is never held up for most of it
    assert probe["longest"] < max(0.1, probe["took"] / 3), probe


def test_no_library_once_torch_is_imported() -> None:
    import torch  # noqa: F401  (imported by the composer tests anyway)

    assert preload.torch_library() is None
    assert preload.preload_torch() is False
