"""Signal quality: bad channels are excluded with a reason, never poison the filters, and recover."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from neuromusic.drivers.base import SourceInfo
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.core.messages import Chunk, Features
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.pipeline import FeaturePipeline
from neuromusic.models.signal.quality import DEFAULT_MAX_UV, QualityConfig
from signal_fixtures import names, run_pipeline

SFREQ = 250.0


def eeg(seconds: float, n_ch: int = 3, seed: int = 0) -> np.ndarray:
    """A plain EEG-like test signal: 10 Hz alpha plus noise, about 10 µV rms."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SFREQ)) / SFREQ
    return np.asarray(8 * np.sin(2 * np.pi * 10 * t) + 6 * rng.standard_normal((n_ch, t.size)))


def at(feats: list[Features], t: float) -> Features:
    """The first Features whose window ends at or after t."""
    return next(f for f in feats if f.t >= t)


def with_quality(**kwargs: float) -> FeatureConfig:
    return FeatureConfig(quality=dataclasses.replace(QualityConfig(), **kwargs))


@pytest.mark.parametrize(("value", "reason"), [(np.nan, "nan"), (np.inf, "nan"), (-np.inf, "nan"), (2e5, "railed")])
def test_invalid_samples_mark_the_channel_bad_for_one_window_then_it_recovers(value: float, reason: str) -> None:
    x = eeg(12)
    x[1, 1500:1510] = value  # 6.0-6.04 s
    feats = run_pipeline(x, SFREQ)
    clean = run_pipeline(eeg(12), SFREQ)
    during = at(feats, 6.1)
    assert not during.good[1] and during.bad_reasons[1] == reason
    assert np.isnan(during.de[:, 1]).all()
    assert during.good[[0, 2]].all() and np.isfinite(during.de[:, [0, 2]]).all()
    # Bad for as long as the samples sit in the window (2 s), then good again...
    assert all(not f.good[1] for f in feats if 6.04 <= f.t < 8.0)
    after = at(feats, 9.0)
    assert after.good[1]
    # ...and the filter state was not poisoned: DE is back to what the clean signal gives.
    np.testing.assert_allclose(after.de[2:4, 1], at(clean, 9.0).de[2:4, 1], atol=0.3)


def test_a_flat_channel_is_reported_flat() -> None:
    x = eeg(6)
    x[0] = 4321.0  # electrode off: a constant
    f = run_pipeline(x, SFREQ)[-1]
    assert f.bad_reasons[0] == "flat" and f.good[1:].all() and f.quality == pytest.approx(2 / 3)
    # flat_uv is the threshold: a quiet but alive channel passes with a smaller one
    x[0] = 4321.0 + 0.04 * np.random.default_rng(0).standard_normal(x.shape[1])
    assert run_pipeline(x, SFREQ)[-1].bad_reasons[0] == "flat"
    assert run_pipeline(x, SFREQ, with_quality(flat_uv=0.01))[-1].good[0]


def test_a_blink_is_an_eye_artifact_on_frontal_sites_only_and_its_options_set_the_limit() -> None:
    x = eeg(10)
    t = np.arange(x.shape[1]) / SFREQ
    x[:2] += 150 * np.exp(-0.5 * ((t - 5.0) / 0.1) ** 2)  # a 150 µV blink-shaped bump at 5 s on Fp1 and O1
    montage = ("Fp1", "O1", "Cz")

    def reasons(**options: float) -> tuple[str, ...]:
        return at(run_pipeline(x, SFREQ, with_quality(**options), channel_names=montage), 5.5).bad_reasons

    assert reasons() == ("eye", "amplitude", "")  # the same bump at the back is no eye: judged by amplitude
    assert reasons(eye_min_uv=200.0)[0] == "amplitude"  # beyond the eye's limit in µV: the next rule judges
    assert reasons(eye_ratio=1000.0)[0] == "amplitude"
    assert reasons(eye_ratio=1000.0, amplitude_ratio=1000.0) == ("", "", "")
    assert all(f.good.all() for f in run_pipeline(eeg(10), SFREQ, channel_names=montage))


