"""Causal band filters with carried state."""

from __future__ import annotations

import numpy as np
import pytest
from neuromusic.models.core.errors import ConfigError
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.filters import FilterBank, band_sos
from scipy import signal

BANDS = FeatureConfig().bands


def test_chunked_filtering_equals_filtering_the_whole_signal(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 2000)) * 10 + 500.0  # with a DC offset
    whole, whole_hp = FilterBank(BANDS, 250.0, 3)(x)
    bank = FilterBank(BANDS, 250.0, 3)
    parts, hps, i = [], [], 0
    for size in [1, 7, 64, 3, 500, 1425]:
        b, h = bank(x[:, i : i + size])
        parts.append(b)
        hps.append(h)
        i += size
    assert i == 2000
    np.testing.assert_allclose(np.concatenate(parts, axis=2), whole, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(np.concatenate(hps, axis=1), whole_hp, rtol=1e-10, atol=1e-9)


def test_a_dc_offset_does_not_ring_through_the_bands() -> None:
    # The state starts at steady state for the first sample: a constant 20 mV offset gives ~0 in every band.
    bands, hp = FilterBank(BANDS, 250.0, 2)(np.full((2, 500), 20000.0))
    assert np.abs(bands).max() < 1e-6
    assert np.abs(hp).max() < 1e-6


def test_band_pass_keeps_its_band_and_rejects_others() -> None:
    t = np.arange(5000) / 250.0
    alpha_tone = np.sin(2 * np.pi * 10.0 * t)[np.newaxis, :]
    beta_tone = np.sin(2 * np.pi * 22.0 * t)[np.newaxis, :]
    alpha = list(BANDS).index("alpha")
    out_a, _ = FilterBank(BANDS, 250.0, 1)(alpha_tone)
    out_b, _ = FilterBank(BANDS, 250.0, 1)(beta_tone)
    assert out_a[alpha, 0, 1000:].std() == pytest.approx(alpha_tone.std(), rel=0.05)
    assert out_b[alpha, 0, 1000:].std() < 0.1 * beta_tone.std()  # order 4: about -22 dB an octave above


@pytest.mark.parametrize("notch", [None, 50.0])
def test_notch_option_removes_mains_hum_only_when_set(notch: float | None) -> None:
    t = np.arange(10000) / 500.0
    hum = 30.0 * np.sin(2 * np.pi * 50.0 * t)[np.newaxis, :]
    gamma = list(BANDS).index("gamma")  # 31-50 Hz: its edge passes half of a 50 Hz hum's power
    out, _ = FilterBank(BANDS, 500.0, 1, notch_hz=notch)(hum)
    residual = out[gamma, 0, 2000:].std() / hum.std()
    if notch is None:
        assert residual > 0.3
    else:
        assert residual < 0.02


def test_filter_order_option_sharpens_the_band() -> None:
    t = np.arange(5000) / 250.0
    tone = np.sin(2 * np.pi * 15.0 * t)[np.newaxis, :]  # 2 Hz outside alpha (8-13)
    alpha = list(BANDS).index("alpha")
    leak = [FilterBank(BANDS, 250.0, 1, order=o)(tone)[0][alpha, 0, 1000:].std() for o in (2, 8)]
    assert leak[1] < 0.5 * leak[0]


def test_a_band_above_nyquist_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"gamma.*Nyquist.*bands"):
        FilterBank(BANDS, 100.0, 1)
    with pytest.raises(ConfigError, match="notch_hz"):
        FilterBank({"alpha": (8.0, 13.0)}, 100.0, 1, notch_hz=60.0)


def test_band_sos_is_a_stable_butterworth() -> None:
    sos = band_sos(8.0, 13.0, 250.0, order=4)
    assert sos.shape == (2, 6)
    assert np.all(np.abs(signal.sos2zpk(sos)[1]) < 1.0)


@pytest.mark.parametrize(("sfreq", "order"), [(250.0, 4), (1000.0, 4), (1000.0, 8), (4000.0, 4)])
def test_fast_transfer_function_path_matches_second_order_sections(sfreq: float, order: int) -> None:
    x = np.random.default_rng(4).standard_normal((2, int(5 * sfreq))) * 20 + 300.0
    bank = FilterBank(BANDS, sfreq, 2, order=order)
    out, _ = bank(x)
    for i, band in enumerate(bank.bands):
        zi = signal.sosfilt_zi(band.sos)[:, np.newaxis, :] * x[np.newaxis, :, 0, np.newaxis]
        reference, _ = signal.sosfilt(band.sos, x, axis=-1, zi=zi)
        scale = np.abs(reference).max()
        np.testing.assert_allclose(out[i], reference, atol=1e-5 * scale, rtol=0)
    if sfreq == 4000.0:
        assert not bank.bands[0].as_tf  # delta at 4 kHz: poles too close to z = 1 for the fast form
    if sfreq == 250.0:
        assert all(b.as_tf for b in bank.bands)
