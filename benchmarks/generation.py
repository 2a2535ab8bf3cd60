"""Bar generation time on one CPU thread: the composer (KV cache kept across bars, candidates sampled in one batch
through the lean decoding pass, rejection sampling) against plain `model.generate()` that re-reads the whole context
every bar (no cache reuse), the baseline; and the composer without its phrase memory and line steering, to show
what they cost. A second table times one decoding step of N candidates: the transformers
forward with its cache against the lean pass (inference.py) on the same weights.

    .venv/bin/python benchmarks/generation.py [--checkpoint DIR] [--bars 64] [--threads 1]

Prints milliseconds per bar (median, p95, max) and each row's ratio to the baseline's median in the same run.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from neuromusic.models.core.messages import Controls
from neuromusic.models.music.composer import Composer, checkpoint_folder
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.music.controls import tokens_for
from neuromusic.models.music.model import load_checkpoint


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
    model, tokenizer = load_checkpoint(checkpoint_folder(config))[0], composer.tokenizer
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
        ("composer, 4 candidates", composer_times(replace(base, candidates=4), args.bars)),
        (
            f"composer, {base.candidates} cand., no form or line",
            composer_times(replace(base, phrase_memory=False, shape_line=False), args.bars),
        ),
        (f"composer, {base.candidates} candidates (default)", composer_times(base, args.bars)),
        (f"composer, {base.candidates} candidates x 2 rounds", composer_times(replace(base, rounds=2), args.bars)),
    ]
    baseline = float(np.median(rows[0][1]))
    print(f"{'ms per bar, ' + str(args.threads) + ' thread(s), ' + str(args.bars) + ' bars':<46} "
          f"{'median':>8} {'p95':>8} {'max':>8} {'vs baseline':>12}")  # fmt: skip
    for name, times in rows:
        median, p95, worst = np.median(times), np.percentile(times, 95), max(times)
        print(f"{name:<46} {median:8.1f} {p95:8.1f} {worst:8.1f} {median / baseline:11.2f}x")
    print()
    print(f"{'one decoding step, 150 tokens of context':<46} {'transformers':>12} {'lean pass':>10} {'ratio':>8}")
    for batch in (1, 4, 12):
        reference, lean = step_times(base, batch)
        print(f"{'  ' + str(batch) + ' candidate(s), ms':<46} {reference:12.2f} {lean:10.2f} {reference / lean:7.1f}x")


@torch.no_grad()
def step_times(config: ComposerConfig, batch: int, steps: int = 12, repeats: int = 20) -> tuple[float, float]:
    """Median ms of one decoding step of `batch` rows after a shared 150-token context: the transformers model with
    its own cache (copied per batch, as generation must) against FastGPT2.step on branches of the same prefix."""
    composer = Composer.load(config)
    model, runtime = load_checkpoint(checkpoint_folder(config))[0], composer.runtime
    context = torch.randint(3, model.config.vocab_size, (1, 150))
    tokens = torch.randint(3, model.config.vocab_size, (batch, 1))
    reference_cache = model(input_ids=context, use_cache=True).cache
    reference_cache.batch_repeat_interleave(batch)
    prefix = runtime.new_cache()
    runtime.forward(context, prefix)
    reference, lean = [], []
    for _ in range(repeats):
        cache = copy.deepcopy(reference_cache)
        started = time.perf_counter()
        for _ in range(steps):
            cache = model(input_ids=tokens, cache=cache, use_cache=True).cache
        reference.append((time.perf_counter() - started) * 1000 / steps)
        branches = runtime.branch(prefix, batch, steps)
        started = time.perf_counter()
        for _ in range(steps):
            runtime.step(tokens, branches)
        lean.append((time.perf_counter() - started) * 1000 / steps)
    return float(np.median(reference)), float(np.median(lean))


if __name__ == "__main__":
    main()
