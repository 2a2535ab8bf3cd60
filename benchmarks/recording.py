"""Recording overhead: CPU time to record one second of a 32-channel x 1000 Hz session, as % of one core.

Target: < 2 % of one core. Each row records the same messages (40 ms EEG chunks, features and a score every 0.25 s)
as fast as it can and divides the process CPU time (all threads, so the fsync worker counts) by the seconds of
session recorded. Rows:
    baseline      the samples alone appended with ndarray.tofile (no framing, no CRC, no JSON, no fsync)
    writer        SessionWriter: frames + CRC, JSON lines, flush + fsync every 0.25 s of session time
    writer-nosync SessionWriter with fsync off
    service       the Recorder service behind a real Hub on an event loop (what `neuromusic run` pays)
Ratios are against the baseline in the same run.

    .venv/bin/python benchmarks/recording.py [--seconds 60] [--channels 32] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.daemon.cli.recording_options import RecordingConfig
from neuromusic.daemon.config import load_config
from neuromusic.daemon.services.recorder import Recorder, SessionWriter
from neuromusic.daemon.session.context import SessionContext
from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.hub import Hub
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.messages import Chunk, Features, Score
from neuromusic.policies.base import ControlBounds

BANDS = ("delta", "theta", "alpha", "beta", "gamma")


def messages(seconds: float, channels: int, rate: float) -> list[tuple[float, Any]]:
    rng = np.random.default_rng(0)
    names = tuple(f"EEG{i}" for i in range(channels))
    n = round(0.04 * rate)
    out: list[tuple[float, Any]] = []
    block = rng.normal(size=(channels, n)) * 20.0
    for k in range(round(seconds / 0.04)):
        t = (k + 1) * 0.04
        out.append((t, Chunk(block, np.arange(k * n, (k + 1) * n) / rate, names, rate)))
        if k % 6 == 5:  # every 0.24 s, close to the default 0.25 s hop
            de = rng.normal(size=(len(BANDS), channels)) + 3.0
            out.append((t, Features(t, de, BANDS, names, np.ones(channels, bool), ("",) * channels)))
            out.append((t, Score(t, 0.5, 1.0, "scoring", 0.0)))
    return out


def cpu(run: Callable[[], None]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def baseline(folder: Path, stream: list[tuple[float, Any]]) -> None:
    with open(folder / "raw.f32", "ab") as handle:
        for _, message in stream:
            if isinstance(message, Chunk):
                message.data.astype(np.float32).tofile(handle)


def writer(folder: Path, stream: list[tuple[float, Any]], fsync: bool) -> None:
    recorder = SessionWriter(folder / "s", {}, RecordingConfig(fsync=fsync), 0.0)
    next_flush = 0.25
    for t, message in stream:
        recorder.write(message, t)
        if t >= next_flush:
            recorder.flush()
            next_flush += 0.25
    recorder.close()


def service(folder: Path, stream: list[tuple[float, Any]]) -> None:
    async def main() -> None:
        clock = VirtualClock()
        hub = Hub()
        hub.bind_loop(asyncio.get_running_loop())
        config = load_config(overrides={"recording.root": str(folder)})
        control = SessionControl(clock, hub.publish, "mapping", ControlBounds())
        ctx = SessionContext(config, hub, clock, control, "bench", session_dir=folder / "svc")
        task = asyncio.create_task(Recorder(ctx, folder / "svc").run())
        await asyncio.sleep(0)
        for t, message in stream:
            clock.advance(max(0.0, t - clock.now()))
            hub.publish(message)
            if isinstance(message, Chunk):
                await asyncio.sleep(0)  # let the recorder run, as the live loop would between chunks
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    stream = messages(args.seconds, args.channels, args.rate)
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in (
            ("baseline", lambda d: baseline(d, stream)),
            ("writer", lambda d: writer(d, stream, fsync=True)),
            ("writer-nosync", lambda d: writer(d, stream, fsync=False)),
            ("service", lambda d: service(d, stream)),
        ):
            folder = Path(tempfile.mkdtemp(dir=tmp))
            rows.append((name, cpu(lambda run=run, folder=folder: run(folder))))  # type: ignore[misc]
        size = sum(p.stat().st_size for p in (Path(tmp)).rglob("eeg.bin")) / 3  # three rows write eeg.bin
    base = rows[0][1]
    print(f"recording {args.channels} ch x {args.rate:g} Hz, {args.seconds:g} s of session ({size / 1e6:.1f} MB EEG)")
    print(f"{'row':<14}{'cpu s':>8}{'% of one core':>16}{'x baseline':>12}")
    for name, seconds in rows:
        share = 100.0 * seconds / args.seconds
        print(f"{name:<14}{seconds:>8.3f}{share:>15.2f}%{seconds / base:>12.1f}")
    worst = max(100.0 * s / args.seconds for _, s in rows[1:])
    print(f"target < 2 % of one core: {'met' if worst < 2.0 else 'NOT met'} (worst {worst:.2f} %)")


if __name__ == "__main__":
    main()