def test_an_alpha_rise_of_any_size_is_never_an_artifact() -> None:
    """Eyes closed: posterior alpha grows several-fold within a second, to 1 Hz high-passed peaks of 200-300 µV."""
    x = eeg(16)
    t = np.arange(x.shape[1]) / SFREQ
    envelope = np.clip((t - 8.0) / 0.3, 0.0, 1.0)  # the eyes close at 8 s; alpha is full 0.3 s later
    for ch, freq in enumerate((8.0, 10.0, 13.0)):  # slow, typical and fast alpha: 250 µV peaks against about 14 µV
        x[ch] += 250 * envelope * np.sin(2 * np.pi * freq * t)
    feats = run_pipeline(x, SFREQ, channel_names=("O1", "Oz", "O2"))
    assert all(f.good.all() for f in feats), {r for f in feats for r in f.bad_reasons}


def test_a_pop_beyond_the_ceiling_is_out_of_range_and_max_uv_sets_the_ceiling() -> None:
    x = eeg(10)
    pop = np.zeros(x.shape[1])
    pop[1250:1300] = 2000.0  # an electrode pop: a 2 mV shift for 0.2 s at 5 s...
    pop = np.convolve(pop, np.ones(6) / 6, mode="same")  # ...over 24 ms, so no single step exceeds max_uv
    x[0] += pop
    assert at(run_pipeline(x, SFREQ), 5.5).bad_reasons[0] == "out-of-range"
    assert at(run_pipeline(x, SFREQ), 5.5).good[1:].all()
    assert at(run_pipeline(x, SFREQ, with_quality(max_uv=5000.0)), 5.5).bad_reasons[0] in ("muscle", "amplitude")
    x[0, 1250:1300] += 2000.0  # the same shift in one sample: a glitch
    assert at(run_pipeline(x, SFREQ), 5.5).bad_reasons[0] == "glitch"


def test_a_dc_offset_trips_nothing_and_single_sample_spikes_are_repaired_not_excluded() -> None:
    """A consumer headset: every channel sits at 4 mV, with the odd huge single-sample glitch."""
    clean = eeg(14) + 4000.0
    x = clean.copy()
    x[0, 1250] += 7e5  # 0.7 V: beyond the rails
    x[1, 1250] += 4000.0  # 4 mV
    feats = run_pipeline(x, SFREQ, chunk=[7, 25, 1])
    assert all(f.good.all() for f in feats)  # the spikes were repaired: no channel lost
    during, reference = at(feats, 5.2), at(run_pipeline(clean, SFREQ), 5.2)
    assert during.repaired == (1, 1, 1)  # two channels spiked: the amplifier's glitch, held on all three
    np.testing.assert_allclose(during.de, reference.de, atol=0.05)  # the score sees what it would without them
    assert at(feats, 9.0).repaired == (0, 0, 0)
    # spike_s = 0: no repair, each spike excludes its channel while it sits in the window
    strict = at(run_pipeline(x, SFREQ, with_quality(spike_s=0.0)), 5.2)
    assert strict.bad_reasons == ("railed", "glitch", "") and strict.repaired == (0, 0, 0)


def test_a_glitch_longer_than_spike_s_excludes_the_channel_and_one_channel_alone_is_not_the_amplifier() -> None:
    x = eeg(10, n_ch=5)
    x[0, 1250:1252] += 3000.0  # two samples (8 ms at 250 Hz)
    x[1, 1250:1254] += 3000.0  # four samples (16 ms); two channels of five: not the whole amplifier
    during = at(run_pipeline(x, SFREQ), 5.2)
    assert during.bad_reasons == ("", "glitch", "", "", "") and during.repaired == (2, 0, 0, 0, 0)
    longer = at(run_pipeline(x, SFREQ, with_quality(spike_s=0.02)), 5.2)  # 16 ms: a spike when spike_s allows
    assert longer.good.all() and longer.repaired == (2, 4, 0, 0, 0)
    with pytest.raises(ValueError, match="spike_s"):
        QualityConfig(spike_s=-1.0).validate()


def test_repaired_new_counts_each_repaired_sample_once_over_the_session() -> None:
    """Windows overlap, so their `repaired` counts a spike once per window holding it; `repaired_new` once in all."""
    x = eeg(12, n_ch=3)
    x[0, [300, 1250, 2600]] += 3000.0  # three single-sample spikes on one channel; the first before the first window
    x[2, 1800:1802] += 3000.0  # a two-sample spike
    for chunk in ([7, 25, 1], [250]):
        feats = run_pipeline(x, SFREQ, chunk=chunk)
        assert all(f.good.all() for f in feats)
        assert np.sum([f.repaired_new for f in feats], axis=0).tolist() == [3, 0, 2]
        assert sum(f.repaired[0] for f in feats) > 3  # each window holding a spike counts it


