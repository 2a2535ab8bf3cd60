"""The GPT-2 music model: its size, how it is built from a GPT2Config (no download), saved and loaded.

A checkpoint folder holds `model.safetensors`, `config.json` (GPT2Config) and `tokenizer.json`; a training folder
adds `optimizer.safetensors` and `state.json` for resuming. Nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from neuromusic.models.core.errors import ModelError
from neuromusic.models.music.checkpoint import HOW_TO_GET, SHIPPED, checkpoint_files
from neuromusic.models.music.tokens import MusicTokenizer
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

__all__ = ["HOW_TO_GET", "SHIPPED", "ModelSpec", "build_model", "load_checkpoint", "save_checkpoint"]


@dataclass(frozen=True)
class ModelSpec:
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_ctx: int = 256  # tokens of context (about 32 bars at 8 tokens per bar)
    dropout: float = 0.1


def build_model(spec: ModelSpec, tokenizer: MusicTokenizer) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size,
        n_positions=spec.n_ctx,
        n_embd=spec.n_embd,
        n_layer=spec.n_layer,
        n_head=spec.n_head,
        resid_pdrop=spec.dropout,
        embd_pdrop=spec.dropout,
        attn_pdrop=spec.dropout,
        bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id,
        pad_token_id=tokenizer.pad_id,
    )
    return GPT2LMHeadModel(config)


def save_checkpoint(model: GPT2LMHeadModel, tokenizer: MusicTokenizer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(folder))  # writes config.json only
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})  # lm_head is tied to wte
    tokenizer.save(folder / "tokenizer.json")


def load_checkpoint(folder: Path) -> tuple[GPT2LMHeadModel, MusicTokenizer]:
    """Model (eval mode) and tokenizer from a checkpoint folder; ModelError saying how to get one otherwise."""
    weights, config_path, tokenizer_path = checkpoint_files(folder)
    tokenizer = MusicTokenizer.load(tokenizer_path)
    try:
        config = GPT2Config.from_json_file(str(config_path))
    except (ValueError, OSError) as error:
        raise ModelError(f"{config_path} is not a GPT-2 config ({error}); {HOW_TO_GET}") from error
    if config.vocab_size != tokenizer.vocab_size:
        raise ModelError(
            f"checkpoint and tokenizer do not match (model vocabulary {config.vocab_size}, tokenizer "
            f"{tokenizer.vocab_size}); keep the tokenizer.json saved with the model; {HOW_TO_GET}"
        )
    model = GPT2LMHeadModel(config)
    try:
        state = load_file(str(weights))
    except Exception as error:  # safetensors raises its own SafetensorError for a corrupt file
        raise ModelError(f"{weights} is not a readable safetensors file ({error}); {HOW_TO_GET}") from error
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "lm_head.weight" and not k.endswith(".attn.bias")]
    if missing or unexpected:
        raise ModelError(f"{weights} does not fit its config.json (missing {missing[:2]}, extra {unexpected[:2]})")
    model.tie_weights()
    model.eval()
    return model, tokenizer


def save_training_state(optimizer: torch.optim.Optimizer, info: dict[str, Any], folder: Path) -> None:
    """Optimizer moments as safetensors plus JSON for the step counters and parameter groups."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, float]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value) and value.dim() > 0:
                tensors[f"{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[name] = float(value)
    save_file(tensors, str(folder / "optimizer.safetensors"))
    payload = {"info": info, "scalars": scalars, "param_groups": state["param_groups"]}
    (folder / "state.json").write_text(json.dumps(payload))


def load_training_state(optimizer: torch.optim.Optimizer, folder: Path) -> dict[str, Any]:
    payload = json.loads((folder / "state.json").read_text())
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in payload["scalars"].items():
        for name, value in values.items():
            state.setdefault(int(index), {})[name] = torch.tensor(value)
    optimizer.load_state_dict({"state": state, "param_groups": payload["param_groups"]})
    info: dict[str, Any] = payload["info"]
    return info
