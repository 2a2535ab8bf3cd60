"""Bar-by-bar conditional generation with the GPT-2 music model.

Each `next_bar(controls)`:
1. feeds the bar's control tokens (`<M:..> <T..> <V..> <E..>`) into the kept KV cache (batch 1), through the lean
   inference pass of inference.py (the same weights, about half the time per decoding step);
2. branches `candidates` continuations from that cache (read, not copied) and samples that many bar bodies in one
   batch, only BPE body tokens allowed (controls and structure tokens are masked), until each candidate has
   closed its bar with `|`;
3. parses every candidate, keeps the one that best fits the requested mode, energy and bar length
   (rejection sampling, bars.misfit: the mode is judged on the bars heard since the mode last changed plus the
   candidate, so the passage is heard in the asked key); when none fits well, samples another batch (up to
   `rounds` batches); repairs the kept bar to the meter's length if needed;
4. keeps the bar (as it will be played) in the context, so the next bar follows what was heard; its tokens go
   through the model together with the next bar's control tokens, one forward pass for both.
When the context would overflow, it is rebuilt from the most recent whole bars (half the context).
A bar torch fails on (memory, a non-finite distribution) rebuilds the context and raises ModelError, so the player
plays a fallback bar and counts it; any other exception is a bug and is not hidden.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from neuromusic.models.core.errors import ModelError
from neuromusic.models.core.messages import Bar, Controls
from neuromusic.models.music import bars as barlib
from neuromusic.models.music.abc import AbcError, AbcNote, format_bar, parse_bar, parse_meter
from neuromusic.models.music.checkpoint import SHIPPED
from neuromusic.models.music.config import ComposerConfig
from neuromusic.models.music.controls import control_tokens, energy_level, tempo_level, valence_level
from neuromusic.models.music.inference import FastGPT2, KVCache, load_runtime
from neuromusic.models.music.keyfinding import histogram
from neuromusic.models.music.line import Line
from neuromusic.models.music.phrase import PhraseMemory, PhrasePlan, form_cost, travel
from neuromusic.models.music.tokens import MusicTokenizer

log = logging.getLogger(__name__)
TAIL = 2.0  # see _sample
HEARD_BARS = 16  # how many bars back (within one mode) the key of the passage is judged over
# Form and line costs together stay under one energy level's misfit (2.0): they choose among bars that fit the
# controls, never against them.
SHAPE_CAP = 1.9
SETTLE_BARS = 2  # bars after a change of mode or key chosen on the controls alone


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Top-k then nucleus filtering of (N, vocab) logits; removed entries become -inf."""
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True, dim=-1)  # (N, vocab)
        mass = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        drop = mass - torch.softmax(ordered, dim=-1) > top_p  # keep the token that crosses top_p
        ordered = ordered.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, ordered)
    return logits


def checkpoint_folder(config: ComposerConfig) -> Path:
    """The checkpoint this configuration names, else the shipped one."""
    return Path(config.checkpoint) if config.checkpoint is not None else SHIPPED


def parse_body(tokenizer: MusicTokenizer, ids: list[int], meter: str) -> list[AbcNote] | None:
    """A sampled bar body's notes; None when it does not parse or holds a pitch or a duration no tune would."""
    try:
        notes = parse_bar(tokenizer.decode_body(ids), meter).notes
    except AbcError:
        return None
    if not notes or any(n.pitch is not None and not 24 <= n.pitch <= 108 for n in notes):
        return None
    if any(n.duration < Fraction(1, 16) for n in notes):
        return None
    return notes


