"""`neuromusic calibrate`: a guided protocol (eyes-closed rest vs mental arithmetic), a per-person model, a profile.

The protocol alternates blocks, e.g. rest:45,arithmetic:45,... Each block starts with a prompt in the terminal (and a
sound cue through FluidSynth when an audio device works: a low soft chord for rest, two high notes for arithmetic).
Blocks are timed by samples received, so a slow or bursty source still gives every block its full length (a chunk
that straddles two blocks is split between them). A finite source (a replay) that runs out ends the protocol: a last
block that got at least half its length is used as it is, otherwise the calibration stops with a DataError saying how
far it got. The
fitted model (models/signal/calibration.py) is judged by leave-one-block-pair-out cross-validation; a profile
whose accuracy is at chance is refused (exit code 7) and nothing is saved.
An accepted fit is saved to the --profile JSON:
  "calibration"  the logistic model (weights over z-scored band DE), its accuracy and the protocol; `run --profile`
                 scores with it instead of a baseline (the score is its P(rest), smoothed: models/signal/score.py)
  "score"        the per-band, per-channel DE statistics over the whole protocol (a baseline for the same layout).
With --board simulated the simulated listener's hidden state follows the blocks (calm during rest, stressed during
arithmetic), so the whole procedure runs without a headset; --fast runs it on a virtual clock without waiting.
The calibration is also recorded as a session (phases as events), unless --no-record.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuromusic.daemon.cli.flags import add_table, table_overrides
from neuromusic.daemon.cli.run_options import FEATURES, SCORE, SOURCE

if TYPE_CHECKING:  # annotations only: the command imports nothing heavy at module level
    import numpy as np
    import numpy.typing as npt
    from neuromusic.daemon.config import Config
    from neuromusic.daemon.services.recorder import SessionWriter
    from neuromusic.drivers.base import Source, SourceInfo
    from neuromusic.drivers.simulated import SimulatedListener
    from neuromusic.drivers.sinks.config import SinkConfig
    from neuromusic.drivers.sinks.fluidsynth_sink import FluidSynthSink
    from neuromusic.models.core.clock import MonotonicClock, VirtualClock
    from neuromusic.models.core.messages import Chunk, Features, FloatArray, Score
    from neuromusic.models.signal.calibration import Block, CalibrationData, CalibrationResult

PROMPTS = {
    "rest": "REST: close your eyes, relax and breathe slowly until the next cue.",
    "arithmetic": "ARITHMETIC: eyes open; count backwards from 1000 in steps of 7, in your head, until the next cue.",
}
SOURCE_TABLES = (SOURCE, FEATURES, SCORE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="TOML", help="configuration file; flags override its values")
    for table in SOURCE_TABLES:
        add_table(parser, table)
    group = parser.add_argument_group("calibration")
    group.add_argument(
        "--protocol",
        metavar="BLOCKS",
        help="blocks in order, KIND:SECONDS with KIND rest or arithmetic "
        "(TOML calibration.protocol, default rest:40,arithmetic:40 three times)",
    )
    group.add_argument("--settle", type=float, metavar="S", help="seconds left out at each block start (default 4)")
    group.add_argument("--l2", type=float, metavar="LAMBDA", help="ridge penalty of the model (default 1)")
    group.add_argument("--min-accuracy", type=float, metavar="P", help="refuse below this CV accuracy (default 0.7)")
    group.add_argument("--profile", type=Path, metavar="JSON", help="listener profile to save the calibration into")
    group.add_argument("--fast", action="store_true", help="--board simulated only: virtual clock, no waiting")
    group.add_argument("--no-audio", action="store_true", help="prompts in the terminal only, no sound cues")
    group.add_argument("--no-record", action="store_true", help="do not record the calibration as a session")
    group.add_argument("--session-dir", type=Path, metavar="DIR", help="folder for the calibration's recording")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = table_overrides(args, SOURCE_TABLES)
    out["calibration.protocol"] = args.protocol
    out["calibration.settle_s"] = args.settle
    out["calibration.l2"] = args.l2
    out["calibration.min_accuracy"] = args.min_accuracy
    return out


@dataclass
class Outcome:
    result: CalibrationResult
    score_section: dict[str, Any]
    calibration_section: dict[str, Any]
    session_dir: Path | None


def simulated_script(blocks: list[Block]) -> str:
    """The simulated listener's hidden state for a protocol: calm while resting, stressed during arithmetic."""
    return ",".join(f"{'calm' if b.relaxed else 'stress'}:{b.seconds:g}" for b in blocks)


