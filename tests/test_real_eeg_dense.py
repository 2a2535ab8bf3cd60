"""A dense-montage recording in another format, end to end: 64 channels at 160 Hz with EDF labels padded with dots
("Fc5.", "O1..", "Iz.."), 60 Hz mains hum, periods from the file's annotations, replayed with a 60 Hz notch.

The stand-in is built from the EEGMAT pair (see real_eeg_dir): its 19 channels renamed to 10-10 names, 45 more
sites made from the mean of two neighbours (plus a little noise of their own), resampled from 500 to 160 Hz, the
first minute of arithmetic then the first minute of rest, twice; written as an EDF file and read back through the
replay loader. A second variant makes the rest's posterior alpha eight times larger, the size of eyes-closed alpha.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.montage import canonical_name, region
from neuromusic.models.signal.score import ScoreConfig
from scipy.signal import butter, resample_poly, sosfiltfilt
from signal_fixtures import real_eeg_benchmark, real_eeg_dir

SFREQ = 160.0
MINUTE = 30000  # samples at 500 Hz
OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
NEIGHBOURS = {  # a site between two others: their mean
    "Oz": ("O1", "O2"), "POz": ("Pz", "Oz"), "PO3": ("P3", "O1"), "PO4": ("P4", "O2"), "PO7": ("P7", "O1"),
    "PO8": ("P8", "O2"), "Iz": ("Oz", "Oz"), "P1": ("P3", "Pz"), "P2": ("P4", "Pz"), "P5": ("P3", "P7"),
    "P6": ("P4", "P8"), "CPz": ("Cz", "Pz"), "CP1": ("C3", "Pz"), "CP2": ("C4", "Pz"), "CP3": ("C3", "P3"),
    "CP4": ("C4", "P4"), "CP5": ("T7", "P3"), "CP6": ("T8", "P4"), "TP7": ("T7", "P7"), "TP8": ("T8", "P8"),
    "C1": ("C3", "Cz"), "C2": ("C4", "Cz"), "C5": ("C3", "T7"), "C6": ("C4", "T8"), "FCz": ("Fz", "Cz"),
    "FC1": ("F3", "Cz"), "FC2": ("F4", "Cz"), "FC3": ("F3", "C3"), "FC4": ("F4", "C4"), "FC5": ("F7", "C3"),
    "FC6": ("F8", "C4"), "FT7": ("F7", "T7"), "FT8": ("F8", "T8"), "F1": ("F3", "Fz"), "F2": ("F4", "Fz"),
    "F5": ("F3", "F7"), "F6": ("F4", "F8"), "AF3": ("Fp1", "F3"), "AF4": ("Fp2", "F4"), "AF7": ("Fp1", "F7"),
    "AF8": ("Fp2", "F8"), "AFz": ("Fp1", "Fp2"), "Fpz": ("Fp1", "Fp2"), "TP9": ("T7", "P7"), "TP10": ("T8", "P8"),
}  # fmt: skip


def edf_label(site: str) -> str:
    """The way such files spell a site: 10-10 case with the second letter small, padded with dots to 4 characters."""
    text = site if site.startswith("Fp") or len(site) < 2 or not site[1].isalpha() else site[0] + site[1:].lower()
    return text.ljust(4, ".")


def dense_montage(x: np.ndarray, names: tuple[str, ...], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """64 sites from EEGMAT's 19 EEG channels (ECG and A2-A1 left out)."""
    rows = {}
    for i, name in enumerate(names):
        site = name.removeprefix("EEG ")
        if canonical_name(name) is not None:
            rows[OLD_NAMES.get(site, site)] = x[i]
    for site, (a, b) in NEIGHBOURS.items():
        rows[site] = 0.5 * (rows[a] + rows[b]) + 2.0 * rng.standard_normal(x.shape[1])
    return rows


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return real_eeg_benchmark()


def dense_recording(bench: ModuleType, alpha_gain: float = 1.0) -> tuple[np.ndarray, list[str]]:
    """(µV data, sites) of the stand-in at 160 Hz with mains hum; `alpha_gain` scales the 7-14 Hz part of the
    occipital and parietal sites during rest (eyes-closed alpha is several times the size of a resting one)."""
    folder = real_eeg_dir()
    rest, names, _, _ = bench.read_file(folder / "eegmat_Subject19_1_rest.edf")
    task, _, _, _ = bench.read_file(folder / "eegmat_Subject19_2_arithmetic.edf")
    rng = np.random.default_rng(0)
    blocks = [dense_montage(x[:, :MINUTE], names, rng) for x in (task, rest, task, rest)]
    sites = list(blocks[0])
    alpha = butter(4, [7.0, 14.0], "bandpass", fs=500.0, output="sos")
    for block in blocks[1::2]:
        for site in sites:
            if alpha_gain != 1.0 and region(site) in ("occipital", "parietal"):
                block[site] = block[site] + (alpha_gain - 1.0) * sosfiltfilt(alpha, block[site])
    data = np.concatenate([np.stack([block[s] for s in sites]) for block in blocks], axis=1)
    data = resample_poly(data, 8, 25, axis=1)  # 500 -> 160 Hz
    data += 15.0 * np.sin(2 * np.pi * 60.0 * np.arange(data.shape[1]) / SFREQ)  # mains hum, µV
    return data, sites


