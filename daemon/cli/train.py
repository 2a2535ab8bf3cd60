"""`neuromusic train`: train the GPT-2 music model on a built corpus; checkpoints in safetensors."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from neuromusic.models.core.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="folder made by `neuromusic data build`")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder (written after each evaluation)")
    parser.add_argument("--layers", type=int, default=4, help="transformer layers (default 4)")
    parser.add_argument("--width", type=int, default=256, help="embedding width (default 256)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    parser.add_argument("--context", type=int, default=256, help="context length in tokens (default 256)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=20000, help="maximum optimizer steps (default 20000)")
    parser.add_argument("--minutes", type=float, default=None, help="stop and save after this much wall time")
    parser.add_argument("--eval-every", type=int, default=200, help="validate and save every N steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, cuda:1, ...")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")


def run(args: argparse.Namespace) -> int:
    if min(args.layers, args.width, args.heads, args.context, args.batch_size, args.steps, args.eval_every) < 1:
        raise ConfigError("--layers, --width, --heads, --context, --batch-size, --steps, --eval-every must be >= 1")
    if args.width % args.heads:
        raise ConfigError("--width must be a multiple of --heads")
    from neuromusic.models.music.model import ModelSpec
    from neuromusic.models.music.train import TrainConfig, train
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    config = TrainConfig(
        data=args.data,
        out=args.out,
        spec=ModelSpec(n_layer=args.layers, n_embd=args.width, n_head=args.heads, n_ctx=args.context),
        batch_size=args.batch_size,
        lr=args.lr,
        max_steps=args.steps,
        max_minutes=args.minutes,
        eval_every=args.eval_every,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        resume=args.resume,
    )
    # Under torchrun every rank runs this; only rank 0 reports. Without a terminal (nohup, a service, CI) the bar
    # becomes one plain line per validation interval, so a log file still shows progress.
    leader = os.environ.get("RANK", "0") == "0"
    interactive = leader and sys.stderr.isatty()
    started = time.monotonic()
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
    with Progress(*columns, disable=not interactive) as progress:
        task = progress.add_task("training", total=args.steps, info="")

        def report(step: int, figures: dict[str, float]) -> None:
            progress.update(task, completed=step, info=f"loss {figures['loss']:.3f}")
            if leader and not interactive and step % args.eval_every == 0:
                print(
                    f"step {step}/{args.steps}: train loss {figures['loss']:.3f}, lr {figures['lr']:.2e}, "
                    f"{time.monotonic() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )

        info = train(config, report)
    if leader:
        print(f"step {info['step']}: validation loss {info.get('val_loss', float('nan')):.3f}; saved to {args.out}")
    return 0
