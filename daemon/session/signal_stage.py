"""The signal stage: chunks in, Features and Scores out, with a Score at least every hop.

One object per session, driven by whoever owns the loop (the live session here; anything that feeds chunks on a
virtual clock the same way). It owns the feature pipeline and the scorer, starts the filters afresh when the source's
layout changes (a reconnect to another device), and keeps consumers informed while no samples come: a source that
went down shows as "stale" at once, and a quiet source repeats its last score every hop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from neuromusic.drivers.base import SourceInfo
from neuromusic.models.core.messages import Chunk, Features, Score
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.pipeline import FeaturePipeline
from neuromusic.models.signal.score import RelaxationScorer, ScoreConfig


@dataclasses.dataclass(frozen=True)
class StoredModels:
    """What a listener's profile brings to the scorer: a baseline (score profile) and a calibration model."""

    score_profile: Any = None
    rest_model: Any = None

    @property
    def any(self) -> bool:
        return self.score_profile is not None or self.rest_model is not None


class SignalStage:
    def __init__(
        self,
        features: FeatureConfig,
        score: ScoreConfig,
        publish: Callable[[Chunk | Features | Score], None],
        stored: StoredModels | None = None,
    ) -> None:
        self.features_config, self.score_config = features, score
        self.publish = publish
        self.stored = stored or StoredModels()
        self.band_names = tuple(features.bands)
        self.pipeline: FeaturePipeline | None = None
        self.scorer: RelaxationScorer | None = None
        self.last_score: Score | None = None
        self.last_emit_t: float | None = None
        self._layout: tuple[float, tuple[str, ...]] | None = None

    def push(self, chunk: Chunk, info: SourceInfo, received_t: float, now: float) -> None:
        """One chunk as it arrived (received_t on the session clock), handled at `now`: publish it, its Features and
        their Scores."""
        self.publish(chunk)
        if (info.sfreq, info.channel_names) != self._layout:
            self._layout = (info.sfreq, info.channel_names)
            self.pipeline = FeaturePipeline.for_source(self.features_config, info)
            if self.scorer is None or self.scorer.channel_names != info.channel_names:
                self.scorer = RelaxationScorer(
                    self.score_config,
                    self.band_names,
                    info.channel_names,
                    self.stored.score_profile,
                    self.stored.rest_model,
                )
        assert self.pipeline is not None and self.scorer is not None
        for features in self.pipeline.push(chunk, received_t):
            self.publish(features)
            self._emit(self.scorer.update(features), now)

    def tick(self, now: float, source_down: bool) -> None:
        """Between chunks: say "stale" at once when the source went down, else repeat the last score every hop."""
        if self.last_emit_t is None:
            self.last_emit_t = now
        newly_stale = source_down and (self.last_score is None or self.last_score.state != "stale")
        if not newly_stale and now - self.last_emit_t < self.features_config.hop_s:
            return
        if source_down:
            self._emit(self.scorer.stale(now) if self.scorer else Score(now, None, 0.0, "stale"), now)
        elif self.last_score is None:
            # Streaming, the first window is still filling: part of the baseline unless a profile was loaded.
            calibrating = self.scorer.calibrating if self.scorer else not self.stored.any
            self._emit(Score(now, None, 0.0, "calibrating" if calibrating else "stale"), now)
        else:
            # Quiet but not stale yet: the last score holds, published now (its source_t says which window it is).
            self._emit(dataclasses.replace(self.last_score, t=now), now)

    def _emit(self, score: Score, now: float) -> None:
        self.last_score = score
        self.last_emit_t = now
        self.publish(score)
