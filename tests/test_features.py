"""Differential entropy against closed-form values, hop cadence and the [features] options."""

from __future__ import annotations

import math

import numpy as np
import pytest
from neuromusic.daemon.config import load_config
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Chunk
from neuromusic.models.signal.features import FeatureConfig, differential_entropy, differential_entropy_of
from neuromusic.models.signal.pipeline import FeaturePipeline
from signal_fixtures import band_limited_noise, names, run_pipeline


def closed_form(variance: float) -> float:
    return 0.5 * math.log(2 * math.pi * math.e * variance)


def test_de_of_gaussian_samples_matches_the_closed_form(rng: np.random.Generator) -> None:
    x = rng.normal(0.0, 3.0, size=(4, 200_000))
    np.testing.assert_allclose(differential_entropy_of(x), closed_form(9.0), atol=0.005)
    assert differential_entropy(np.array([0.0]))[0] > -20  # a zero variance gives a finite floor, not -inf


def test_pipeline_de_of_band_limited_noise_matches_the_closed_form(rng: np.random.Generator) -> None:
    sfreq = 250.0
    variance = 25.0  # µV², all of it inside alpha (8-13 Hz), kept away from the band edges by 1 Hz
    x = band_limited_noise(rng, 3, int(60 * sfreq), sfreq, 9.0, 12.0, variance)
    feats = run_pipeline(x, sfreq)[8:]  # skip the first 2 s, while the window still holds the filter's start
    alpha = feats[0].band_names.index("alpha")
    de = np.array([f.de[alpha] for f in feats])
    assert de.mean() == pytest.approx(closed_form(variance), abs=0.05)
    beta = feats[0].band_names.index("beta")
    # Only the band-pass skirt (order 4: about -10 dB 2 Hz outside the band) leaks into the neighbouring beta band.
    assert np.mean([f.de[beta] for f in feats]) < closed_form(variance) - 1.0


def test_pipeline_de_of_a_sine_matches_its_variance() -> None:
    sfreq, amplitude = 500.0, 10.0
    t = np.arange(int(20 * sfreq)) / sfreq
    x = np.vstack([amplitude * np.sin(2 * np.pi * 10.5 * t), 0.5 * amplitude * np.sin(2 * np.pi * 22.0 * t)])
    feats = run_pipeline(x, sfreq, chunk=37)[8:]
    alpha, beta = feats[0].band_names.index("alpha"), feats[0].band_names.index("beta")
    de_alpha = np.mean([f.de[alpha, 0] for f in feats])
    de_beta = np.mean([f.de[beta, 1] for f in feats])
    assert de_alpha == pytest.approx(closed_form(amplitude**2 / 2), abs=0.03)
    assert de_beta == pytest.approx(closed_form((0.5 * amplitude) ** 2 / 2), abs=0.03)


def test_features_do_not_depend_on_how_the_stream_is_chunked(rng: np.random.Generator) -> None:
    x = rng.standard_normal((4, 2500)) * 20
    a = run_pipeline(x, 250.0, chunk=1000)
    b = run_pipeline(x, 250.0, chunk=[1, 13, 62, 7, 250, 3])
    assert len(a) == len(b) == 33  # (10 s - 2 s window) / 0.25 s hop + 1
    for fa, fb in zip(a, b, strict=True):
        assert fa.t == fb.t
        np.testing.assert_allclose(fa.de, fb.de, rtol=1e-9)


def test_hops_and_time_stamps() -> None:
    sfreq = 250.0
    x = np.random.default_rng(1).standard_normal((2, 2500))
    ts = 1000.0 + np.arange(2500) / sfreq
    feats = run_pipeline(x, sfreq, chunk=40, timestamps=ts)
    times = np.array([f.t for f in feats])
    # Features.t is the source time of the window's last sample; 62/63-sample hops at 250 Hz average 0.25 s.
    assert times[0] == pytest.approx(1000.0 + 499 / sfreq, abs=1.01 / sfreq)
    np.testing.assert_allclose(np.diff(times), 0.25, atol=1.01 / sfreq)
    assert times[-1] == ts[-1]
    f = feats[-1]
    assert f.de.shape == (5, 2) and f.channel_names == names(2) and f.good.all() and f.quality == 1.0
    assert f.bad_reasons == ("", "") and f.gap_s == 0.0


