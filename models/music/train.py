"""Training: random joins of tune segments (so controls change mid-sequence), AdamW, validation, checkpoints.

A training sequence is `<BOS>` followed by segments of 4-16 bars from random tunes (minor tunes drawn more often to
balance the 3.4 : 1 major majority; the next segment keeps the meter with probability 0.8), cut to the context
length. Control tokens are inputs only: their labels are masked, so the loss is on bar bodies and bar lines.
Runs on CPU or one GPU; under `torchrun` (WORLD_SIZE > 1) each rank trains on its own samples with DDP.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from neuromusic.models.core.errors import DataError, ModelError
from neuromusic.models.music.controls import control_tokens, tempo_level
from neuromusic.models.music.corpus import read_corpus
from neuromusic.models.music.model import (
    ModelSpec,
    build_model,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from neuromusic.models.music.tokens import MusicTokenizer
from transformers import GPT2LMHeadModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    spec: ModelSpec = field(default_factory=ModelSpec)
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 100
    max_steps: int = 20000
    max_minutes: float | None = None  # stop (and save) after this much wall time
    eval_every: int = 200
    eval_batches: int = 8
    minor_weight: float = 3.0
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    resume: bool = False


@dataclass
class Tune:
    bars: list[list[int]]  # token ids of each bar, controls and bar line included
    meter: str
    weight: float


def load_tunes(data: Path, tokenizer: MusicTokenizer, split: str, minor_weight: float) -> list[Tune]:
    corpus_path = data / "corpus.jsonl"
    if not corpus_path.is_file():
        raise DataError(f"{corpus_path} not found; build it with `neuromusic data build --out {data}`")
    tunes = []
    for record in read_corpus(corpus_path):
        if record["split"] != split:
            continue
        bodies = tokenizer.encode_bodies(record["bars"])
        t, v = tempo_level(record["tempo"]), int(not record["minor"])
        bars = [
            [tokenizer.id(tok) for tok in control_tokens(record["meter"], t, v, e)] + body + [tokenizer.bar_id]
            for body, e in zip(bodies, record["energy"], strict=True)
        ]
        tunes.append(Tune(bars, record["meter"], minor_weight if record["minor"] else 1.0))
    if not tunes and split == "train":
        raise DataError(f"{corpus_path} holds no training tunes")
    return tunes


def validation_tunes(data: Path, tokenizer: MusicTokenizer, train_tunes: list[Tune] | None = None) -> list[Tune]:
    """Held-out tunes; a corpus of a few tunes may hold none out: then the training tunes, with a warning."""
    tunes = load_tunes(data, tokenizer, "valid", 1.0)
    if not tunes:
        log.warning("%s has no validation tunes; the validation loss is measured on training tunes", data)
        tunes = train_tunes if train_tunes is not None else load_tunes(data, tokenizer, "train", 1.0)
    return tunes


class Sampler:
    """Draws training sequences of n_ctx tokens from joined tune segments."""

    def __init__(self, tunes: list[Tune], tokenizer: MusicTokenizer, n_ctx: int, seed: int) -> None:
        self.tunes, self.tokenizer, self.n_ctx = tunes, tokenizer, n_ctx
        self.rng = random.Random(seed)
        self.weights = [t.weight for t in tunes]
        self.by_meter: dict[str, list[int]] = {}
        for index, tune in enumerate(tunes):
            self.by_meter.setdefault(tune.meter, []).append(index)
        self.control_ids = {tokenizer.id(t) for t in tokenizer.tokenizer.get_vocab() if t.startswith("<")}

    def _pick(self, meter: str | None) -> Tune:
        if meter is not None and self.rng.random() < 0.8:
            return self.tunes[self.rng.choice(self.by_meter[meter])]
        return self.rng.choices(self.tunes, weights=self.weights)[0]

    def sequence(self) -> tuple[list[int], list[int]]:
        ids = [self.tokenizer.bos_id]
        meter = None
        while len(ids) < self.n_ctx:
            tune = self._pick(meter)
            meter = tune.meter
            start = self.rng.randrange(len(tune.bars))
            for bar in tune.bars[start : start + self.rng.randint(4, 16)]:
                ids += bar
        ids = ids[: self.n_ctx]
        labels = [-100 if i in self.control_ids else i for i in ids]
        return ids, labels

    def batch(self, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self.sequence() for _ in range(size)]
        ids = torch.tensor([p[0] for p in pairs], device=device)  # (B, T)
        labels = torch.tensor([p[1] for p in pairs], device=device)  # (B, T)
        return ids, labels


def _device(name: str) -> torch.device:
    if name == "auto":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(name)


def train(config: TrainConfig, progress: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train (or resume) and return the final figures; checkpoints go to config.out after each evaluation."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = _device(config.device)
    if world > 1:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed + rank)
    tokenizer_path = config.data / "tokenizer.json"
    tokenizer = MusicTokenizer.load(tokenizer_path)
    train_tunes = load_tunes(config.data, tokenizer, "train", config.minor_weight)
    valid_tunes = validation_tunes(config.data, tokenizer, train_tunes)
    model, optimizer, info = _start(config, tokenizer, device)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    n_ctx = model.config.n_positions
    sampler = Sampler(train_tunes, tokenizer, n_ctx, config.seed * 1000 + rank + info["step"])
    valid_sampler = Sampler(valid_tunes, tokenizer, n_ctx, 12345)
    valid = [valid_sampler.batch(config.batch_size, device) for _ in range(config.eval_batches)]
    started = time.monotonic() - info["elapsed_s"]
    step = info["step"]
    val_loss = math.nan
    while step < config.max_steps:
        lr = _learning_rate(config, step, time.monotonic() - started)
        for group in optimizer.param_groups:
            group["lr"] = lr
        ids, labels = sampler.batch(config.batch_size, device)
        loss = net(input_ids=ids, labels=labels).loss  # (,) mean over body tokens
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        elapsed = time.monotonic() - started
        out_of_time = config.max_minutes is not None and elapsed > config.max_minutes * 60
        train_loss = loss.item()
        if progress is not None:
            progress(step, {"loss": train_loss, "lr": lr})
        if step % config.eval_every == 0 or step == config.max_steps or out_of_time:
            val_loss = evaluate_loss(model, valid)
            model.train()
            info.update(step=step, elapsed_s=elapsed, val_loss=val_loss, train_loss=train_loss)
            info["history"].append({"step": step, "val_loss": val_loss, "train_loss": train_loss, "s": elapsed})
            log.info("step %d train %.3f valid %.3f (%.0f s)", step, train_loss, val_loss, elapsed)
            if rank == 0:
                save_checkpoint(model, tokenizer, config.out)
                save_training_state(optimizer, info, config.out)
        if out_of_time:
            break
    if world > 1:
        torch.distributed.destroy_process_group()
    return info


def _start(
    config: TrainConfig, tokenizer: MusicTokenizer, device: torch.device
) -> tuple[GPT2LMHeadModel, torch.optim.Optimizer, dict[str, Any]]:
    """A new model, or the one in config.out with its optimizer state and figures when resuming."""
    info: dict[str, Any] = {"step": 0, "elapsed_s": 0.0, "history": [], "spec": asdict(config.spec)}
    resuming = config.resume and (config.out / "state.json").is_file()
    if resuming:
        model, saved_tokenizer = load_checkpoint(config.out)
        if saved_tokenizer.vocab_size != tokenizer.vocab_size:
            raise ModelError(f"{config.out} was trained with another tokenizer; train into a new --out folder")
    else:
        model = build_model(config.spec, tokenizer)
    model.to(device)  # type: ignore[arg-type]  # transformers annotates `to` through a decorator that mistypes it
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, betas=(0.9, 0.98))
    if resuming:
        info = load_training_state(optimizer, config.out)
        log.info("resuming %s at step %d", config.out, info["step"])
    return model, optimizer, info


def _learning_rate(config: TrainConfig, step: int, elapsed_s: float) -> float:
    """Linear warm-up, then cosine decay over whichever budget runs out first: steps or wall time."""
    done = step / config.max_steps
    if config.max_minutes is not None:
        done = max(done, elapsed_s / (config.max_minutes * 60))
    lr = config.lr * min(1.0, (step + 1) / config.warmup_steps)
    lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    return lr


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    model.eval()
    losses = [float(model(input_ids=ids, labels=labels).loss) for ids, labels in batches]
    return sum(losses) / len(losses)
