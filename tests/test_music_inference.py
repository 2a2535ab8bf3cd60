"""The lean decoding pass against the transformers model it reads its weights from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from neuromusic.models.core.errors import ModelError
from neuromusic.models.music.checkpoint import SHIPPED
from neuromusic.models.music.inference import FastGPT2, load_runtime
from neuromusic.models.music.model import load_checkpoint
from transformers import GPT2Config, GPT2LMHeadModel


def tiny_model(seed: int = 0, **overrides: object) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    settings: dict[str, object] = dict(vocab_size=50, n_positions=40, n_embd=32, n_layer=2, n_head=4)
    settings.update(overrides)
    model = GPT2LMHeadModel(GPT2Config(**settings))
    model.eval()
    return model


@torch.no_grad()
def reference_logits(model: GPT2LMHeadModel, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids).logits  # (B, T, V)


def test_forward_in_chunks_matches_the_reference_model() -> None:
    model = tiny_model()
    runtime = FastGPT2.from_model(model)
    ids = torch.randint(0, 50, (1, 30))
    expected = reference_logits(model, ids)
    cache = runtime.new_cache()
    first = runtime.forward(ids[:, :17], cache)  # several tokens at once: a causal block
    assert cache.length == 17
    torch.testing.assert_close(first, expected[:, 16], atol=1e-5, rtol=1e-4)
    for position in range(17, 30):  # then one at a time
        logits = runtime.forward(ids[:, position : position + 1], cache)
        torch.testing.assert_close(logits, expected[:, position], atol=1e-5, rtol=1e-4)
    assert cache.length == 30


def test_branches_match_each_candidate_decoded_alone() -> None:
    model = tiny_model(seed=1)
    runtime = FastGPT2.from_model(model)
    prefix_ids = torch.randint(0, 50, (1, 12))
    continuations = torch.randint(0, 50, (5, 4))
    expected = reference_logits(model, torch.cat([prefix_ids.expand(5, -1), continuations], dim=1))  # (5, 16, V)
    prefix = runtime.new_cache()
    runtime.forward(prefix_ids, prefix)
    branches = runtime.branch(prefix, 5, room=8)
    for step in range(2):
        logits = runtime.step(continuations[:, step : step + 1], branches)
        torch.testing.assert_close(logits, expected[:, 12 + step], atol=1e-5, rtol=1e-4)
    # Rows 1 and 3 go on alone (the others closed their bars): their futures must not change.
    branches = branches.keep([1, 3])
    for step in range(2, 4):
        logits = runtime.step(continuations[[1, 3], step : step + 1], branches)
        torch.testing.assert_close(logits, expected[[1, 3], 12 + step], atol=1e-5, rtol=1e-4)
    assert prefix.length == 12 and branches.length == 4  # the shared prefix was only read


def test_limits_are_errors_not_silent_garbage() -> None:
    model = tiny_model()
    runtime = FastGPT2.from_model(model)
    cache = runtime.new_cache()
    with pytest.raises(ValueError, match="overflow"):
        runtime.forward(torch.zeros(1, 41, dtype=torch.long), cache)
    runtime.forward(torch.zeros(1, 10, dtype=torch.long), cache)
    branches = runtime.branch(cache, 2, room=1)
    runtime.step(torch.zeros(2, 1, dtype=torch.long), branches)
    with pytest.raises(ValueError, match="full"):
        runtime.step(torch.zeros(2, 1, dtype=torch.long), branches)
    with pytest.raises(ValueError, match="batch-1"):
        runtime.branch(runtime.new_cache(batch=2), 3, room=4)
    with pytest.raises(ValueError, match="gelu_new"):
        FastGPT2.from_model(tiny_model(activation_function="relu"))


def test_a_checkpoint_read_without_transformers_gives_the_reference_logits() -> None:
    model, tokenizer = load_checkpoint(SHIPPED)
    runtime, read_tokenizer = load_runtime(SHIPPED)
    assert read_tokenizer.vocab_size == tokenizer.vocab_size
    ids = torch.randint(3, tokenizer.vocab_size, (1, 24))
    cache = runtime.new_cache()
    torch.testing.assert_close(runtime.forward(ids, cache), reference_logits(model, ids)[:, -1], atol=1e-4, rtol=1e-4)


def test_a_broken_checkpoint_is_a_model_error_that_says_how_to_get_one(tmp_path: Path) -> None:
    broken = tmp_path / "ckpt"
    shutil.copytree(SHIPPED, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        load_runtime(broken)
    (broken / "config.json").unlink()
    with pytest.raises(ModelError, match=r"config\.json is missing"):
        load_runtime(broken)
    shutil.copytree(SHIPPED, tmp_path / "other")
    config = json.loads((tmp_path / "other" / "config.json").read_text())
    config["n_embd"] = 128
    (tmp_path / "other" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="does not fit"):
        load_runtime(tmp_path / "other")