def test_window_and_hop_options_change_the_cadence() -> None:
    x = np.random.default_rng(2).standard_normal((1, 2500))
    assert len(run_pipeline(x, 250.0, FeatureConfig(window_s=1.0, hop_s=0.5))) == 19  # (10 - 1) / 0.5 + 1
    assert len(run_pipeline(x, 250.0, FeatureConfig(window_s=4.0, hop_s=1.0))) == 7


def test_band_edges_come_from_configuration() -> None:
    t = np.arange(5000) / 250.0
    x = 10 * np.sin(2 * np.pi * 12.5 * t)[np.newaxis, :]
    standard = run_pipeline(x, 250.0)[-1]  # 12.5 Hz is inside alpha 8-13
    narrow = run_pipeline(x, 250.0, FeatureConfig(bands={"alpha": (8.0, 10.0), "sigma": (12.0, 14.0)}))[-1]
    assert narrow.band_names == ("alpha", "sigma")
    assert standard.de[standard.band_names.index("alpha"), 0] > narrow.de[0, 0] + 2.0
    assert narrow.de[1, 0] > narrow.de[0, 0] + 2.0


def test_bad_feature_configuration_names_the_key(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="whole multiple"):
        load_config(None, {"features.window_s": 2.0, "features.hop_s": 0.3})
    with pytest.raises(ConfigError, match="low < high"):
        load_config(None, {"features.bands": {"alpha": [13.0, 8.0]}})
    with pytest.raises(ConfigError, match="filter_order"):
        load_config(None, {"features.filter_order": 3})
    with pytest.raises(ConfigError, match=r"quality.max_uv"):
        load_config(None, {"features.quality": {"max_uv": 0}})
    config = load_config(None, {"features.bands": {"alpha": [8, 12]}, "features.notch_hz": 50})
    assert config.features.bands == {"alpha": (8.0, 12.0)} and config.features.notch_hz == 50.0


def test_wrong_chunks_are_refused_and_empty_ones_ignored() -> None:
    pipe = FeaturePipeline(FeatureConfig(), 250.0, names(3))
    assert pipe.push(Chunk(np.zeros((3, 0)), np.zeros(0), names(3), 250.0)) == []
    with pytest.raises(ValueError, match=r"expected \(3, n\)"):
        pipe.push(Chunk(np.zeros((2, 10)), np.zeros(10), names(2), 250.0))
    with pytest.raises(ValueError, match="sampling rate"):
        FeaturePipeline(FeatureConfig(), 0.0, names(1))


