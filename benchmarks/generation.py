"""Bar generation time on one CPU thread: the composer (KV cache kept across bars, rejection sampling) against
plain `model.generate()` that re-reads the whole context every bar (no cache reuse), the baseline.

    .venv/bin/python benchmarks/generation.py [--checkpoint DIR] [--bars 64] [--threads 1]

Prints milliseconds per bar (median, p95, max) and each row's ratio to the baseline's median in the same run.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from neuromusic.models.messages import Controls
from neuromusic.models.music.composer import Composer
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.music.controls import tokens_for


def controls_for(index: int) -> Controls:
    """A control change every 8 bars, as a session would make."""
    return Controls(tempo=70, valence=0.8 if (index // 8) % 2 == 0 else 0.2, energy=[0.2, 0.5, 0.8][(index // 8) % 3])


def composer_times(config: ComposerConfig, bars: int) -> list[float]:
    composer = Composer.load(config)
    composer.next_bar(controls_for(0))  # warm-up
    composer.reset(config.seed)
    times = []
    for index in range(bars):
        started = time.perf_counter()
        composer.next_bar(controls_for(index))
        times.append((time.perf_counter() - started) * 1000)
    return times


@torch.no_grad()
def generate_times(config: ComposerConfig, bars: int) -> list[float]:
    """Baseline: every bar, model.generate() over the whole (trimmed) context, stopping at the bar line."""
    composer = Composer.load(config)
    model, tokenizer = composer.model, composer.tokenizer
    history = [tokenizer.bos_id]
    torch.manual_seed(config.seed or 0)
    times = []
    for index in range(-1, bars):
        started = time.perf_counter()
        history += [tokenizer.id(t) for t in tokens_for(controls_for(max(index, 0)), config.meter)]
        context = history[-(composer.n_ctx - config.max_bar_tokens - 1) :]
        out = model.generate(
            torch.tensor([context]),
            attention_mask=torch.ones(1, len(context), dtype=torch.long),
            max_new_tokens=config.max_bar_tokens,
            do_sample=True,
            top_p=config.top_p,
            eos_token_id=tokenizer.bar_id,
            pad_token_id=tokenizer.pad_id,
        )
        history += out[0, len(context) :].tolist()
        if history[-1] != tokenizer.bar_id:
            history.append(tokenizer.bar_id)
        if index >= 0:  # the first call is a warm-up
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--bars", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    base = ComposerConfig(checkpoint=args.checkpoint, threads=args.threads, seed=1)
    rows = [
        ("model.generate(), no cache reuse (baseline)", generate_times(base, args.bars)),
        ("composer, 1 candidate", composer_times(replace(base, candidates=1), args.bars)),
        (f"composer, {base.candidates} candidates (default)", composer_times(base, args.bars)),
        ("composer, 8 candidates", composer_times(replace(base, candidates=8), args.bars)),
    ]
    baseline = float(np.median(rows[0][1]))
    print(f"{'ms per bar, ' + str(args.threads) + ' thread(s), ' + str(args.bars) + ' bars':<46} "
          f"{'median':>8} {'p95':>8} {'max':>8} {'vs baseline':>12}")  # fmt: skip
    for name, times in rows:
        median, p95, worst = np.median(times), np.percentile(times, 95), max(times)
        print(f"{name:<46} {median:8.1f} {p95:8.1f} {worst:8.1f} {median / baseline:11.2f}x")


if __name__ == "__main__":
    main()
