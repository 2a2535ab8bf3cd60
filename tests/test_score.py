"""The relaxation score: calibration, the documented formula, honesty, options, and profiles."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from neuromusic.daemon.config import load_config
from neuromusic.daemon.session.profile_store import ProfileStore, score_profile_from_section, score_profile_section
from neuromusic.models.core.errors import ConfigError, DataError
from neuromusic.models.core.messages import Features
from neuromusic.models.signal.montage import channel_weights
from neuromusic.models.signal.score import RelaxationScorer, ScoreConfig, band_shares

BANDS = ("delta", "theta", "alpha", "beta", "gamma")
CHANNELS = ("O1", "O2", "Fz")
HOP = 0.25
V = np.array([1.0, 1.0, 0.4])  # region weights of O1, O2 (occipital) and Fz (frontal)


def expected_index(scorer: RelaxationScorer, f: Features, usable: np.ndarray, config: ScoreConfig) -> float:
    """The module docstring's formula, written out: shares, one scale per band, region-weighted mean, band weights."""
    profile = scorer.profile
    assert profile is not None
    x = band_shares(np.where(f.good[np.newaxis, :], f.de, np.nan))
    std = np.maximum(profile.std, config.std_floor)
    scale = (std * V).sum(axis=1, keepdims=True) / V.sum()
    z = (x - profile.mean) / scale
    w = config.weights
    per_band = {b: (z[BANDS.index(b), usable] * V[usable]).sum() / V[usable].sum() for b in w}
    return sum(wv * per_band[b] for b, wv in w.items()) / sum(abs(v) for v in w.values())


def feats(
    t: float,
    alpha: float = 0.0,
    beta: float = 0.0,
    theta: float = 0.0,
    good: tuple[bool, ...] = (True,) * 3,
    gap_s: float = 0.0,
    jitter: float = 0.0,
    seed: int = 0,
) -> Features:
    """Features whose DE is 2.0 + the given offsets (+ optional noise); bad channels hold NaN."""
    de = np.full((len(BANDS), len(CHANNELS)), 2.0)
    de[BANDS.index("alpha")] += alpha
    de[BANDS.index("beta")] += beta
    de[BANDS.index("theta")] += theta
    de += jitter * np.random.default_rng(seed).standard_normal(de.shape)
    mask = np.array(good)
    de[:, ~mask] = np.nan
    reasons = tuple("" if g else "flat" for g in good)
    return Features(t, de, BANDS, CHANNELS, mask, reasons, gap_s)


def calibrated(config: ScoreConfig | None = None) -> tuple[RelaxationScorer, float]:
    """A scorer through its baseline on noisy DE around 2.0; returns it and the next time."""
    config = config or ScoreConfig(baseline_s=5.0)
    scorer = RelaxationScorer(config, BANDS, CHANNELS)
    t = 0.0
    while scorer.calibrating:
        score = scorer.update(feats(t, jitter=0.2, seed=int(t * 4)))
        assert score.value is None and score.state == "calibrating"
        t += HOP
    return scorer, t


def test_calibrating_until_the_baseline_is_over_then_scoring() -> None:
    scorer = RelaxationScorer(ScoreConfig(baseline_s=5.0), BANDS, CHANNELS)
    states = []
    for i in range(30):
        s = scorer.update(feats(i * HOP, jitter=0.2, seed=i))
        states.append(s.state)
        if s.state == "calibrating":
            assert s.value is None and 0.0 <= s.confidence <= 1.0
    assert states[:20] == ["calibrating"] * 20  # 0 .. 4.75 s
    assert states[21:] == ["scoring"] * 9
    assert scorer.profile is not None and scorer.profile.n_windows == 21


def test_score_follows_the_documented_formula() -> None:
    config = ScoreConfig(baseline_s=5.0, smoothing_s=0.0)
    scorer, t = calibrated(config)
    profile = scorer.profile
    assert profile is not None
    assert profile.kind == "relative"
    f = feats(t, alpha=0.3, beta=-0.1, theta=0.2)
    index = expected_index(scorer, f, np.ones(3, bool), config)
    s = scorer.update(f)
    assert s.raw == pytest.approx(index)
    assert s.value == pytest.approx(1.0 / (1.0 + math.exp(-index)))
    assert s.state == "scoring" and s.confidence == 1.0