def _alpha_and_delta(x: np.ndarray, labels: tuple[str, ...], reference: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean alpha and delta DE per channel over the windows of a replay with the given reference."""
    feats = run_pipeline(x, 250.0, FeatureConfig(reference=reference), channel_names=labels)  # type: ignore[arg-type]
    de = np.mean([f.de for f in feats[4:]], axis=0)
    bands = feats[0].band_names
    return de[bands.index("alpha")], de[bands.index("delta")]


def test_an_average_or_median_reference_removes_what_the_eeg_channels_share(rng: np.random.Generator) -> None:
    sfreq, n = 250.0, 5000
    t = np.arange(n) / sfreq
    labels = ("O1", "O2", "P7", "P8", "ECG")
    x = band_limited_noise(rng, 5, n, sfreq, 9.0, 12.0, 1.0)  # each channel's own alpha, 1 µV²
    x[:4] += 20.0 * np.sin(2 * np.pi * 10.0 * t)  # alpha that every EEG channel shares (the reference's own), 200 µV²
    x[4] *= 100.0  # a large channel outside the 10-20 system: it is re-referenced but never part of the reference
    recorded, _ = _alpha_and_delta(x, labels, "recorded")
    for reference in ("average", "median"):
        alpha, _ = _alpha_and_delta(x, labels, reference)
        assert np.all(alpha[:4] < recorded[:4] - 2.0), (reference, alpha, recorded)  # the shared sine is gone
        assert np.all(alpha[:4] > recorded[:4] - 6.0)  # what is the channel's own stays (DE of 1 µV² vs 200 µV²)


def test_a_median_reference_keeps_a_blink_on_one_channel_out_of_the_others(rng: np.random.Generator) -> None:
    sfreq, n = 250.0, 5000
    t = np.arange(n) / sfreq
    labels = ("Fp1", "C3", "C4", "O1", "O2")
    x = band_limited_noise(rng, 5, n, sfreq, 1.0, 3.0, 25.0)
    x[0] += 150.0 * np.sin(2 * np.pi * 2.0 * t)  # slow, large, on one frontal channel only
    _, recorded = _alpha_and_delta(x, labels, "recorded")
    _, average = _alpha_and_delta(x, labels, "average")
    _, median = _alpha_and_delta(x, labels, "median")
    assert np.all(average[1:] > recorded[1:] + 1.0)  # an average spreads a fifth of it to every channel
    assert np.all(np.abs(median[1:] - recorded[1:]) < 0.5)  # a median leaves the others close to as recorded


def test_a_reference_needs_three_eeg_channels_else_the_signal_is_used_as_recorded(
    rng: np.random.Generator, caplog: pytest.LogCaptureFixture
) -> None:
    x = band_limited_noise(rng, 2, 2500, 250.0, 8.0, 13.0, 4.0)
    with caplog.at_level("WARNING"):
        pipe = FeaturePipeline(FeatureConfig(reference="median"), 250.0, ("O1", "O2"))
    assert pipe.reference == "recorded"
    assert "at least 3 EEG channels" in caplog.text and "O1, O2" in caplog.text
    as_is = run_pipeline(x, 250.0, FeatureConfig(), channel_names=("O1", "O2"))
    kept = run_pipeline(x, 250.0, FeatureConfig(reference="median"), channel_names=("O1", "O2"))
    np.testing.assert_allclose(kept[-1].de, as_is[-1].de)
    assert FeaturePipeline(FeatureConfig(reference="average"), 250.0, names(3)).reference == "average"


def test_the_reference_comes_from_configuration() -> None:
    assert load_config(None, {"features.reference": "median"}).features.reference == "median"
    assert load_config(None, {}).features.reference == "recorded"
    with pytest.raises(ConfigError, match="reference"):
        load_config(None, {"features.reference": "mastoids"})


def test_auto_reference_is_the_median_for_eight_eeg_channels_or_more_else_as_recorded(
    rng: np.random.Generator,
) -> None:
    sfreq, n = 250.0, 5000
    t = np.arange(n) / sfreq
    x = band_limited_noise(rng, 8, n, sfreq, 9.0, 12.0, 1.0)
    x += 20.0 * np.sin(2 * np.pi * 10.0 * t)  # alpha that every channel shares (the reference's own)
    eight = ("Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2")
    auto, _ = _alpha_and_delta(x, eight, "auto")
    median, _ = _alpha_and_delta(x, eight, "median")
    recorded, _ = _alpha_and_delta(x, eight, "recorded")
    np.testing.assert_allclose(auto, median)
    assert np.all(auto < recorded - 2.0)  # the shared sine is gone
    assert FeaturePipeline(FeatureConfig(reference="auto"), sfreq, eight).reference == "median"
    # A Muse's four, or eight channels without 10-20 names: as recorded.
    muse = ("TP9", "AF7", "AF8", "TP10")
    np.testing.assert_allclose(_alpha_and_delta(x[:4], muse, "auto")[0], _alpha_and_delta(x[:4], muse, "recorded")[0])
    assert FeaturePipeline(FeatureConfig(reference="auto"), sfreq, muse).reference == "recorded"
    unnamed = tuple(f"ch{i}" for i in range(8))
    assert FeaturePipeline(FeatureConfig(reference="auto"), sfreq, unnamed).reference == "recorded"
    assert load_config(None, {"features.reference": "auto"}).features.reference == "auto"
