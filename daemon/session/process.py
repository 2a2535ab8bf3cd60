"""Process-wide tuning for a session that plays music: the GIL switch interval, and the garbage collector around a
big import.

A composer thread running Python code holds the GIL for up to the switch interval before the scheduler's thread of
control gets it back: CPython's default 5 ms would blow the scheduler's 2 ms p99 budget, so a session plays with
0.5 ms. Importing torch and transformers makes millions of objects; the collector's full passes over them hold the GIL
for 50-100 ms at a time, which the scheduler would hear as late notes: the collector is off during such an import,
and what it made is frozen (never scanned again) afterwards.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SWITCH_INTERVAL_S = 0.0005


@contextmanager
def tuned_for_playback() -> Iterator[None]:
    """The GIL switch interval of a playing session while inside; the previous one restored after."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@contextmanager
def frozen_import() -> Iterator[None]:
    """No garbage collection while inside; everything alive at the end is frozen out of later collections."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
