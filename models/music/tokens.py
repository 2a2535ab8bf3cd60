"""BPE over compact ABC bars (HuggingFace `tokenizers`), merges never crossing a bar line.

Every bar body is one pre-tokenized word, so a merge can join notes inside a bar but never across the bar line;
control and structure tokens are special tokens, never merged. A bar in the token stream is
`<M:m> <Tt> <Vv> <Ee> body... |`, and a sequence starts with `<BOS>`. Saved as `tokenizer.json` beside the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from neuromusic.models.core.errors import ModelError
from neuromusic.models.music.controls import BAR, BOS, EOS, PAD, UNK, special_tokens
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

ALPHABET = list("^_=ABCDEFGabcdefg,'z0123456789/")
DEFAULT_VOCAB = 600


class MusicTokenizer:
    """Control tokens + BPE bar bodies <-> ids."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        missing = [t for t in special_tokens() if tokenizer.token_to_id(t) is None]
        if missing:
            raise ModelError(f"tokenizer lacks control tokens {missing[:3]}; rebuild it with `neuromusic data build`")
        self.pad_id = self.id(PAD)
        self.bos_id = self.id(BOS)
        self.eos_id = self.id(EOS)
        self.bar_id = self.id(BAR)
        self.unk_id = self.id(UNK)
        self.vocab_size = tokenizer.get_vocab_size()
        self._pieces = [tokenizer.id_to_token(i) or "" for i in range(self.vocab_size)]
        specials = {self.id(t) for t in special_tokens()}
        # Tokens a bar body may be sampled from: every BPE piece; the bar line ends the body.
        self.body_mask: npt.NDArray[np.bool_] = np.array([i not in specials for i in range(self.vocab_size)])

    @classmethod
    def train(cls, bodies: Iterable[str], vocab_size: int = DEFAULT_VOCAB) -> MusicTokenizer:
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=special_tokens(), initial_alphabet=ALPHABET, show_progress=False
        )
        tokenizer.train_from_iterator(bodies, trainer)
        return cls(tokenizer)

    @classmethod
    def load(cls, path: Path) -> MusicTokenizer:
        try:
            return cls(Tokenizer.from_file(str(path)))
        except FileNotFoundError as error:
            raise ModelError(
                f"tokenizer not found: {path}; run `neuromusic data build` then `neuromusic train`"
            ) from error
        except Exception as error:  # tokenizers raises a bare Exception for malformed JSON
            if isinstance(error, ModelError):
                raise
            raise ModelError(f"{path} is not a tokenizer file ({error}); use the one saved with the model") from error

    def save(self, path: Path) -> None:
        self.tokenizer.save(str(path))

    def id(self, token: str) -> int:
        value = self.tokenizer.token_to_id(token)
        if value is None:
            raise ModelError(f"token {token!r} is not in the tokenizer")
        return value

    def encode_body(self, body: str) -> list[int]:
        return list(self.tokenizer.encode(body.replace(" ", "")).ids)

    def encode_bodies(self, bodies: list[str]) -> list[list[int]]:
        return [list(e.ids) for e in self.tokenizer.encode_batch([b.replace(" ", "") for b in bodies])]

    def encode_bar(self, controls: list[str], body: str) -> list[int]:
        return [self.id(t) for t in controls] + self.encode_body(body) + [self.bar_id]

    def decode_body(self, ids: Iterable[int]) -> str:
        return "".join(self._pieces[i] for i in ids)
