"""The corpus build, training and the composer end to end, on a tiny model trained in seconds on eight tunes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from neuromusic.daemon.cli import main
from neuromusic.daemon.config import load_config
from neuromusic.models.core.errors import ConfigError, ModelError
from neuromusic.models.core.messages import Controls
from neuromusic.models.music.abc import parse_bar
from neuromusic.models.music.composer import Composer, filter_logits
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.music.model import load_checkpoint
from neuromusic.models.music.tokens import MusicTokenizer

from tests.music_fixtures import TINY_TRAIN, write_tunes

CALM = Controls(tempo=70, valence=0.8, energy=0.2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus folder, checkpoint folder) of a 1-layer model trained for 20 steps."""
    root = tmp_path_factory.mktemp("music")
    data, checkpoint = root / "data", root / "ckpt"
    assert main(["data", "build", "--no-music21", "--abc-dir", str(write_tunes(root / "abc")), "--out", str(data),
                 "--vocab-size", "100"]) == 0  # fmt: skip
    args = ["train", "--data", str(data), "--out", str(checkpoint), "--steps", "20", "--eval-every", "10"]
    assert main([*args, *TINY_TRAIN, "--threads", "1"]) == 0
    return data, checkpoint


@pytest.fixture
def composer(tiny: tuple[Path, Path]) -> Composer:
    return Composer.load(ComposerConfig(checkpoint=tiny[1], seed=1))


