"""[composer] configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neuromusic.models.music.abc import AbcError, parse_key
from neuromusic.models.music.controls import METERS
from neuromusic.models.music.phrase import EXCURSION_KEYS


@dataclass(frozen=True)
class ComposerConfig:
    checkpoint: Path | None = None  # None = the checkpoint shipped in neuromusic/models/checkpoint
    temperature: float = 0.9  # softmax temperature when sampling; lower is safer and more repetitive
    top_k: int = 0  # keep only the k likeliest tokens (0 = off)
    top_p: float = 0.95  # nucleus sampling: keep the likeliest tokens up to this probability mass
    seed: int | None = None  # None = a fresh random seed per session; an int makes the music reproducible
    threads: int = 1  # torch CPU threads for the forward pass (the daemon composes on one worker thread)
    candidates: int = 12  # bars sampled per step, in one batch; the one that fits key, density and length best is kept
    rounds: int = 1  # when no candidate fits well (misfit >= bars.GOOD_ENOUGH), sample up to this many batches
    meter: str = "4/4"  # one of controls.METERS
    tonic: str = "D"  # the key the music is played in: major bars in "D", minor bars in "Dm"
    max_bar_tokens: int = 24  # a sampled bar longer than this is cut off and repaired
    phrase_memory: bool = True  # phrase form: later bars repeat or answer earlier ones, closes every 4th/8th bar
    shape_line: bool = True  # a singable line: near a centre set by valence, mostly by step, no drift
    melody_center_low: int = 60  # the melody's centre (MIDI pitch) at valence 0, with shape_line
    melody_center_high: int = 72  # ... and at valence 1
    excursion_every: int = 64  # the last 16 of every this many bars are played in another key (0 = never)
    excursion_keys: tuple[str, ...] = ("dominant", "relative")  # the excursions' keys, in turn: dominant, relative

    def validate(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be within (0, 1], got {self.top_p}")
        if min(self.threads, self.candidates, self.rounds) < 1 or self.max_bar_tokens < 2:
            raise ValueError("threads, candidates and rounds must be >= 1 and max_bar_tokens >= 2")
        if self.meter not in METERS:
            raise ValueError(f"meter {self.meter!r} is not one the model knows; choose one of: {', '.join(METERS)}")
        if not 36 <= self.melody_center_low <= self.melody_center_high <= 96:
            raise ValueError("melody centres must satisfy 36 <= melody_center_low <= melody_center_high <= 96")
        if self.excursion_every != 0 and self.excursion_every < 32:
            raise ValueError(f"excursion_every must be 0 (never) or at least 32 bars, got {self.excursion_every}")
        if not self.excursion_keys or any(k not in EXCURSION_KEYS for k in self.excursion_keys):
            raise ValueError(f"excursion_keys must list one or more of {', '.join(EXCURSION_KEYS)}")
        try:
            key = parse_key(self.tonic)
        except AbcError as error:
            raise ValueError(f"tonic {self.tonic!r}: {error}") from error
        if key.minor or self.tonic.strip()[1:].strip() not in ("", "#", "b"):
            raise ValueError(f"tonic must be a note name such as D, F# or Bb, got {self.tonic!r}")