def test_more_alpha_and_less_beta_raise_the_score_and_the_opposite_lowers_it() -> None:
    scorer, t = calibrated()
    neutral = scorer.update(feats(t)).value
    for i in range(20):
        relaxed = scorer.update(feats(t + (i + 1) * HOP, alpha=0.5, beta=-0.3)).value
    for i in range(40):
        tense = scorer.update(feats(t + (i + 21) * HOP, alpha=-0.5, beta=0.3)).value
    assert neutral is not None and relaxed is not None and tense is not None
    assert 0.4 < neutral < 0.6
    assert relaxed > 0.8 and tense < 0.2


def test_bad_channels_never_reach_the_score_and_none_good_is_poor_signal() -> None:
    scorer, t = calibrated(ScoreConfig(baseline_s=5.0, smoothing_s=0.0))
    profile = scorer.profile
    assert profile is not None
    # Channel Fz bad: its DE (here absurd) is ignored: the index is that of O1 and O2 alone; confidence is the
    # share of the montage's region weight still usable, 2 / 2.4.
    f = feats(t, alpha=0.5, good=(True, True, False))
    f.de[:, 2] = 1e6
    expected = expected_index(scorer, f, np.array([True, True, False]), ScoreConfig(smoothing_s=0.0))
    s = scorer.update(f)
    assert s.raw == pytest.approx(expected) and s.confidence == pytest.approx(2 / 2.4)
    s = scorer.update(feats(t + 2 * HOP, good=(False, False, False)))
    assert s.state == "poor-signal" and s.value is None and s.confidence == 0.0
    stale = scorer.stale(t + 10)
    assert stale.state == "stale" and stale.value is None and stale.t == t + 10


def test_a_gap_halves_the_confidence() -> None:
    scorer, t = calibrated()
    assert scorer.update(feats(t, gap_s=0.4)).confidence == 0.5


def test_channels_bad_during_the_whole_baseline_stay_excluded() -> None:
    scorer = RelaxationScorer(ScoreConfig(baseline_s=2.0, smoothing_s=0.0), BANDS, CHANNELS)
    t = 0.0
    while scorer.calibrating:
        scorer.update(feats(t, jitter=0.2, good=(True, True, False), seed=int(t * 4)))
        t += HOP
    s = scorer.update(feats(t, alpha=1.0))  # Fz good now, but it has no baseline statistics
    assert s.confidence == pytest.approx(2 / 2.4) and s.state == "scoring"


def test_no_good_channel_during_the_baseline_keeps_calibrating() -> None:
    scorer = RelaxationScorer(ScoreConfig(baseline_s=1.0), BANDS, CHANNELS)
    for i in range(20):
        assert scorer.update(feats(i * HOP, good=(False, False, False))).state == "calibrating"
    assert scorer.calibrating
    assert len(scorer._baseline) <= 5  # only the latest baseline_s is kept while waiting for signal
    for i in range(20, 25):
        scorer.update(feats(i * HOP, jitter=0.2, seed=i))
    assert not scorer.calibrating  # calibrated from the good windows of the last baseline_s


def test_smoothing_option_slows_the_response() -> None:
    def after_step(smoothing_s: float) -> float:
        scorer, t = calibrated(ScoreConfig(baseline_s=5.0, smoothing_s=smoothing_s))
        scorer.update(feats(t))
        value = scorer.update(feats(t + HOP, alpha=1.0)).value
        assert value is not None
        return value

    assert after_step(0.0) > after_step(1.0) > after_step(5.0) > 0.5


def test_gain_option_steepens_the_squashing() -> None:
    def value(gain: float) -> float:
        scorer, t = calibrated(ScoreConfig(baseline_s=5.0, smoothing_s=0.0, gain=gain))
        v = scorer.update(feats(t, alpha=0.2)).value
        assert v is not None
        return v

    assert value(3.0) > value(1.0) > 0.5


