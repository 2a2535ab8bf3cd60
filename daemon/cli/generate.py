"""`neuromusic generate`: compose offline with fixed controls (or a per-bar plan) into MIDI, ABC and WAV files.

The MIDI and WAV files hold the arrangement a session plays (every part, one named MIDI track each, at the
session's loudness), arranged by the config's [arranger] and rendered with its [sinks]; `--melody-only` writes the
bare melody on one voice instead.

A plan is a TOML file of segments, played in order; a key left out keeps the command-line value:

    [[segment]]
    bars = 8
    valence = 0.8
    energy = 0.2
    [[segment]]
    bars = 8
    valence = 0.2
    tempo = 60
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuromusic.models.core.controls import CONTROL_NAMES, CONTROLS
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Controls

if TYPE_CHECKING:
    from neuromusic.models.core.messages import Bar

PLAN_KEYS = {"bars", *CONTROL_NAMES}
# Without flags or a plan: slow and calm; any other control starts where the guard starts.
DEFAULTS = {spec.name: spec.start for spec in CONTROLS} | {"tempo": 70.0, "energy": 0.3}
MELODY_PROGRAM = 73  # General MIDI flute: a soft, clear melody voice for --melody-only
VELOCITY = 80


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from neuromusic.daemon.cli.composer_options import COMPOSER
    from neuromusic.daemon.cli.flags import add_table

    parser.add_argument("--bars", type=int, default=32, help="bars to compose (ignored with --plan)")
    for spec in CONTROLS:
        default = DEFAULTS[spec.name]
        parser.add_argument(f"--{spec.name}", type=float, default=default, help=f"{spec.help} (default {default:g})")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same music (default 0)")
    parser.add_argument("-o", "--out", type=Path, default=None, help="write a standard MIDI file")
    parser.add_argument("--abc", type=Path, default=None, help="write the tune as ABC")
    parser.add_argument("--wav", type=Path, default=None, help="render a WAV file with FluidSynth")
    parser.add_argument(
        "--melody-only", action="store_true", help="MIDI and WAV hold the bare melody on one flute, not the arrangement"
    )
    keys = "/".join(("bars", *CONTROL_NAMES))
    parser.add_argument("--plan", type=Path, default=None, help=f"TOML plan: [[segment]] {keys}")
    parser.add_argument("--config", type=Path, default=None, help="a neuromusic TOML config; its [composer] is used")
    add_table(parser, COMPOSER)


def controls(values: dict[str, Any], where: str) -> Controls:
    """Controls from one value per control; ConfigError saying where a value is wrong."""
    try:
        return Controls.from_mapping(values)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {error}") from error


def read_plan(path: Path, default: Controls) -> list[Controls]:
    """One Controls per bar from a plan file; ConfigError naming the segment and key for bad input."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"plan file not found: {path}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    segments = data.get("segment")
    if not isinstance(segments, list) or not segments or set(data) != {"segment"}:
        raise ConfigError(f"{path}: a plan is a list of [[segment]] tables with keys {', '.join(sorted(PLAN_KEYS))}")
    plan: list[Controls] = []
    for number, segment in enumerate(segments, 1):
        where = f"{path} segment {number}"
        unknown = set(segment) - PLAN_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]}; known: {', '.join(sorted(PLAN_KEYS))}")
        bars = segment.get("bars")
        if isinstance(bars, bool) or not isinstance(bars, int) or not 1 <= bars <= 10000:
            raise ConfigError(f"{where}: bars must be an integer within 1..10000, got {bars!r}")
        values: dict[str, Any] = default.as_dict() | {k: v for k, v in segment.items() if k != "bars"}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
        plan += [controls(values, where)] * bars
    return plan


def load(args: argparse.Namespace) -> Any:
    """The config file (if any) with the command line's composer options over it."""
    from neuromusic.daemon.cli.composer_options import COMPOSER
    from neuromusic.daemon.cli.flags import table_overrides
    from neuromusic.daemon.config import load_config

    overrides = table_overrides(args, [COMPOSER])
    overrides["composer.seed"] = args.seed  # 0 unless given: the tune is reproducible from the command line alone
    return load_config(args.config, overrides)


def melody_events(bars: list[Bar]) -> tuple[list[Any], list[tuple[float, float]], float]:
    """The bare melody at each bar's tempo, one voice, one velocity: what the model wrote, nothing added."""
    from neuromusic.models.core.messages import NoteEvent

    events, tempi, t = [], [], 0.0
    for bar in bars:
        seconds_per_beat = 60.0 / bar.controls.tempo
        tempi.append((t, bar.controls.tempo))
        for note in bar.notes:
            start = t + note.start * seconds_per_beat
            events.append(NoteEvent(start, note.duration * seconds_per_beat * 0.95, note.pitch, VELOCITY, 0))
        t += bar.beats * seconds_per_beat
    return events, tempi, t


def write_files(bars: list[Bar], args: argparse.Namespace, config: Any = None) -> None:
    from neuromusic.models.music.abc import format_tune, parse_bar

    if args.abc is not None:
        tune = [(bar.key, parse_bar(bar.abc, bar.meter, bar.key).notes) for bar in bars]
        _write(args.abc, format_tune(tune, bars[0].meter, bars[0].controls.tempo))
    if args.out is None and args.wav is None:
        return
    from neuromusic.drivers.sinks.loudness import measure_file
    from neuromusic.drivers.sinks.midifile_sink import MidiFileSink
    from neuromusic.drivers.sinks.offline import arrange, play
    from neuromusic.drivers.sinks.wav_sink import WavSink
    from neuromusic.models.music.arranger import Arranger

    config = config if config is not None else load(args)
    if getattr(args, "melody_only", False):
        programs, parts = {0: MELODY_PROGRAM}, {0: "melody"}
        events, tempi, end = melody_events(bars)
    else:
        arranger = Arranger(config.arranger)
        programs, parts = arranger.programs(), arranger.voices()
        events, tempi, end = arrange(arranger, bars)
    sinks: list[Any] = []
    if args.out is not None:
        sinks.append(MidiFileSink(args.out, 0.0, parts))
    if args.wav is not None:
        sinks.append(WavSink(args.wav, config.sinks, 0.0))
    play(sinks, programs, events, tempi, end)
    if args.wav is not None:
        print(f"{args.wav}: {measure_file(args.wav).line()}")


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error}") from error


def run(args: argparse.Namespace) -> int:
    flags = "/".join(f"--{name}" for name in CONTROL_NAMES)
    default = controls({name: getattr(args, name) for name in CONTROL_NAMES}, flags)
    if args.plan is not None:
        plan = read_plan(args.plan, default)
    else:
        if not 1 <= args.bars <= 10000:
            raise ConfigError(f"--bars must be within 1..10000, got {args.bars}")
        plan = [default] * args.bars
    config = load(args)
    from neuromusic.models.music.composer import Composer

    composer = Composer.load(config.composer)
    bars = [composer.next_bar(c) for c in plan]
    write_files(bars, args, config)
    repaired = sum(bar.repaired for bar in bars)
    mean_ms = sum(bar.compose_ms for bar in bars) / len(bars)
    print(f"{len(bars)} bars in {bars[0].key}, {bars[0].meter}; {repaired} repaired; {mean_ms:.0f} ms per bar")
    if args.out is None and args.abc is None and args.wav is None:
        print("\n".join(bar.abc for bar in bars))
    return 0