def run_protocol(
    source: Source,
    config: Config,
    *,
    read: Callable[[], Chunk | None] | None = None,
    say: Callable[[str], None] = print,
    cue: Callable[[str], None] | None = None,
    now: Callable[[], float] = time.monotonic,
    recorder: SessionWriter | None = None,
) -> Outcome:
    """Run the protocol on an opened-or-not `source`, collect features per block, fit and judge the model.
    `read` returns the next Chunk or None (default: source.read(0.2)); `recorder` is a SessionWriter or None.
    The chunks go through the session's signal stage (daemon/session/signal_stage.py), as in `neuromusic run`."""
    from neuromusic.models.signal.calibration import parse_protocol

    blocks = parse_protocol(config.calibration.protocol)
    info = source.open()
    try:
        collector = _Collector(config, info, now, recorder)
        feed = _Feed(read or (lambda: source.read(0.2)), lambda: bool(getattr(source, "finished", False)))
        for number, block in enumerate(blocks):
            say(f"[{number + 1}/{len(blocks)}] {PROMPTS[block.kind]} ({block.seconds:g} s)")
            if cue is not None:
                cue(block.kind)
            needed = collector.start_block(number, block)
            for chunk in feed.take(needed):
                collector.push(chunk)
            if collector.received < needed:
                _ran_out(say, number, blocks, collector.received / info.sfreq)
                break
    finally:
        source.close()
    say("fitting the model ...")
    return _fit(collector.data, config, info)


class _Collector:
    """The chunks of the current block through the signal stage: its Features' DE kept (after the block's settling
    time) with the block's label, chunks and features written to the recording."""

    def __init__(self, config: Config, info: SourceInfo, now: Callable[[], float], recorder: SessionWriter | None):
        from neuromusic.daemon.session.signal_stage import SignalStage
        from neuromusic.models.signal.calibration import CalibrationData

        self.config, self.info, self.now, self.recorder = config, info, now, recorder
        self.data = CalibrationData(tuple(config.features.bands), tuple(info.channel_names))
        self.stage = SignalStage(config.features, config.score, self._take)
        self.received, self._settle, self._block, self._relaxed = 0, 0, 0, False

    def start_block(self, number: int, block: Block) -> int:
        """Begin block `number`; returns how many samples it needs."""
        from neuromusic.models.core.messages import Event

        self.received, self._block, self._relaxed = 0, number, block.relaxed
        self._settle = round(self.config.calibration.settle_s * self.info.sfreq)
        if self.recorder is not None:
            self.recorder.write(Event(self.now(), "phase", f"{block.kind} {number + 1}", {"block": number}), self.now())
        return round(block.seconds * self.info.sfreq)

    def push(self, chunk: Chunk) -> None:
        self.received += chunk.n_samples
        t = self.now()
        self.stage.push(chunk, self.info, t, t)
        if self.recorder is not None:
            self.recorder.flush()

    def _take(self, message: Chunk | Features | Score) -> None:
        import numpy as np
        from neuromusic.models.core.messages import Features, Score

        if isinstance(message, Score):
            return  # a calibration records its data, not a score of it
        if self.recorder is not None:
            self.recorder.write(message, self.now())
        if isinstance(message, Features) and self.received >= self._settle:
            self.data.add(np.where(message.good[np.newaxis, :], message.de, np.nan), self._relaxed, self._block)