def test_a_channel_that_keeps_spiking_is_a_glitching_channel() -> None:
    x = eeg(10, n_ch=5)
    x[0, 1250:1750:50] += 3000.0  # a single-sample spike every 0.2 s at 5-7 s: a bad contact
    x[1, 1250] += 3000.0  # one spike: repaired
    during = at(run_pipeline(x, SFREQ), 6.99)  # the window of 5.0-7.0 s
    assert during.bad_reasons[:2] == ("glitch", "") and during.repaired[:2] == (10, 1)


def test_the_source_declared_range_replaces_the_default_unless_the_user_sets_max_uv() -> None:
    """A test signal generator (BrainFlow's synthetic board) declares SourceInfo.max_uv; its big sines are healthy."""
    t = np.arange(int(6 * SFREQ)) / SFREQ
    x = eeg(6)
    x[0] += 700 * np.sin(2 * np.pi * 25.0 * t)  # a 700 µV test sine, like the synthetic board's channel 15
    info = SourceInfo("generator", SFREQ, names(3), "brainflow", max_uv=1500.0)

    def last(pipe: FeaturePipeline) -> Features:
        feats = [
            f
            for i in range(0, x.shape[1], 25)
            for f in pipe.push(Chunk(x[:, i : i + 25], t[i : i + 25], names(3), SFREQ))
        ]
        return feats[-1]

    assert QualityConfig().max_uv is None and QualityConfig().effective_max_uv(None) == DEFAULT_MAX_UV
    assert last(FeaturePipeline(FeatureConfig(), SFREQ, names(3))).bad_reasons[0] == "out-of-range"  # scalp default
    generator = FeaturePipeline.for_source(FeatureConfig(), info)
    assert generator.max_uv == 1500.0 and last(generator).good.all()
    # The user's features.quality.max_uv wins over what the source declares.
    strict = FeaturePipeline.for_source(with_quality(max_uv=150.0), info)
    assert strict.max_uv == 150.0 and last(strict).bad_reasons[0] in ("glitch", "out-of-range")  # both use max_uv
    with pytest.raises(ValueError, match="max_uv"):
        QualityConfig(max_uv=0.0).validate()


def test_a_muscle_burst_is_judged_on_high_frequencies_and_muscle_ratio_sets_the_limit() -> None:
    x = eeg(14)
    rng = np.random.default_rng(3)
    burst = slice(int(10 * SFREQ), int(10.5 * SFREQ))
    n = burst.stop - burst.start
    emg = np.diff(rng.standard_normal(n + 1))  # differenced noise: power rising with frequency, like EMG
    x[2, burst] += 12 * emg
    f = at(run_pipeline(x, SFREQ), 10.6)
    assert f.bad_reasons[2] == "muscle" and f.good[:2].all()
    assert at(run_pipeline(x, SFREQ, with_quality(muscle_ratio=20.0, amplitude_ratio=100.0)), 10.6).good[2]


def test_a_lasting_change_of_level_becomes_the_norm_within_history_s() -> None:
    x = eeg(30)
    x[0, int(5 * SFREQ) :] += 40 * np.random.default_rng(4).standard_normal(x.shape[1] - int(5 * SFREQ))
    short = run_pipeline(x, SFREQ, with_quality(history_s=4.0))
    long = run_pipeline(x, SFREQ)
    assert not at(short, 6.0).good[0] and not at(long, 6.0).good[0]
    assert at(short, 25.0).good[0] and not at(long, 25.0).good[0]


def test_rail_uv_sets_the_railed_limit() -> None:
    x = eeg(6)
    x[0, 1300:1310] = 5000.0  # at 5.2 s, inside the last window
    assert run_pipeline(x, SFREQ)[-1].bad_reasons[0] == "glitch"  # a 5 mV jump, not railed at 180 mV
    assert run_pipeline(x, SFREQ, with_quality(rail_uv=4000.0))[-1].bad_reasons[0] == "railed"


