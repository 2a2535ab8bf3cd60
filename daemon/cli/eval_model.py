"""`neuromusic eval-model`: perplexity, parse rate, control adherence (confusion tables), musical statistics."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

from neuromusic.models.core.errors import ConfigError

TARGETS = {
    "parse_rate": (">=", 1.0),
    "valence_adherence": (">=", 0.95),
    "energy_adherence": (">=", 0.95),
    "switch_energy_first_bar": (">=", 0.80),
    "switch_valence_next_8": (">=", 0.80),
    "compose_ms_p95": ("<=", 60.0),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="corpus folder (held-out tunes for perplexity/stats)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--pieces", type=int, default=4, help="pieces per control setting (default 4)")
    parser.add_argument("--bars", type=int, default=16, help="bars per piece (default 16)")
    parser.add_argument("--candidates", type=int, default=None, help="bars sampled per step (rejection sampling)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as in the daemon)")
    parser.add_argument(
        "--plain", action="store_true", help="compose without phrase memory and line steering (for comparison)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")


def run(args: argparse.Namespace) -> int:
    if args.pieces < 1 or args.bars < 4 or args.bars % 2:
        raise ConfigError("--pieces must be >= 1 and --bars an even number >= 4")
    import torch
    from neuromusic.models.music.composer import Composer, checkpoint_folder
    from neuromusic.models.music.config import ComposerConfig
    from neuromusic.models.music.evaluate import Report, adherence, real_statistics
    from neuromusic.models.music.model import load_checkpoint
    from neuromusic.models.music.train import Sampler, evaluate_loss, validation_tunes
    from rich.console import Console
    from rich.table import Table

    config = ComposerConfig(checkpoint=args.checkpoint, threads=args.threads)
    if args.candidates is not None:
        config = dataclasses.replace(config, candidates=args.candidates)
    if args.plain:
        config = dataclasses.replace(config, phrase_memory=False, shape_line=False)
    composer = Composer.load(config)
    report = Report()
    valid = validation_tunes(args.data, composer.tokenizer)
    sampler = Sampler(valid, composer.tokenizer, composer.n_ctx, 12345)
    report.perplexity = math.exp(
        evaluate_loss(
            load_checkpoint(checkpoint_folder(config))[0], [sampler.batch(8, torch.device("cpu")) for _ in range(4)]
        )
    )
    report.real = real_statistics(args.data, args.bars)
    adherence(composer, args.pieces, args.bars, 70.0, report)
    console = Console()
    for title, confusion, names in (
        ("valence (music21 key analysis of each piece)", report.valence, ["minor", "major"]),
        ("energy (onsets per beat of each bar)", report.energy, ["low", "mid", "high"]),
        ("energy, first bar after a change", report.switch_energy, ["low", "mid", "high"]),
        ("valence, 8 bars after a change", report.switch_valence, ["minor", "major"]),
        ("valence, second judge (Bellman-Budge profiles)", report.valence_second, ["minor", "major"]),
    ):
        console.print(_confusion_table(title, confusion, names, Table))
    figures = report.figures()
    table = Table(title="figures")
    for column in ("figure", "value", "target"):
        table.add_column(column)
    for name, value in figures.items():
        target = TARGETS.get(name)
        table.add_row(name, f"{value:.3f}", f"{target[0]} {target[1]}" if target else "")
    console.print(table)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def _confusion_table(title: str, confusion: object, names: list[str], table_class: type) -> object:
    from neuromusic.models.music.evaluate import Confusion

    assert isinstance(confusion, Confusion)
    table = table_class(title=f"{title}: {confusion.accuracy:.1%} of {confusion.total}")
    table.add_column("asked \\ measured")
    for name in names:
        table.add_column(name, justify="right")
    for asked, name in enumerate(names):
        table.add_row(name, *(str(confusion.counts[(asked, measured)]) for measured in range(len(names))))
    return table