@pytest.fixture(scope="module")
def dense_edf(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mne

    data, sites = dense_recording(bench)
    raw = mne.io.RawArray(data * 1e-6, mne.create_info([edf_label(s) for s in sites], SFREQ, "eeg"), verbose="error")
    labels = ["eyes open", "eyes closed"] * 2  # active, relaxed: as the periods are read
    raw.set_annotations(mne.Annotations([0.0, 60.0, 120.0, 180.0], [60.0] * 4, labels))
    path = tmp_path_factory.mktemp("dense") / "dense_64ch_160hz.edf"
    mne.export.export_raw(path, raw, fmt="edf", verbose="error")
    return path


@pytest.fixture(scope="module")
def dense(bench: ModuleType, dense_edf: Path) -> Any:
    recording = bench.from_annotations(dense_edf)
    return recording, bench.evaluate(recording, FeatureConfig(notch_hz=60.0), ScoreConfig(), stride=4, chunk_s=0.5)


def test_dotted_edf_labels_are_read_as_their_sites(dense: Any) -> None:
    recording, _ = dense
    assert len(recording.channel_names) == 64 and recording.sfreq == SFREQ
    assert {"Fc5.", "O1..", "Iz..", "Fp1.", "Tp10"} <= set(recording.channel_names)
    assert all(canonical_name(name) is not None for name in recording.channel_names)
    assert canonical_name("Fc5.") == "FC5" and region("Iz..") == "occipital" and region("Poz.") == "occipital"
    assert [p[2] for p in recording.periods] == [False, True, False, True]


def test_a_dense_montage_at_160_hz_keeps_its_posterior_channels_and_beats_brainflow(dense: Any) -> None:
    recording, result = dense
    names = recording.channel_names
    posterior = [i for i, name in enumerate(names) if region(name) in ("occipital", "parietal")]
    assert len(posterior) == 18  # O1 Oz O2 Iz POz PO3/4/7/8 Pz P1-P8
    closed = np.flatnonzero(result.series["truth"] == 1)
    excluded = {(names[i], result.reasons[k][i]) for k in closed for i in posterior if result.reasons[k][i]}
    assert not excluded
    assert result.unscored == 0
    assert result.auc["ours"] >= result.auc["restfulness"] and result.auc["ours"] >= result.auc["1-mindfulness"]
    assert result.mean["ours"][True] - result.mean["ours"][False] >= 0.2
    assert result.midpoint_s and all(m is not None and m <= 3.0 for m in result.midpoint_s), result.midpoint_s


def test_eyes_closed_sized_alpha_at_160_hz_is_never_excluded_and_the_score_turns_within_3_s(bench: ModuleType) -> None:
    """Posterior alpha 8x its resting size during rest: 1 Hz high-passed peaks near 300 µV, p99 near 200 µV."""
    data, sites = dense_recording(bench, alpha_gain=8.0)
    periods = [(0.0, 60.0, False), (60.0, 120.0, True), (120.0, 180.0, False), (180.0, 240.0, True)]
    recording = bench.Recording("dense, eyes-closed alpha", data, tuple(edf_label(s) for s in sites), SFREQ, periods)
    features, score = FeatureConfig(notch_hz=60.0), ScoreConfig()
    t, values, reasons, _ = bench.replay(recording, features, score, 0.5)
    after = t[0] + score.baseline_s + features.hop_s
    truth = bench.labels(recording, t, features.window_s, after)
    posterior = [i for i, site in enumerate(sites) if region(site) in ("occipital", "parietal")]
    closed = np.flatnonzero(truth == 1)
    peak = np.abs(data[posterior, int(65 * SFREQ) : int(120 * SFREQ)] - data[posterior].mean(axis=1, keepdims=True))
    assert peak.max() > 250.0  # as large as the alpha that used to be excluded
    assert not {(sites[i], reasons[k][i]) for k in closed for i in posterior if reasons[k][i]}
    compared = np.isfinite(truth)
    assert np.isfinite(values[compared]).all()
    assert bench.auc(values[compared], truth[compared]) > 0.97
    midpoints = bench.midpoint_times(recording, t, values, after)
    assert len(midpoints) == 3 and all(m is not None and m <= 3.0 for m in midpoints), midpoints
