"""Playback benchmark: note-on timing error while composing, composer lead and starvation, start to first note,
resident memory. Real clock, real sinks (a WAV render and a MIDI file; no sound card needed).

    .venv/bin/python benchmarks/playback.py                 # 0.5 min, GPT-2 composer if a checkpoint loads
    .venv/bin/python benchmarks/playback.py --minutes 10 --composer model
    .venv/bin/python benchmarks/playback.py --composer busy  # sketch + 60 ms of pure-Python work per bar (GIL load)

The baseline column replays the same notes with chained sleeps (`await asyncio.sleep(gap)` note after note), the
way a naive player times music, while the same composer load runs: ratio = baseline / scheduler.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from neuromusic.daemon.config import Config
from neuromusic.daemon.services.player import BarComposer, Player, load_model
from neuromusic.daemon.session.context import SessionContext
from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.hub import Hub
from neuromusic.daemon.session.process import tuned_for_playback
from neuromusic.models.core.clock import MonotonicClock
from neuromusic.models.core.messages import Bar, Controls
from neuromusic.models.music.sketch_composer import SketchComposer


class BusyComposer:
    """The sketch composer plus `busy_ms` of pure-Python work per bar: the GIL held as a model's Python code would."""

    def __init__(self, busy_ms: float) -> None:
        self.inner = SketchComposer(seed=1)
        self.busy_s = busy_ms / 1000.0

    def next_bar(self, controls: Controls) -> Bar:
        end = time.perf_counter() + self.busy_s
        x = 0
        while time.perf_counter() < end:
            x += 1
        return self.inner.next_bar(controls)


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory in MB."""
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024.0
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


async def run_player(args: argparse.Namespace, out: Path) -> tuple[Player, float, float]:
    t_start = time.monotonic()
    clock = MonotonicClock()
    base = Config()
    config = dataclasses.replace(
        base, sinks=dataclasses.replace(base.sinks, synth="none", wav=out / "bench.wav", midi_file=out / "bench.mid")
    )
    hub = Hub()
    hub.bind_loop(asyncio.get_running_loop())
    control = SessionControl(clock, hub.publish, config.policy.name, config.policy.bounds, config.policy.target)
    ctx = SessionContext(config, hub, clock, control, "bench", out)
    loader = {
        "sketch": None,
        "busy": lambda: BusyComposer(args.busy_ms),
        "model": lambda: load_model(ctx),
    }[args.composer]
    player = Player(ctx, model_loader=loader)
    task = asyncio.create_task(player.run())
    await asyncio.sleep(args.minutes * 60.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    first_sent = player.first_note_at
    return player, -1.0 if first_sent is None else first_sent, t_start


async def chained_sleeps(times: list[float], load: BarComposer | None, bar_s: float) -> np.ndarray:
    """The baseline: each note sleeps the gap since the previous one; a composer thread loads the CPU meanwhile."""
    stop = threading.Event()

    def compose() -> None:
        while load is not None and not stop.is_set():
            load.next_bar(Controls(70.0, 0.5, 0.5))
            time.sleep(bar_s)

    worker = threading.Thread(target=compose, daemon=True)
    worker.start()
    errors = []
    start = time.monotonic() + 0.1
    await asyncio.sleep(0.1)
    previous = times[0]
    for t in times:
        await asyncio.sleep(t - previous)
        previous = t
        errors.append(time.monotonic() - (start + t - times[0]))
    stop.set()
    return np.abs(np.array(errors)) * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=0.5, help="length of the playback run (default 0.5)")
    parser.add_argument("--composer", choices=("model", "busy", "sketch"), default="model")
    parser.add_argument("--busy-ms", type=float, default=60.0, help="--composer busy: Python work per bar, ms")
    parser.add_argument("--baseline-s", type=float, default=20.0, help="seconds of notes replayed for the baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, tuned_for_playback():  # as `neuromusic run` sets the process up
        player, first_note, start = asyncio.run(run_player(args, Path(folder)))
    stats = player.stats
    timing = stats["timing"]
    current, peak = rss_mb()
    model = type(player.composer).__name__
    notes = sorted({round(e.t, 6) for bar in player.bars for e in bar.events})  # one per group, as measured
    notes = [t for t in notes if t - notes[0] <= args.baseline_s]
    load: BarComposer | None = player.composer if player.composer is not player.sketch else None
    bar_s = float(np.mean([b.duration for b in player.bars])) if player.bars else 3.0
    baseline = asyncio.run(chained_sleeps(notes, load, bar_s))
    base = {"p50_ms": np.percentile(baseline, 50), "p99_ms": np.percentile(baseline, 99), "max_ms": baseline.max()}

    def ratio(key: str) -> str:
        return f"{base[key] / timing[key]:.1f}x" if timing[key] > 0 else "-"

    ready = player.model_ready_at
    assert player.scheduler is not None
    loaded = player.scheduler.stats.summary(since=ready) if ready is not None else None
    rows = [
        ("note-on error p50 (ms)", "", f"{timing['p50_ms']:.3f}", f"{base['p50_ms']:.3f}", ratio("p50_ms")),
        ("note-on error p99 (ms)", "<= 2", f"{timing['p99_ms']:.3f}", f"{base['p99_ms']:.3f}", ratio("p99_ms")),
        ("note-on error max (ms)", "<= 10", f"{timing['max_ms']:.3f}", f"{base['max_ms']:.3f}", ratio("max_ms")),
        ("note-ons measured", "", str(timing["n"]), str(len(baseline)), ""),
        *(
            [
                ("  after the model loaded: p50 (ms)", "", f"{loaded['p50_ms']:.3f}", "", ""),
                ("  after the model loaded: p99 (ms)", "<= 2", f"{loaded['p99_ms']:.3f}", "", ""),
                ("  after the model loaded: max (ms)", "<= 10", f"{loaded['max_ms']:.3f}", "", ""),
                ("  after the model loaded: note-ons", "", str(loaded["n"]), "", ""),
                ("model ready after (s)", "", f"{ready - start:.1f}", "", ""),
            ]
            if loaded is not None and ready is not None
            else []
        ),
        ("bars played", "", str(stats["bars"]), "", ""),
        ("starved bars (late)", "0", str(stats["starved"]), "", ""),
        ("composer lead min (bars)", ">= 1", f"{stats['min_lead_bars'] or 0:.2f}", "", ""),
        ("fallback bars", "0", str(stats["fallbacks"]), "", ""),
        ("start to first note (s)", "<= 3", f"{first_note:.2f}", "", ""),
        ("resident memory now / peak (MB)", "<= 600", f"{current:.0f} / {peak:.0f}", "", ""),
    ]
    print(
        f"playback benchmark: {args.minutes} min, composer {args.composer} ({model} at the end), "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    widths = [
        max(len(r[i]) for r in [("metric", "target", "scheduler", "chained sleeps", "ratio"), *rows]) for i in range(5)
    ]
    for row in [("metric", "target", "scheduler", "chained sleeps", "ratio"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