def test_weights_and_std_floor_options_change_the_index() -> None:
    absolute = ScoreConfig(baseline_s=5.0, smoothing_s=0.0, weights={"beta": -1.0}, features="absolute")
    a, t = calibrated(absolute)
    assert a.update(feats(t, alpha=1.0)).raw == pytest.approx(a.update(feats(t + HOP)).raw)  # alpha no longer counts
    b, t = calibrated(ScoreConfig(baseline_s=5.0, smoothing_s=0.0, std_floor=10.0))
    raw = b.update(feats(t, alpha=1.0)).raw
    assert raw is not None and abs(raw) < 0.1  # every std floored at 10 nats: z of a 1-nat rise below 0.1
    c, t = calibrated(ScoreConfig(baseline_s=5.0, smoothing_s=0.0))
    default = c.update(feats(t, alpha=1.0)).raw
    assert default is not None and default > 1.0


def test_min_baseline_windows_option() -> None:
    scorer = RelaxationScorer(ScoreConfig(baseline_s=1.0, min_baseline_windows=8), BANDS, CHANNELS)
    for i in range(6):  # 0 .. 1.25 s: over baseline_s but only 6 windows
        scorer.update(feats(i * HOP, jitter=0.2, seed=i))
    assert scorer.calibrating
    scorer.update(feats(6 * HOP, jitter=0.2, seed=6))
    scorer.update(feats(7 * HOP, jitter=0.2, seed=7))
    assert not scorer.calibrating


def test_profile_round_trip_skips_calibration(tmp_path: Path) -> None:
    scorer, _ = calibrated()
    profile = scorer.profile
    assert profile is not None
    store = ProfileStore(tmp_path / "me" / "profile.json")
    store.put("score", score_profile_section(profile))
    store.save()
    loaded = score_profile_from_section(ProfileStore.load(store.path).get("score"), store.path)
    np.testing.assert_allclose(loaded.mean, profile.mean)
    np.testing.assert_allclose(loaded.std, profile.std)
    assert loaded.channel_names == CHANNELS and loaded.band_names == BANDS and loaded.kind == "relative"
    legacy = {k: v for k, v in score_profile_section(profile).items() if k != "kind"}
    assert score_profile_from_section(legacy, store.path).kind == "absolute"  # saved before band shares existed
    fresh = RelaxationScorer(ScoreConfig(baseline_s=5.0), BANDS, CHANNELS, loaded)
    assert not fresh.calibrating
    s = fresh.update(feats(0.0, alpha=0.4))
    assert s.state == "scoring" and s.value is not None and s.value > 0.5


def test_a_profile_matches_channels_by_name() -> None:
    scorer, _ = calibrated()
    profile = scorer.profile
    assert profile is not None
    other = RelaxationScorer(ScoreConfig(), BANDS, ("Fz", "Cz"), profile)
    s = other.update(Features(0.0, np.full((5, 2), 2.0), BANDS, ("Fz", "Cz"), np.array([True, True]), ("", "")))
    assert s.confidence == pytest.approx(0.4 / (0.4 + 0.6))  # Cz (central, 0.6) has no statistics in the profile
    with pytest.raises(DataError, match="no channel in common"):
        RelaxationScorer(ScoreConfig(), BANDS, ("T7", "T8"), profile)


def test_broken_score_sections_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    with pytest.raises(ConfigError, match="malformed"):
        score_profile_from_section({"band_names": ["alpha"], "channel_names": ["O1"], "mean": [[1]]}, path)
    doc = {"band_names": ["alpha"], "channel_names": ["O1"], "mean": [[1, 2]], "std": [[1]], "n_windows": 3}
    with pytest.raises(ConfigError, match="malformed"):
        score_profile_from_section({**doc, "created_unix": 0.0}, path)


