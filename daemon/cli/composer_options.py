"""The [composer] flags, taken by `neuromusic generate`: each one [composer] key, over the TOML file's value."""

from __future__ import annotations

from pathlib import Path

from neuromusic.daemon.cli.flags import Flag, FlagTable

COMPOSER = FlagTable(
    "composer",
    "the composer",
    (
        Flag("--checkpoint", "checkpoint", "model folder (default: the shipped one)", type=Path, metavar="DIR"),
        Flag(
            "--temperature",
            "temperature",
            "softmax temperature when sampling; lower is safer and more repetitive",
            type=float,
            metavar="T",
        ),
        Flag("--top-k", "top_k", "keep only the k likeliest tokens (0 = off)", type=int, metavar="K"),
        Flag(
            "--top-p",
            "top_p",
            "nucleus sampling: keep the likeliest tokens up to this probability mass",
            type=float,
            metavar="P",
        ),
        Flag("--candidates", "candidates", "bars sampled per step (rejection sampling)", type=int, metavar="N"),
        Flag("--meter", "meter", "4/4, 3/4, 6/8, ..."),
        Flag("--tonic", "tonic", "the key's tonic: D, F#, Bb, ...", metavar="NOTE"),
        Flag("--threads", "threads", "torch CPU threads", type=int, metavar="N"),
    ),
)
