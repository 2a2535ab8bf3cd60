"""`neuromusic data build`: ABC/MIDI folders (and music21's ABC corpus) -> corpus.jsonl + tokenizer.json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuromusic.models.core.errors import ConfigError, DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["build"], help="build the corpus and the tokenizer")
    parser.add_argument("--out", type=Path, required=True, help="folder for corpus.jsonl, tokenizer.json, stats")
    parser.add_argument("--abc-dir", type=Path, action="append", default=[], help="a folder of .abc files (repeatable)")
    parser.add_argument(
        "--midi-dir", type=Path, action="append", default=[], help="a folder of MIDI files (repeatable)"
    )
    parser.add_argument("--no-music21", action="store_true", help="leave out the ABC tunes of music21's corpus")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many usable tunes")
    parser.add_argument("--vocab-size", type=int, default=600, help="BPE vocabulary size (default 600)")


def run(args: argparse.Namespace) -> int:
    from neuromusic.models.music.corpus import BuildStats, iter_records, read_corpus, write_corpus
    from neuromusic.models.music.tokens import MusicTokenizer
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    for folder in [*args.abc_dir, *args.midi_dir]:
        if not folder.is_dir():
            raise ConfigError(f"--abc-dir/--midi-dir {folder} is not a folder")
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    if not 64 <= args.vocab_size <= 8192:
        raise ConfigError("--vocab-size must be within 64..8192")
    stats = BuildStats()
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("parsing", total=None)
        records = iter_records(
            args.abc_dir,
            args.midi_dir,
            not args.no_music21,
            stats,
            args.limit,
            lambda n: progress.advance(task, n),
        )
        write_corpus(records, args.out, stats)
    if stats.tunes == 0:
        raise DataError(f"no usable tunes found ({dict(stats.skipped)}); point --abc-dir/--midi-dir at music files")
    bodies = [bar for record in read_corpus(args.out / "corpus.jsonl") for bar in record["bars"]]
    tokenizer = MusicTokenizer.train(bodies, args.vocab_size)
    tokenizer.save(args.out / "tokenizer.json")
    body_tokens = sum(len(ids) for ids in tokenizer.encode_bodies(bodies))
    tokens = body_tokens + 5 * len(bodies)  # four control tokens and the bar line per bar
    summary = {
        "files": stats.files,
        "tunes": stats.tunes,
        "minor_tunes": stats.minor,
        "bars": stats.bars,
        "tokens": tokens,
        "tokens_per_bar": round(tokens / max(1, stats.bars), 2),
        "vocab": tokenizer.vocab_size,
        "meters": dict(stats.meters),
        "energy_levels": {str(k): v for k, v in sorted(stats.energy.items())},
        "skipped": dict(stats.skipped),
    }
    (args.out / "stats.json").write_text(json.dumps(summary, indent=1))
    table = Table(title=f"corpus in {args.out}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name in ("files", "tunes", "minor_tunes", "bars", "tokens", "tokens_per_bar", "vocab"):
        table.add_row(name, str(summary[name]))
    for reason, count in stats.skipped.most_common():
        table.add_row(f"skipped: {reason}", str(count))
    Console().print(table)
    return 0