def test_bad_score_configuration() -> None:
    with pytest.raises(ConfigError, match="weights names band"):
        RelaxationScorer(ScoreConfig(weights={"mu": 1.0}), BANDS, CHANNELS)
    with pytest.raises(ConfigError, match=r"weights names band\(s\) gamma"):  # weights the user set must all apply
        RelaxationScorer(ScoreConfig(weights={"alpha": 1.0, "gamma": -0.5}), BANDS[:4], CHANNELS)
    # The default weights leave out a band the features do not define (no gamma under a low sampling rate).
    assert RelaxationScorer(ScoreConfig(), BANDS[:4], CHANNELS)._weights.tolist() == [1.0]
    with pytest.raises(ConfigError, match="weights names band"):
        RelaxationScorer(ScoreConfig(), ("delta", "theta"), CHANNELS)
    with pytest.raises(ConfigError, match="baseline_s"):
        load_config(None, {"score.baseline_s": 0})
    with pytest.raises(ConfigError, match="non-zero weight"):
        load_config(None, {"score.weights": {"alpha": 0.0}})
    config = load_config(None, {"score.weights": {"alpha": 2}, "score.smoothing_s": 3})
    assert config.score.weights == {"alpha": 2.0} and config.score.smoothing_s == 3.0
    assert dataclasses.replace(ScoreConfig(), gain=2.0).gain == 2.0
    with pytest.raises(ValueError, match="shape"):
        RelaxationScorer(ScoreConfig(), BANDS, CHANNELS).update(
            Features(0.0, np.zeros((5, 2)), BANDS, ("a", "b"), np.ones(2, bool), ("", ""))
        )


def test_relative_features_ignore_a_change_of_gain_and_absolute_ones_do_not() -> None:
    """A re-seated electrode or another amplifier gain scales every band alike: the band shares stay put."""
    for kind, moves in (("relative", False), ("absolute", True)):
        scorer, t = calibrated(ScoreConfig(baseline_s=5.0, smoothing_s=0.0, features=kind))  # type: ignore[arg-type]
        before = scorer.update(feats(t, alpha=0.4)).raw
        louder = feats(t + HOP, alpha=0.4)
        louder.de[:] += 1.0  # every band's power x e^2
        after = scorer.update(louder).raw
        assert before is not None and after is not None
        assert (abs(after - before) > 0.1) is moves


def test_region_weights_decide_which_channels_speak() -> None:
    # Only the frontal channel moves; with the occipital weight at 0 it is the whole index, with frontal 0 nothing.
    def raw(weights: dict[str, float]) -> float:
        scorer, t = calibrated(ScoreConfig(baseline_s=5.0, smoothing_s=0.0, region_weights=weights))
        plain = scorer.update(feats(t)).raw
        f = feats(t + HOP)
        f.de[BANDS.index("alpha"), 2] += 1.0
        value = scorer.update(f).raw
        assert value is not None and plain is not None
        return value - plain

    assert raw({"frontal": 1.0}) > raw({"occipital": 1.0, "frontal": 0.4}) > 0.1
    assert abs(raw({"occipital": 1.0})) < 1e-9


def test_montages_without_known_names_weigh_all_channels_and_unknown_ones_beside_known_weigh_nothing() -> None:
    assert channel_weights(("ch1", "ch2", "ch3"), {"occipital": 1.0}).tolist() == [1.0, 1.0, 1.0]
    eegmat = ("EEG O1", "EEG T5", "EEG Fp1", "ECG ECG", "EEG A2-A1")
    assert channel_weights(eegmat, ScoreConfig().region_weights).tolist() == [1.0, 0.9, 0.3, 0.0, 0.0]
    muse = channel_weights(("TP9", "AF7", "AF8", "TP10"), ScoreConfig().region_weights)
    assert muse.tolist() == [0.7, 0.4, 0.4, 0.7]
    assert channel_weights(eegmat, ScoreConfig().region_weights, unknown=0.2)[3] == 0.2
    with pytest.raises(ConfigError, match="unknown region"):
        load_config(None, {"score.region_weights": {"occiput": 1.0}})
    with pytest.raises(ConfigError, match="features"):
        load_config(None, {"score.features": "ratio"})
