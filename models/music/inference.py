"""A lean forward pass for generating with the trained GPT-2, one token at a time, on one CPU thread.

Why not the transformers model itself: at this size (4 layers x 256) the arithmetic of one decoding step is about a
millisecond, and the general-purpose model spends three times that on bookkeeping around it (cache objects, mask
building, output dataclasses). The composer samples a dozen tokens for several candidate bars every bar, so that
overhead decided whether a bar fits its real-time budget. This module reads the same weights (`GPT2LMHeadModel`
stays the one used for training, loading and perplexity) and `tests/test_music_inference.py` holds its logits to the
reference model's.

The KV cache is a preallocated buffer per layer, (batch, heads, n_ctx, head_dim), filled up to `length`: appending
writes in place. Candidates branch from the kept batch-1 cache without copying it: in `step`, the candidates are the
query rows of one attention over the shared prefix, plus a small attention over each row's own tokens, merged in one
softmax.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from neuromusic.models.core.errors import ModelError
from neuromusic.models.music.checkpoint import HOW_TO_GET, checkpoint_files
from neuromusic.models.music.tokens import MusicTokenizer
from torch.nn import functional

if TYPE_CHECKING:
    from transformers import GPT2LMHeadModel


@dataclass
class KVCache:
    keys: list[torch.Tensor]  # per layer (B, H, n_ctx, D)
    values: list[torch.Tensor]
    length: int = 0

    @property
    def batch(self) -> int:
        return int(self.keys[0].shape[0])


@dataclass
class Branches:
    """Several continuations of one shared prefix (the candidates for a bar): the batch-1 prefix cache is read,
    never copied; each row's own keys and values after it live in a small buffer of `room` positions."""

    prefix: KVCache  # batch 1, read-only here
    keys: list[torch.Tensor]  # per layer (B, H, room, D)
    values: list[torch.Tensor]
    length: int = 0  # tokens each row holds after the prefix

    @property
    def batch(self) -> int:
        return int(self.keys[0].shape[0])

    def keep(self, rows: list[int]) -> Branches:
        """Only these rows go on (a candidate that closed its bar leaves the batch: every row costs compute)."""
        index = torch.tensor(rows)
        return Branches(
            self.prefix,
            [k.index_select(0, index) for k in self.keys],
            [v.index_select(0, index) for v in self.values],
            self.length,
        )


@dataclass(frozen=True)
class _Block:
    """One transformer block's weights as (weight, bias) pairs; linear weights are (in, out)."""

    ln1: tuple[torch.Tensor, torch.Tensor]
    attn: tuple[torch.Tensor, torch.Tensor]  # (C, 3C), (3C,)
    proj: tuple[torch.Tensor, torch.Tensor]  # (C, C), (C,)
    ln2: tuple[torch.Tensor, torch.Tensor]
    fc: tuple[torch.Tensor, torch.Tensor]  # (C, 4C), (4C,)
    out: tuple[torch.Tensor, torch.Tensor]  # (4C, C), (C,)