class Composer:
    """The model-backed BarComposer. Not thread-safe: keep it on one worker thread."""

    def __init__(self, runtime: FastGPT2, tokenizer: MusicTokenizer, config: ComposerConfig) -> None:
        config.validate()
        self.runtime, self.tokenizer, self.config = runtime, tokenizer, config
        self.meter, self.beats = parse_meter(config.meter)
        self.n_ctx = runtime.n_ctx
        body = torch.tensor(tokenizer.body_mask)  # (vocab,)
        self._first_mask = ~body  # the first token of a bar must be a body token
        self._mask = ~body
        self._mask[tokenizer.bar_id] = False  # later tokens may also close the bar
        self._generator = torch.Generator()
        self.reset(config.seed)

    @classmethod
    def load(cls, config: ComposerConfig) -> Composer:
        """The composer with config.checkpoint (or the shipped checkpoint); ModelError says how to get one."""
        folder = checkpoint_folder(config)
        runtime, tokenizer = load_runtime(folder)
        torch.set_num_threads(config.threads)
        return cls(runtime, tokenizer, config)

    def reset(self, seed: int | None = None) -> None:
        """Start a new piece: empty context, bar index 0, sampling reseeded (None = a fresh random seed)."""
        self.seed = seed if seed is not None else random.randrange(2**31)
        self._generator.manual_seed(self.seed)
        self.index = 0
        self.history: list[int] = [self.tokenizer.bos_id]
        self.bar_starts: list[int] = []
        self.cache: KVCache | None = None
        self.pending: list[int] = []  # tokens in history but not yet in the cache (the last bar's body)
        self.raw_parsed = 0  # candidates kept without repair, for evaluation
        self._heard: deque[np.ndarray] = deque(maxlen=HEARD_BARS)  # pitch-class histograms of bars in this mode
        self._heard_key: tuple[bool, str] | None = None  # (minor, tonic) the heard bars were played in
        self.memory = PhraseMemory(PhrasePlan(self.seed, self.config.excursion_every, self.config.excursion_keys))
        self.line = Line(self.config.melody_center_low, self.config.melody_center_high)
        self._last_energy: int | None = None
        self._settle = 0  # bars left in which a new mode or key is established before form and line count again
        self._feed(self.history)

    @torch.no_grad()
    def _feed(self, ids: list[int]) -> torch.Tensor:
        """Run ids through the batch-1 cache; returns the last position's logits (1, vocab)."""
        if self.cache is None:
            self.cache = self.runtime.new_cache()
        return self.runtime.forward(torch.tensor([ids]), self.cache)

    def _rebuild(self) -> None:
        """Drop the oldest bars so that the context is at most half full again, and recompute the cache."""
        budget = self.n_ctx // 2
        keep = [s for s in self.bar_starts if len(self.history) - s <= budget]
        start = keep[0] if keep else len(self.history)
        tail = self.history[start:]
        self.history = [self.tokenizer.bos_id, *tail]
        self.bar_starts = [s - start + 1 for s in keep]
        self.cache, self.pending = None, []
        self._feed(self.history)

    def next_bar(self, controls: Controls) -> Bar:
        started = time.perf_counter()
        energy = energy_level(controls.energy)
        tonic, minor = travel(
            self.config.tonic, valence_level(controls.valence) == 0, self.memory.plan.away(self.index)
        )
        if (minor, tonic) != self._heard_key:  # a new mode or key: the key is judged afresh
            self._heard.clear()
            self._settle = SETTLE_BARS if self._heard_key is not None else 0
            self._heard_key = (minor, tonic)
        shift = barlib.tonic_shift(tonic)
        if self.config.shape_line:
            self.line.aim(controls.valence)
        try:
            notes, repaired = self._compose(controls, minor, energy, shift)
        except RuntimeError as error:  # torch failed (memory, a non-finite distribution): a fresh cache, then say so
            self._recover()
            raise ModelError(f"the model failed on bar {self.index}: {error}") from error
        self._heard.append(histogram(notes))
        self.memory.remember(self.index, notes, minor, energy)
        self.line.played(notes, shift)
        bar = barlib.to_bar(
            self.index,
            notes,
            tonic,
            minor,
            self.meter,
            self.beats,
            controls,
            repaired,
            (time.perf_counter() - started) * 1000.0,
        )
        self.index += 1
        return bar

    def _recover(self) -> None:
        """After a failed bar: the context rebuilt from the bars played (or a fresh one if even that fails), so the
        next bar starts clean. The caller plays a fallback bar for the failed one."""
        log.exception("composer failed on bar %d; rebuilding the context", self.index)
        self.cache, self.pending = None, []
        try:
            self._rebuild()
        except RuntimeError:  # a model that cannot even rebuild gets a fresh context next bar
            log.exception("context rebuild failed; starting a fresh context")
            self.history, self.bar_starts = [self.tokenizer.bos_id], []

    @torch.no_grad()
    def _compose(self, controls: Controls, minor: bool, energy: int, shift: int) -> tuple[list[AbcNote], bool]:
        cfg = self.config
        # the mode token asks for the mode played (a relative key's mode is not the one valence alone would ask)
        tokens = control_tokens(self.meter, tempo_level(controls.tempo), int(not minor), energy)
        control_ids = [self.tokenizer.id(t) for t in tokens]
        if self.cache is None or len(self.history) + len(control_ids) + cfg.max_bar_tokens + 1 > self.n_ctx:
            self._rebuild()
        self.bar_starts.append(len(self.history))
        self.history += control_ids
        logits = self._feed(self.pending + control_ids)  # (1, vocab)
        self.pending = []
        best: tuple[float, list[AbcNote]] | None = None
        heard = np.sum(self._heard, axis=0) if self._heard else None
        role, source = self.memory.source(self.index, minor, energy)
        remembered = [list(source.notes)] if cfg.phrase_memory and source is not None and role.exact else []

        # The first bar at a new energy level, and the first bars in a new mode or key, are all control.
        changed = self._last_energy not in (None, energy) or self._settle > 0
        self._last_energy = energy
        self._settle = max(0, self._settle - 1)

        def shaped(notes: list[AbcNote]) -> float:
            if changed:
                return 0.0
            value = form_cost(notes, role, source, energy) if cfg.phrase_memory else 0.0
            value += self.line.cost(notes, shift) if cfg.shape_line else 0.0
            return min(value, SHAPE_CAP)

        # A context of repeated bars primes the model to go on repeating: where the energy level changes and the
        # form is on, a second batch may be sampled when the first holds no bar that fits.
        for _ in range(cfg.rounds + (changed and cfg.phrase_memory)):
            sampled = [parse_body(self.tokenizer, ids, self.meter) for ids in self._sample(logits)]
            for notes in remembered + [n for n in sampled if n is not None]:
                fit = barlib.misfit(notes, self.beats, minor, energy, heard)  # the same for an octave move
                moves = self.line.octave_moves(notes, shift) if cfg.shape_line else []
                for option in [notes, *moves]:
                    value = fit + shaped(option)
                    if best is None or value < best[0]:
                        best = (value, option)
            remembered = []
            if best is not None and best[0] < barlib.GOOD_ENOUGH:
                break
        if best is None:
            notes, repaired = barlib.fallback(self.beats, minor, energy), True
        else:
            notes, repaired = barlib.repair(best[1], self.beats)
            self.raw_parsed += not repaired
        self.pending = [*self.tokenizer.encode_body(format_bar(notes)), self.tokenizer.bar_id]
        self.history += self.pending
        return notes, repaired

    def _sample(self, logits: torch.Tensor) -> list[list[int]]:
        """Sample cfg.candidates bar bodies branching from the cache; returns each body's ids (bar line excluded).
        A candidate that closes its bar leaves the batch (every row costs compute); once most have closed, the
        stragglers are cut off at TAIL x the first one's length (they are long for their bar, and get repaired or
        outscored)."""
        cfg = self.config
        n = cfg.candidates
        assert self.cache is not None
        branches = self.runtime.branch(self.cache, n, cfg.max_bar_tokens)
        logits = logits.expand(n, -1)  # (N, vocab)
        bodies: list[list[int]] = [[] for _ in range(n)]
        active = list(range(n))  # the candidate in each batch row
        first_closed: int | None = None
        for step in range(cfg.max_bar_tokens):
            masked = logits.masked_fill(self._first_mask if step == 0 else self._mask, float("-inf"))
            masked = filter_logits(masked / cfg.temperature, cfg.top_k, cfg.top_p)
            chosen = torch.multinomial(torch.softmax(masked, dim=-1), 1, generator=self._generator)  # (rows, 1)
            writing = []
            for row, token in enumerate(chosen[:, 0].tolist()):
                if token != self.tokenizer.bar_id:
                    bodies[active[row]].append(token)
                    writing.append(row)
            if len(writing) < len(active) and first_closed is None:
                first_closed = step + 1
            if not writing:
                break
            if first_closed is not None and 2 * len(writing) <= n and step + 1 >= TAIL * first_closed:
                break
            if len(writing) < len(active):
                branches = branches.keep(writing)
                chosen = chosen[writing]
                active = [active[row] for row in writing]
            logits = self.runtime.step(chosen, branches)  # (rows, vocab)
        return bodies