def _fit(data: CalibrationData, config: Config, info: SourceInfo) -> Outcome:
    """The model and its judgement, and the baseline over the whole protocol (within-class spread)."""
    import numpy as np
    from neuromusic.daemon.session.profile_store import score_profile_section
    from neuromusic.models.signal.calibration import fit_calibration
    from neuromusic.models.signal.score import ScoreProfile, band_shares

    calibration = config.calibration
    bands = tuple(config.features.bands)
    result = fit_calibration(data, calibration, config.features.window_s, config.features.hop_s)
    stack = np.vstack(data.rows).reshape(-1, len(bands), len(info.channel_names))
    kind = config.score.features
    if kind == "relative":
        stack = np.stack([band_shares(window) for window in stack])
    with np.errstate(all="ignore"):
        mean, std = np.nanmean(stack, axis=0), _pooled_std(stack, np.asarray(data.labels))
    score = ScoreProfile(bands, tuple(info.channel_names), mean, std, len(stack), kind=kind)
    return Outcome(result, score_profile_section(score), result.to_profile(calibration, config.features.window_s), None)


class _Feed:
    """Chunks from a source, cut to exact block lengths: a chunk that straddles two blocks is split, its second part
    kept for the next block. `take` stops early when a finite source has run out."""

    def __init__(self, read: Callable[[], Chunk | None], finished: Callable[[], bool]) -> None:
        self._read = read
        self._finished = finished
        self._left: Chunk | None = None

    def take(self, needed: int) -> Iterator[Chunk]:
        got = 0
        while got < needed:
            chunk, self._left = (self._left, None) if self._left is not None else (self._read(), None)
            if chunk is None:
                if self._finished():
                    return
                continue
            if got + chunk.n_samples > needed:
                chunk, self._left = _split(chunk, needed - got)
            got += chunk.n_samples
            yield chunk


def _split(chunk: Chunk, n: int) -> tuple[Chunk, Chunk]:
    import dataclasses

    head = dataclasses.replace(chunk, data=chunk.data[:, :n], timestamps=chunk.timestamps[:n])
    tail = dataclasses.replace(chunk, data=chunk.data[:, n:], timestamps=chunk.timestamps[n:])
    return head, tail


def _ran_out(say: Callable[[str], None], number: int, blocks: list[Block], got_s: float) -> None:
    """The source ended during block `number`: go on with what was recorded, or say why that cannot be."""
    from neuromusic.models.core.errors import DataError

    block = blocks[number]
    missing = block.seconds - got_s + sum(b.seconds for b in blocks[number + 1 :])
    where = (
        f"the recording ended {got_s:.1f} s into block {number + 1}/{len(blocks)} ({block.kind}, {block.seconds:g} s)"
    )
    if number == len(blocks) - 1 and got_s >= block.seconds / 2:
        say(f"{where}; fitting on what was recorded")
        return
    raise DataError(
        f"{where}: {missing:.1f} s short of the protocol; replay a longer recording or give a shorter --protocol"
    )


def _pooled_std(stack: FloatArray, labels: npt.NDArray[np.int_]) -> FloatArray:
    """Within-class standard deviation: how much DE varies inside one state, not between the two."""
    import numpy as np

    centred = stack.copy()
    for label in (0, 1):
        rows = labels == label
        centred[rows] -= np.nanmean(stack[rows], axis=0)
    return np.sqrt(np.nanmean(centred**2, axis=0))


class _Cues:
    """Sound cues through FluidSynth, when an audio device works; otherwise silent (said once)."""

    def __init__(self, sinks_config: SinkConfig, say: Callable[[str], None]) -> None:
        self._sink: FluidSynthSink | None = None
        try:
            from neuromusic.drivers.sinks.fluidsynth_sink import FluidSynthSink
            from neuromusic.models.core.errors import SinkError

            try:
                self._sink = FluidSynthSink.open(sinks_config)
            except SinkError as error:
                say(f"(no sound cues: {error})")
        except ImportError:
            say("(no sound cues: FluidSynth is not available)")

    def __call__(self, kind: str) -> None:
        if self._sink is None:
            return
        notes = (48, 55, 60) if kind == "rest" else (84, 84)
        t = time.monotonic()
        if kind == "rest":
            for pitch in notes:
                self._sink.note_on(0, pitch, 50, t)
            time.sleep(1.2)
            for pitch in notes:
                self._sink.note_off(0, pitch, t)
        else:
            for pitch in notes:
                self._sink.note_on(0, pitch, 90, t)
                time.sleep(0.15)
                self._sink.note_off(0, pitch, t)
                time.sleep(0.1)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close(time.monotonic())


