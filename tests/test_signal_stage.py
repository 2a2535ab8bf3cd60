"""The signal stage on its own: chunks poked in by hand, no event loop, no source, a clock we choose."""

from __future__ import annotations

import numpy as np
from neuromusic.daemon.session.signal_stage import SignalStage
from neuromusic.drivers.base import SourceInfo
from neuromusic.models.core.messages import Chunk, Features, Score
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.score import ScoreConfig

SFREQ = 256.0
CHANNELS = ("O1", "O2", "Pz", "Cz")


def stage() -> tuple[SignalStage, list[object]]:
    seen: list[object] = []
    return SignalStage(FeatureConfig(), ScoreConfig(baseline_s=2.0), seen.append), seen


def chunk(start: int, n: int, rng: np.random.Generator, channels: tuple[str, ...] = CHANNELS) -> Chunk:
    t = (start + np.arange(n)) / SFREQ
    data = 20.0 * rng.standard_normal((len(channels), n)) + 30.0 * np.sin(2 * np.pi * 10.0 * t)
    return Chunk(data, t, channels, SFREQ)


def info(channels: tuple[str, ...] = CHANNELS) -> SourceInfo:
    return SourceInfo("test", SFREQ, channels, "test")


def scores(seen: list[object]) -> list[Score]:
    return [m for m in seen if isinstance(m, Score)]


def test_says_calibrating_before_the_first_window_then_scores_every_hop() -> None:
    signal, seen = stage()
    signal.tick(0.0, source_down=False)
    signal.tick(0.3, source_down=False)
    assert [s.state for s in scores(seen)] == ["calibrating"]
    rng = np.random.default_rng(1)
    for k in range(40):  # 10 s in 0.25 s chunks
        signal.push(chunk(k * 64, 64, rng), info(), received_t=k * 0.25, now=k * 0.25)
    features = [m for m in seen if isinstance(m, Features)]
    assert len(features) >= 30  # one per hop once the 2 s window filled
    assert len(scores(seen)) == 1 + len(features)
    assert scores(seen)[-1].state == "scoring" and scores(seen)[-1].value is not None


def test_a_source_that_goes_down_is_stale_at_once_and_a_quiet_one_repeats_its_score_every_hop() -> None:
    signal, seen = stage()
    rng = np.random.default_rng(2)
    for k in range(40):
        signal.push(chunk(k * 64, 64, rng), info(), received_t=k * 0.25, now=k * 0.25)
    before = len(scores(seen))
    signal.tick(9.80, source_down=False)  # within a hop of the last score: nothing new
    assert len(scores(seen)) == before
    signal.tick(10.0, source_down=False)  # a hop passed in silence: the last score again, stamped now
    assert len(scores(seen)) == before + 1 and scores(seen)[-1].t == 10.0
    assert scores(seen)[-1].value == scores(seen)[-2].value
    signal.tick(10.01, source_down=True)  # down: stale at once, not a hop later
    assert scores(seen)[-1].state == "stale" and scores(seen)[-1].value is None


def test_a_new_layout_starts_the_filters_and_the_scorer_afresh() -> None:
    signal, _ = stage()
    rng = np.random.default_rng(3)
    for k in range(20):
        signal.push(chunk(k * 64, 64, rng), info(), received_t=k * 0.25, now=k * 0.25)
    first_pipeline, first_scorer = signal.pipeline, signal.scorer
    other = ("Fp1", "Fp2")
    signal.push(chunk(0, 64, rng, other), info(other), received_t=5.0, now=5.0)
    assert signal.pipeline is not first_pipeline and signal.scorer is not first_scorer
    assert signal.scorer is not None and signal.scorer.channel_names == other