def test_time_stamp_gaps_are_reported_in_the_hop_they_happen() -> None:
    x = eeg(10)
    ts = np.arange(x.shape[1]) / SFREQ
    ts[1250:] += 0.5  # half a second lost at 5 s (brainflow#687)
    feats = run_pipeline(x, SFREQ, timestamps=ts)
    gaps = [f for f in feats if f.gap_s > 0]
    assert len(gaps) == 1 and gaps[0].gap_s == pytest.approx(0.5, abs=1e-6)
    assert run_pipeline(x, SFREQ, with_quality(gap_s=1.0), timestamps=ts)[-1].gap_s == 0.0
    assert all(f.gap_s == 0 for f in run_pipeline(x, SFREQ))


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 2499), st.sampled_from([np.nan, np.inf, -np.inf, 1e9, 0.0, -3e5])),
        max_size=30,
    ),
    st.lists(st.integers(1, 300), min_size=1, max_size=5).filter(lambda sizes: sum(sizes) >= 60),
)
def test_garbage_never_crashes_and_good_channels_stay_finite(
    corruptions: list[tuple[int, int, float]], chunks: list[int]
) -> None:
    x = eeg(6)
    for ch, i, value in corruptions:
        x[ch, i % x.shape[1]] = value
    feats = run_pipeline(x, SFREQ, chunk=chunks)
    assert len(feats) == 17
    for f in feats:
        assert np.isfinite(f.de[:, f.good]).all()
        assert np.isnan(f.de[:, ~f.good]).all()
        assert all((r == "") == g for r, g in zip(f.bad_reasons, f.good, strict=True))


def test_a_channel_that_is_nan_from_the_start_recovers_when_data_comes() -> None:
    x = eeg(10)
    x[0, :500] = np.nan
    pipe = FeaturePipeline(FeatureConfig(), SFREQ, names(3))
    feats = pipe.push(Chunk(x, np.arange(x.shape[1]) / SFREQ, names(3), SFREQ))
    assert feats[0].bad_reasons[0] == "nan"
    assert feats[-1].good.all()


def test_rhythm_eye_and_muscle_bands_are_options() -> None:
    x = eeg(16)
    t = np.arange(x.shape[1]) / SFREQ
    envelope = np.clip((t - 8.0) / 0.3, 0.0, 1.0)
    x += 120 * envelope * np.sin(2 * np.pi * 9.5 * t)
    montage = ("O1", "Oz", "Fp1")
    # Alpha is spared only inside rhythm_hz: stop another band instead and the same rise is an amplitude artifact.
    moved = run_pipeline(x, SFREQ, with_quality(rhythm_hz=(17.0, 23.0)), channel_names=montage)
    assert at(moved, 9.0).bad_reasons[0] == "amplitude"
    # A blink is slow: with eye_hz at 0.5 Hz its slow part is too small to count as an eye artifact.
    blink = eeg(10)
    blink[0] += 150 * np.exp(-0.5 * ((np.arange(blink.shape[1]) / SFREQ - 5.0) / 0.1) ** 2)
    slow = lambda **o: at(run_pipeline(blink, SFREQ, with_quality(**o), channel_names=("Fp1", "O1", "Cz")), 5.5)  # noqa: E731
    assert slow().bad_reasons[0] == "eye" and slow(eye_hz=0.5).bad_reasons[0] == "amplitude"
    # Muscle is judged above muscle_hz; the rule is off where the rate cannot show it.
    config = with_quality(muscle_hz=60.0).quality
    assert FeaturePipeline(with_quality(muscle_hz=60.0), 250.0, names(2))._quality_filters.fast is not None
    assert FeaturePipeline(FeatureConfig(quality=config), 128.0, names(2))._quality_filters.fast is None


def test_bad_quality_options_are_refused() -> None:
    with pytest.raises(ValueError, match="rhythm_hz"):
        QualityConfig(rhythm_hz=(14.0, 7.0)).validate()
    for name in ("amplitude_ratio", "eye_ratio", "muscle_ratio", "history_s"):
        with pytest.raises(ValueError, match=name):
            dataclasses.replace(QualityConfig(), **{name: 0.0}).validate()
    with pytest.raises(ConfigError, match="Nyquist"):
        FeaturePipeline(with_quality(rhythm_hz=(7.0, 70.0)), 128.0, names(2))