def run(args: argparse.Namespace) -> int:
    from neuromusic.daemon.config import load_config
    from neuromusic.daemon.session.profile_store import ProfileStore
    from neuromusic.models.core.clock import MonotonicClock, VirtualClock
    from neuromusic.models.core.errors import ConfigError, DataError
    from neuromusic.models.signal.calibration import parse_protocol

    config = load_config(args.config, overrides(args))
    if args.fast and config.source.board != "simulated":
        raise ConfigError("--fast needs --board simulated (a real headset cannot be read faster than it records)")
    profile = ProfileStore.load(args.profile) if args.profile is not None else None  # refuse a bad file first
    blocks = parse_protocol(config.calibration.protocol)
    clock: MonotonicClock | VirtualClock = VirtualClock() if args.fast else MonotonicClock()
    source, read = _source(config, clock, blocks)
    say = _printer()
    cues = _Cues(config.sinks, say) if not (args.no_audio or args.fast) else None
    recorder = None if args.no_record else _recorder(args, config, clock.now())
    total = sum(b.seconds for b in blocks)
    say(f"calibration: {len(blocks)} blocks, {total:g} s in all. Sit comfortably; follow each prompt.")
    try:
        outcome = run_protocol(source, config, read=read, say=say, cue=cues, now=clock.now, recorder=recorder)
    finally:
        if cues is not None:
            cues.close()
        if recorder is not None:
            recorder.close()
            say(f"recorded to {recorder.folder}")
    result = outcome.result
    folds = ", ".join(f"{a:.0%}" for a in result.fold_accuracies)
    say(
        f"cross-validated accuracy {result.cv_accuracy:.1%} (folds: {folds}; chance {result.chance:.0%}, "
        f"p = {result.p_value:.2g}, {result.n_windows} windows)"
    )
    if not result.accepted:
        raise DataError(f"profile not saved: {result.reason}")
    if profile is None:
        say("accepted; pass --profile FILE to save it")
        return 0
    profile.put("calibration", outcome.calibration_section)
    profile.put("score", outcome.score_section)
    profile.save()
    say(f"profile saved to {profile.path}; use it with: neuromusic run --profile {profile.path}")
    return 0


def _source(
    config: Config, clock: MonotonicClock | VirtualClock, blocks: list[Block]
) -> tuple[Source, Callable[[], Chunk | None] | None]:
    """The configured source, and how to read it on a virtual clock (None: its own paced reads). A simulated
    listener's hidden state follows the protocol; on a virtual clock it is read flat out."""
    from neuromusic.models.core.clock import VirtualClock

    if config.source.board != "simulated":
        from neuromusic.drivers.registry import open_source

        return open_source(config.source, clock), None
    from neuromusic.drivers.listener_profile import load_profile
    from neuromusic.drivers.simulated import ScriptedState, SimulatedListener

    listener = SimulatedListener(
        load_profile(config.source.listener), ScriptedState(simulated_script(blocks)), clock, config.source.seed
    )
    return listener, _flat_out(listener, clock) if isinstance(clock, VirtualClock) else None


def _recorder(args: argparse.Namespace, config: Config, now: float) -> SessionWriter:
    import dataclasses

    from neuromusic.daemon.services.recorder import SessionWriter, new_session_folder

    folder = args.session_dir or new_session_folder(config.recording.sessions_root(), "calibration")
    return SessionWriter(folder, dataclasses.asdict(config), config.recording, now, "calibration", config.source.board)


def _flat_out(listener: SimulatedListener, clock: VirtualClock, chunk_s: float = 0.1) -> Callable[[], Chunk]:
    """Reads for --fast: the next 0.1 s of simulated EEG at once, moving the virtual clock along with it."""
    chunk_n = max(1, round(chunk_s * listener.sfreq))

    def read() -> Chunk:
        chunk = listener.generate(chunk_n)
        clock.advance(chunk_n / listener.sfreq)
        return chunk

    return read


def _printer() -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, file=sys.stdout, flush=True)

    return say