def test_tokenizer_never_merges_across_a_bar_line(tiny: tuple[Path, Path]) -> None:
    tokenizer = MusicTokenizer.load(tiny[0] / "tokenizer.json")
    assert tokenizer.vocab_size <= 100
    pieces = [tokenizer.tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    assert all("|" not in p for p in pieces if p != "|")
    ids = tokenizer.encode_bar(["<M:4/4>", "<T1>", "<V1>", "<E0>"], "D2F2A2d2")
    assert ids[-1] == tokenizer.bar_id and tokenizer.decode_body(ids[4:-1]) == "D2F2A2d2"


def test_training_saves_safetensors_and_resumes(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    data, checkpoint = tiny
    assert {p.name for p in checkpoint.iterdir()} >= {"model.safetensors", "config.json", "tokenizer.json"}
    assert not list(checkpoint.glob("*.bin")) and not list(checkpoint.glob("*.pt"))
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["info"]["step"] == 20 and len(state["info"]["history"]) == 2
    resumed = tmp_path / "resumed"
    shutil.copytree(checkpoint, resumed)
    args = ["train", "--data", str(data), "--out", str(resumed), "--steps", "25", "--eval-every", "5", "--resume"]
    assert main([*args, *TINY_TRAIN, "--threads", "1"]) == 0
    assert json.loads((resumed / "state.json").read_text())["info"]["step"] == 25


def test_every_bar_has_the_meters_length_whatever_the_controls(composer: Composer) -> None:
    for index in range(12):
        controls = Controls(tempo=60 + 5 * index, valence=(index % 3) / 2, energy=(index % 4) / 3)
        bar = composer.next_bar(controls)
        assert bar.index == index and bar.meter == "4/4" and bar.beats == 4.0
        parsed = parse_bar(bar.abc, bar.meter, bar.key)
        assert parsed.complete, bar.abc
        assert [n.pitch for n in parsed.notes if n.pitch is not None] == [n.pitch for n in bar.notes]
        assert all(0 <= n.start < 4.0 and n.start + n.duration <= 4.0 + 1e-9 for n in bar.notes)
        assert bar.key == ("D" if controls.valence >= 0.5 else "Dm")
        assert bar.compose_ms > 0


def test_same_seed_same_music_and_reset(composer: Composer, tiny: tuple[Path, Path]) -> None:
    first = [composer.next_bar(CALM).abc for _ in range(6)]
    composer.reset(1)
    assert [composer.next_bar(CALM).abc for _ in range(6)] == first
    other = Composer.load(ComposerConfig(checkpoint=tiny[1], seed=2))
    assert [other.next_bar(CALM).abc for _ in range(6)] != first


def test_context_is_trimmed_and_the_cache_kept(composer: Composer) -> None:
    lengths = []
    for _ in range(40):  # the tiny model has 64 tokens of context: about 8 bars
        composer.next_bar(CALM)
        assert composer.cache is not None
        assert composer.cache.length + len(composer.pending) == len(composer.history) <= composer.n_ctx
        lengths.append(len(composer.history))
    assert min(lengths[10:]) < max(lengths)  # it was rebuilt shorter at least once


def test_a_failing_model_says_so_and_recovers(composer: Composer, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated failure inside the forward pass")

    monkeypatch.setattr(composer, "_sample", broken)
    with pytest.raises(ModelError, match="simulated failure"):  # the player plays a fallback bar and counts it
        composer.next_bar(CALM)
    monkeypatch.undo()
    assert parse_bar(composer.next_bar(CALM).abc, "4/4", "D").complete  # and it recovers


def test_a_bug_in_the_model_code_is_not_hidden(composer: Composer, monkeypatch: pytest.MonkeyPatch) -> None:
    def buggy(*args: object, **kwargs: object) -> None:
        raise AttributeError("'NoneType' object has no attribute 'keep'")

    monkeypatch.setattr(composer, "_sample", buggy)
    with pytest.raises(AttributeError):
        composer.next_bar(CALM)


@pytest.mark.parametrize(
    ("option", "value", "check"),
    [
        ("meter", "6/8", lambda bar, _: bar.meter == "6/8" and bar.beats == 3.0),
        ("tonic", "Bb", lambda bar, _: bar.key == "Bb"),
        ("candidates", 1, lambda _, composer: composer.config.candidates == 1),
        ("threads", 2, lambda _b, _c: torch.get_num_threads() == 2),
    ],
)
def test_options_change_behaviour(tiny: tuple[Path, Path], option: str, value: object, check: object) -> None:
    config = replace(ComposerConfig(checkpoint=tiny[1], seed=1), **{option: value})
    composer = Composer.load(config)
    bar = composer.next_bar(CALM)
    assert callable(check) and check(bar, composer)
    torch.set_num_threads(1)


def test_sampling_options_change_the_music(tiny: tuple[Path, Path]) -> None:
    def piece(**options: object) -> list[str]:
        composer = Composer.load(replace(ComposerConfig(checkpoint=tiny[1], seed=5), **options))
        return [composer.next_bar(CALM).abc for _ in range(8)]

    base = piece()
    assert piece(temperature=0.3) != base
    assert piece(top_k=2) != base
    assert piece(top_p=0.3) != base
    assert piece(candidates=1) != base
    assert piece(rounds=2) != base  # the tiny model rarely fits at once, so a second batch shows
    assert piece(max_bar_tokens=2) != base


def test_excursions_travel_to_the_dominant_and_the_relative_and_come_home(tiny: tuple[Path, Path]) -> None:
    composer = Composer.load(replace(ComposerConfig(checkpoint=tiny[1], seed=2), excursion_every=32))
    keys = [composer.next_bar(CALM if i < 36 else replace(CALM, valence=0.2)).key for i in range(84)]
    assert keys[:16] == ["D"] * 16 and keys[16:32] == ["A"] * 16 and keys[32:36] == ["D"] * 4  # the dominant
    assert keys[36:48] == ["Dm"] * 12 and keys[48:64] == ["F"] * 16  # then the relative: D minor's is F major
    assert keys[64:80] == ["Dm"] * 16 and keys[80:] == ["Am"] * 4  # and the dominant again
    only = replace(ComposerConfig(checkpoint=tiny[1], seed=2), excursion_every=32, excursion_keys=("relative",))
    composer = Composer.load(only)
    keys = [composer.next_bar(CALM).key for _ in range(52)]
    assert keys[16:32] == ["Bm"] * 16 and keys[48:] == ["Bm"] * 4 and set(keys[:16] + keys[32:48]) == {"D"}
    composer = Composer.load(replace(ComposerConfig(checkpoint=tiny[1], seed=2), excursion_every=0))
    assert {composer.next_bar(CALM).key for _ in range(40)} == {"D"}


def test_new_composer_options_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[composer]\nphrase_memory = false\nshape_line = false\nmelody_center_low = 58\n"
                    "melody_center_high = 70\nexcursion_every = 0\nexcursion_keys = [\"relative\"]\n")  # fmt: skip
    config = load_config(path).composer
    assert (config.phrase_memory, config.shape_line, config.melody_center_low, config.excursion_every) == (
        False,
        False,
        58,
        0,
    )
    assert config.excursion_keys == ("relative",)
    path.write_text('[composer]\nexcursion_keys = ["subdominant"]\n')
    with pytest.raises(ConfigError, match="excursion_keys"):
        load_config(path)


def test_filter_logits_keeps_the_likeliest() -> None:
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    assert torch.isfinite(filter_logits(logits, 2, 1.0)).tolist() == [[False, True, True, False]]
    assert torch.isfinite(filter_logits(logits, 0, 0.5)).tolist() == [[False, True, False, False]]


def test_missing_or_mismatched_checkpoint_says_how_to_get_one(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="neuromusic train"):
        Composer.load(ComposerConfig(checkpoint=tmp_path / "nothing"))
    broken = tmp_path / "mismatched"
    shutil.copytree(tiny[1], broken)
    other = MusicTokenizer.train(["CDEF", "GABc"], 70)
    other.save(broken / "tokenizer.json")
    with pytest.raises(ModelError, match="do not match"):
        load_checkpoint(broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    shutil.copy(tiny[1] / "tokenizer.json", broken / "tokenizer.json")
    with pytest.raises(ModelError, match="safetensors"):
        load_checkpoint(broken)


def test_composer_section_loads_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[composer]\nmeter = "3/4"\ntonic = "G"\ncandidates = 2\n')
    config = load_config(path).composer
    assert (config.meter, config.tonic, config.candidates) == ("3/4", "G", 2)
    path.write_text('[composer]\nmeter = "7/4"\n')
    with pytest.raises(ConfigError, match=r"\[composer\] meter '7/4'"):
        load_config(path)


def test_bad_composer_options_are_rejected() -> None:
    for bad in (
        {"temperature": 0.0},
        {"top_p": 1.5},
        {"meter": "7/4"},
        {"tonic": "Hm"},
        {"candidates": 0},
        {"rounds": 0},
        {"melody_center_low": 80, "melody_center_high": 70},
        {"melody_center_high": 100},
        {"excursion_every": 16},
    ):
        with pytest.raises(ValueError):
            replace(ComposerConfig(), **bad).validate()