def _linear(x: torch.Tensor, weight_bias: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    weight, bias = weight_bias
    return torch.addmm(bias, x, weight)


class FastGPT2:
    """Inference-only GPT-2 over the weights of a trained model: a GPT-2 configuration (the keys of its config.json)
    and its state dict. Built straight from a checkpoint folder (`load_runtime`), it never imports transformers, whose
    import alone costs a session about 100 MB of memory."""

    def __init__(self, config: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
        if config.get("activation_function", "gelu_new") != "gelu_new" or config.get(
            "scale_attn_by_inverse_layer_idx", False
        ):
            raise ValueError("FastGPT2 implements GPT-2 with gelu_new and plain attention scaling only")
        self.n_ctx = int(config["n_positions"])
        self.n_head = int(config["n_head"])
        self.width = int(config["n_embd"])
        self.eps = float(config.get("layer_norm_epsilon", 1e-5))

        def pair(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
            return state[f"{prefix}.weight"], state[f"{prefix}.bias"]

        self.wte = state["transformer.wte.weight"]  # (V, C); the head is tied to it
        self.wpe = state["transformer.wpe.weight"]  # (n_ctx, C)
        self.blocks = []
        for layer in range(int(config["n_layer"])):
            prefix = f"transformer.h.{layer}"
            self.blocks.append(
                _Block(
                    ln1=pair(f"{prefix}.ln_1"),
                    attn=pair(f"{prefix}.attn.c_attn"),  # GPT-2's Conv1D keeps weights as (in, out)
                    proj=pair(f"{prefix}.attn.c_proj"),
                    ln2=pair(f"{prefix}.ln_2"),
                    fc=pair(f"{prefix}.mlp.c_fc"),
                    out=pair(f"{prefix}.mlp.c_proj"),
                )
            )
        self.ln_f = pair("transformer.ln_f")
        self.head = self.wte.t().contiguous()  # (C, V): GPT-2's output layer is tied to the token embedding

    @classmethod
    def from_model(cls, model: GPT2LMHeadModel) -> FastGPT2:
        """Over the weights of a transformers model (which must not change afterwards)."""
        state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        return cls(model.config.to_dict(), state)

    def _feed_forward(self, x: torch.Tensor, block: _Block) -> torch.Tensor:
        """The block's MLP on its normalised input (N, C) -> (N, C), residual not added."""
        h = functional.layer_norm(x, (self.width,), *block.ln2, self.eps)
        return _linear(functional.gelu(_linear(h, block.fc), approximate="tanh"), block.out)

    def new_cache(self, batch: int = 1) -> KVCache:
        shape = (batch, self.n_head, self.n_ctx, self.width // self.n_head)
        return KVCache(
            keys=[torch.zeros(shape) for _ in self.blocks],
            values=[torch.zeros(shape) for _ in self.blocks],
        )

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Run ids (B, T) at positions cache.length.. through the model, appending to the cache in place.
        Returns the logits of the last position (B, V)."""
        batch, steps = ids.shape
        start = cache.length
        end = start + steps
        if end > self.n_ctx:
            raise ValueError(f"context overflow: {end} positions > n_ctx {self.n_ctx}")
        heads, head_dim = self.n_head, self.width // self.n_head
        x = self.wte[ids] + self.wpe[start:end]  # (B, T, C)
        # A block of several new tokens must not see its own future; one new token sees everything cached.
        mask = None
        if steps > 1:
            mask = torch.ones(steps, end, dtype=torch.bool).tril(diagonal=start)  # (T, start + T)
        for layer, block in enumerate(self.blocks):
            h = functional.layer_norm(x, (self.width,), *block.ln1, self.eps)
            qkv = _linear(h.view(-1, self.width), block.attn).view(batch, steps, 3, heads, head_dim)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, D)
            cache.keys[layer][:, :, start:end] = k
            cache.values[layer][:, :, start:end] = v
            attended = functional.scaled_dot_product_attention(
                q,
                cache.keys[layer][:, :, :end],
                cache.values[layer][:, :, :end],
                attn_mask=mask,
                scale=1.0 / math.sqrt(head_dim),
            )  # (B, H, T, D)
            merged = attended.transpose(1, 2).reshape(-1, self.width)  # (B*T, C)
            x = x + _linear(merged, block.proj).view(batch, steps, self.width)
            x = x + self._feed_forward(x.view(-1, self.width), block).view(batch, steps, self.width)
        cache.length = end
        last = functional.layer_norm(x[:, -1], (self.width,), *self.ln_f, self.eps)  # (B, C)
        return last @ self.head  # (B, V)

    def branch(self, prefix: KVCache, n: int, room: int) -> Branches:
        """n empty continuations of a batch-1 prefix, with room for `room` tokens each."""
        if prefix.batch != 1:
            raise ValueError("branches grow from a batch-1 cache")
        room = min(room, self.n_ctx - prefix.length)
        shape = (n, self.n_head, room, self.width // self.n_head)
        return Branches(prefix, [torch.empty(shape) for _ in self.blocks], [torch.empty(shape) for _ in self.blocks])

    @torch.no_grad()
    def step(self, ids: torch.Tensor, branches: Branches) -> torch.Tensor:
        """One new token per row, ids (B, 1), appended to each branch. Returns the logits (B, V)."""
        batch = ids.shape[0]
        shared, own = branches.prefix.length, branches.length
        if own >= branches.keys[0].shape[2]:
            raise ValueError("the branches are full: give them more room")
        heads, head_dim = self.n_head, self.width // self.n_head
        scale = 1.0 / math.sqrt(head_dim)
        x = self.wte[ids[:, 0]] + self.wpe[shared + own]  # (B, C)
        for layer, block in enumerate(self.blocks):
            h = functional.layer_norm(x, (self.width,), *block.ln1, self.eps)
            q, k, v = _linear(h, block.attn).view(batch, 3, heads, head_dim).unbind(1)  # each (B, H, D)
            branches.keys[layer][:, :, own] = k
            branches.values[layer][:, :, own] = v
            prefix_keys = branches.prefix.keys[layer][0, :, :shared]  # (H, L, D)
            prefix_values = branches.prefix.values[layer][0, :, :shared]
            own_keys = branches.keys[layer][:, :, : own + 1]  # (B, H, t, D)
            own_values = branches.values[layer][:, :, : own + 1]
            # The rows are the queries of one attention over the shared prefix: (H, B, D) x (H, D, L).
            prefix_scores = torch.bmm(q.transpose(0, 1), prefix_keys.transpose(1, 2)).transpose(0, 1)  # (B, H, L)
            own_scores = (own_keys @ q.unsqueeze(-1)).squeeze(-1)  # (B, H, t)
            weights = torch.softmax(torch.cat([prefix_scores, own_scores], dim=-1) * scale, dim=-1)  # (B, H, L + t)
            attended = torch.bmm(weights[..., :shared].transpose(0, 1), prefix_values).transpose(0, 1)  # (B, H, D)
            attended = attended + (weights[..., shared:].unsqueeze(-2) @ own_values).squeeze(-2)
            x = x + _linear(attended.reshape(batch, self.width), block.proj)
            x = x + self._feed_forward(x, block)
        branches.length = own + 1
        return functional.layer_norm(x, (self.width,), *self.ln_f, self.eps) @ self.head  # (B, V)


def load_runtime(folder: Path) -> tuple[FastGPT2, MusicTokenizer]:
    """The decoding pass and tokenizer of a checkpoint folder, read without transformers; ModelError says how to get a
    checkpoint when this one is missing, incomplete or does not fit its configuration."""
    from safetensors.torch import load_file

    weights, config_path, tokenizer_path = checkpoint_files(folder)
    tokenizer = MusicTokenizer.load(tokenizer_path)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        vocab = int(config["vocab_size"])
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise ModelError(f"{config_path} is not a GPT-2 config ({error}); {HOW_TO_GET}") from error
    if vocab != tokenizer.vocab_size:
        raise ModelError(
            f"checkpoint and tokenizer do not match (model vocabulary {vocab}, tokenizer {tokenizer.vocab_size}); "
            f"keep the tokenizer.json saved with the model; {HOW_TO_GET}"
        )
    try:
        state = load_file(str(weights))
    except Exception as error:  # safetensors raises its own SafetensorError for a corrupt file
        raise ModelError(f"{weights} is not a readable safetensors file ({error}); {HOW_TO_GET}") from error
    try:
        runtime = FastGPT2(config, state)
    except (KeyError, ValueError) as error:
        raise ModelError(f"{weights} does not fit its config.json ({error}); {HOW_TO_GET}") from error
    if runtime.wte.shape != (vocab, runtime.width) or len(runtime.blocks) != int(config["n_layer"]):
        raise ModelError(f"{weights} does not fit its config.json (embedding {tuple(runtime.wte.shape)}); {HOW_TO_GET}")
    return runtime, tokenizer
