"""The score and the artifact rules on real recordings, against BrainFlow's own classifier on the same windows.

The recordings (see real_eeg_dir): EEGMAT subject 19, eyes-closed rest vs mental arithmetic, 19 channels at 500 Hz,
cleaned by its authors; UCI EEG Eye State, an Emotiv headset, 14 channels at 128 Hz, 4 mV DC offsets, single-sample
glitches of up to 0.7 V, blinks, and 24 video-coded eyes-open/closed periods.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.montage import region
from neuromusic.models.signal.score import ScoreConfig
from signal_fixtures import real_eeg_benchmark, real_eeg_dir

CHUNK_S = 0.5  # features and scores do not depend on how the stream is cut; bigger chunks only run faster
UCI_GLITCHES = (898, 10386, 11509, 13179)  # samples of the four amplifier glitches (see the recordings' README)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return real_eeg_benchmark()


@pytest.fixture(scope="module")
def recordings(bench: ModuleType) -> dict[str, Any]:
    found = {r.name.split(" ")[0]: r for r in bench.shared_recordings(real_eeg_dir(), repeats=1)}
    assert set(found) == {"eegmat_Subject19", "uci_eeg_eye_state_raw.fif.gz"}, sorted(found)
    return found


@pytest.fixture(scope="module")
def eegmat(bench: ModuleType, recordings: dict[str, Any]) -> Any:
    return bench.evaluate(recordings["eegmat_Subject19"], stride=16, chunk_s=CHUNK_S)


@pytest.fixture(scope="module")
def uci(bench: ModuleType, recordings: dict[str, Any]) -> Any:
    return bench.evaluate(recordings["uci_eeg_eye_state_raw.fif.gz"], stride=2, chunk_s=CHUNK_S)


def test_no_posterior_channel_is_excluded_while_the_eyes_are_closed(eegmat: Any, recordings: dict[str, Any]) -> None:
    names = recordings["eegmat_Subject19"].channel_names
    posterior = [i for i, name in enumerate(names) if region(name) in ("occipital", "parietal")]
    assert len(posterior) == 7  # O1 O2 P3 P4 Pz T5 T6
    closed = np.flatnonzero(eegmat.series["truth"] == 1)
    assert closed.size > 500
    excluded = {(names[i], eegmat.reasons[k][i]) for k in closed for i in posterior if eegmat.reasons[k][i]}
    assert not excluded


def test_rest_vs_arithmetic_beats_brainflow_separates_the_states_and_responds_within_3_s(eegmat: Any) -> None:
    assert eegmat.auc["ours"] >= eegmat.auc["restfulness"]
    assert eegmat.auc["ours"] >= eegmat.auc["1-mindfulness"]
    assert eegmat.auc["ours"] > 0.9
    assert eegmat.mean["ours"][True] - eegmat.mean["ours"][False] >= 0.25
    assert eegmat.midpoint_s and all(m is not None and m <= 3.0 for m in eegmat.midpoint_s), eegmat.midpoint_s


def test_eyes_open_vs_closed_on_a_consumer_headset_is_not_below_brainflow(uci: Any) -> None:
    assert uci.auc["ours"] >= uci.auc["restfulness"]
    assert uci.auc["ours"] >= uci.auc["1-mindfulness"]
    assert uci.mean["ours"][True] > uci.mean["ours"][False]


def test_the_glitches_are_repaired_and_leave_the_score_unharmed(bench: ModuleType, recordings: dict[str, Any]) -> None:
    raw = recordings["uci_eeg_eye_state_raw.fif.gz"]
    cleaned = dataclasses.replace(raw, data=raw.data.copy())
    for i in UCI_GLITCHES:
        cleaned.data[:, i] = 0.5 * (raw.data[:, i - 1] + raw.data[:, i + 1])
    features, score = FeatureConfig(), ScoreConfig()
    t, with_glitches, reasons, repaired = bench.replay(raw, features, score, CHUNK_S)
    _, without, clean_reasons, _ = bench.replay(cleaned, features, score, CHUNK_S)
    for i in UCI_GLITCHES:
        jumped = np.abs(raw.data[:, i] - cleaned.data[:, i]) > 1000.0  # µV
        assert jumped.any()
        holding = np.flatnonzero((t >= i / raw.sfreq) & (t - features.window_s < i / raw.sfreq))
        assert holding.size >= 7  # every window that holds the glitch...
        for k in holding:  # ...repaired it on every channel, and lost no channel the clean recording keeps
            assert (repaired[k] >= 1).all(), (i, repaired[k])
            assert [bool(r) for r in reasons[k]] == [bool(r) for r in clean_reasons[k]], (i, reasons[k])
    assert repaired.sum() == 4 * len(raw.channel_names) * 8  # each glitch sample, in each of the 8 windows holding it
    scored = t > t[0] + score.baseline_s
    assert (np.isfinite(with_glitches) == np.isfinite(without))[scored].all()
    both = np.isfinite(with_glitches) & np.isfinite(without)
    assert both[scored].mean() > 0.95
    assert np.abs(with_glitches[both] - without[both]).max() < 0.01


@pytest.mark.parametrize("reference", ["recorded", "median"])
@pytest.mark.parametrize(
    "variant", ["names unknown to 10-20", "one channel", "one channel, unknown name", "Muse-like, four channels"]
)
def test_awkward_montages_give_a_score_or_a_reason(
    bench: ModuleType, recordings: dict[str, Any], variant: str, reference: str
) -> None:
    """128 Hz, 4 mV DC offsets and 0.7 V glitches come with the recording; the montage is made awkward here (with a
    re-reference, one channel is used as recorded)."""
    raw = recordings["uci_eeg_eye_state_raw.fif.gz"]
    names = raw.channel_names
    pick = {
        "names unknown to 10-20": list(range(len(names))),
        "one channel": [names.index("O2")],
        "one channel, unknown name": [names.index("O2")],
        "Muse-like, four channels": [names.index(c) for c in ("P7", "AF3", "AF4", "P8")],
    }[variant]
    labels = {
        "names unknown to 10-20": tuple(f"ch{i + 1}" for i in pick),
        "one channel": ("O2",),
        "one channel, unknown name": ("EXG1",),
        "Muse-like, four channels": ("TP9", "AF7", "AF8", "TP10"),
    }[variant]
    recording = dataclasses.replace(raw, data=raw.data[pick].copy(), channel_names=labels)
    t, values, reasons, repaired = bench.replay(recording, FeatureConfig(reference=reference), ScoreConfig(), CHUNK_S)
    after = t > t[0] + ScoreConfig().baseline_s
    assert np.isfinite(values[after]).mean() > 0.85
    for k in np.flatnonzero(after & ~np.isfinite(values)):
        assert all(reasons[k]), reasons[k]  # no score only when every channel is out, each with its reason
    glitch_windows = (t >= UCI_GLITCHES[1] / raw.sfreq) & (t - 2.0 < UCI_GLITCHES[1] / raw.sfreq)
    # the glitch is repaired where it jumped beyond max_uv (on O2 alone it is 0.47 mV: an artifact with its reason)
    assert all(repaired[k].any() or any(reasons[k]) for k in np.flatnonzero(glitch_windows))


def test_files_on_the_command_line_take_their_periods_from_annotations_a_csv_or_a_label(
    bench: ModuleType, tmp_path: Any
) -> None:
    folder = real_eeg_dir()
    fif = folder / "uci_eeg_eye_state_raw.fif.gz"
    table = tmp_path / "periods.csv"
    table.write_text("start_s,end_s,state\n0,40,eyes_open\n40,80,rest\n")
    rest, task = folder / "eegmat_Subject19_1_rest.edf", folder / "eegmat_Subject19_2_arithmetic.edf"
    found = bench.command_line_recordings([str(fif), f"{fif}:{table}", f"{task}:active", f"{rest}:rest"])
    assert [len(r.periods) for r in found] == [24, 2, 2]
    assert found[1].periods == [(0.0, 40.0, False), (40.0, 80.0, True)]
    assert found[2].periods == [(0.0, 62.0, False), (62.0, 244.0, True)] and found[2].data.shape[1] == 122000
    with pytest.raises(SystemExit, match="state must be"):
        bench.command_line_recordings([f"{fif}:sleepy"])


def test_a_median_reference_lifts_the_consumer_headset_and_keeps_the_clean_recording_ahead(
    bench: ModuleType, recordings: dict[str, Any], uci: Any, eegmat: Any
) -> None:
    """The Emotiv headset's reference sits on the parietal scalp, among the alpha generators; re-referenced to the
    median of its channels, eyes closed shows more. The clean recording (linked-ear reference) stays ahead of
    BrainFlow with it too."""
    median = FeatureConfig(reference="median")
    uci_median = bench.evaluate(recordings["uci_eeg_eye_state_raw.fif.gz"], median, stride=2, chunk_s=CHUNK_S)
    eegmat_median = bench.evaluate(recordings["eegmat_Subject19"], median, stride=16, chunk_s=CHUNK_S)
    print(
        f"\nAUC as recorded / median reference: UCI {uci.auc['ours']:.3f} / {uci_median.auc['ours']:.3f}, "
        f"EEGMAT {eegmat.auc['ours']:.3f} / {eegmat_median.auc['ours']:.3f}"
    )
    assert uci_median.auc["ours"] >= uci.auc["ours"] + 0.05
    assert uci_median.mean["ours"][True] > uci_median.mean["ours"][False]
    assert eegmat_median.auc["ours"] >= eegmat_median.auc["restfulness"]
    assert eegmat_median.mean["ours"][True] - eegmat_median.mean["ours"][False] >= 0.25
